import type { NodeId } from "../ir/graph.js";
import type { Dim, Type } from "../../artifact/shape.js";
import { OPS, type ElementwiseDef } from "../ops/ops.js";
import {
  KERNEL_NAMES,
  kernelsOf,
  type MaskOp,
  type OuterAccumulate,
  type Schedule,
} from "../schedule/types.js";
import { KernelAddressing, type Place } from "./address.js";
import { planKernel, type Domain, type LoopItem } from "./plan.js";
import { Writer } from "./writer.js";

/**
 * JS code generation. Each kernel of the schedule becomes a factory `(B, dims, F, g?) => { run, premask,
 * postmask }`: B is the number of rows the kernel iterates (the batch at a step, or T*B before and after
 * the loop), F the float array type of the scratch it allocates once, g the GEMMs it calls (`GEMMS`, the
 * module's own, by default). `run(mem, pmem, offs, t)` runs it at
 * step t: binding i is at `offs[2i] + t * offs[2i + 1]` in `mem` or `pmem`. The masks take `lens` too.
 * Nothing is allocated per call. No user text reaches the code: buffers are offsets, values `v<id>`,
 * dimensions `d<i>`.
 */
export function jsNumber(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "(-Infinity)";
  const s = String(v);
  return v < 0 || Object.is(v, -0) ? `(${s})` : s;
}

export function jsDim(d: Dim, dimNames: readonly string[]): string {
  const parts: string[] = [];
  for (const [name, coeff] of Object.entries(d.terms)) {
    const i = dimNames.indexOf(name);
    if (i < 0) throw new Error(`unknown dimension ${name}`);
    parts.push(coeff === 1 ? `d${i}` : `${coeff} * d${i}`);
  }
  if (d.c !== 0 || parts.length === 0) parts.push(String(d.c));
  // Parenthesised unless a single name or number, so that it can stand anywhere.
  return parts.length === 1 && !parts[0]!.includes(" ") ? parts[0]! : `(${parts.join(" + ")})`;
}

/**
 * The GEMMs, register-blocked 4 x 4 with the inner loop over contiguous memory. Matrices are row-major at
 * an offset with a leading dimension: C[R, M] = A[R, K] P[M, K]^T (`gemmNT`), C[R, K] = G[R, M] P[M, K]
 * (`gemmNN`), D[M, K] += G[R, M]^T X[R, K] (`gemmTN`).
 */
export const JS_PRELUDE = `// Blocked so that a panel of P (64 of its rows, 256 of its columns) stays in cache while all rows stream by.
function gemmNT(C, co, ldc, A, ao, lda, P, po, ldp, R, M, K, acc = 0) {
  for (let k0 = 0; k0 < K || k0 === 0; k0 += 256) {
    const kn = Math.min(256, K - k0);
    for (let m0 = 0; m0 < M; m0 += 64)
      ntBlock(C, co + m0, ldc, A, ao + k0, lda, P, po + m0 * ldp + k0, ldp, R, Math.min(64, M - m0), kn, k0 > 0 ? 1 : acc);
  }
}
function ntBlock(C, co, ldc, A, ao, lda, P, po, ldp, R, M, K, acc) {
  let r = 0;
  for (; r + 4 <= R; r += 4) {
    const a0 = ao + r * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
    const c0 = co + r * ldc, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
    let m = 0;
    for (; m + 4 <= M; m += 4) {
      const p0 = po + m * ldp, p1 = p0 + ldp, p2 = p1 + ldp, p3 = p2 + ldp;
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      let s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
      for (let k = 0; k < K; k++) {
        const x0 = A[a0 + k], x1 = A[a1 + k], x2 = A[a2 + k], x3 = A[a3 + k];
        const w0 = P[p0 + k], w1 = P[p1 + k], w2 = P[p2 + k], w3 = P[p3 + k];
        s00 += x0 * w0; s01 += x0 * w1; s02 += x0 * w2; s03 += x0 * w3;
        s10 += x1 * w0; s11 += x1 * w1; s12 += x1 * w2; s13 += x1 * w3;
        s20 += x2 * w0; s21 += x2 * w1; s22 += x2 * w2; s23 += x2 * w3;
        s30 += x3 * w0; s31 += x3 * w1; s32 += x3 * w2; s33 += x3 * w3;
      }
      if (acc) {
        s00 += C[c0 + m]; s01 += C[c0 + m + 1]; s02 += C[c0 + m + 2]; s03 += C[c0 + m + 3];
        s10 += C[c1 + m]; s11 += C[c1 + m + 1]; s12 += C[c1 + m + 2]; s13 += C[c1 + m + 3];
        s20 += C[c2 + m]; s21 += C[c2 + m + 1]; s22 += C[c2 + m + 2]; s23 += C[c2 + m + 3];
        s30 += C[c3 + m]; s31 += C[c3 + m + 1]; s32 += C[c3 + m + 2]; s33 += C[c3 + m + 3];
      }
      C[c0 + m] = s00; C[c0 + m + 1] = s01; C[c0 + m + 2] = s02; C[c0 + m + 3] = s03;
      C[c1 + m] = s10; C[c1 + m + 1] = s11; C[c1 + m + 2] = s12; C[c1 + m + 3] = s13;
      C[c2 + m] = s20; C[c2 + m + 1] = s21; C[c2 + m + 2] = s22; C[c2 + m + 3] = s23;
      C[c3 + m] = s30; C[c3 + m + 1] = s31; C[c3 + m + 2] = s32; C[c3 + m + 3] = s33;
    }
    for (; m < M; m++) {
      const p0 = po + m * ldp;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let k = 0; k < K; k++) {
        const w = P[p0 + k];
        s0 += A[a0 + k] * w; s1 += A[a1 + k] * w; s2 += A[a2 + k] * w; s3 += A[a3 + k] * w;
      }
      if (acc) { s0 += C[c0 + m]; s1 += C[c1 + m]; s2 += C[c2 + m]; s3 += C[c3 + m]; }
      C[c0 + m] = s0; C[c1 + m] = s1; C[c2 + m] = s2; C[c3 + m] = s3;
    }
  }
  for (; r < R; r++) {
    const a0 = ao + r * lda, c0 = co + r * ldc;
    for (let m = 0; m < M; m++) {
      const p0 = po + m * ldp;
      let s = 0;
      for (let k = 0; k < K; k++) s += A[a0 + k] * P[p0 + k];
      C[c0 + m] = acc ? C[c0 + m] + s : s;
    }
  }
}
function gemmNN(C, co, ldc, G, go, ldg, P, po, ldp, R, M, K) {
  for (let m0 = 0; m0 < M || m0 === 0; m0 += 256) {
    const mn = Math.min(256, M - m0);
    for (let k0 = 0; k0 < K; k0 += 64)
      nnBlock(C, co + k0, ldc, G, go + m0, ldg, P, po + m0 * ldp + k0, ldp, R, mn, Math.min(64, K - k0), m0 > 0 ? 1 : 0);
  }
}
function nnBlock(C, co, ldc, G, go, ldg, P, po, ldp, R, M, K, acc) {
  let r = 0;
  for (; r + 4 <= R; r += 4) {
    const g0 = go + r * ldg, g1 = g0 + ldg, g2 = g1 + ldg, g3 = g2 + ldg;
    const c0 = co + r * ldc, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
    let k = 0;
    for (; k + 4 <= K; k += 4) {
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      let s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
      let p = po + k;
      for (let m = 0; m < M; m++, p += ldp) {
        const w0 = P[p], w1 = P[p + 1], w2 = P[p + 2], w3 = P[p + 3];
        const x0 = G[g0 + m], x1 = G[g1 + m], x2 = G[g2 + m], x3 = G[g3 + m];
        s00 += x0 * w0; s01 += x0 * w1; s02 += x0 * w2; s03 += x0 * w3;
        s10 += x1 * w0; s11 += x1 * w1; s12 += x1 * w2; s13 += x1 * w3;
        s20 += x2 * w0; s21 += x2 * w1; s22 += x2 * w2; s23 += x2 * w3;
        s30 += x3 * w0; s31 += x3 * w1; s32 += x3 * w2; s33 += x3 * w3;
      }
      if (acc) {
        s00 += C[c0 + k]; s01 += C[c0 + k + 1]; s02 += C[c0 + k + 2]; s03 += C[c0 + k + 3];
        s10 += C[c1 + k]; s11 += C[c1 + k + 1]; s12 += C[c1 + k + 2]; s13 += C[c1 + k + 3];
        s20 += C[c2 + k]; s21 += C[c2 + k + 1]; s22 += C[c2 + k + 2]; s23 += C[c2 + k + 3];
        s30 += C[c3 + k]; s31 += C[c3 + k + 1]; s32 += C[c3 + k + 2]; s33 += C[c3 + k + 3];
      }
      C[c0 + k] = s00; C[c0 + k + 1] = s01; C[c0 + k + 2] = s02; C[c0 + k + 3] = s03;
      C[c1 + k] = s10; C[c1 + k + 1] = s11; C[c1 + k + 2] = s12; C[c1 + k + 3] = s13;
      C[c2 + k] = s20; C[c2 + k + 1] = s21; C[c2 + k + 2] = s22; C[c2 + k + 3] = s23;
      C[c3 + k] = s30; C[c3 + k + 1] = s31; C[c3 + k + 2] = s32; C[c3 + k + 3] = s33;
    }
    for (; k < K; k++) {
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let p = po + k;
      for (let m = 0; m < M; m++, p += ldp) {
        const w = P[p];
        s0 += G[g0 + m] * w; s1 += G[g1 + m] * w; s2 += G[g2 + m] * w; s3 += G[g3 + m] * w;
      }
      if (acc) { s0 += C[c0 + k]; s1 += C[c1 + k]; s2 += C[c2 + k]; s3 += C[c3 + k]; }
      C[c0 + k] = s0; C[c1 + k] = s1; C[c2 + k] = s2; C[c3 + k] = s3;
    }
  }
  for (; r < R; r++) {
    const c0 = co + r * ldc, g0 = go + r * ldg;
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let m = 0; m < M; m++) s += G[g0 + m] * P[po + m * ldp + k];
      C[c0 + k] = acc ? C[c0 + k] + s : s;
    }
  }
}
// The weight gradient reduces over all T*B rows: both operands are transposed first (a pass over them,
// against M*K passes of multiply-adds), so that the reduction runs over contiguous memory in gemmNT.
let tnScratch;
function gemmTN(D, dof, ldd, G, go, ldg, X, xo, ldx, R, M, K) {
  const need = R * (M + K);
  const wide = D.BYTES_PER_ELEMENT === 8;
  if (!tnScratch || tnScratch.length < need || tnScratch.BYTES_PER_ELEMENT !== D.BYTES_PER_ELEMENT)
    tnScratch = wide ? new Float64Array(need) : new Float32Array(need);
  const T = tnScratch;
  for (let r = 0; r < R; r++) {
    const g = go + r * ldg, x = xo + r * ldx;
    for (let m = 0; m < M; m++) T[m * R + r] = G[g + m];
    for (let k = 0; k < K; k++) T[(M + k) * R + r] = X[x + k];
  }
  gemmNT(D, dof, ldd, T, 0, R, T, M * R, R, M, K, R, 1);
}
/** The GEMMs a kernel calls, unless its factory is given others (the WebAssembly ones, say). */
export const GEMMS = { nt: gemmNT, nn: gemmNN, tn: gemmTN };
`;

class JsKernelWriter extends KernelAddressing {
  readonly w = new Writer();
  protected readonly one = "1";

  protected dim(d: Dim) {
    return jsDim(d, this.dims);
  }
  protected scratchSlot(k: number) {
    return { arena: `s${k}`, off: "0" };
  }
  private size(t: Type) {
    const f = t.dims.map((d) => this.dim(d)).join(" * ") || "1";
    return t.batched ? `B * ${f}` : f;
  }
  /** The expression reading node `id` at row `b`, column `j`. */
  read(id: NodeId, b = "b", j = "j"): string {
    const n = this.k.graph.node(id);
    if (n.op === "const") return jsNumber(n.attrs.value!);
    if (n.op === "dim") return this.dim(n.attrs.dim!);
    if (this.plan.storage.get(id)!.kind === "local") return `v${id}`;
    return this.at(this.place(id), b, n.type.dims.length ? j : "0");
  }

  emit(fnName: string): void {
    const w = this.w;
    w.open(`export function ${fnName}(B, dims, F, g = GEMMS) {`);
    this.dims.forEach((_, i) => w.line(`const d${i} = dims[${i}];`));
    this.plan.scratch.forEach((t, i) => w.line(`const s${i} = new F(${this.size(t)});`));
    const offsets = () =>
      this.k.bindings.forEach((_, i) => w.line(`const o${i} = offs[${2 * i}] + t * offs[${2 * i + 1}];`));
    w.open("function run(mem, pmem, offs, t) {");
    offsets();
    for (const s of this.plan.steps) {
      if (s.kind === "loop") this.loop(s.domain, s.items);
      else if (s.kind === "barrier") this.barrier(s.node);
      else this.outer(s.outer);
    }
    w.close();
    for (const [name, ops] of [
      ["premask", this.k.premask],
      ["postmask", this.k.postmask],
    ] as const) {
      w.open(`function ${name}(mem, pmem, offs, t, lens) {`);
      if (ops.length) {
        offsets();
        w.open("for (let b = 0; b < B; b++) {");
        // Over all T*B rows at once: row b is step floor(b / batch) of batch row b % batch.
        if (this.k.rows === "TB")
          w.line("if (Math.floor(b / lens.length) < lens[b % lens.length]) continue;");
        else w.line("if (t < lens[b]) continue;");
        for (const m of ops) this.mask(m);
        w.close();
      }
      w.close();
    }
    w.line("return { run, premask, postmask };");
    w.close();
  }

  private mask(m: MaskOp) {
    const L = this.len(this.k.bindings[m.dst]!.type);
    const row = (i: number) => ({ arena: this.arenaOf(i), off: `o${i}`, ld: L, batched: true });
    const dst = this.at(row(m.dst), "b", "j");
    this.w.open(`for (let j = 0; j < ${L}; j++) {`);
    if (m.save !== undefined) this.w.line(`${this.at(row(m.save), "b", "j")} = ${dst};`);
    this.w.line(`${dst} = ${m.src === undefined ? "0" : this.at(row(m.src), "b", "j")};`);
    this.w.close();
  }

  private loop(d: Domain, items: readonly LoopItem[]) {
    const w = this.w;
    if (d.batched) w.open("for (let b = 0; b < B; b++) {");
    else w.open("{");
    if (d.dim) w.open(`for (let j = 0; j < ${this.dim(d.dim)}; j++) {`);
    for (const it of items) {
      if (it.kind === "node") {
        const n = this.k.graph.node(it.node);
        const value = (OPS[n.op] as ElementwiseDef).js(n.args.map((a) => this.read(a)));
        if (this.plan.storage.get(n.id)!.kind === "local") w.line(`const v${n.id} = ${value};`);
        else w.line(`${this.read(n.id)} = ${value};`);
      } else {
        const s = it.store;
        const t = this.k.bindings[s.binding]!.type;
        const target = this.at(
          { arena: this.arenaOf(s.binding), off: `o${s.binding}`, ld: this.len(t), batched: t.batched },
          "b",
          t.dims.length ? "j" : "0",
        );
        w.line(`${target} ${s.accumulate ? "+=" : "="} ${this.read(s.node)};`);
      }
    }
    if (d.dim) w.close();
    w.close();
  }

  private rowsOf(p: Place) {
    return p.batched ? "B" : "1";
  }

  private barrier(id: NodeId) {
    const w = this.w;
    const n = this.k.graph.node(id);
    const out = this.place(id);
    const [a0, a1] = n.args;
    const mat = (p: Place) => `${p.arena}, ${p.off}, ${p.ld}`;
    switch (n.op) {
      case "gemm":
      case "gemmT": {
        const P = this.place(a0!);
        const v = this.place(a1!);
        const pt = this.k.graph.node(a0!).type;
        const [M, K] = [this.dim(pt.dims[0]!), this.dim(pt.dims[1]!)];
        const fn = n.op === "gemm" ? "g.nt" : "g.nn";
        w.line(`${fn}(${mat(out)}, ${mat(v)}, ${mat(P)}, ${this.rowsOf(out)}, ${M}, ${K});`);
        return;
      }
      case "sum":
        w.open(n.type.batched ? "for (let b = 0; b < B; b++) {" : "{");
        w.line("let acc = 0;");
        w.line(
          `for (let j = 0; j < ${this.len(this.k.graph.node(a0!).type)}; j++) acc += ${this.read(a0!)};`,
        );
        w.line(`${this.at(out, "b", "0")} = acc;`);
        w.close();
        return;
      case "sumbatch": {
        // Row by row, so that the reduction over the batch reads memory in order.
        const t = n.type;
        const j = t.dims.length ? "j" : "0";
        const len = t.dims.length ? this.len(t) : "1";
        w.line(`for (let j = 0; j < ${len}; j++) ${this.at(out, "0", j)} = 0;`);
        w.open("for (let b = 0; b < B; b++) {");
        w.line(`for (let j = 0; j < ${len}; j++) ${this.at(out, "0", j)} += ${this.read(a0!, "b", j)};`);
        w.close();
        return;
      }
      case "concat": {
        w.open(n.type.batched ? "for (let b = 0; b < B; b++) {" : "{");
        let offset = "0";
        for (const item of n.args) {
          const len = this.len(this.k.graph.node(item).type);
          w.line(
            `for (let j = 0; j < ${len}; j++) ${this.at(out, "b", `${offset} + j`)} = ${this.read(item)};`,
          );
          offset = `${offset} + ${len}`;
        }
        w.close();
        return;
      }
      case "slice":
        w.open(n.type.batched ? "for (let b = 0; b < B; b++) {" : "{");
        w.line(
          `for (let j = 0; j < ${this.len(n.type)}; j++) ${this.at(out, "b", "j")} = ${this.read(a0!, "b", `${this.dim(n.attrs.start!)} + j`)};`,
        );
        w.close();
        return;
      default:
        throw new Error(`no JS lowering for barrier ${n.op}`);
    }
  }

  private outer(o: OuterAccumulate) {
    const t = this.k.bindings[o.binding]!.type;
    const D = `${this.arenaOf(o.binding)}, o${o.binding}, ${this.dim(t.dims[1]!)}`;
    const G = this.place(o.dy);
    const X = this.place(o.x);
    const rows = G.batched ? "B" : "1";
    this.w.line(
      `g.tn(${D}, ${G.arena}, ${G.off}, ${G.ld}, ${X.arena}, ${X.off}, ${X.ld}, ${rows}, ${this.dim(t.dims[0]!)}, ${this.dim(t.dims[1]!)});`,
    );
  }
}

/** The kernels of a schedule as one ES module: the GEMM routines, then one factory per kernel. */
export function emitScheduleJs(s: Schedule): string {
  const parts = [
    "// Generated by cellc. Bindings, shapes and the order of calls: see the manifest.",
    JS_PRELUDE,
  ];
  const ks = kernelsOf(s);
  for (const name of KERNEL_NAMES) {
    const kw = new JsKernelWriter(planKernel(ks[name]), s.signature.dims);
    kw.emit(name);
    parts.push(kw.w.toString());
  }
  return parts.join("\n");
}
