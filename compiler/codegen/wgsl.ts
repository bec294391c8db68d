import type { NodeId } from "../ir/graph.js";
import { dimAdd, dimConst, printDim, storedShape, type Dim, type Type } from "../../artifact/shape.js";
import { OPS, type ElementwiseDef } from "../ops/ops.js";
import type { WgslDispatch, WgslEntryInfo, WgslExtent, WgslKernelText } from "../schedule/artifact.js";
import { wgslArena } from "../../artifact/artifact.js";
import {
  KERNEL_NAMES,
  kernelsOf,
  type KernelName,
  type BufferDecl,
  type MaskOp,
  type OuterAccumulate,
  type Schedule,
} from "../schedule/types.js";
import { KernelAddressing, type Place } from "./address.js";
import { domainOf, planKernel, type Domain, type LoopItem } from "./plan.js";
import { gateBlocks, gateCount } from "../schedule/fuse.js";
import {
  gemmBody,
  gemmHelpers,
  gemmStore,
  threadsOf,
  tileFloats,
  type GemmOperand,
  type GemmTiles,
} from "./wgsl-gemm.js";
import { Writer } from "./writer.js";

/**
 * WGSL code generation. Each kernel of the schedule becomes one WGSL module with one compute entry point per
 * plan step (a fused elementwise loop, a tiled gemm, a workgroup reduction, ...), dispatched in order; its
 * masks are entry points too. Every buffer lives in one of two arenas: `pmem` (parameters, packed weights,
 * their gradients) and `mem` (everything else). Binding i of the kernel is at `offs[2i] + t * offs[2i + 1]`
 * in its arena, where t is the time step, read from the uniform `ctl` (bound with a dynamic offset of 256
 * t), which also holds the number of rows the kernel iterates (`ctl.B`: the batch at a step, T*B before and
 * after the loop). Dimensions are pipeline-overridable constants (`d0`, `d1`, ...). No user text reaches
 * the code. Rows are padded to 4 floats (artifact.ts `WGSL_ROW_ALIGN`): a row's stride is its length
 * rounded up; the GEMMs (wgsl-gemm.ts) read and write vec4s.
 */
export const WORKGROUP = 64;
export const LINEAR_SPAN = 65535 * WORKGROUP; // threads per row of a 2-D linear dispatch

/**
 * GEMM tiles by shape. Over all T*B rows (before and after the loop): 64 x 64 outputs per workgroup of 256,
 * 4 x 4 each. Per step (B rows, a few thousand outputs in all): 16 x 64 per workgroup of 64, 4 x 4 each.
 * Fused with the cell's update (G gate blocks): per step 8 rows x 32 units per workgroup of 64, each
 * invocation 1 row x 4 units x G gates (4 x G outputs), so that a step has enough workgroups to spread
 * over the device; over T*B rows 64 rows x 64 / G units, 4 rows x 4 units x G gates each.
 */
const BIG: GemmTiles = { ty: 64, tx: 64, ry: 4, kt: 16, gates: 1 };
const STEP: GemmTiles = { ty: 16, tx: 64, ry: 4, kt: 16, gates: 1 };
/** The tile shapes, for tests and benchmarks. */
export const GEMM_TILES = {
  big: BIG,
  step: STEP,
  fused: (rows: "B" | "TB", gates: number) => fusedTiles(rows, gates),
};
function fusedTiles(rows: "B" | "TB", gates: number): GemmTiles {
  const tx = rows === "B" ? 32 : gates === 1 ? 64 : gates === 2 ? 32 : 16;
  // B's tile stays within 8 KiB of workgroup memory.
  return { ty: rows === "B" ? 8 : 64, tx, ry: rows === "B" ? 1 : 4, kt: tx * gates <= 128 ? 16 : 8, gates };
}

/** A dimension as a padded row stride: rounded up to a multiple of 4 unless it is one whatever the sizes. */
export function wgslPadded(d: Dim, dims: readonly string[]): string {
  const aligned = d.c % 4 === 0 && Object.values(d.terms).every((c) => c % 4 === 0);
  const text = wgslDim(d, dims);
  return aligned ? text : `((${text} + 3u) & 0xfffffffcu)`;
}
const isHalf = (arena: string) => arena === "hmem" || arena === "hpmem";
/** Whether an offset of this dimension keeps 16-byte alignment whatever the sizes. */
const alignedDim = (d: Dim) => d.c % 4 === 0 && Object.values(d.terms).every((c) => c % 4 === 0);

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
  /** Inside a GEMM entry point: scalars are read and written through `mem4` / `pmem4`. */
  private vec = false;
  /** Inside a fused GEMM's epilogue: the GEMM's gate blocks are these registers. */
  private epilogue?: { gemm: NodeId; gates: ReadonlyMap<NodeId, number>; at: (gate: number) => string };
  /** Workgroup memory the GEMM entry points need (floats of tileA, tileB); whether a reduction is used. */
  private tiles: [number, number] = [0, 0];
  usesReduction = false;

  private readonly subgroups: boolean;
  /** f16 storage: the tape and the packs live in the float16 arenas (artifact.ts `wgslArena`). */
  private readonly f16: boolean;

  constructor(
    plan: ConstructorParameters<typeof KernelAddressing>[0],
    dims: readonly string[],
    private readonly buffers: readonly BufferDecl[],
    opts: { subgroups?: boolean; f16?: boolean } = {},
  ) {
    super(plan, dims);
    this.nb = this.plan.kernel.bindings.length;
    this.subgroups = !!opts.subgroups;
    this.f16 = !!opts.f16;
  }
  protected override arenaOf(binding: number): string {
    return wgslArena(this.buffers[this.k.bindings[binding]!.buffer]!, this.f16);
  }
  /** Whether this kernel reads or writes a buffer that f16 storage keeps in float16. */
  get touchesF16(): boolean {
    return this.k.bindings.some((b) => isHalf(wgslArena(this.buffers[b.buffer]!, true)));
  }

  protected dim(d: Dim) {
    return wgslDim(d, this.dims);
  }
  /**
   * Rows are padded to 4 floats (see artifact.ts `WGSL_ROW_ALIGN`): a stride that is not a multiple of 4
   * whatever the sizes is an override of its own, `ld<n>`, the dimension rounded up.
   */
  override ld(t: Type): string {
    const d = t.dims.length === 2 ? t.dims[1] : t.dims[0];
    if (!d) return this.one;
    const text = wgslPadded(d, this.dims);
    if (text === this.dim(d)) return text;
    let name = this.strides.get(text);
    if (!name) this.strides.set(text, (name = `ld${this.strides.size}`));
    return name;
  }
  private readonly strides = new Map<string, string>();
  /** The element of a place; in a GEMM entry point a value (`mem_at(i)`), which `assign` writes. */
  override at(p: Place, b: string, j: string): string {
    if (this.vec) return `${p.arena}_at(${this.index(p, b, j)})`;
    return isHalf(p.arena) ? `f32(${super.at(p, b, j)})` : super.at(p, b, j);
  }
  private index(p: Place, b: string, j: string): string {
    return `${p.off}${p.batched ? ` + ${b} * ${p.ld}` : ""} + ${j}`;
  }
  /** The statement that writes (or adds to) element (b, j) of a place. */
  private assign(p: Place, b: string, j: string, value: string, accumulate = false): string {
    if (!this.vec) {
      const at = super.at(p, b, j);
      const v = `${accumulate ? `${this.at(p, b, j)} + ` : ""}${value}`;
      return `${at} = ${isHalf(p.arena) ? `f16(${v})` : v};`;
    }
    const i = this.index(p, b, j);
    return `${p.arena}_set(${i}, ${accumulate ? `${p.arena}_at(${i}) + ` : ""}${value});`;
  }
  protected scratchSlot(k: number) {
    return { arena: "mem", off: `o${this.nb + k}` };
  }
  read(id: NodeId, b = "b", j = "j"): string {
    const n = this.k.graph.node(id);
    const e = this.epilogue;
    if (e && (id === e.gemm || e.gates.has(id))) return e.at(e.gates.get(id) ?? 0);
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
    gemm?: WgslEntryInfo["gemm"],
  ) {
    const inner = new Writer();
    body(inner);
    const used = new Set([...inner.toString().matchAll(/\bo(\d+)\b/g)].map((m) => Number(m[1])));
    const w = this.w;
    w.line();
    const local = "@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u";
    const sub = "@builtin(subgroup_invocation_id) sl: u32, @builtin(subgroup_size) sn: u32";
    if (dispatch.kind === "tiles")
      w.open(`@compute @workgroup_size(${dispatch.threads.join(", ")}) fn ${name}(${local}) {`);
    else if (dispatch.kind === "rows")
      w.open(
        `@compute @workgroup_size(${WORKGROUP}) fn ${name}(${local}${this.subgroups ? `, ${sub}` : ""}) {`,
      );
    else
      w.open(`@compute @workgroup_size(${WORKGROUP}) fn ${name}(@builtin(global_invocation_id) g: vec3u) {`);
    for (const e of [...used].sort((a, b) => a - b))
      w.line(`let o${e} = offs[${2 * e}u] + ctl.t * offs[${2 * e + 1}u];`);
    for (const line of inner.toString().trimEnd().split("\n")) if (line) w.line(line);
    w.close();
    this.entries.push({ name, dispatch, phase, ...(gemm ? { gemm } : {}) });
  }

  /** The module's declarations, written once its entry points are known. */
  private header(): string {
    const w = new Writer();
    w.line("// Generated by cellc. Entry points, bindings and dispatch sizes: see the manifest.");
    const half = this.f16 && this.touchesF16;
    if (half) w.line("enable f16;");
    if (this.subgroups) w.line("enable subgroups;");
    this.dims.forEach((_, i) => w.line(`override d${i}: u32;`));
    for (const [text, name] of this.strides) w.line(`override ${name}: u32 = ${text};`);
    w.line("struct Control { t: u32, B: u32, p1: u32, p2: u32 }");
    w.line("@group(0) @binding(0) var<storage, read_write> mem: array<f32>;");
    w.line("@group(0) @binding(1) var<storage, read_write> pmem: array<f32>;");
    w.line("@group(0) @binding(2) var<uniform> ctl: Control;");
    w.line("@group(0) @binding(3) var<storage, read> offs: array<u32>;");
    w.line("@group(0) @binding(4) var<storage, read> lens: array<i32>;");
    if (half) {
      w.line("@group(0) @binding(5) var<storage, read_write> hmem: array<f16>;");
      w.line("@group(0) @binding(6) var<storage, read_write> hpmem: array<f16>;");
    }
    const [a, b] = this.tiles;
    if (a) {
      // The GEMMs' view of the same arenas (an entry point uses one view or the other, never both).
      w.line("@group(0) @binding(0) var<storage, read_write> mem4: array<vec4<f32>>;");
      w.line("@group(0) @binding(1) var<storage, read_write> pmem4: array<vec4<f32>>;");
      if (half) {
        w.line("@group(0) @binding(5) var<storage, read_write> hmem4: array<vec4<f16>>;");
        w.line("@group(0) @binding(6) var<storage, read_write> hpmem4: array<vec4<f16>>;");
      }
      w.line(`var<workgroup> tileA: array<vec4<f32>, ${a / 4}>;`);
      w.line(`var<workgroup> tileB: array<vec4<f32>, ${b / 4}>;`);
    }
    w.line(`var<workgroup> partial: array<f32, ${WORKGROUP}>;`);
    // Non-finite values as in JS: WGSL's min, max and clamp may drop a NaN, and a compiler may assume
    // there are none, so NaN is tested on the bits.
    w.line("fn nan_(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }");
    w.line("fn tanh_(x: f32) -> f32 { return select(tanh(clamp(x, -30.0, 30.0)), x, nan_(x)); }");
    w.line("fn min_(a: f32, b: f32) -> f32 { return select(min(a, b), a + b, nan_(a) || nan_(b)); }");
    w.line("fn max_(a: f32, b: f32) -> f32 { return select(max(a, b), a + b, nan_(a) || nan_(b)); }");
    if (a) gemmHelpers(w, half);
    return w.toString();
  }

  emit(): void {
    this.k.premask.forEach((m, i) => this.maskEntry(`pre${i}`, "premask", m));
    let n = 0;
    const steps = this.plan.steps;
    for (let i = 0; i < steps.length; i++) {
      const s = steps[i]!;
      const name = `k${n++}`;
      if (s.kind === "barrier" && this.plan.fused.has(i)) {
        const next = steps[++i]!;
        if (next.kind !== "loop") throw new Error("cellc bug: a fused GEMM without its loop");
        this.fusedGemm(name, s.node, i, next.domain, next.items);
      } else if (s.kind === "loop") this.loop(name, s.domain, s.items);
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
    this.linearEntry(name, d, "run", (w) => this.loopItems(w, items));
  }

  /** A loop's work at one element (b, j). */
  private loopItems(w: Writer, items: readonly LoopItem[]) {
    for (const it of items) {
      if (it.kind === "node") {
        const n = this.k.graph.node(it.node);
        const value = (OPS[n.op] as ElementwiseDef).wgsl(n.args.map((a) => this.read(a)));
        if (this.plan.storage.get(n.id)!.kind === "local") w.line(`let v${n.id} = ${value};`);
        else w.line(this.assign(this.place(n.id), "b", n.type.dims.length ? "j" : "0u", value));
      } else {
        const s = it.store;
        const t = this.k.bindings[s.binding]!.type;
        const p = this.bindingPlace(s.binding);
        w.line(this.assign(p, "b", t.dims.length ? "j" : "0u", this.read(s.node), s.accumulate));
      }
    }
  }

  /** A GEMM operand from a place; `contig` says along which of its indices it is contiguous. */
  private operand(p: Place, contig: "r" | "o", view?: Dim): GemmOperand {
    return {
      arena: p.arena,
      off: p.off,
      ld: p.ld,
      contig,
      aligned: !view || alignedDim(view),
      half: isHalf(p.arena),
    };
  }
  /** The column offset of a value when it is a view of another (alignment unknown unless a multiple of 4). */
  private viewStart(id: NodeId): Dim | undefined {
    const st = this.plan.storage.get(id);
    return st?.kind === "view" ? dimAdd(st.start, this.viewStart(st.of) ?? dimConst(0)) : undefined;
  }
  private useTiles(t: GemmTiles) {
    const [a, b] = tileFloats(t);
    this.tiles = [Math.max(this.tiles[0], a), Math.max(this.tiles[1], b)];
  }

  /**
   * A GEMM `[rows, G*H] = v x P^T` and the loop after it (over [rows, H], reading the GEMM only as its G
   * gate blocks) as one entry point: each invocation ends with every gate of 4 units for its rows in
   * registers and runs the loop's work there (schedule/fuse.ts). The GEMM's result is written only where
   * something else reads it.
   */
  private fusedGemm(name: string, id: NodeId, loopStep: number, d: Domain, items: readonly LoopItem[]) {
    const g = this.k.graph;
    const n = g.node(id);
    const H = d.dim!;
    const gates = gateBlocks(this.k, id, H)!;
    const G = gateCount(n.type.dims[0]!, H);
    const tiles = fusedTiles(this.k.rows, G);
    this.useTiles(tiles);
    const [P, v] = n.args as [NodeId, NodeId];
    const K = g.node(P).type.dims[1]!;
    const Hs = this.dim(H);
    const spec = {
      tiles,
      X: Hs,
      Y: this.extentSize({ rows: n.type.batched }),
      R: this.dim(K),
      a: this.operand(this.place(v), "r", this.viewStart(v)),
      b: this.operand(this.place(P), "r"),
    };
    const x = { rows: false, dim: H };
    const y = { rows: n.type.batched };
    const dispatch = tilesDispatch(x, y, tiles);
    const out = this.readOutside(id, gates, loopStep) ? this.place(id) : undefined;
    const size = { x: { rows: false, dim: n.type.dims[0]! }, y, inner: { rows: false, dim: K } };
    this.entry(
      name,
      dispatch,
      "run",
      (w) => {
        this.vec = true;
        gemmBody(w, spec, (gate, u) => `${gate} * ${Hs} + ${u}`);
        for (let i = 0; i < tiles.ry; i++)
          for (let q = 0; q < 4; q++) {
            w.open("{");
            w.line(`let b = y0 + l.y * ${tiles.ry}u + ${i}u;`);
            w.line(`let j = x0 + l.x * 4u + ${q}u;`);
            w.open(`if (b < ${spec.Y} && j < ${Hs}) {`);
            if (out)
              for (let k = 0; k < G; k++)
                w.line(this.assign(out, "b", k ? `${k}u * ${Hs} + j` : "j", `c${i}_${k}[${q}]`));
            this.epilogue = { gemm: id, gates, at: (gate) => `c${i}_${gate}[${q}]` };
            this.loopItems(w, items);
            this.epilogue = undefined;
            w.close();
            w.close();
          }
        this.vec = false;
      },
      size,
    );
  }
  /** Whether anything but the loop fused with it (step `loopStep`) reads a GEMM or its gate blocks. */
  private readOutside(id: NodeId, gates: ReadonlyMap<NodeId, number>, loopStep: number): boolean {
    const g = this.k.graph;
    if (this.plan.storage.get(id)!.kind === "binding") return true;
    const hit = (a: NodeId) => a === id || gates.has(a);
    return this.plan.steps.some((s, i) => {
      if (i === loopStep) return false;
      if (s.kind === "loop")
        return s.items.some((it) =>
          it.kind === "node" ? g.node(it.node).args.some(hit) : hit(it.store.node),
        );
      if (s.kind === "barrier") return s.node !== id && g.node(s.node).args.some(hit);
      return hit(s.outer.dy) || hit(s.outer.x);
    });
  }

  /** A plain GEMM entry point: C[y, x] (+)= sum over r < R of A(y, r) B(r, x) (see wgsl-gemm.ts). */
  private gemm(
    name: string,
    x: WgslExtent,
    y: WgslExtent,
    R: string,
    inner: WgslExtent,
    a: GemmOperand,
    b: GemmOperand,
    out: GemmOperand,
    accumulate: boolean,
  ) {
    const tiles = this.k.rows === "TB" ? BIG : STEP;
    this.useTiles(tiles);
    const spec = { tiles, X: this.extentSize(x), Y: this.extentSize(y), R, a, b };
    const dispatch = tilesDispatch(x, y, tiles);
    this.entry(
      name,
      dispatch,
      "run",
      (w) => {
        this.vec = true;
        gemmBody(w, spec, (_, u) => u);
        gemmStore(w, spec, out, accumulate);
        this.vec = false;
      },
      { x, y, inner },
    );
  }

  private barrier(name: string, id: NodeId) {
    const n = this.k.graph.node(id);
    const out = this.place(id);
    const [a0, a1] = n.args;
    switch (n.op) {
      case "gemm":
      case "gemmT": {
        const P = this.place(a0!);
        const v = this.operand(this.place(a1!), "r", this.viewStart(a1!));
        const [M, K] = this.k.graph.node(a0!).type.dims as [Dim, Dim];
        const rows = { rows: n.type.batched };
        // gemm: out[y, m] = sum_k v[y, k] P[m, k]; gemmT: out[y, k] = sum_m v[y, m] P[m, k].
        const [cols, inner] = n.op === "gemm" ? [M, K] : [K, M];
        const weight = this.operand(P, n.op === "gemm" ? "r" : "o");
        const o = this.operand(out, "o");
        const size = { rows: false, dim: inner };
        this.gemm(name, { rows: false, dim: cols }, rows, this.dim(inner), size, v, weight, o, false);
        return;
      }
      case "sum": {
        const vt = this.k.graph.node(a0!).type;
        this.usesReduction = true;
        this.entry(name, { kind: "rows", rows: { rows: n.type.batched } }, "run", (w) => {
          w.line("let b = wg.x + wg.y * 65535u;");
          w.line(`if (b >= ${n.type.batched ? "ctl.B" : "1u"}) { return; }`);
          w.line("var acc = 0.0;");
          w.line(`for (var j = l.x; j < ${this.len(vt)}; j += ${WORKGROUP}u) { acc += ${this.read(a0!)}; }`);
          if (this.subgroups) {
            // One sum per subgroup, then the first invocation adds the subgroups' sums.
            w.line("let s = subgroupAdd(acc);");
            w.line("if (sl == 0u) { partial[l.x / sn] = s; }");
            w.line("workgroupBarrier();");
            w.open("if (l.x == 0u) {");
            w.line("var total = 0.0;");
            w.line(`for (var i = 0u; i < (${WORKGROUP}u + sn - 1u) / sn; i++) { total += partial[i]; }`);
            w.line(this.assign(out, "b", "0u", "total"));
            w.close();
            return;
          }
          w.line("partial[l.x] = acc;");
          w.line("workgroupBarrier();");
          w.open(`for (var s = ${WORKGROUP / 2}u; s > 0u; s = s / 2u) {`);
          w.line("if (l.x < s) { partial[l.x] += partial[l.x + s]; }");
          w.line("workgroupBarrier();");
          w.close();
          w.line(`if (l.x == 0u) { ${this.assign(out, "b", "0u", "partial[0]")} }`);
        });
        return;
      }
      case "sumbatch": {
        const d = n.type.dims[0];
        this.linearEntry(name, { batched: false, dim: d }, "run", (w) => {
          if (!d) w.line("let j = 0u;");
          w.line("var acc = 0.0;");
          w.line(`for (var b = 0u; b < ctl.B; b++) { acc += ${this.read(a0!)}; }`);
          w.line(this.assign(out, "0u", "j", "acc"));
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
              `${i === 0 ? "if" : "else if"} (j < ${offset} + ${len}) { ${this.assign(out, "b", "j", read)} }`,
            );
            offset = `${offset} + ${len}`;
          });
        });
        return;
      case "slice":
        this.linearEntry(name, domainOf(n.type), "run", (w) =>
          w.line(this.assign(out, "b", "j", this.read(a0!, "b", `${this.dim(n.attrs.start!)} + j`))),
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
      { rows: G.batched },
      this.operand(G, "o", this.viewStart(o.dy)),
      this.operand(X, "o", this.viewStart(o.x)),
      this.operand(D, "o"),
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
      const dst = this.bindingPlace(m.dst);
      const here = this.at(dst, "b", "j");
      if (m.save !== undefined) w.line(this.assign(this.bindingPlace(m.save), "b", "j", here));
      w.line(
        this.assign(dst, "b", "j", m.src === undefined ? "0.0" : this.at(this.bindingPlace(m.src), "b", "j")),
      );
    });
  }

  code(): string {
    return this.header() + this.w.toString();
  }
}

/**
 * One WGSL module per kernel of the schedule; where the module has reductions, also the same module with
 * them on subgroup operations (for a device with the `subgroups` feature).
 */
export function emitScheduleWgsl(s: Schedule): Record<KernelName, WgslKernelText> {
  const ks = kernelsOf(s);
  const out = {} as Record<KernelName, WgslKernelText>;
  for (const name of KERNEL_NAMES) {
    const plan = planKernel(ks[name]);
    const variant = (opts: { subgroups?: boolean; f16?: boolean }) => {
      const kw = new WgslKernelWriter(plan, s.signature.dims, s.buffers, opts);
      kw.emit();
      return kw;
    };
    const kw = variant({});
    const half = kw.touchesF16 ? variant({ f16: true }) : undefined;
    out[name] = {
      code: kw.code(),
      ...(kw.usesReduction ? { codeSubgroups: variant({ subgroups: true }).code() } : {}),
      ...(half ? { codeF16: half.code() } : {}),
      ...(half && kw.usesReduction
        ? { codeF16Subgroups: variant({ subgroups: true, f16: true }).code() }
        : {}),
      entries: kw.entries,
      scratch: plan.scratch,
    };
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
      ...(text.codeSubgroups !== undefined
        ? {
            fileSubgroups: `${s.signature.name}.${name}.subgroups.wgsl (the same, for a device with 'subgroups')`,
          }
        : {}),
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
        workgroupSize: e.dispatch.kind === "tiles" ? [...e.dispatch.threads, 1] : [WORKGROUP, 1, 1],
        dispatch:
          e.dispatch.kind === "tiles"
            ? {
                x: `ceil(${extentText(e.dispatch.x)} / ${e.dispatch.tile})`,
                y: `ceil(${extentText(e.dispatch.y)} / ${e.dispatch.tileY})`,
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
      "0": "mem: storage, read_write, f32: every buffer but parameters (the GEMM entry points declare it as mem4: array<vec4<f32>>)",
      "1": "pmem: storage, read_write, f32: parameters, packed weights and their gradients (pmem4 in the GEMM entry points)",
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
    layout:
      "every buffer and scratch region starts at a multiple of 4 floats; the rows of every buffer but the parameters and their gradients are padded to a multiple of 4 floats (a row of n floats takes ceil(n / 4) * 4; a per-row scalar 1), so that a buffer's size is its rows times its padded row; offsets and lengths are in f32 elements",
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

/** The dispatch of a GEMM entry point: `tiles` outputs per workgroup over x by y. */
function tilesDispatch(x: WgslExtent, y: WgslExtent, tiles: GemmTiles): WgslDispatch {
  return { kind: "tiles", x, y, tile: tiles.tx, tileY: tiles.ty, threads: threadsOf(tiles) };
}
