import { wgslArena, type Artifact, type KernelInfo, type WgslArena } from "../artifact/artifact.js";
import { KERNEL_NAMES, type BufferDecl, type KernelName } from "../artifact/schedule.js";
import { evalDim, type Type } from "../artifact/shape.js";

/**
 * Where every buffer of a schedule lives for one (sizes, B, T): element offsets in the two arenas, and each
 * kernel's offsets table (binding i at `offs[2i] + t * offs[2i + 1]`). Planned once per (cell, sizes, B,
 * T) and shared by every executor, so that the JS and WebGPU runtimes place buffers the same way.
 *
 * With a row alignment `align` above 1 (the WGSL kernels' 4, see artifact.ts `WGSL_ROW_ALIGN`), every
 * buffer and scratch region starts at a multiple of it, and the rows of every buffer but the parameters
 * and their gradients (which keep the caller's layout) are padded to a multiple of it: a vector row of n
 * floats takes `ceil(n / align) * align`, a matrix [m, n] m such rows; per-row scalars are not padded. The
 * padding is never read as data. With `align` 1 (the JS and wasm kernels) nothing is padded.
 */
export interface Layout {
  readonly T: number;
  readonly B: number;
  readonly memSize: number;
  readonly pmemSize: number;
  /** Element offset of each buffer in its arena, and its size (padding included). */
  readonly base: readonly number[];
  readonly size: readonly number[];
  /** Elements from one row of each buffer to the next (its row's size, padded). */
  readonly stride: readonly number[];
  /** The row alignment it was planned with. */
  readonly align: number;
  /** Each buffer's arena: mem or pmem, or with f16 storage hmem (the tape) and hpmem (the packs). */
  readonly arena: readonly WgslArena[];
  /** Sizes of the f16 arenas, in f16 elements (0 without f16 storage). */
  readonly hmemSize: number;
  readonly hpmemSize: number;
  /** Per kernel: [base, stride] per binding, then per extra region (a target's scratch). */
  readonly offs: Readonly<Record<KernelName, Float64Array>>;
  /** Rows a kernel iterates: B per step, or T*B before and after the loop. */
  readonly rows: Readonly<Record<KernelName, number>>;
}

/** Elements in one row of a value of type t (per batch row and step when batched). */
export function rowSize(t: Type, sizes: Readonly<Record<string, number>>): number {
  return t.dims.reduce((a, d) => a * evalDim(d, sizes), 1);
}

const roundUp = (n: number, align: number) => Math.ceil(n / align) * align;

/** Elements one row of a value of type t takes with rows padded to `align` (its last axis rounded up). */
export function rowStride(t: Type, sizes: Readonly<Record<string, number>>, align = 1): number {
  if (!t.dims.length || align === 1) return rowSize(t, sizes);
  const n = t.dims.map((d) => evalDim(d, sizes));
  return n.slice(0, -1).reduce((a, m) => a * m, roundUp(n[n.length - 1]!, align));
}

/** Whether a buffer's rows are padded in an aligned layout: all but the parameters and their gradients. */
export const paddedRows = (b: BufferDecl): boolean => b.kind !== "param" && b.kind !== "grad_param";

export function rowsOf(b: BufferDecl, T: number, B: number): number {
  switch (b.extent) {
    case "seq":
      return T * B;
    case "seq1":
      return (T + 1) * B;
    case "batch":
      return B;
    case "one":
      return 1;
  }
}

/**
 * The layout. `extra` gives, per kernel, sizes (in elements) of regions a target keeps in `mem` beside the
 * buffers (WGSL's scratch); they get entries after the bindings in that kernel's table.
 */
export function planLayout(
  a: Artifact,
  sizes: Readonly<Record<string, number>>,
  B: number,
  T: number,
  extra: Partial<Record<KernelName, readonly number[]>> = {},
  align = 1,
  f16 = false,
): Layout {
  const top: Record<WgslArena, number> = { mem: 0, pmem: 0, hmem: 0, hpmem: 0 };
  const base: number[] = [];
  const size: number[] = [];
  const stride: number[] = [];
  const arena: WgslArena[] = [];
  for (const b of a.buffers) {
    const row = paddedRows(b) ? rowStride(b.type, sizes, align) : rowSize(b.type, sizes);
    const n = rowsOf(b, T, B) * row;
    const at = wgslArena(b, f16);
    stride.push(row);
    size.push(n);
    arena.push(at);
    top[at] = roundUp(top[at], align);
    base.push((top[at] += n) - n);
  }
  let mem = top.mem;
  const offs = {} as Record<KernelName, Float64Array>;
  const rows = {} as Record<KernelName, number>;
  for (const name of KERNEL_NAMES) {
    const k: KernelInfo = a.kernels[name];
    const regions = extra[name] ?? [];
    const table = new Float64Array(2 * (k.bindings.length + regions.length));
    k.bindings.forEach((bd, i) => {
      const b = a.buffers[bd.buffer]!;
      const perStep =
        (b.extent === "seq" || b.extent === "seq1") && b.type.batched ? B * stride[bd.buffer]! : 0;
      table[2 * i] = base[bd.buffer]! + bd.shift * perStep;
      table[2 * i + 1] = k.rows === "B" ? perStep : 0;
    });
    regions.forEach((n, r) => {
      mem = roundUp(mem, align);
      table[2 * (k.bindings.length + r)] = mem;
      mem += Math.max(1, n);
    });
    offs[name] = table;
    rows[name] = k.rows === "B" ? B : T * B;
  }
  return {
    T,
    B,
    memSize: roundUp(mem, align),
    pmemSize: roundUp(top.pmem, align),
    hmemSize: roundUp(top.hmem, align),
    hpmemSize: roundUp(top.hpmem, align),
    base,
    size,
    stride,
    align,
    arena,
    offs,
    rows,
  };
}

/** The buffer of a kind and index (an input, a state's gradient, ...), or -1. */
export function bufferIndex(a: Artifact, kind: BufferDecl["kind"], index: number): number {
  return a.buffers.findIndex((b) => b.kind === kind && b.index === index);
}

/**
 * Copies between parameters and their packs in the pmem arena: packing lays each parameter's columns into
 * its pack's rows; unpacking adds a pack's gradient back to the parameters' gradients. One copy per block:
 * `rows` rows of `len` elements, from `from` (rows `fromStride` apart) to `to` (rows `toStride` apart).
 * Planned once per layout; both executors run them.
 */
export interface BlockCopy {
  readonly from: number;
  readonly fromStride: number;
  readonly to: number;
  readonly toStride: number;
  readonly rows: number;
  readonly len: number;
}

export function packCopies(
  a: Artifact,
  L: Layout,
  sizes: Readonly<Record<string, number>>,
  grad: boolean,
): BlockCopy[] {
  const copies: BlockCopy[] = [];
  a.packs.forEach((p, k) => {
    const pack = L.base[bufferIndex(a, grad ? "grad_pack" : "pack", k)]!;
    const K = evalDim(p.cols, sizes);
    const packStride = roundUp(K, L.align); // a pack's rows are padded
    for (const blk of p.blocks) {
      const pb = bufferIndex(a, grad ? "grad_param" : "param", blk.param);
      const ld = evalDim(a.buffers[pb]!.type.dims[1]!, sizes);
      const inParam = L.base[pb]! + evalDim(blk.c0, sizes);
      const inPack = pack + evalDim(blk.row0, sizes) * packStride;
      const rows = evalDim(blk.rows, sizes);
      copies.push(
        grad
          ? { from: inPack, fromStride: packStride, to: inParam, toStride: ld, rows, len: K }
          : { from: inParam, fromStride: ld, to: inPack, toStride: packStride, rows, len: K },
      );
    }
  });
  return copies;
}

/** Runs block copies on a host array, adding (unpacking gradients) or assigning (packing). */
export function runCopies(arena: FloatArrayLike, copies: readonly BlockCopy[], add: boolean): void {
  for (const c of copies)
    for (let r = 0; r < c.rows; r++) {
      const f = c.from + r * c.fromStride;
      const t = c.to + r * c.toStride;
      if (add) for (let j = 0; j < c.len; j++) arena[t + j]! += arena[f + j]!;
      else arena.copyWithin(t, f, f + c.len);
    }
}
type FloatArrayLike = Float32Array | Float64Array;
