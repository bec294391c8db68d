import type { NodeId } from "../ir/graph.js";
import { printDim, storedShape, type Dim } from "../../artifact/shape.js";
import { OPS, type ElementwiseDef } from "../ops/ops.js";
import type { WgslDispatch, WgslEntryInfo, WgslExtent, WgslKernelText } from "../schedule/artifact.js";
import {
  KERNEL_NAMES,
  kernelsOf,
  type KernelName,
  type MaskOp,
  type OuterAccumulate,
  type Schedule,
} from "../schedule/types.js";
import { KernelAddressing, type Place } from "./address.js";
import { domainOf, planKernel, type Domain, type LoopItem } from "./plan.js";
import { Writer } from "./writer.js";

/**
 * WGSL code generation. Each kernel of the schedule becomes one WGSL module with one compute entry point per
 * plan step (a fused elementwise loop, a tiled gemm, a workgroup reduction, ...), dispatched in order; its
 * masks are entry points too. Every buffer lives in one of two arenas: `pmem` (parameters, packed weights,
 * their gradients) and `mem` (everything else). Binding i of the kernel is at `offs[2i] + t * offs[2i + 1]`
 * in its arena, where t is the time step, read from the uniform `ctl` (bound with a dynamic offset of 256
 * t), which also holds the number of rows the kernel iterates (`ctl.B`: the batch at a step, T*B before and
 * after the loop). Dimensions are pipeline-overridable constants (`d0`, `d1`, ...). No user text reaches
 * the code.
 */
export const WORKGROUP = 64;
export const TILE = 16;
/** Outputs per side of a workgroup's tile in the big GEMMs (before and after the loop): 4 x 4 per thread. */
export const BIG_TILE = 64;
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

class WgslKernelWriter extends KernelAddressing {
  readonly w = new Writer();
  readonly entries: WgslEntryInfo[] = [];
  protected readonly one = "1u";
  private readonly nb: number;

  constructor(...args: ConstructorParameters<typeof KernelAddressing>) {
    super(...args);
    this.nb = this.plan.kernel.bindings.length;
  }

  protected dim(d: Dim) {
    return wgslDim(d, this.dims);
  }
  protected scratchSlot(k: number) {
    return { arena: "mem", off: `o${this.nb + k}` };
  }
  read(id: NodeId, b = "b", j = "j"): string {
    const n = this.k.graph.node(id);
    if (n.op === "const") return wgslNumber(n.attrs.value!);
    if (n.op === "dim") return `f32(${this.dim(n.attrs.dim!)})`;
    if (this.plan.storage.get(id)!.kind === "local") return `v${id}`;
    return this.at(this.place(id), b, n.type.dims.length ? j : "0u");
  }
  private bindingPlace(i: number): Place {
    const t = this.k.bindings[i]!.type;
    return { arena: this.arenaOf(i), off: `o${i}`, ld: this.ld(t), batched: t.batched };
  }
  private extentSize(e: WgslExtent): string {
    const d = e.dim ? this.dim(e.dim) : "1u";
    return e.rows ? `ctl.B * ${d}` : d;
  }

  /** Writes one entry point: the body is generated first, so that only the offsets it uses are declared. */
  private entry(
    name: string,
    dispatch: WgslDispatch,
    phase: WgslEntryInfo["phase"],
    body: (w: Writer) => void,
  ) {
    const inner = new Writer();
    body(inner);
    const used = new Set([...inner.toString().matchAll(/\bo(\d+)\b/g)].map((m) => Number(m[1])));
    const w = this.w;
    w.line();
    const local = "@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u";
    if (dispatch.kind === "tiles")
      w.open(`@compute @workgroup_size(${TILE}, ${TILE}) fn ${name}(${local}) {`);
    else if (dispatch.kind === "rows")
      w.open(`@compute @workgroup_size(${WORKGROUP}) fn ${name}(${local}) {`);
    else
      w.open(`@compute @workgroup_size(${WORKGROUP}) fn ${name}(@builtin(global_invocation_id) g: vec3u) {`);
    for (const e of [...used].sort((a, b) => a - b))
      w.line(`let o${e} = offs[${2 * e}u] + ctl.t * offs[${2 * e + 1}u];`);
    for (const line of inner.toString().trimEnd().split("\n")) if (line) w.line(line);
    w.close();
    this.entries.push({ name, dispatch, phase });
  }

  emit(): void {
    const w = this.w;
    w.line("// Generated by cellc. Entry points, bindings and dispatch sizes: see the manifest.");
    this.dims.forEach((_, i) => w.line(`override d${i}: u32;`));
    w.line("struct Control { t: u32, B: u32, p1: u32, p2: u32 }");
    w.line("@group(0) @binding(0) var<storage, read_write> mem: array<f32>;");
    w.line("@group(0) @binding(1) var<storage, read_write> pmem: array<f32>;");
    w.line("@group(0) @binding(2) var<uniform> ctl: Control;");
    w.line("@group(0) @binding(3) var<storage, read> offs: array<u32>;");
    w.line("@group(0) @binding(4) var<storage, read> lens: array<i32>;");
    w.line(`var<workgroup> tileA: array<array<f32, ${TILE}>, ${BIG_TILE}>;`);
    w.line(`var<workgroup> tileB: array<array<f32, ${BIG_TILE}>, ${TILE}>;`);
    w.line(`var<workgroup> partial: array<f32, ${WORKGROUP}>;`);
    // Non-finite values as in JS: WGSL's min, max and clamp may drop a NaN, and a compiler may assume
    // there are none, so NaN is tested on the bits.
    w.line("fn nan_(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }");
    w.line("fn tanh_(x: f32) -> f32 { return select(tanh(clamp(x, -30.0, 30.0)), x, nan_(x)); }");
    w.line("fn min_(a: f32, b: f32) -> f32 { return select(min(a, b), a + b, nan_(a) || nan_(b)); }");
    w.line("fn max_(a: f32, b: f32) -> f32 { return select(max(a, b), a + b, nan_(a) || nan_(b)); }");
    this.k.premask.forEach((m, i) => this.maskEntry(`pre${i}`, "premask", m));
    let n = 0;
    for (const s of this.plan.steps) {
      const name = `k${n++}`;
      if (s.kind === "loop") this.loop(name, s.domain, s.items);
      else if (s.kind === "barrier") this.barrier(name, s.node);
      else this.outer(name, s.outer);
    }
    this.k.postmask.forEach((m, i) => this.maskEntry(`post${i}`, "postmask", m));
  }

  private linearHeader(w: Writer, d: Domain) {
    const total = this.extentSize({ rows: d.batched, dim: d.dim });
    w.line(`let idx = g.x + g.y * ${LINEAR_SPAN}u;`);
    w.line(`if (idx >= ${total}) { return; }`);
    const n = d.dim ? this.dim(d.dim) : "1u";
    if (d.batched) w.line(d.dim ? `let b = idx / ${n};` : "let b = idx;");
    if (d.dim) w.line(d.batched ? `let j = idx % ${n};` : "let j = idx;");
  }
  /** An entry point with one thread per element of a domain (`b` and `j` bound as it has them). */
  private linearEntry(name: string, d: Domain, phase: WgslEntryInfo["phase"], body: (w: Writer) => void) {
    this.entry(name, { kind: "linear", extent: { rows: d.batched, dim: d.dim } }, phase, (w) => {
      this.linearHeader(w, d);
      body(w);
    });
  }

  private loop(name: string, d: Domain, items: readonly LoopItem[]) {
    this.linearEntry(name, d, "run", (w) => {
      for (const it of items) {
        if (it.kind === "node") {
          const n = this.k.graph.node(it.node);
          const value = (OPS[n.op] as ElementwiseDef).wgsl(n.args.map((a) => this.read(a)));
          if (this.plan.storage.get(n.id)!.kind === "local") w.line(`let v${n.id} = ${value};`);
          else w.line(`${this.read(n.id)} = ${value};`);
        } else {
          const s = it.store;
          const t = this.k.bindings[s.binding]!.type;
          const target = this.at(this.bindingPlace(s.binding), "b", t.dims.length ? "j" : "0u");
          w.line(`${target} = ${s.accumulate ? `${target} + ` : ""}${this.read(s.node)};`);
        }
      }
    });
  }

  /**
   * C[y, x] (+)= sum over r < inner of a(y, r) * bm(r, x), through workgroup memory in steps of 16 along r.
   * Per step (B rows) a 16 x 16 tile per workgroup, one output per thread; over all T*B rows a 64 x 64
   * tile, 4 x 4 outputs per thread in registers (rows and columns 16 apart, so that reads of the shared
   * tiles do not conflict).
   */
  private gemm(
    name: string,
    x: WgslExtent,
    y: WgslExtent,
    inner: string,
    a: (y: string, r: string) => string,
    bm: (r: string, x: string) => string,
    c: (y: string, x: string) => string,
    accumulate: boolean,
  ) {
    const big = this.k.rows === "TB";
    const tile = big ? BIG_TILE : TILE;
    const n = tile / TILE; // outputs per thread along each side
    this.entry(name, { kind: "tiles", x, y, tile }, "run", (w) => {
      const X = this.extentSize(x);
      const Y = this.extentSize(y);
      w.line(`let x0 = wg.x * ${tile}u + l.x;`);
      w.line(`let y0 = wg.y * ${tile}u + l.y;`);
      w.line(`var acc: array<array<f32, ${n}>, ${n}>;`);
      w.open(`for (var r0 = 0u; r0 < ${inner}; r0 += ${TILE}u) {`);
      w.open(`for (var i = 0u; i < ${n}u; i++) {`);
      w.line(`let y = y0 + i * ${TILE}u;`);
      w.line("let ra = r0 + l.x;");
      w.line(`tileA[l.y + i * ${TILE}u][l.x] = select(0.0, ${a("y", "ra")}, y < ${Y} && ra < ${inner});`);
      w.line(`let x = x0 + i * ${TILE}u;`);
      w.line("let rb = r0 + l.y;");
      w.line(`tileB[l.y][l.x + i * ${TILE}u] = select(0.0, ${bm("rb", "x")}, rb < ${inner} && x < ${X});`);
      w.close();
      w.line("workgroupBarrier();");
      w.open(`for (var k = 0u; k < ${TILE}u; k++) {`);
      w.open(`for (var i = 0u; i < ${n}u; i++) {`);
      w.line(`let av = tileA[l.y + i * ${TILE}u][k];`);
      w.line(`for (var q = 0u; q < ${n}u; q++) { acc[i][q] += av * tileB[k][l.x + q * ${TILE}u]; }`);
      w.close();
      w.close();
      w.line("workgroupBarrier();");
      w.close();
      w.open(`for (var i = 0u; i < ${n}u; i++) {`);
      w.open(`for (var q = 0u; q < ${n}u; q++) {`);
      w.line(`let y = y0 + i * ${TILE}u;`);
      w.line(`let x = x0 + q * ${TILE}u;`);
      const target = c("y", "x");
      w.line(`if (x < ${X} && y < ${Y}) { ${target} = ${accumulate ? `${target} + ` : ""}acc[i][q]; }`);
      w.close();
      w.close();
    });
  }

  /** Element (i, k) of a matrix place. */
  private matAt(p: Place, i: string, k: string) {
    return `${p.arena}[${p.off} + ${i} * ${p.ld} + ${k}]`;
  }

  private barrier(name: string, id: NodeId) {
    const n = this.k.graph.node(id);
    const out = this.place(id);
    const [a0, a1] = n.args;
    switch (n.op) {
      case "gemm":
      case "gemmT": {
        const P = this.place(a0!);
        const v = this.place(a1!);
        const [M, K] = this.k.graph.node(a0!).type.dims as [Dim, Dim];
        const rows = { rows: n.type.batched };
        // gemm: out[y, m] = sum_k v[y, k] P[m, k]; gemmT: out[y, k] = sum_m v[y, m] P[m, k].
        const [cols, inner] = n.op === "gemm" ? [M, K] : [K, M];
        const weight =
          n.op === "gemm"
            ? (r: string, x: string) => this.matAt(P, x, r)
            : (r: string, x: string) => this.matAt(P, r, x);
        this.gemm(
          name,
          { rows: false, dim: cols },
          rows,
          this.dim(inner),
          (y, r) => this.at(v, y, r),
          weight,
          (y, x) => this.at(out, y, x),
          false,
        );
        return;
      }
      case "sum": {
        const vt = this.k.graph.node(a0!).type;
        this.entry(name, { kind: "rows", rows: { rows: n.type.batched } }, "run", (w) => {
          w.line("let b = wg.x + wg.y * 65535u;");
          w.line(`if (b >= ${n.type.batched ? "ctl.B" : "1u"}) { return; }`);
          w.line("var acc = 0.0;");
          w.line(`for (var j = l.x; j < ${this.len(vt)}; j += ${WORKGROUP}u) { acc += ${this.read(a0!)}; }`);
          w.line("partial[l.x] = acc;");
          w.line("workgroupBarrier();");
          w.open(`for (var s = ${WORKGROUP / 2}u; s > 0u; s = s / 2u) {`);
          w.line("if (l.x < s) { partial[l.x] += partial[l.x + s]; }");
          w.line("workgroupBarrier();");
          w.close();
          w.line(`if (l.x == 0u) { ${this.at(out, "b", "0u")} = partial[0]; }`);
        });
        return;
      }
      case "sumbatch": {
        const d = n.type.dims[0];
        this.linearEntry(name, { batched: false, dim: d }, "run", (w) => {
          if (!d) w.line("let j = 0u;");
          w.line("var acc = 0.0;");
          w.line(`for (var b = 0u; b < ctl.B; b++) { acc += ${this.read(a0!)}; }`);
          w.line(`${this.at(out, "0u", "j")} = acc;`);
        });
        return;
      }
      case "concat":
        this.linearEntry(name, domainOf(n.type), "run", (w) => {
          let offset = "0u";
          n.args.forEach((item, i) => {
            const len = this.len(this.k.graph.node(item).type);
            const read = this.read(item, "b", `(j - (${offset}))`);
            w.line(
              `${i === 0 ? "if" : "else if"} (j < ${offset} + ${len}) { ${this.at(out, "b", "j")} = ${read}; }`,
            );
            offset = `${offset} + ${len}`;
          });
        });
        return;
      case "slice":
        this.linearEntry(name, domainOf(n.type), "run", (w) =>
          w.line(`${this.at(out, "b", "j")} = ${this.read(a0!, "b", `${this.dim(n.attrs.start!)} + j`)};`),
        );
        return;
      default:
        throw new Error(`no WGSL lowering for barrier ${n.op}`);
    }
  }

  /** D[m, k] += sum over rows of dy[r, m] x[r, k]. */
  private outer(name: string, o: OuterAccumulate) {
    const [M, K] = this.k.bindings[o.binding]!.type.dims as [Dim, Dim];
    const D = this.bindingPlace(o.binding);
    const G = this.place(o.dy);
    const X = this.place(o.x);
    this.gemm(
      name,
      { rows: false, dim: K },
      { rows: false, dim: M },
      G.batched ? "ctl.B" : "1u",
      (y, r) => this.at(G, r, y),
      (r, x) => this.at(X, r, x),
      (y, x) => this.matAt(D, y, x),
      true,
    );
  }

  /** Rows past their length: dst gets src (or zeros), after save has kept dst's old rows. */
  private maskEntry(name: string, phase: WgslEntryInfo["phase"], m: MaskOp) {
    const t = this.k.bindings[m.dst]!.type;
    this.linearEntry(name, { batched: true, dim: t.dims[0] }, phase, (w) => {
      if (!t.dims[0]) w.line("let j = 0u;");
      // Over all T*B rows at once, row b is step b / B (ctl.p1 holds B) of batch row b % B.
      if (this.k.rows === "TB") w.line("if (i32(b / ctl.p1) < lens[b % ctl.p1]) { return; }");
      else w.line("if (i32(ctl.t) < lens[b]) { return; }");
      const here = this.at(this.bindingPlace(m.dst), "b", "j");
      if (m.save !== undefined) w.line(`${this.at(this.bindingPlace(m.save), "b", "j")} = ${here};`);
      w.line(`${here} = ${m.src === undefined ? "0.0" : this.at(this.bindingPlace(m.src), "b", "j")};`);
    });
  }

  result(): WgslKernelText {
    return { code: this.w.toString(), entries: this.entries, scratch: this.plan.scratch };
  }
}

/** One WGSL module per kernel of the schedule. */
export function emitScheduleWgsl(s: Schedule): Record<KernelName, WgslKernelText> {
  const ks = kernelsOf(s);
  const out = {} as Record<KernelName, WgslKernelText>;
  for (const name of KERNEL_NAMES) {
    const kw = new WgslKernelWriter(planKernel(ks[name]), s.signature.dims);
    kw.emit();
    out[name] = kw.result();
  }
  return out;
}

function extentText(e: WgslExtent): string {
  const d = e.dim ? printDim(e.dim) : "1";
  return e.rows ? (e.dim ? `rows * (${d})` : "rows") : d;
}

/** The manifest that lets a WebGPU program drive the kernels without cellc (see the README). */
export function wgslManifest(s: Schedule, wgsl: Record<KernelName, WgslKernelText>) {
  const ks = kernelsOf(s);
  const describe = (name: KernelName) => {
    const k = ks[name];
    const text = wgsl[name];
    return {
      file: `${s.signature.name}.${name}.wgsl`,
      rows: k.rows === "B" ? "B (the batch), at each step t" : "T * B, once (t = 0)",
      bindings: k.bindings.map((b, i) => ({ index: i, buffer: b.buffer, shift: b.shift, arena: b.arena })),
      scratch: text.scratch.map((t, i) => ({
        index: k.bindings.length + i,
        arena: "mem",
        shape: storedShape(t),
      })),
      entryPoints: text.entries.map((e) => ({
        name: e.name,
        when:
          e.phase === "run"
            ? "every call"
            : e.phase === "premask"
              ? "before the call, with sequence lengths"
              : "after the call, with sequence lengths",
        workgroupSize: e.dispatch.kind === "tiles" ? [TILE, TILE, 1] : [WORKGROUP, 1, 1],
        dispatch:
          e.dispatch.kind === "tiles"
            ? {
                x: `ceil(${extentText(e.dispatch.x)} / ${e.dispatch.tile})`,
                y: `ceil(${extentText(e.dispatch.y)} / ${e.dispatch.tile})`,
              }
            : e.dispatch.kind === "rows"
              ? { x: extentText(e.dispatch.rows), y: "1" }
              : {
                  x: `min(ceil(${extentText(e.dispatch.extent)} / ${WORKGROUP}), 65535)`,
                  y: `ceil(ceil(${extentText(e.dispatch.extent)} / ${WORKGROUP}) / 65535)`,
                },
      })),
    };
  };
  return {
    cell: s.signature.name,
    dims: s.signature.dims.map((d, i) => ({ override: `d${i}`, dim: d })),
    bindGroup: {
      "0": "mem: storage, read_write, f32: every buffer but parameters",
      "1": "pmem: storage, read_write, f32: parameters, packed weights and their gradients",
      "2": "ctl: uniform { t: u32, rows: u32, B: u32 (read by the masks of kernels over all T*B rows), u32 padding }, bound with a dynamic offset of 256 * t",
      "3": "offs: storage, read, u32: for binding i, offs[2i] is its offset (in f32 elements) at t = 0 and offs[2i+1] how far it moves per time step",
      "4": "lens: storage, read, i32 [B]: sequence lengths (read by the mask entry points only)",
    },
    buffers: s.buffers.map((b, i) => ({
      index: i,
      kind: b.kind,
      name: b.name,
      extent: b.extent,
      arena: b.arena,
      row: storedShape(b.type),
    })),
    order: s.scans.length
      ? "forward: 'before' once, the scans forward, then 'step' once over all T * B rows; backward: 'loop' once, the scans backward, then 'after' once; each kernel: premask entries, run entries in order, postmask entries (masks only with sequence lengths). Packs: see the schedule."
      : "forward: 'before' once, then 'step' at t = 0 .. T-1; backward: 'loop' at t = T-1 .. 0, then 'after' once; each: premask entries, run entries in order, postmask entries (masks only with sequence lengths). Packs: see the schedule.",
    ...(s.scans.length
      ? {
          scans: {
            file: `${s.signature.name}.scan.wgsl`,
            what: "per scan state, forward: s[t+1] = a[t] * s[t] + s[t+1] for t = 0 .. T-1 (buffer: the state, coef: a); backward: g[t] = a[t] * g[t+1] + g[t] for t = T-1 .. 0 (buffer: the state's gradient). Entry points chunk, carry, fix in that order (see the file's header); P { base, coef (offsets in mem), n (B * row), row, T, C (steps per chunk), nc (chunks), back (0 forward, 1 backward), masked (1 with sequence lengths) }",
            states: s.scans.map((sc) => ({
              state: sc.state,
              buffer: sc.buffer,
              grad: sc.grad,
              coef: sc.coef,
              row: storedShape(s.buffers[sc.buffer]!.type).slice(1),
            })),
          },
        }
      : {}),
    kernels: Object.fromEntries(KERNEL_NAMES.map((n) => [n, describe(n)])),
  };
}
