import { describeBinding, type Binding, type KernelIR, type OuterAccumulate } from "../autodiff/kernel.js";
import type { NodeId } from "../ir/graph.js";
import { dimSub, printDim, storedShape, type Dim, type Type } from "../ir/shape.js";
import { OPS, type ElementwiseDef } from "../ops/ops.js";
import { domainOf, planKernel, type Domain, type KernelPlan, type LoopItem } from "./plan.js";
import { Writer } from "./writer.js";

/**
 * WGSL code generation. A step kernel becomes one WGSL module with one compute entry point per plan step
 * (a fused elementwise loop, a tiled matvec, a workgroup reduction, ...), dispatched in order for each time
 * step. Every buffer the kernel reads or writes lives in one of two arenas: `pmem` (parameters and their
 * gradients) and `mem` (everything else: sequences, states, saved values, scratch). Binding i of the kernel
 * is at `offs[2i] + t * offs[2i + 1]` in its arena, where t is the time step, read from the uniform `meta`
 * (bound with a dynamic offset of 256 t). Dimensions and the batch size are pipeline-overridable constants
 * (`d0`, `d1`, ..., `B`). No user text reaches the code.
 */

/** A count of threads, rows or tiles: (B or 1) x (a dimension expression or 1). */
export interface Extent {
  readonly batch: boolean;
  readonly dim?: Dim;
}

export type Dispatch =
  | { readonly kind: "linear"; readonly extent: Extent } // one thread per element, workgroups of 64
  | { readonly kind: "tiles"; readonly x: Extent; readonly y: Extent } // 16 x 16 tiles
  | { readonly kind: "rows"; readonly rows: Extent }; // one workgroup of 64 per row

export interface WgslEntry {
  readonly name: string;
  readonly dispatch: Dispatch;
  /** "step": every time step; "mask": only with sequence lengths (forward: after the step; backward: pre/post). */
  readonly phase: "step" | "mask" | "premask" | "postmask";
}

export interface WgslKernel {
  readonly name: "forward" | "backward";
  readonly code: string;
  readonly entries: readonly WgslEntry[];
  readonly bindings: readonly Binding[];
  /** Which arena each binding lives in. */
  readonly arenas: readonly ("mem" | "pmem")[];
  /** Scratch regions in `mem` (offsets table entries after the bindings), by type; the last ones carry masked rows. */
  readonly scratch: readonly Type[];
}

export const WORKGROUP = 64;
export const TILE = 16;
export const LINEAR_SPAN = 65535 * WORKGROUP; // threads per row of a 2-D linear dispatch

export function wgslNumber(v: number): string {
  // The f32 the kernel computes with: a float64 past f32's range is infinite there. WGSL refuses a literal
  // that does not fit f32 and a constant expression that evaluates to NaN or infinity, so non-finite values
  // are bit patterns plus `min(ctl.t, 0u)`: zero, but read from a uniform (declared in every module).
  const f32 = Math.fround(v);
  const bits = (hex: string) => `bitcast<f32>(${hex}u + min(ctl.t, 0u))`;
  if (Number.isNaN(f32)) return bits("0x7fc00000");
  if (f32 === Infinity) return bits("0x7f800000");
  if (f32 === -Infinity) return bits("0xff800000");
  // Within range the shortest float64 text rounds to the same f32; past f32's largest value it must not.
  const s = f32 === 0 ? "0.0" : String(Math.abs(v) > 3.4028234663852886e38 ? f32 : v);
  const f = /[.eE]/.test(s) ? s : `${s}.0`;
  return f32 < 0 ? `(${f})` : f;
}

export function wgslDim(d: Dim, dims: readonly string[]): string {
  const parts: string[] = [];
  for (const [name, coeff] of Object.entries(d.terms)) {
    const i = dims.indexOf(name);
    parts.push(coeff === 1 ? `d${i}` : `${coeff}u * d${i}`);
  }
  if (d.c !== 0 || parts.length === 0) parts.push(`${d.c}u`);
  // Parenthesised unless a single name or number, so that it can stand anywhere (idx / (2u * d0)).
  return parts.length === 1 && !parts[0]!.includes(" ") ? parts[0]! : `(${parts.join(" + ")})`;
}

const isParamRole = (r: Binding["role"]) => r === "param" || r === "grad_param";

class WgslKernelWriter {
  readonly w = new Writer();
  readonly entries: WgslEntry[] = [];
  private readonly scratch: Type[];
  private readonly nb: number;

  constructor(
    private readonly plan: KernelPlan,
    private readonly dims: readonly string[],
  ) {
    this.scratch = [...plan.scratch];
    this.nb = plan.kernel.bindings.length;
  }

  get k(): KernelIR {
    return this.plan.kernel;
  }
  dim(d: Dim) {
    return wgslDim(d, this.dims);
  }
  len(t: Type) {
    return t.dims[0] ? this.dim(t.dims[0]) : "1u";
  }
  private arenaOfBinding(i: number) {
    return isParamRole(this.k.bindings[i]!.role) ? "pmem" : "mem";
  }
  /** Arena and offset variable of a buffer: binding i, or scratch k (offset entry nb + k). */
  private slot(kind: "binding" | "scratch", i: number): { arena: string; off: string } {
    const entry = kind === "binding" ? i : this.nb + i;
    const off = `o${entry}`;
    return { arena: kind === "binding" ? this.arenaOfBinding(i) : "mem", off };
  }
  private bufferOf(id: NodeId): { arena: string; off: string } | undefined {
    const st = this.plan.storage.get(id)!;
    if (st.kind === "binding") return this.slot("binding", st.index);
    if (st.kind === "scratch") return this.slot("scratch", st.index);
    if (st.kind === "free") {
      const b = this.plan.leafBinding.get(id);
      return b === undefined ? undefined : this.slot("binding", b);
    }
    return undefined;
  }
  index(t: Type, b: string, j: string): string {
    if (t.dims.length === 0) return t.batched ? b : "0u";
    return t.batched ? `${b} * ${this.len(t)} + ${j}` : j;
  }
  read(id: NodeId, b = "b", j = "j"): string {
    const n = this.k.graph.node(id);
    if (n.op === "const") return wgslNumber(n.attrs.value!);
    if (n.op === "dim") return `f32(${this.dim(n.attrs.dim!)})`;
    const st = this.plan.storage.get(id)!;
    if (st.kind === "local") return `v${id}`;
    const { arena, off } = this.bufferOf(id)!;
    return `${arena}[${off} + ${this.index(n.type, b, j)}]`;
  }
  private bindingAt(i: number, t: Type, b: string, j: string): string {
    const { arena, off } = this.slot("binding", i);
    return `${arena}[${off} + ${this.index(t, b, j)}]`;
  }
  private scratchAt(i: number, t: Type, b: string, j: string): string {
    const { arena, off } = this.slot("scratch", i);
    return `${arena}[${off} + ${this.index(t, b, j)}]`;
  }
  private extentSize(e: Extent): string {
    const d = e.dim ? this.dim(e.dim) : "1u";
    return e.batch ? `B * ${d}` : d;
  }

  /** Writes one entry point: the body is generated first, so that only the offsets it uses are declared. */
  private entry(
    name: string,
    dispatch: Dispatch,
    phase: WgslEntry["phase"],
    body: (w: Writer) => void,
  ): void {
    const inner = new Writer();
    body(inner);
    const used = new Set([...inner.toString().matchAll(/\bo(\d+)\b/g)].map((m) => Number(m[1])));
    const w = this.w;
    w.line();
    if (dispatch.kind === "tiles") {
      w.open(
        `@compute @workgroup_size(${TILE}, ${TILE}) fn ${name}(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u) {`,
      );
    } else if (dispatch.kind === "rows") {
      w.open(
        `@compute @workgroup_size(${WORKGROUP}) fn ${name}(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u) {`,
      );
    } else {
      w.open(`@compute @workgroup_size(${WORKGROUP}) fn ${name}(@builtin(global_invocation_id) g: vec3u) {`);
    }
    for (const e of [...used].sort((a, b) => a - b))
      w.line(`let o${e} = offs[${2 * e}u] + ctl.t * offs[${2 * e + 1}u];`);
    for (const line of inner.toString().trimEnd().split("\n")) if (line) w.line(line);
    w.close();
    this.entries.push({ name, dispatch, phase });
  }

  emit(withMasks: boolean): void {
    const w = this.w;
    w.line("// Generated by cellc. Entry points, bindings and dispatch sizes: see the manifest.");
    this.dims.forEach((_, i) => w.line(`override d${i}: u32;`));
    w.line("override B: u32;");
    w.line("struct Control { t: u32, p0: u32, p1: u32, p2: u32 }");
    w.line("@group(0) @binding(0) var<storage, read_write> mem: array<f32>;");
    w.line("@group(0) @binding(1) var<storage, read_write> pmem: array<f32>;");
    w.line("@group(0) @binding(2) var<uniform> ctl: Control;");
    w.line("@group(0) @binding(3) var<storage, read> offs: array<u32>;");
    w.line("@group(0) @binding(4) var<storage, read> lens: array<i32>;");
    w.line(`var<workgroup> tileA: array<array<f32, ${TILE}>, ${TILE}>;`);
    w.line(`var<workgroup> tileB: array<array<f32, ${TILE}>, ${TILE}>;`);
    w.line(`var<workgroup> partial: array<f32, ${WORKGROUP}>;`);
    const masks = withMasks ? this.maskPlan() : undefined;
    masks?.pre.forEach((m, i) => this.maskEntry(`pre${i}`, "premask", m));
    let n = 0;
    for (const s of this.plan.steps) {
      const name = `k${n++}`;
      if (s.kind === "loop") this.loop(name, s.domain, s.items);
      else if (s.kind === "barrier") this.barrier(name, s.node);
      else this.outer(name, s.outer);
    }
    masks?.post.forEach((m, i) =>
      this.maskEntry(`post${i}`, this.k.name === "forward" ? "mask" : "postmask", m),
    );
  }

  private linearHeader(w: Writer, d: Domain) {
    const total = this.extentSize({ batch: d.batched, dim: d.dim });
    w.line(`let idx = g.x + g.y * ${LINEAR_SPAN}u;`);
    w.line(`if (idx >= ${total}) { return; }`);
    const n = d.dim ? this.dim(d.dim) : "1u";
    if (d.batched) w.line(d.dim ? `let b = idx / ${n};` : "let b = idx;");
    if (d.dim) w.line(d.batched ? `let j = idx % ${n};` : "let j = idx;");
  }
  /** An entry point with one thread per element of a domain (`b` and `j` bound as it has them). */
  private linearEntry(name: string, d: Domain, phase: WgslEntry["phase"], body: (w: Writer) => void) {
    this.entry(name, { kind: "linear", extent: { batch: d.batched, dim: d.dim } }, phase, (w) => {
      this.linearHeader(w, d);
      body(w);
    });
  }

  private loop(name: string, d: Domain, items: readonly LoopItem[]) {
    this.entry(name, { kind: "linear", extent: { batch: d.batched, dim: d.dim } }, "step", (w) => {
      this.linearHeader(w, d);
      for (const it of items) {
        if (it.kind === "node") {
          const n = this.k.graph.node(it.node);
          const value = (OPS[n.op] as ElementwiseDef).wgsl(n.args.map((a) => this.read(a)));
          const st = this.plan.storage.get(n.id)!;
          if (st.kind === "local") w.line(`let v${n.id} = ${value};`);
          else {
            const { arena, off } = this.bufferOf(n.id)!;
            w.line(`${arena}[${off} + ${this.index(n.type, "b", "j")}] = ${value};`);
          }
        } else {
          const s = it.store;
          const t = this.k.bindings[s.binding]!.type;
          const target = this.bindingAt(s.binding, t, "b", "j");
          w.line(`${target} = ${s.accumulate ? `${target} + ` : ""}${this.read(s.node)};`);
        }
      }
    });
  }

  private gemm(
    name: string,
    x: Extent,
    y: Extent,
    r: string,
    a: (y: string, r: string) => string,
    bm: (r: string, x: string) => string,
    c: (y: string, x: string) => string,
    accumulate: boolean,
  ) {
    this.entry(name, { kind: "tiles", x, y }, "step", (w) => {
      const X = this.extentSize(x);
      const Y = this.extentSize(y);
      w.line(`let x = wg.x * ${TILE}u + l.x;`);
      w.line(`let y = wg.y * ${TILE}u + l.y;`);
      w.line("var acc = 0.0;");
      w.open(`for (var r0 = 0u; r0 < ${r}; r0 += ${TILE}u) {`);
      w.line("let ra = r0 + l.x;");
      w.line(`tileA[l.y][l.x] = select(0.0, ${a("y", "ra")}, y < ${Y} && ra < ${r});`);
      w.line("let rb = r0 + l.y;");
      w.line(`tileB[l.y][l.x] = select(0.0, ${bm("rb", "x")}, rb < ${r} && x < ${X});`);
      w.line("workgroupBarrier();");
      w.line(`for (var k = 0u; k < ${TILE}u; k++) { acc += tileA[l.y][k] * tileB[k][l.x]; }`);
      w.line("workgroupBarrier();");
      w.close();
      const target = c("y", "x");
      w.line(`if (x < ${X} && y < ${Y}) { ${target} = ${accumulate ? `${target} + ` : ""}acc; }`);
    });
  }

  private barrier(name: string, id: NodeId) {
    const n = this.k.graph.node(id);
    const out = this.bufferOf(id)!;
    const outAt = (b: string, j: string) => `${out.arena}[${out.off} + ${this.index(n.type, b, j)}]`;
    const [a0] = n.args;
    switch (n.op) {
      case "matvec": {
        const wt = this.k.graph.node(a0!).type;
        const W = this.bufferOf(a0!)!;
        const ld = this.dim(wt.dims[1]!);
        const c0 = this.dim(n.attrs.c0!);
        const K = dimSub(n.attrs.c1!, n.attrs.c0!);
        const M = wt.dims[0]!;
        const v = n.args[1]!;
        const wAt = (i: string, k: string) => `${W.arena}[${W.off} + ${i} * ${ld} + ${c0} + ${k}]`;
        // W[:, c0:c1] @ v reduces over the columns; its transpose over the rows.
        const [cols, inner] = n.attrs.transpose ? [K, M] : [M, K];
        const weight = n.attrs.transpose
          ? (r: string, x: string) => wAt(r, x)
          : (r: string, x: string) => wAt(x, r);
        this.gemm(
          name,
          { batch: false, dim: cols },
          { batch: n.type.batched },
          this.dim(inner),
          (y, r) => this.read(v, y, r),
          weight,
          outAt,
          false,
        );
        return;
      }
      case "sum": {
        const vt = this.k.graph.node(a0!).type;
        this.entry(name, { kind: "rows", rows: { batch: n.type.batched } }, "step", (w) => {
          w.line("let b = wg.x + wg.y * 65535u;");
          w.line(`if (b >= ${n.type.batched ? "B" : "1u"}) { return; }`);
          w.line("var acc = 0.0;");
          w.line(`for (var j = l.x; j < ${this.len(vt)}; j += ${WORKGROUP}u) { acc += ${this.read(a0!)}; }`);
          w.line("partial[l.x] = acc;");
          w.line("workgroupBarrier();");
          w.open(`for (var s = ${WORKGROUP / 2}u; s > 0u; s = s / 2u) {`);
          w.line("if (l.x < s) { partial[l.x] += partial[l.x + s]; }");
          w.line("workgroupBarrier();");
          w.close();
          w.line(`if (l.x == 0u) { ${outAt("b", "0u")} = partial[0]; }`);
        });
        return;
      }
      case "sumbatch":
        this.entry(name, { kind: "linear", extent: { batch: false, dim: n.type.dims[0] } }, "step", (w) => {
          this.linearHeader(w, { batched: false, dim: n.type.dims[0] });
          if (!n.type.dims[0]) w.line("let j = 0u;");
          w.line("var acc = 0.0;");
          w.line(`for (var b = 0u; b < B; b++) { acc += ${this.read(a0!)}; }`);
          w.line(`${outAt("0u", "j")} = acc;`);
        });
        return;
      case "concat":
        this.linearEntry(name, domainOf(n.type), "step", (w) => {
          let offset = "0u";
          n.args.forEach((item, i) => {
            const len = this.len(this.k.graph.node(item).type);
            const read = this.read(item, "b", `(j - (${offset}))`);
            w.line(
              `${i === 0 ? "if" : "else if"} (j < ${offset} + ${len}) { ${outAt("b", "j")} = ${read}; }`,
            );
            offset = `${offset} + ${len}`;
          });
        });
        return;
      case "slice":
        this.linearEntry(name, domainOf(n.type), "step", (w) =>
          w.line(`${outAt("b", "j")} = ${this.read(a0!, "b", `${this.dim(n.attrs.start!)} + j`)};`),
        );
        return;
      default:
        throw new Error(`no WGSL lowering for barrier ${n.op}`);
    }
  }

  private outer(name: string, o: OuterAccumulate) {
    const wt = this.k.bindings[o.binding]!.type;
    const ld = this.dim(wt.dims[1]!);
    const c0 = this.dim(o.c0);
    const K = dimSub(o.c1, o.c0);
    const dyT = this.k.graph.node(o.dy).type;
    const rows = dyT.batched ? "B" : "1u";
    const G = (i: string, k: string) =>
      `${this.slot("binding", o.binding).arena}[${this.slot("binding", o.binding).off} + ${i} * ${ld} + ${c0} + ${k}]`;
    this.gemm(
      name,
      { batch: false, dim: K },
      { batch: false, dim: wt.dims[0] },
      rows,
      (y, r) => this.read(o.dy, r, y),
      (r, x) => this.read(o.x, r, x),
      G,
      true,
    );
  }

  /**
   * Sequence-length masks. Forward, after the step: rows past their length carry the state and output
   * zeros. Backward, before: such rows' upstream gradients are set aside and zeroed (so they contribute
   * nothing); after: the state gradient passes through unchanged and the input gradient is zero.
   */
  private maskPlan() {
    type Mask = {
      binding: number;
      from?: { kind: "binding" | "scratch"; index: number };
      to?: number;
      zero: boolean;
    };
    const k = this.k;
    const find = (role: Binding["role"], name: string) =>
      k.bindings.findIndex((b) => b.role === role && b.name === name);
    const pre: Mask[] = [];
    const post: Mask[] = [];
    if (k.name === "forward") {
      for (const [i, b] of k.bindings.entries()) {
        if (b.role === "next")
          post.push({ binding: i, from: { kind: "binding", index: find("state", b.name) }, zero: false });
        if (b.role === "output") post.push({ binding: i, zero: true });
      }
    } else {
      for (const [i, b] of k.bindings.entries()) {
        if (b.role === "upstream" && b.name.startsWith("out:")) pre.push({ binding: i, zero: true });
        if (b.role === "upstream" && b.name.startsWith("next:")) {
          const carry = this.scratch.push(b.type) - 1;
          pre.push({ binding: i, to: carry, zero: true });
          post.push({
            binding: find("grad_state", b.name.slice(5)),
            from: { kind: "scratch", index: carry },
            zero: false,
          });
        }
        if (b.role === "grad_input") post.push({ binding: i, zero: true });
      }
    }
    return { pre, post };
  }

  private maskEntry(
    name: string,
    phase: WgslEntry["phase"],
    m: ReturnType<WgslKernelWriter["maskPlan"]>["pre"][number],
  ) {
    const t = this.k.bindings[m.binding]!.type;
    this.entry(name, { kind: "linear", extent: { batch: true, dim: t.dims[0] } }, phase, (w) => {
      this.linearHeader(w, { batched: true, dim: t.dims[0] });
      if (!t.dims[0]) w.line("let j = 0u;");
      w.line("if (i32(ctl.t) < lens[b]) { return; }");
      const here = this.bindingAt(m.binding, t, "b", "j");
      if (m.to !== undefined) w.line(`${this.scratchAt(m.to, t, "b", "j")} = ${here};`);
      if (m.from) {
        const src =
          m.from.kind === "binding"
            ? this.bindingAt(m.from.index, t, "b", "j")
            : this.scratchAt(m.from.index, t, "b", "j");
        w.line(`${here} = ${src};`);
      } else if (m.zero) w.line(`${here} = 0.0;`);
    });
  }

  result(): WgslKernel {
    return {
      name: this.k.name,
      code: this.w.toString(),
      entries: this.entries,
      bindings: this.k.bindings,
      arenas: this.k.bindings.map((b) => (isParamRole(b.role) ? "pmem" : "mem")),
      scratch: this.scratch,
    };
  }
}

/** The WGSL module of a step kernel, with the masks for sequence lengths (dispatched only when needed). */
export function emitKernelWgsl(k: KernelIR, dims: readonly string[]): WgslKernel {
  const kw = new WgslKernelWriter(planKernel(k), dims);
  kw.emit(true);
  return kw.result();
}

function extentText(e: Extent): string {
  const d = e.dim ? printDim(e.dim) : "1";
  return e.batch ? (e.dim ? `B * (${d})` : "B") : d;
}

/** The manifest that lets a WebGPU program drive the kernels without cellc (see the README). */
export function wgslManifest(
  ir: { name: string; dims: readonly string[] },
  kernels: { forward: WgslKernel; backward: WgslKernel },
) {
  const describe = (k: WgslKernel) => ({
    file: `${ir.name}.${k.name}.wgsl`,
    overrides: [...ir.dims.map((d, i) => ({ name: `d${i}`, dim: d })), { name: "B", dim: "batch size" }],
    bindings: {
      "0": "mem: storage, read_write, f32: every buffer but parameters",
      "1": "pmem: storage, read_write, f32: parameters and their gradients",
      "2": "ctl: uniform { t: u32, 3 x u32 padding }, bound with a dynamic offset of 256 * t",
      "3": "offs: storage, read, u32: for buffer i, offs[2i] is its offset (in f32 elements) at t = 0 and offs[2i+1] how far it moves per time step",
      "4": "lens: storage, read, i32 [B]: sequence lengths (read by the mask entry points only)",
    },
    buffers: [
      ...k.bindings.map((b, i) => ({ index: i, arena: k.arenas[i], ...describeBinding(b) })),
      ...k.scratch.map((t, i) => ({
        index: k.bindings.length + i,
        arena: "mem",
        role: "scratch",
        name: `scratch${i}`,
        shape: storedShape(t),
      })),
    ],
    entryPoints: k.entries.map((e) => ({
      name: e.name,
      when:
        e.phase === "step"
          ? "every time step"
          : e.phase === "mask"
            ? "after the step, with sequence lengths"
            : e.phase === "premask"
              ? "before the step, with sequence lengths"
              : "after the step, with sequence lengths",
      workgroupSize: e.dispatch.kind === "tiles" ? [TILE, TILE, 1] : [WORKGROUP, 1, 1],
      dispatch:
        e.dispatch.kind === "tiles"
          ? {
              x: `ceil(${extentText(e.dispatch.x)} / ${TILE})`,
              y: `ceil(${extentText(e.dispatch.y)} / ${TILE})`,
            }
          : e.dispatch.kind === "rows"
            ? { x: extentText(e.dispatch.rows), y: "1" }
            : {
                x: `min(ceil(${extentText(e.dispatch.extent)} / ${WORKGROUP}), 65535)`,
                y: `ceil(ceil(${extentText(e.dispatch.extent)} / ${WORKGROUP}) / 65535)`,
              },
    })),
  });
  return {
    cell: ir.name,
    dims: ir.dims,
    order:
      "for t = 0 .. T-1 (forward) or T-1 .. 0 (backward): dispatch the entry points in the order listed, skipping the mask ones without sequence lengths",
    forward: describe(kernels.forward),
    backward: describe(kernels.backward),
  };
}
