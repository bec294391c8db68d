// The kernels of a schedule as WebAssembly SIMD128 (f32), from the same fused plan as the JS emitter
// (codegen/plan.ts): each elementwise loop, reduction, concatenation and slice becomes one exported function
// over a range of rows, four features at a time with a scalar tail; GEMMs and outer products become steps
// that the runtime runs with the GEMM module (kernels.ts). The runtime splits a function's rows across
// threads; every element is computed the same way whatever the split, so results are bit-identical.
//
// The module comes twice: in SIMD128, and with relaxed SIMD's fused multiply-adds in the math (exp, tanh,
// sigmoid, log), which the runtime takes where its engine has relaxed SIMD. Their functions and steps are
// the same; only the instructions inside differ.
//
// A function is (frame, t, row0, rows), all i32. `frame` is the byte address of the kernel's frame: for
// each slot (the kernel's bindings, then its scratch regions) the byte address of its row 0 at t = 0 and
// its byte stride per step (8 bytes per slot), then the value of each dimension of the signature (4 bytes
// each), then the kernel's number of rows (B, or T*B). Slot s is at `base + t * stride`. No name from the user reaches the module: only slots, offsets
// and dimension indices.
import { planKernel, type Domain, type KernelPlan, type LoopItem } from "../codegen/plan.js";
import type { NodeId } from "../ir/graph.js";
import { dimAdd, dimConst, dimKey, type Dim, type Type } from "../../artifact/shape.js";
import type { OpKind } from "../ops/ops.js";
import { KERNEL_NAMES, kernelsOf, type KernelName, type Schedule, type Store } from "../schedule/types.js";
import {
  toBase64,
  type WasmFallback,
  type WasmKernel,
  type WasmOperand,
  type WasmRows,
  type WasmStep,
  type WasmTarget,
} from "../../artifact/wasm.js";
export type { WasmFallback, WasmKernel, WasmOperand, WasmRows, WasmStep, WasmTarget };
import { MEMORY_IMPORT } from "../../kernels/library.js";
import { emitExp, emitLog, emitSigmoid, emitTanh, type MathOptions } from "../../kernels/math.js";
import { Func, ModuleWriter, T } from "../../kernels/writer.js";

class Unsupported extends Error {}

// ---- Elementwise ops: one emitter per op of compiler/ops/ops.ts (the type checker wants them all) ----

type NonElementwise = "leaf" | "const" | "dim" | "sum" | "sumbatch" | "matvec" | "concat" | "slice" | "gemm" | "gemmT" | "cols"; // prettier-ignore
/** Pushes nothing; returns the v128 local holding the result, from the v128 locals of the arguments. */
type Emit = (f: Func, a: readonly number[], o: MathOptions) => number;

const splat = (f: Func, x: number): Func => f.v128([x, x, x, x]);
const keep = (f: Func): number => {
  const v = f.local(T.v128);
  f.set(v);
  return v;
};
const bin =
  (op: "f32x4.add" | "f32x4.sub" | "f32x4.mul" | "f32x4.div" | "f32x4.min" | "f32x4.max"): Emit =>
  (f, [a, b]) =>
    keep(f.get(a!).get(b!).op(op));
const un =
  (op: "f32x4.neg" | "f32x4.abs" | "f32x4.sqrt"): Emit =>
  (f, [a]) =>
    keep(f.get(a!).op(op));

/** log(1 + e) for e in [0, 1], accurate for small e: log(u) * e / (u - 1) with u = 1 + e (Goldberg). */
function log1p(f: Func, e: number, o: MathOptions): number {
  const u = keep(splat(f, 1).get(e).op("f32x4.add"));
  const lu = emitLog(f, u, o);
  f.get(e);
  f.get(lu).get(e).get(u);
  splat(f, 1).op("f32x4.sub", "f32x4.div", "f32x4.mul");
  f.get(u);
  splat(f, 1).op("f32x4.eq", "v128.bitselect");
  return keep(f);
}

export const WASM_OPS: Readonly<Record<Exclude<OpKind, NonElementwise>, Emit>> = {
  add: bin("f32x4.add"),
  sub: bin("f32x4.sub"),
  mul: bin("f32x4.mul"),
  div: bin("f32x4.div"),
  min: bin("f32x4.min"),
  max: bin("f32x4.max"),
  neg: un("f32x4.neg"),
  abs: un("f32x4.abs"),
  sqrt: un("f32x4.sqrt"),
  sigmoid: (f, [a], o) => emitSigmoid(f, a!, o),
  tanh: (f, [a], o) => emitTanh(f, a!, o),
  exp: (f, [a], o) => emitExp(f, a!, o),
  log: (f, [a], o) => emitLog(f, a!, o),
  relu: (f, [a]) => keep(splat(f.get(a!), 0).op("f32x4.max")),
  softplus: (f, [a], o) => {
    const m = keep(splat(f.get(a!), 0).op("f32x4.max"));
    const t = keep(f.get(a!).op("f32x4.abs", "f32x4.neg"));
    const l = log1p(f, emitExp(f, t, o), o);
    return keep(f.get(m).get(l).op("f32x4.add"));
  },
  softsign: (f, [a]) => keep(splat(f.get(a!), 1).get(a!).op("f32x4.abs", "f32x4.add", "f32x4.div")),
  gt: (f, [a, b]) => keep(splat(f.get(a!).get(b!).op("f32x4.gt"), 1).op("v128.and")),
};

// ---- One function: the frame read into locals, loops over rows and features ----

interface Place {
  readonly slot: number;
  readonly col: Dim;
  readonly ld: Dim;
  readonly batched: boolean;
}
const placeKey = (p: Place) => `${p.slot}|${dimKey(p.col)}|${dimKey(p.ld)}|${p.batched}`;
const [FRAME, STEP, ROW0, ROWS] = [0, 1, 2, 3];

class FnWriter {
  readonly f = new Func([T.i32, T.i32, T.i32, T.i32]);
  /** The slots the function reads or writes. */
  readonly slots = new Set<number>();
  private readonly slotAt: number[] = [];
  private readonly dimAt: number[] = [];

  constructor(
    private readonly nslots: number,
    private readonly dims: readonly string[],
  ) {
    const slots = nslots;
    const f = this.f;
    for (let s = 0; s < slots; s++) {
      this.slotAt.push(f.local(T.i32));
      f.get(FRAME)
        .mem("i32.load", 8 * s)
        .get(STEP)
        .get(FRAME)
        .mem("i32.load", 8 * s + 4);
      f.op("i32.mul", "i32.add").set(this.slotAt[s]!);
    }
    dims.forEach((_, i) => {
      this.dimAt.push(f.local(T.i32));
      f.get(FRAME)
        .mem("i32.load", 8 * slots + 4 * i)
        .set(this.dimAt[i]!);
    });
  }

  /** Pushes the kernel's number of rows (i32), from the end of the frame. */
  kernelRows(): void {
    this.f.get(FRAME).mem("i32.load", 8 * this.nslots + 4 * this.dims.length);
  }

  /** Pushes the value of a dimension form (i32). */
  dim(d: Dim): void {
    const f = this.f.i32(d.c);
    for (const [name, coeff] of Object.entries(d.terms)) {
      const i = this.dims.indexOf(name);
      if (i < 0) throw new Error(`unknown dimension ${name}`);
      f.get(this.dimAt[i]!);
      if (coeff !== 1) f.i32(coeff).op("i32.mul");
      f.op("i32.add");
    }
  }

  /**
   * for b in [row0, row0 + rows): body, given the local holding the byte address of row b (column 0) of
   * each place it asks for. The addresses are computed once per row, their bases once per call.
   */
  rows(body: (row: (p: Place) => number) => void): void {
    const f = this.f;
    const [b, end] = [f.local(T.i32), f.local(T.i32)];
    const before = f.at;
    f.get(ROW0).get(ROWS).op("i32.add").set(end).get(ROW0).set(b);
    f.block().loop();
    f.get(b).get(end).op("i32.ge_s").brIf(1);
    const rowAt = f.at;
    const used = new Map<string, { p: Place; base: number; stride: number; row: number }>();
    body((p) => {
      this.slots.add(p.slot);
      const k = placeKey(p);
      let u = used.get(k);
      if (!u) used.set(k, (u = { p, base: f.local(T.i32), stride: f.local(T.i32), row: f.local(T.i32) }));
      return u.row;
    });
    f.get(b).i32(1).op("i32.add").set(b).br(0).end().end();
    f.insert(rowAt, () => {
      for (const u of used.values()) {
        f.get(u.base);
        if (u.p.batched) f.get(b).get(u.stride).op("i32.mul", "i32.add");
        f.set(u.row);
      }
    });
    f.insert(before, () => {
      for (const u of used.values()) {
        f.get(this.slotAt[u.p.slot]!);
        this.dim(u.p.col);
        f.i32(2).op("i32.shl", "i32.add").set(u.base);
        if (u.p.batched) {
          this.dim(u.p.ld);
          f.i32(2).op("i32.shl").set(u.stride);
        }
      }
    });
  }

  /** A local holding the byte address of a place's row 0 (computed here: call it outside loops). */
  base(p: Place): number {
    this.slots.add(p.slot);
    const f = this.f;
    const at = f.local(T.i32);
    f.get(this.slotAt[p.slot]!);
    this.dim(p.col);
    f.i32(2).op("i32.shl", "i32.add").set(at);
    return at;
  }

  /**
   * for j in [0, len): body(width, jb) four elements at a time, then one (jb: the byte offset 4j); one at
   * a time throughout when not `vectors`.
   */
  cols(len: Dim | number | undefined, body: (width: 1 | 4, jb: number) => void, vectors = true): void {
    const f = this.f;
    const jb = f.local(T.i32);
    f.i32(0).set(jb);
    if (len === undefined) return body(1, jb);
    const [lenB, vecB] = [f.local(T.i32), f.local(T.i32)];
    // A dimension form, or an i32 local holding the length.
    if (typeof len === "number") f.get(len);
    else this.dim(len);
    f.i32(2).op("i32.shl").tee(lenB).i32(-16).op("i32.and").set(vecB);
    for (const [width, limit] of vectors
      ? ([
          [4, vecB],
          [1, lenB],
        ] as const)
      : ([[1, lenB]] as const)) {
      f.block().loop();
      f.get(jb).get(limit).op("i32.ge_s").brIf(1);
      body(width, jb);
      f.get(jb)
        .i32(4 * width)
        .op("i32.add")
        .set(jb)
        .br(0)
        .end()
        .end();
    }
  }

  /** Pushes the byte address of element j of a row (column 0 for a per-row scalar). */
  private addr(row: number, vector: boolean, jb: number): void {
    this.f.get(row);
    if (vector) this.f.get(jb).op("i32.add");
  }
  load(row: number, vector: boolean, width: 1 | 4, jb: number): number {
    this.addr(row, vector, jb);
    return keep(this.f.mem(vector && width === 4 ? "v128.load" : "v128.load32_splat"));
  }
  store(row: number, vector: boolean, width: 1 | 4, jb: number, v: number): void {
    this.addr(row, vector, jb);
    this.f.get(v);
    if (vector && width === 4) this.f.mem("v128.store");
    else this.f.lane("f32x4.extract_lane", 0).mem("f32.store");
  }
}

// ---- One kernel ----

class KernelWriter {
  readonly steps: WasmStep[] = [];
  readonly fns: [string, Func][] = [];

  constructor(
    private readonly plan: KernelPlan,
    private readonly dims: readonly string[],
    private readonly prefix: string,
    private readonly math: MathOptions,
  ) {}

  private get k() {
    return this.plan.kernel;
  }
  private node(id: NodeId) {
    return this.k.graph.node(id);
  }
  private len(t: Type): Dim {
    return t.dims[0] ?? dimConst(1);
  }
  private ld(t: Type): Dim {
    return t.dims.length === 2 ? t.dims[1]! : this.len(t);
  }

  /** Where a node's rows live (see codegen/address.ts, which this mirrors). */
  private place(id: NodeId): Place {
    const n = this.node(id);
    const st = this.plan.storage.get(id);
    const ld = this.ld(n.type);
    const nb = this.k.bindings.length;
    switch (st?.kind) {
      case "binding":
        return { slot: st.index, col: dimConst(0), ld, batched: n.type.batched };
      case "scratch":
        return { slot: nb + st.index, col: dimConst(0), ld, batched: n.type.batched };
      case "free": {
        const b = this.plan.leafBinding.get(id);
        if (b === undefined) throw new Unsupported(`a ${n.op} operand of a barrier`);
        return { slot: b, col: dimConst(0), ld, batched: n.type.batched };
      }
      case "view": {
        const base = this.place(st.of);
        return { ...base, col: dimAdd(base.col, st.start) };
      }
      default:
        throw new Unsupported(`a ${n.op} operand read from memory`);
    }
  }
  private operand(id: NodeId): WasmOperand {
    const p = this.place(id);
    return { slot: p.slot, col: p.col, ld: p.ld };
  }
  private storePlace(s: Store): Place {
    const t = this.k.bindings[s.binding]!.type;
    return { slot: s.binding, col: dimConst(0), ld: this.len(t), batched: t.batched };
  }

  private fn(rows: WasmRows, split: boolean, width: Dim, build: (w: FnWriter) => void, cols = false): void {
    const w = new FnWriter(this.k.bindings.length + this.plan.scratch.length, this.dims);
    build(w);
    const name = `${this.prefix}${this.fns.length}`;
    this.fns.push([name, w.f]);
    const slots = [...w.slots].sort((a, b) => a - b);
    this.steps.push({ kind: "call", fn: name, rows, split, width, slots, ...(cols ? { cols } : {}) });
  }

  emit(): WasmKernel {
    for (const s of this.plan.steps) {
      if (s.kind === "loop") {
        if (s.items.length) this.loop(s.domain, s.items);
      } else if (s.kind === "barrier") this.barrier(s.node);
      else {
        const t = this.k.bindings[s.outer.binding]!.type;
        this.steps.push({
          kind: "tn",
          out: { slot: s.outer.binding, col: dimConst(0), ld: t.dims[1]! },
          left: this.operand(s.outer.dy),
          right: this.operand(s.outer.x),
          M: t.dims[0]!,
          K: t.dims[1]!,
          rows: this.node(s.outer.dy).type.batched ? "all" : "one",
        });
      }
    }
    return { scratch: this.plan.scratch, steps: this.steps };
  }

  private loop(d: Domain, items: readonly LoopItem[]): void {
    this.fn(d.batched ? "all" : "one", d.batched, d.dim ?? dimConst(1), (w) =>
      w.rows((row) =>
        w.cols(d.dim, (width, jb) => {
          const f = w.f;
          const regs = new Map<NodeId, number>();
          const read = (id: NodeId): number => {
            const n = this.node(id);
            if (n.op === "const") return keep(splat(f, n.attrs.value!));
            if (n.op === "dim") {
              w.dim(n.attrs.dim!);
              return keep(f.op("i32x4.splat", "f32x4.convert_i32x4_s"));
            }
            const r = regs.get(id);
            if (r !== undefined) return r;
            return w.load(row(this.place(id)), n.type.dims.length > 0, width, jb);
          };
          for (const it of items) {
            if (it.kind === "node") {
              const n = this.node(it.node);
              const emit = (WASM_OPS as Partial<Record<OpKind, Emit>>)[n.op];
              if (!emit) throw new Unsupported(`no WebAssembly lowering for ${n.op}`);
              const v = emit(f, n.args.map(read), this.math);
              regs.set(n.id, v);
              if (this.plan.storage.get(n.id)!.kind !== "local")
                w.store(row(this.place(n.id)), n.type.dims.length > 0, width, jb, v);
            } else {
              const s = it.store;
              const p = this.storePlace(s);
              const vector = this.k.bindings[s.binding]!.type.dims.length > 0;
              let v = read(s.node);
              if (s.accumulate) {
                const old = w.load(row(p), vector, width, jb);
                v = keep(f.get(old).get(v).op("f32x4.add"));
              }
              w.store(row(p), vector, width, jb, v);
            }
          }
        }),
      ),
    );
  }

  private barrier(id: NodeId): void {
    const n = this.node(id);
    const [a0, a1] = n.args;
    const rows: WasmRows = n.type.batched ? "all" : "one";
    switch (n.op) {
      case "gemm":
      case "gemmT": {
        const pt = this.node(a0!).type;
        this.steps.push({
          kind: "gemm",
          form: n.op === "gemm" ? "nt" : "nn",
          out: this.operand(id),
          left: this.operand(a1!),
          right: this.operand(a0!),
          M: pt.dims[0]!,
          K: pt.dims[1]!,
          rows,
        });
        return;
      }
      case "sum": {
        // In order, one element at a time, as the JS kernel sums.
        const src = this.place(a0!);
        const len = this.len(this.node(a0!).type);
        this.fn(rows, n.type.batched, len, (w) =>
          w.rows((row) => {
            const f = w.f;
            const acc = f.local(T.f32);
            f.f32(0).set(acc);
            w.cols(
              len,
              (_, jb) =>
                void f.get(acc).get(row(src)).get(jb).op("i32.add").mem("f32.load").op("f32.add").set(acc),
              false,
            );
            f.get(row(this.place(id)))
              .get(acc)
              .mem("f32.store");
          }),
        );
        return;
      }
      case "sumbatch":
        return this.sumBatch(id);
      case "concat": {
        const out = this.place(id);
        this.fn(rows, n.type.batched, this.len(n.type), (w) =>
          w.rows((row) => {
            let offset = dimConst(0);
            for (const item of n.args) {
              const t = this.node(item).type;
              const dst = { ...out, col: dimAdd(out.col, offset) };
              w.cols(t.dims[0], (width, jb) => {
                const it = this.node(item);
                let v: number;
                if (it.op === "const") v = keep(splat(w.f, it.attrs.value!));
                else v = w.load(row(this.place(item)), t.dims.length > 0, width, jb);
                w.store(row(dst), true, width, jb, v);
              });
              offset = dimAdd(offset, this.len(t));
            }
          }),
        );
        return;
      }
      case "slice": {
        const src = this.place(a0!);
        const from = { ...src, col: dimAdd(src.col, n.attrs.start!) };
        this.fn(rows, n.type.batched, this.len(n.type), (w) =>
          w.rows((row) =>
            w.cols(n.type.dims[0], (width, jb) =>
              w.store(row(this.place(id)), true, width, jb, w.load(row(from), true, width, jb)),
            ),
          ),
        );
        return;
      }
      default:
        throw new Unsupported(`no WebAssembly lowering for the barrier ${n.op}`);
    }
  }

  /**
   * out[j] = sum over rows b of x[b, j], rows in order (as the JS kernel adds them), features by four. The
   * output row is the accumulator and the rows are read once, in order: summing a column group down all
   * rows before the next would read a [T*B, 4*H] gradient from memory once per group. A vector sum is
   * divided by columns (the function's row0 and rows are its columns; every row is summed, their number
   * read from the frame): each column is summed the same way whoever sums it.
   */
  private sumBatch(id: NodeId): void {
    const n = this.node(id);
    const x = this.place(n.args[0]!);
    const vector = n.type.dims.length > 0;
    const len = vector ? this.len(n.type) : undefined;
    this.fn(
      "all",
      vector,
      len ?? dimConst(1),
      (w) => {
        const f = w.f;
        const [xr, out] = [w.base(x), w.base(this.place(id))];
        const [b, stride, rows, ncols] = [f.local(T.i32), f.local(T.i32), f.local(T.i32), f.local(T.i32)];
        if (x.batched) w.dim(x.ld);
        else f.i32(0);
        f.i32(2).op("i32.shl").set(stride);
        w.kernelRows();
        f.set(rows);
        if (vector) {
          // Columns [row0, row0 + rows) of the vector.
          f.get(ROW0).i32(2).op("i32.shl").set(b);
          f.get(xr).get(b).op("i32.add").set(xr);
          f.get(out).get(b).op("i32.add").set(out);
          f.get(ROWS).set(ncols);
        }
        const zero = keep(f.v128([0, 0, 0, 0]));
        const cols = vector ? ncols : undefined;
        w.cols(cols, (width, jb) => w.store(out, vector, width, jb, zero));
        f.i32(0).set(b).block().loop();
        f.get(b).get(rows).op("i32.ge_s").brIf(1);
        w.cols(cols, (width, jb) => {
          const [v, acc] = [w.load(xr, vector, width, jb), w.load(out, vector, width, jb)];
          w.store(out, vector, width, jb, keep(f.get(acc).get(v).op("f32x4.add")));
        });
        f.get(xr).get(stride).op("i32.add").set(xr);
        f.get(b).i32(1).op("i32.add").set(b).br(0).end().end();
      },
      vector,
    );
  }
}

/** The kernels of a schedule: one module for all four, and each kernel's steps (or why it falls back to JS). */
export function emitScheduleWasm(s: Schedule): WasmTarget {
  const ks = kernelsOf(s);
  const build = (math: MathOptions) => {
    const m = new ModuleWriter({ ...MEMORY_IMPORT, initial: 1, maximum: 65536, shared: true });
    const kernels = {} as Record<KernelName, WasmKernel | WasmFallback>;
    KERNEL_NAMES.forEach((name, i) => {
      const w = new KernelWriter(planKernel(ks[name]), s.signature.dims, `k${i}_`, math);
      try {
        kernels[name] = w.emit();
        for (const [fn, f] of w.fns) m.add(f, fn);
      } catch (e) {
        if (!(e instanceof Unsupported)) throw e;
        kernels[name] = { fallback: e.message };
      }
    });
    return { bytes: m.encode(), kernels };
  };
  const plain = build({});
  const fused = build({ fma: true });
  return { module: toBase64(plain.bytes), relaxed: toBase64(fused.bytes), kernels: plain.kernels };
}
