import type { KernelIR } from "../autodiff/kernel.js";
import type { NodeId } from "../ir/graph.js";
import { dimSub, type Dim, type Type } from "../ir/shape.js";
import { OPS, type ElementwiseDef } from "../ops/ops.js";
import { planKernel, type Domain, type KernelPlan, type LoopItem } from "./plan.js";
import { Writer } from "./writer.js";

/**
 * JS code generation. A kernel becomes a factory `(B, dims) => step`, where `step(bufs)` runs one time step
 * over a batch of B rows; `bufs` are the kernel's bindings in order (typed arrays, row-major, batch first).
 * The factory allocates scratch once. No user text reaches the code: buffers are `a<i>`, values `v<id>`,
 * dimensions `d<i>`; the meaning of each binding is in the manifest.
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

export const JS_PRELUDE = `function matvec(out, W, ld, c0, M, K, v, B, vs) {
  for (let b = 0; b < B; b++) {
    const vo = b * vs;
    for (let i = 0; i < M; i++) {
      const wo = i * ld + c0;
      let acc = 0;
      for (let k = 0; k < K; k++) acc += W[wo + k] * v[vo + k];
      out[b * M + i] = acc;
    }
  }
}
function matvecT(out, W, ld, c0, M, K, dy, B, ds) {
  for (let b = 0; b < B; b++) {
    const o = b * K;
    for (let k = 0; k < K; k++) out[o + k] = 0;
    for (let i = 0; i < M; i++) {
      const g = dy[b * ds + i];
      if (g === 0) continue;
      const wo = i * ld + c0;
      for (let k = 0; k < K; k++) out[o + k] += W[wo + k] * g;
    }
  }
}
function outerAcc(G, ld, c0, M, K, dy, ds, x, xs, B) {
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < M; i++) {
      const g = dy[b * ds + i];
      if (g === 0) continue;
      const go = i * ld + c0;
      const xo = b * xs;
      for (let k = 0; k < K; k++) G[go + k] += g * x[xo + k];
    }
  }
}
`;

class JsKernelWriter {
  readonly w = new Writer();
  constructor(
    private readonly plan: KernelPlan,
    private readonly dims: readonly string[],
  ) {}

  private get k(): KernelIR {
    return this.plan.kernel;
  }
  private dim(d: Dim) {
    return jsDim(d, this.dims);
  }
  private len(t: Type) {
    return t.dims[0] ? this.dim(t.dims[0]) : "1";
  }
  private size(t: Type) {
    const f = t.dims.map((d) => this.dim(d)).join(" * ") || "1";
    return t.batched ? `B * ${f}` : f;
  }
  private bufferOf(id: NodeId): string | undefined {
    const st = this.plan.storage.get(id)!;
    if (st.kind === "binding") return `a${st.index}`;
    if (st.kind === "scratch") return `t${st.index}`;
    if (st.kind === "free") {
      const b = this.plan.leafBinding.get(id);
      return b === undefined ? undefined : `a${b}`;
    }
    return undefined;
  }
  private index(t: Type, b: string, j: string): string {
    if (t.dims.length === 0) return t.batched ? b : "0";
    return t.batched ? `${b} * ${this.len(t)} + ${j}` : j;
  }
  /** The expression reading node `id` at batch row `b`, feature `j`. */
  read(id: NodeId, b = "b", j = "j"): string {
    const n = this.k.graph.node(id);
    if (n.op === "const") return jsNumber(n.attrs.value!);
    if (n.op === "dim") return this.dim(n.attrs.dim!);
    const st = this.plan.storage.get(id)!;
    if (st.kind === "local") return `v${id}`;
    return `${this.bufferOf(id)}[${this.index(n.type, b, j)}]`;
  }
  private strideOf(id: NodeId): string {
    const t = this.k.graph.node(id).type;
    return t.batched ? this.len(t) : "0";
  }

  emit(fnName: string): void {
    const w = this.w;
    w.open(`export function ${fnName}(B, dims) {`);
    this.dims.forEach((_, i) => w.line(`const d${i} = dims[${i}];`));
    this.plan.scratch.forEach((t, i) => w.line(`const t${i} = new Float64Array(${this.size(t)});`));
    w.open("return function step(bufs) {");
    this.k.bindings.forEach((_, i) => w.line(`const a${i} = bufs[${i}];`));
    for (const s of this.plan.steps) {
      if (s.kind === "loop") this.loop(s.domain, s.items);
      else if (s.kind === "barrier") this.barrier(s.node);
      else this.outer(s.outer);
    }
    w.close("};");
    w.close();
  }

  private loop(d: Domain, items: readonly LoopItem[]) {
    const w = this.w;
    if (d.batched) w.open("for (let b = 0; b < B; b++) {");
    else w.open("{");
    if (d.dim) w.open(`for (let j = 0; j < ${this.dim(d.dim)}; j++) {`);
    for (const it of items) {
      if (it.kind === "node") {
        const n = this.k.graph.node(it.node);
        const def = OPS[n.op] as ElementwiseDef;
        const value = def.js(n.args.map((a) => this.read(a)));
        const st = this.plan.storage.get(n.id)!;
        if (st.kind === "local") w.line(`const v${n.id} = ${value};`);
        else w.line(`${this.bufferOf(n.id)}[${this.index(n.type, "b", "j")}] = ${value};`);
      } else {
        const s = it.store;
        const t = this.k.bindings[s.binding]!.type;
        w.line(
          `a${s.binding}[${this.index(t, "b", "j")}] ${s.accumulate ? "+=" : "="} ${this.read(s.node)};`,
        );
      }
    }
    if (d.dim) w.close();
    w.close();
  }

  private barrier(id: NodeId) {
    const w = this.w;
    const n = this.k.graph.node(id);
    const out = this.bufferOf(id)!;
    const [a0] = n.args;
    switch (n.op) {
      case "matvec": {
        const wt = this.k.graph.node(a0!).type;
        const W = this.bufferOf(a0!)!;
        const v = this.bufferOf(n.args[1]!)!;
        const ld = this.dim(wt.dims[1]!);
        const c0 = this.dim(n.attrs.c0!);
        const K = this.dim(dimSub(n.attrs.c1!, n.attrs.c0!));
        const M = this.dim(wt.dims[0]!);
        const Bn = n.type.batched ? "B" : "1";
        if (n.attrs.transpose)
          w.line(
            `matvecT(${out}, ${W}, ${ld}, ${c0}, ${M}, ${K}, ${v}, ${Bn}, ${this.strideOf(n.args[1]!)});`,
          );
        else
          w.line(
            `matvec(${out}, ${W}, ${ld}, ${c0}, ${M}, ${K}, ${v}, ${Bn}, ${this.strideOf(n.args[1]!)});`,
          );
        return;
      }
      case "sum":
        w.open(n.type.batched ? "for (let b = 0; b < B; b++) {" : "{");
        w.line("let acc = 0;");
        w.line(
          `for (let j = 0; j < ${this.len(this.k.graph.node(a0!).type)}; j++) acc += ${this.read(a0!)};`,
        );
        w.line(`${out}[${n.type.batched ? "b" : "0"}] = acc;`);
        w.close();
        return;
      case "sumbatch": {
        const t = n.type;
        w.open(t.dims.length ? `for (let j = 0; j < ${this.len(t)}; j++) {` : "{");
        w.line("let acc = 0;");
        w.line(`for (let b = 0; b < B; b++) acc += ${this.read(a0!)};`);
        w.line(`${out}[${t.dims.length ? "j" : "0"}] = acc;`);
        w.close();
        return;
      }
      case "concat": {
        w.open(n.type.batched ? "for (let b = 0; b < B; b++) {" : "{");
        let offset = "0";
        for (const item of n.args) {
          const len = this.len(this.k.graph.node(item).type);
          w.line(
            `for (let j = 0; j < ${len}; j++) ${out}[${this.index(n.type, "b", `${offset} + j`)}] = ${this.read(item)};`,
          );
          offset = `${offset} + ${len}`;
        }
        w.close();
        return;
      }
      case "slice": {
        w.open(n.type.batched ? "for (let b = 0; b < B; b++) {" : "{");
        w.line(
          `for (let j = 0; j < ${this.len(n.type)}; j++) ${out}[${this.index(n.type, "b", "j")}] = ${this.read(a0!, "b", `${this.dim(n.attrs.start!)} + j`)};`,
        );
        w.close();
        return;
      }
      default:
        throw new Error(`no JS lowering for barrier ${n.op}`);
    }
  }

  private outer(o: KernelPlan["kernel"]["outers"][number]) {
    const wt = this.k.bindings[o.binding]!.type;
    const ld = this.dim(wt.dims[1]!);
    const M = this.dim(wt.dims[0]!);
    const K = this.dim(dimSub(o.c1, o.c0));
    const dy = this.bufferOf(o.dy)!;
    const x = this.bufferOf(o.x)!;
    this.w.line(
      `outerAcc(a${o.binding}, ${ld}, ${this.dim(o.c0)}, ${M}, ${K}, ${dy}, ${this.strideOf(o.dy)}, ${x}, ${this.strideOf(o.x)}, B);`,
    );
  }
}

export function emitKernelJs(k: KernelIR, dims: readonly string[], fnName: string): string {
  const kw = new JsKernelWriter(planKernel(k), dims);
  kw.emit(fnName);
  return kw.w.toString();
}

/** The kernels of a cell as one ES module: the matvec routines, then one factory per kernel. */
export function emitModuleJs(kernels: readonly KernelIR[], dims: readonly string[]): string {
  const parts = [
    "// Generated by cellc. Bindings, shapes and dimension order: see the manifest.",
    JS_PRELUDE,
  ];
  for (const k of kernels) parts.push(emitKernelJs(k, dims, k.name));
  return parts.join("\n");
}
