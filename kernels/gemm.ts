// SIMD128 GEMM kernels over f32 row-major arrays in one memory (all pointers are byte offsets, all leading
// dimensions are in elements). The right-hand operand is first packed into column panels of `nr` columns
// (inner index major, `nr` floats per inner step, zero padded), so the micro-kernel streams it contiguously;
// the left operand is read in place, one f32 splat per row and inner step. The micro-kernel keeps
// `mr x nr/4` f32x4 accumulators in locals (4x8 by default: 8 accumulators + 2 panel vectors + 1 splat,
// which fits the 16 xmm registers V8 allocates). Inner (kc) and column (nc) blocking keep the packed block
// in L2 and the left tile in L1. Each output element is summed in the same inner order whatever the row or
// column range a call covers, so splitting a call across threads gives bit-identical results.
import { Func, T, type ModuleWriter, type ValType } from "./writer.js";

export interface GemmTiling {
  /** Rows per micro-tile. */
  mr: number;
  /** Columns per packed panel (a multiple of 4). */
  nr: number;
  /** Inner steps per block. */
  kc: number;
  /** Columns per block (a multiple of nr). */
  nc: number;
  /** Multiply-add with relaxed SIMD's f32x4.relaxed_madd (one fused instruction where the CPU has FMA). */
  fma?: boolean;
}

export const DEFAULT_TILING: GemmTiling = { mr: 4, nr: 8, kc: 256, nc: 128 };

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const i32s = (n: number): ValType[] => range(n).map(() => T.i32);

/** for (v = from; v < to; v += step) body — from/to/step push one i32 each. */
function forLoop(f: Func, v: number, from: () => void, to: () => void, step: () => void, body: () => void) {
  from();
  f.set(v).block().loop();
  f.get(v);
  to();
  f.op("i32.ge_s").brIf(1);
  body();
  f.get(v);
  step();
  f.op("i32.add").set(v).br(0).end().end();
}

/** Pushes min(a, b) of two i32 locals. */
function minI32(f: Func, a: number, b: number): void {
  f.get(a).get(b).get(a).get(b).op("i32.lt_s", "select");
}

/**
 * Micro-kernel for an mr-row tile and one panel: params (c, ldcBytes, a, aStrideBytes, b, n, nc, acc).
 * mode "rows": A(i,k) at a + i*aStride + 4k; mode "cols": A(i,k) at a + 4i + k*aStride.
 * One inner step per loop iteration, on purpose: V8's optimiser keeps loads in program order but sinks the
 * arithmetic to the end of the iteration, so every value an unrolled body loads is live at once and the
 * accumulators spill (unrolling by 4 ran at 60% of this loop's speed).
 */
function tile(mode: "rows" | "cols", mr: number, nr: number, fma: boolean): Func {
  const f = new Func(i32s(8));
  const [c, ldc, a, lda, b, n, nc, acc] = range(8);
  const nv = nr / 4;
  const accs = range(mr).map(() => range(nv).map(() => f.local(T.v128)));
  const bv = range(nv).map(() => f.local(T.v128));
  const av = f.local(T.v128);
  const k = f.local(T.i32);
  const rowPtr = range(mr).map((i) => (i === 0 || mode === "cols" ? a : f.local(T.i32)));
  for (let i = 1; i < mr && mode === "rows"; i++)
    f.get(lda).i32(i).op("i32.mul").get(a).op("i32.add").set(rowPtr[i]!);

  f.i32(0).set(k).block().loop();
  f.get(k).get(n).op("i32.ge_s").brIf(1);
  for (let v = 0; v < nv; v++)
    f.get(b)
      .mem("v128.load", v * 16)
      .set(bv[v]!);
  for (let i = 0; i < mr; i++) {
    f.get(rowPtr[i]!)
      .mem("v128.load32_splat", mode === "rows" ? 0 : i * 4)
      .set(av);
    for (let v = 0; v < nv; v++) {
      const [x, y] = [accs[i]![v]!, bv[v]!];
      if (fma) f.get(av).get(y).get(x).op("f32x4.relaxed_madd").set(x);
      else f.get(x).get(av).get(y).op("f32x4.mul", "f32x4.add").set(x);
    }
  }
  if (mode === "cols") f.get(a).get(lda).op("i32.add").set(a);
  else for (const p of rowPtr) f.get(p).i32(4).op("i32.add").set(p);
  f.get(b)
    .i32(nr * 4)
    .op("i32.add")
    .set(b);
  f.get(k).i32(1).op("i32.add").set(k).br(0).end().end();

  // Store: whole vectors for a full panel, lane by lane for the last, partial one.
  const cRow = f.local(T.i32);
  const store = (accumulate: boolean, full: boolean): void => {
    f.get(c).set(cRow);
    for (let i = 0; i < mr; i++) {
      for (let v = 0; v < nv; v++) {
        if (full) {
          f.get(cRow).get(accs[i]![v]!);
          if (accumulate)
            f.get(cRow)
              .mem("v128.load", v * 16)
              .op("f32x4.add");
          f.mem("v128.store", v * 16);
          continue;
        }
        for (let l = 0; l < 4; l++) {
          f.get(nc)
            .i32(v * 4 + l)
            .op("i32.gt_s")
            .if();
          f.get(cRow).get(accs[i]![v]!).lane("f32x4.extract_lane", l);
          if (accumulate)
            f.get(cRow)
              .mem("f32.load", v * 16 + l * 4)
              .op("f32.add");
          f.mem("f32.store", v * 16 + l * 4).end();
        }
      }
      if (i + 1 < mr) f.get(cRow).get(ldc).op("i32.add").set(cRow);
    }
  };
  f.get(nc).i32(nr).op("i32.eq").if();
  f.get(acc).if();
  store(true, true);
  f.else();
  store(false, true);
  f.end().else();
  f.get(acc).if();
  store(true, false);
  f.else();
  store(false, false);
  f.end().end();
  return f;
}

/**
 * Driver: (C, ldc, A, lda, B, rows, cols, inner, acc): C[rows, cols] (+)= A · Bpacked, B packed by
 * pack_n/pack_t with `inner` steps. Mode "rows": A is [rows, inner] with row stride lda; mode "cols":
 * A is [inner, rows] with row stride lda (so the product uses A transposed); mode "packed": A packed by
 * pack_a for `lda` rows (its padded columns: the whole product's, also when this call covers part of it).
 */
function driver(mode: "rows" | "cols" | "packed", tiles: number[], t: GemmTiling): Func {
  const f = new Func(i32s(9));
  const [C, ldc, A, lda, B, rows, cols, inner, acc] = range(9);
  const [kb, kn, accK, cb, ce, r, mr, aPtr, cc, nc, tmp, cap, block] = range(13).map(() => f.local(T.i32));
  f.get(ldc).i32(2).op("i32.shl").set(ldc);
  // packed: a block of kc inner steps of every panel is kc * lda floats; the tiles step by mr floats.
  if (mode === "packed")
    f.get(lda)
      .i32(t.kc * 4)
      .op("i32.mul")
      .set(block)
      .i32(t.mr * 4)
      .set(lda);
  else f.get(lda).i32(2).op("i32.shl").set(lda);
  const [cPtr, bPtr] = [f.local(T.i32), f.local(T.i32)];
  const body = (): void => {
    f.get(C).get(r).get(ldc).op("i32.mul", "i32.add").get(cc).i32(2).op("i32.shl", "i32.add").set(cPtr);
    f.get(B).get(cc).get(inner).op("i32.mul").get(kb).i32(t.nr).op("i32.mul", "i32.add");
    f.i32(2).op("i32.shl", "i32.add").set(bPtr);
    f.get(cols).get(cc).op("i32.sub").set(tmp).i32(t.nr).set(cap);
    minI32(f, tmp, cap);
    f.set(nc);
    // mr in 1..t.mr: call the matching micro-kernel.
    const call = (m: number): void => {
      const args = (): void => void [cPtr, ldc, aPtr, lda, bPtr, kn, nc, accK].forEach((l) => f.get(l));
      if (m === t.mr) {
        args();
        f.call(tiles[m - 1]!);
        return;
      }
      f.get(mr).i32(m).op("i32.eq").if();
      args();
      f.call(tiles[m - 1]!);
      f.else();
      call(m + 1);
      f.end();
    };
    call(1);
  };
  const c = (n: number) => () => f.i32(n);
  forLoop(
    f,
    kb,
    c(0),
    () => f.get(inner),
    c(t.kc),
    () => {
      f.get(inner).get(kb).op("i32.sub").set(tmp).i32(t.kc).set(cap);
      minI32(f, tmp, cap);
      f.set(kn);
      f.get(acc).get(kb).i32(0).op("i32.gt_s", "i32.or").set(accK);
      forLoop(
        f,
        cb,
        c(0),
        () => f.get(cols),
        c(t.nc),
        () => {
          f.get(cb).i32(t.nc).op("i32.add").set(tmp);
          minI32(f, tmp, cols);
          f.set(ce);
          forLoop(
            f,
            r,
            c(0),
            () => f.get(rows),
            c(t.mr),
            () => {
              f.get(rows).get(r).op("i32.sub").set(tmp).i32(t.mr).set(cap);
              minI32(f, tmp, cap);
              f.set(mr);
              const a = f.get(A).get(r);
              if (mode === "rows")
                a.get(lda).op("i32.mul", "i32.add").get(kb).i32(2).op("i32.shl", "i32.add");
              if (mode === "cols")
                a.i32(2).op("i32.shl", "i32.add").get(kb).get(lda).op("i32.mul", "i32.add");
              // packed: block kb / kc, then panel r / mr of it (mr * kc floats each)
              if (mode === "packed")
                a.i32(t.kc * 4)
                  .op("i32.mul", "i32.add")
                  .get(kb)
                  .i32(t.kc)
                  .op("i32.div_u")
                  .get(block)
                  .op("i32.mul", "i32.add");
              f.set(aPtr);
              forLoop(
                f,
                cc,
                () => f.get(cb),
                () => f.get(ce),
                c(t.nr),
                body,
              );
            },
          );
        },
      );
    },
  );
  return f;
}

/** pack_t(dst, src, ld, cols, inner): src is [cols, inner]; dst gets panels of nr columns. */
function packT(t: GemmTiling): Func {
  const f = new Func(i32s(5));
  const [dst, src, ld, cols, inner] = range(5);
  const [col, pcols, d, s, k] = range(5).map(() => f.local(T.i32));
  f.get(cols)
    .i32(t.nr - 1)
    .op("i32.add")
    .i32(t.nr)
    .op("i32.div_u")
    .i32(t.nr)
    .op("i32.mul")
    .set(pcols);
  forLoop(
    f,
    col,
    () => f.i32(0),
    () => f.get(pcols),
    () => f.i32(1),
    () => {
      // d = dst + ((col - col % nr) * inner + col % nr) * 4
      f.get(dst).get(col).get(col).i32(t.nr).op("i32.rem_u", "i32.sub").get(inner).op("i32.mul");
      f.get(col).i32(t.nr).op("i32.rem_u", "i32.add").i32(2).op("i32.shl", "i32.add").set(d);
      f.get(src).get(col).get(ld).op("i32.mul").i32(2).op("i32.shl", "i32.add").set(s);
      forLoop(
        f,
        k,
        () => f.i32(0),
        () => f.get(inner),
        () => f.i32(1),
        () => {
          f.get(d);
          f.get(col).get(cols).op("i32.lt_s").if(T.f32).get(s).mem("f32.load").else().f32(0).end();
          f.mem("f32.store");
          f.get(d)
            .i32(t.nr * 4)
            .op("i32.add")
            .set(d);
          f.get(s).i32(4).op("i32.add").set(s);
        },
      );
    },
  );
  return f;
}

/** pack_n(dst, src, ld, inner, cols): src is [inner, cols]; dst gets panels of w columns. */
function packN(w: number): Func {
  const f = new Func(i32s(5));
  const [dst, src, ld, inner, cols] = range(5);
  const [c0, k, d, s] = range(4).map(() => f.local(T.i32));
  forLoop(
    f,
    c0,
    () => f.i32(0),
    () => f.get(cols),
    () => f.i32(w),
    () => {
      forLoop(
        f,
        k,
        () => f.i32(0),
        () => f.get(inner),
        () => f.i32(1),
        () => {
          f.get(dst).get(c0).get(inner).op("i32.mul").get(k).i32(w).op("i32.mul", "i32.add");
          f.i32(2).op("i32.shl", "i32.add").set(d);
          f.get(src)
            .get(k)
            .get(ld)
            .op("i32.mul")
            .get(c0)
            .op("i32.add")
            .i32(2)
            .op("i32.shl", "i32.add")
            .set(s);
          copyPanelRow(f, d, s, c0, cols, w);
        },
      );
    },
  );
  return f;
}

/**
 * One inner step of a panel: `w` floats from s to d, those of columns c0 + j at or past `cols` as 0 (the
 * panel's zero padding). Shared by pack_n and pack_a.
 */
function copyPanelRow(f: Func, d: number, s: number, c0: number, cols: number, w: number): void {
  f.get(c0).i32(w).op("i32.add").get(cols).op("i32.le_s").if();
  for (let v = 0; v < w / 4 && w % 4 === 0; v++)
    f.get(d)
      .get(s)
      .mem("v128.load", v * 16)
      .mem("v128.store", v * 16);
  for (let j = 0; j < w && w % 4 !== 0; j++)
    f.get(d)
      .get(s)
      .mem("f32.load", j * 4)
      .mem("f32.store", j * 4);
  f.else();
  for (let j = 0; j < w; j++) {
    f.get(d).get(c0).i32(j).op("i32.add").get(cols).op("i32.lt_s");
    f.if(T.f32)
      .get(s)
      .mem("f32.load", j * 4)
      .else()
      .f32(0)
      .end()
      .mem("f32.store", j * 4);
  }
  f.end();
}

/**
 * pack_a(dst, src, ld, inner, cols): src is [inner, cols]; dst gets, for each block of kc inner steps,
 * the panels of mr columns of that block one after the other (panel p of block b at
 * dst + (b * kc * colsP + p * mr * kc) * 4, colsP the columns rounded up to mr), zero padded: the left
 * operand of mm_packed, which reads the panels of one block in order (a stream, not a stride of a whole
 * panel per tile). Blocks start at multiples of kc * colsP floats, so a call may cover any run of whole
 * blocks (dst and src advanced to its first).
 */
function packA(t: GemmTiling): Func {
  const f = new Func(i32s(5));
  const [dst, src, ld, inner, cols] = range(5);
  const w = t.mr;
  const [kb, kn, c0, k, d, s, colsP, tmp, cap] = range(9).map(() => f.local(T.i32));
  f.get(cols)
    .i32(w - 1)
    .op("i32.add")
    .i32(w)
    .op("i32.div_u")
    .i32(w)
    .op("i32.mul")
    .set(colsP);
  forLoop(
    f,
    kb,
    () => f.i32(0),
    () => f.get(inner),
    () => f.i32(t.kc),
    () => {
      f.get(inner).get(kb).op("i32.sub").set(tmp).i32(t.kc).set(cap);
      minI32(f, tmp, cap);
      f.set(kn);
      forLoop(
        f,
        c0,
        () => f.i32(0),
        () => f.get(cols),
        () => f.i32(w),
        () => {
          // d = dst + (kb * colsP + c0 * kc) * 4, s = src + (kb * ld + c0) * 4
          f.get(dst).get(kb).get(colsP).op("i32.mul").get(c0).i32(t.kc).op("i32.mul", "i32.add");
          f.i32(2).op("i32.shl", "i32.add").set(d);
          f.get(src).get(kb).get(ld).op("i32.mul").get(c0).op("i32.add").i32(2).op("i32.shl", "i32.add");
          f.set(s);
          forLoop(
            f,
            k,
            () => f.i32(0),
            () => f.get(kn),
            () => f.i32(1),
            () => {
              copyPanelRow(f, d, s, c0, cols, w);
              f.get(d)
                .i32(w * 4)
                .op("i32.add")
                .set(d);
              f.get(s).get(ld).i32(2).op("i32.shl", "i32.add").set(s);
            },
          );
        },
      );
    },
  );
  return f;
}

/** Byte size of the blocks that pack_a writes for `cols` columns and `inner` steps (whole kc blocks). */
export function packedABytes(t: GemmTiling, cols: number, inner: number): number {
  return Math.ceil(inner / t.kc) * t.kc * Math.ceil(cols / t.mr) * t.mr * 4;
}

/** Byte size of the panels that pack_n/pack_t write for `cols` columns and `inner` steps. */
export function packedBytes(t: GemmTiling, cols: number, inner: number): number {
  return Math.ceil(cols / t.nr) * t.nr * inner * 4;
}

export interface GemmExports {
  packT: number;
  packN: number;
  packA: number;
  mmRows: number;
  mmCols: number;
  mmPacked: number;
}

/** Bytes of scratch that gemm_<form> needs: the right operand's panels (and for tn the left's, after). */
export function scratchBytes(
  t: GemmTiling,
  form: "nt" | "nn" | "tn",
  R: number,
  M: number,
  K: number,
): number {
  if (form === "nt") return packedBytes(t, M, K);
  if (form === "nn") return packedBytes(t, K, M);
  return packedBytes(t, K, R) + packedABytes(t, M, R);
}

/**
 * Adds the packers, both drivers, and the three self-contained forms (which pack into `scratch`, at least
 * packedBytes(...) long) to the module, exported under the names in the interface doc of kernels.ts.
 */
export function addGemm(m: ModuleWriter, t: GemmTiling): GemmExports {
  if (t.nr % 4 !== 0 || t.nc % t.nr !== 0 || t.mr < 1 || t.kc < 1) throw new RangeError("bad GEMM tiling");
  const tilesRows = range(t.mr).map((i) => m.add(tile("rows", i + 1, t.nr, t.fma === true)));
  const tilesCols = range(t.mr).map((i) => m.add(tile("cols", i + 1, t.nr, t.fma === true)));
  const ids: GemmExports = {
    packT: m.add(packT(t), "pack_t"),
    packN: m.add(packN(t.nr), "pack_n"),
    packA: m.add(packA(t), "pack_a"),
    mmRows: m.add(driver("rows", tilesRows, t), "mm_rows"),
    mmCols: m.add(driver("cols", tilesCols, t), "mm_cols"),
    mmPacked: m.add(driver("packed", tilesCols, t), "mm_packed"),
  };
  // (C/D, ldc, A/G, lda, P/X, ldp, R, M, K, acc, scratch)
  const form = (pack: number, pk: (f: Func) => void, mm: number, mk: (f: Func) => void): Func => {
    const f = new Func(i32s(11));
    pk(f);
    f.call(pack);
    mk(f);
    f.call(mm);
    return f;
  };
  const [C, ldc, A, lda, P, ldp, R, M, K, acc, scratch] = range(11);
  const g = (f: Func, ...ls: number[]): void => void ls.forEach((l) => f.get(l));
  m.add(form(ids.packT, (f) => g(f, scratch, P, ldp, M, K), ids.mmRows, (f) => g(f, C, ldc, A, lda, scratch, R, M, K, acc)), "gemm_nt"); // prettier-ignore
  m.add(form(ids.packN, (f) => g(f, scratch, P, ldp, M, K), ids.mmRows, (f) => g(f, C, ldc, A, lda, scratch, R, K, M, acc)), "gemm_nn"); // prettier-ignore
  // gemm_tn: X into panels at scratch, G into blocks of mr-wide panels after them (the left operand read in
  // place would stride by a whole row of G per step, which thrashes L1 when ldg is a multiple of 4 KiB).
  const tn = new Func(i32s(11));
  const gAt = tn.local(T.i32);
  g(tn, scratch, P, ldp, R, K);
  tn.call(ids.packN);
  tn.get(scratch)
    .get(K)
    .i32(t.nr - 1)
    .op("i32.add")
    .i32(t.nr)
    .op("i32.div_u")
    .i32(t.nr * 4)
    .op("i32.mul");
  tn.get(R).op("i32.mul", "i32.add").set(gAt);
  g(tn, gAt, A, lda, R, M);
  tn.call(ids.packA);
  g(tn, C, ldc, gAt);
  tn.get(M)
    .i32(t.mr - 1)
    .op("i32.add")
    .i32(t.mr)
    .op("i32.div_u")
    .i32(t.mr)
    .op("i32.mul");
  g(tn, scratch, M, K, R, acc);
  tn.call(ids.mmPacked);
  m.add(tn, "gemm_tn");
  return ids;
}
