// Runs a cell's WebAssembly kernels (compiler/wasm/elementwise.ts) over arenas that live in the backend's
// memory: each kernel's frame (slot addresses, dimensions) is written once per arena, then every step is a
// call of a generated function over the kernel's rows, or a GEMM, with byte addresses computed here.
import { evalDim, type Dim } from "../../artifact/shape.js";
import type { WasmKernel, WasmOperand, WasmRows, WasmStep } from "../../artifact/wasm.js";
import { KERNEL_NAMES, type KernelName } from "../../artifact/schedule.js";
import type { CompiledCell, Gemms, KernelFns } from "../cell.js";
import { planLayout, rowSize, type Layout } from "../layout.js";
import { CellcError, type FloatArray } from "../tensor.js";
import { DEFAULT_TILING, packedBytes } from "../../kernels/gemm.js";
import type { WasmHeap } from "./heap.js";
import type { RowCall } from "./pool.js";

/** A cell's module, instantiated on the calling thread; the pool instantiates it on demand. */
export interface CellModule {
  readonly module: WebAssembly.Module;
  readonly exports: Readonly<Record<string, (...args: number[]) => void>>;
}

/** What the steps run on: the backend (runtime/cpu/wasm.ts). */
export interface WasmDevice extends Gemms {
  readonly heap: WasmHeap;
  /**
   * gemm_<form>(C, ldc, L, ldl, Rt, ldr, R, M, K, acc, scratch) at byte addresses; the device writes
   * its scratch into args[10].
   */
  gemmAt(form: "nt" | "nn" | "tn", args: number[]): void;
  /** Packs a GEMM's right operand (as gemm_<form> would) into panels at `dst`: (dst, src, ld, M, K). */
  packAt(form: "nt" | "nn", args: readonly number[]): void;
  /** mm_rows(C, ldc, A, lda, panels, rows, cols, inner, acc): a GEMM on panels packed by packAt. */
  mmAt(args: readonly number[]): void;
  /** Changes at the start of every forward and backward pass: parameters may have changed. */
  readonly epoch: number;
  /** Generated functions run so far (for tests and benchmarks). */
  kernelCalls: number;
  /**
   * Calls prepared to run row by row on the pool, every thread the same rows in each (one job for a
   * kernel): cell functions and the GEMM module's; `sequence`: a whole kernel's steps (else divided calls
   * in a row). Undefined with one thread. A program belongs to one pool: `poolGen` changes with the threads.
   */
  rowProgram(mod: CellModule, calls: readonly KernelRowCall[], sequence: boolean): DeviceRows | undefined;
  readonly poolGen: number;
  /**
   * Runs a program (its arguments written) over `rows` (in multiples of `align`, 1 by default, for a
   * program that is not a whole kernel); false when it did nothing (too little work).
   */
  runRows(prog: DeviceRows, rows: number, work: RowWork, align?: number): boolean;
  /**
   * Runs a whole kernel's program `steps` times, each argument advanced by its delta from one step to the
   * next (a step's rows depend only on the same rows at the step before); false when it did nothing.
   */
  runSteps(prog: DeviceRows, rows: number, steps: number, work: RowWork): boolean;
}

/** Row calls a device prepared: per call, its arguments and their deltas per step, rewritten before each run. */
export interface DeviceRows {
  readonly args: readonly Int32Array[];
  readonly deltas: readonly Int32Array[];
}

/** A row sequence's work: elements its generated functions compute, multiply-adds of its GEMMs. */
export interface RowWork {
  readonly elements: number;
  readonly macs: number;
}

/** A call of a row sequence: of the cell's module or of the GEMM module (`core`). */
export interface KernelRowCall extends RowCall {
  readonly core: boolean;
}

/** A step's call in a row sequence: what it calls, and how to write its arguments for step t. */
interface RowStep {
  readonly call: KernelRowCall;
  write(t: number, args: Int32Array): void;
}

/** A call divided across threads: its row call, count, unit, work, and the call on one thread. */
interface SplitCall {
  readonly row: RowStep;
  readonly n: number;
  readonly align: number;
  readonly work: number;
  local(t: number): void;
}

/** One step of a kernel: run alone, or (`row`) as part of a row sequence after `prepare`. */
interface Step {
  run(t: number): void;
  /** A GEMM that writes an input's gradient which no other step touches: skipped when not wanted. */
  inputGrad?: boolean;
  row?: RowStep;
  prepare?(t: number): void;
  /** A divided call: consecutive ones of the same division run as one program (one job of the pool). */
  split?: SplitCall;
}

/** The slots a step reads or writes. */
function touched(s: WasmStep): readonly number[] {
  return s.kind === "call" ? s.slots : [s.out.slot, s.left.slot, s.right.slot];
}

/** A row program (none: one thread) and the pool generation it was made for. */
interface Prepared {
  readonly prog?: DeviceRows;
  readonly gen: number;
}

/** The layout of a cell for (sizes, B, T) with the wasm kernels' scratch, and each kernel's functions. */
export function planWasm(
  dev: WasmDevice,
  cell: CompiledCell,
  mod: CellModule,
  sizes: Readonly<Record<string, number>>,
  B: number,
  T: number,
): { L: Layout; fns: Record<KernelName, KernelFns> } {
  const a = cell.artifact;
  const programs = a.wasm!.kernels;
  const rowsOf = (k: KernelName) => (a.kernels[k].rows === "B" ? B : T * B);
  const extra: Partial<Record<KernelName, number[]>> = {};
  for (const k of KERNEL_NAMES) {
    const p = programs[k];
    if ("steps" in p) extra[k] = p.scratch.map((t) => (t.batched ? rowsOf(k) : 1) * rowSize(t, sizes));
  }
  const L = planLayout(a, sizes, B, T, extra);
  const dims = a.signature.dims.map((d) => sizes[d]!);
  const fns = {} as Record<KernelName, KernelFns>;
  for (const k of KERNEL_NAMES) {
    const p = programs[k];
    const js = () => cell.kernels[k](L.rows[k], dims, Float32Array, dev);
    fns[k] = "steps" in p ? new WasmKernelFns(dev, cell, mod, k, p, L, sizes, js) : js();
  }
  return { L, fns };
}

class WasmKernelFns implements KernelFns {
  private readonly frame: Int32Array;
  private readonly frameAt: number;
  private readonly slots: number;
  /** Byte address of each slot at t = 0, and its byte stride per step (the frame's, kept here too). */
  private readonly base: number[] = [];
  private readonly stride: number[] = [];
  private readonly arenaOf: ("mem" | "pmem")[];
  private readonly steps: Step[];
  /** The steps as run one by one: consecutive divided calls of the same division grouped. */
  private readonly groups: Step[];
  /** The work when every step runs row by row (none otherwise): then one row sequence per run. */
  private readonly rowWork?: RowWork;
  private readonly mod: CellModule;
  private at: [number, number] = [-1, -1];
  private js?: KernelFns;
  /** The whole kernel as one row program (when rowWork is set and there are threads). */
  private whole?: Prepared;

  constructor(
    private readonly dev: WasmDevice,
    cell: CompiledCell,
    mod: CellModule,
    private readonly k: KernelName,
    p: WasmKernel,
    private readonly L: Layout,
    sizes: Readonly<Record<string, number>>,
    private readonly jsKernel: () => KernelFns,
  ) {
    const a = cell.artifact;
    const bindings = a.kernels[k].bindings;
    this.arenaOf = [
      ...bindings.map((b) => a.buffers[b.buffer]!.arena),
      ...p.scratch.map(() => "mem" as const),
    ];
    this.slots = this.arenaOf.length;
    const dims = a.signature.dims.map((d) => sizes[d]!);
    // Frames are small and live as long as the runner's plan for this T: slots, dimensions, rows.
    this.frameAt = dev.heap.take(8 * this.slots + 4 * dims.length + 4);
    this.frame = dev.heap.i32(this.frameAt, 2 * this.slots + dims.length + 1);
    this.frame.set([...dims, L.rows[k]], 2 * this.slots);
    const ev = (d: Dim) => evalDim(d, sizes);
    const rows = (r: WasmRows) => (r === "all" ? L.rows[k] : 1);
    this.mod = mod;
    let [elements, macs] = [0, 0];
    this.steps = p.steps.map((s): Step => {
      if (s.kind === "call") {
        // Its count: rows, or for a call divided by columns its columns (it runs over every row itself).
        const n = s.cols ? ev(s.width) : rows(s.rows);
        const work = !(s.split && n > 1) ? 0 : s.cols ? L.rows[k] * n : n * ev(s.width);
        elements += work;
        const fn = mod.exports[s.fn]!;
        const local = (t: number) => {
          dev.kernelCalls++;
          fn(this.frameAt, t, 0, n);
        };
        if (!work) return { run: local };
        // A split call runs as a row program of its own when the kernel is not one row sequence.
        const row: RowStep = {
          call: { core: false, fn: s.fn, args: [0, 0, 0, n], count: 3, shifts: [[2, 1]] },
          write: (t, a) => ((a[0] = this.frameAt), (a[1] = t)),
        };
        const alone: RowWork = { elements: work, macs: 0 };
        let one: Prepared | undefined;
        // Columns go in fours (whole vectors but for the last chunk's tail).
        const align = s.cols ? 4 : 1;
        const run = (t: number) => {
          if (one?.gen !== dev.poolGen) one = this.prepare([row], false);
          if (one.prog) {
            row.write(t, one.prog.args[0]!);
            if (dev.runRows(one.prog, n, alone, align)) return;
          }
          local(t);
        };
        const split: SplitCall = { row, n, align, work, local };
        // A call divided by columns never joins a row sequence (which divides rows).
        return s.cols ? { run, split } : { run, row, split };
      }
      const op = (o: WasmOperand) => ({ slot: o.slot, col: 4 * ev(o.col), ld: ev(o.ld) });
      const [out, left, right] = [op(s.out), op(s.left), op(s.right)];
      const [R, M, K] = [rows(s.rows), ev(s.M), ev(s.K)];
      const form = s.kind === "tn" ? "tn" : s.form;
      const acc = s.kind === "tn" ? 1 : 0;
      const addr = (o: typeof out, t: number) => this.base[o.slot]! + t * this.stride[o.slot]! + o.col;
      const weight = right.slot < bindings.length && a.buffers[bindings[right.slot]!.buffer]!.kind;
      if (form !== "tn" && a.kernels[k].rows === "B" && (weight === "pack" || weight === "param")) {
        // A step's GEMM on a weight: its panels laid out once per pass (weights change only between
        // passes), not at every step.
        const [cols, inner] = form === "nt" ? [M, K] : [K, M];
        const panels = { at: dev.heap.take(packedBytes(DEFAULT_TILING, cols, inner)), epoch: NaN };
        const prepare = (t: number) => {
          if (panels.epoch === dev.epoch) return;
          dev.packAt(form, [panels.at, addr(right, t), right.ld, M, K]);
          panels.epoch = dev.epoch;
        };
        const mmArgs = [0, out.ld, 0, left.ld, panels.at, R, cols, inner, 0];
        const empty = R === 0 || M === 0 || K === 0;
        macs += R * cols * inner;
        const row: RowStep = {
          call: {
            core: true,
            fn: "mm_rows",
            args: [0, out.ld, 0, left.ld, panels.at, R, cols, inner, 0],
            count: 5,
            shifts: [
              [0, 4 * out.ld],
              [2, 4 * left.ld],
            ],
          },
          write: (t, a) => ((a[0] = addr(out, t)), (a[2] = addr(left, t))),
        };
        return {
          prepare,
          run: (t) => {
            if (empty) return;
            prepare(t);
            mmArgs[0] = addr(out, t);
            mmArgs[2] = addr(left, t);
            dev.mmAt(mmArgs);
          },
          row: empty ? undefined : row,
        };
      }
      const args = [0, out.ld, 0, left.ld, 0, right.ld, R, M, K, acc, 0];
      const run = (t: number) => {
        if (R === 0 || M === 0 || K === 0) return;
        args[0] = addr(out, t);
        args[2] = addr(left, t);
        args[4] = addr(right, t);
        dev.gemmAt(form, args);
      };
      const written = out.slot < bindings.length && a.buffers[bindings[out.slot]!.buffer]!.kind;
      // Skippable only when no other step touches that buffer (for `W @ (x + c)` the gradient of c is
      // summed from the one of x, which the GEMM writes in place).
      const others = p.steps.filter((o) => o !== s).flatMap(touched);
      return { run, inputGrad: written === "grad_input" && !others.includes(out.slot) };
    });
    if (L.rows[k] > 1 && this.steps.every((s) => s.row)) this.rowWork = { elements, macs };
    this.groups = [];
    for (let i = 0; i < this.steps.length;) {
      const first = this.steps[i]!.split;
      let j = i + 1;
      const same = (o?: SplitCall) => o && first && o.n === first.n && o.align === first.align;
      while (j < this.steps.length && same(this.steps[j]!.split)) j++;
      this.groups.push(j - i > 1 ? this.group(this.steps.slice(i, j).map((x) => x.split!)) : this.steps[i]!);
      i = j;
    }
  }

  /**
   * Divided calls in a row, of the same division, as one program: each thread runs every call over the
   * same rows (or columns). Safe because such calls are row by row (elementwise, concatenations, slices),
   * or sums down all rows divided by columns, whose inputs are batched values no such sum writes.
   */
  private group(calls: readonly SplitCall[]): Step {
    const { n, align } = calls[0]!;
    const work: RowWork = { elements: calls.reduce((w, c) => w + c.work, 0), macs: 0 };
    let prog: Prepared | undefined;
    return {
      run: (t) => {
        if (prog?.gen !== this.dev.poolGen)
          prog = this.prepare(
            calls.map((c) => c.row),
            false,
          );
        if (prog.prog) {
          calls.forEach((c, k) => c.row.write(t, prog!.prog!.args[k]!));
          if (this.dev.runRows(prog.prog, n, work, align)) return;
        }
        for (const c of calls) c.local(t);
      },
    };
  }

  private place(mem: FloatArray, pmem: FloatArray, offs: Float64Array) {
    if (!this.dev.heap.holds(mem) || !this.dev.heap.holds(pmem))
      throw new CellcError("the wasm kernels need their arenas in the backend's memory");
    this.at = [mem.byteOffset, pmem.byteOffset];
    for (let s = 0; s < this.slots; s++) {
      const arena = this.arenaOf[s] === "pmem" ? pmem.byteOffset : mem.byteOffset;
      this.base[s] = arena + 4 * offs[2 * s]!;
      this.stride[s] = 4 * offs[2 * s + 1]!;
      this.frame[2 * s] = this.base[s]!;
      this.frame[2 * s + 1] = this.stride[s]!;
    }
  }

  /** A row program of these steps for the device's current pool (none with one thread). */
  private prepare(rows: readonly RowStep[], sequence: boolean): Prepared {
    const prog = this.dev.rowProgram(
      this.mod,
      rows.map((r) => r.call),
      sequence,
    );
    return prog ? { prog, gen: this.dev.poolGen } : { gen: this.dev.poolGen };
  }

  /** The whole kernel as one row program on the device's pool, its arguments written for step t. */
  private wholeAt(t: number): DeviceRows | undefined {
    for (const s of this.steps) s.prepare?.(t);
    if (this.whole?.gen !== this.dev.poolGen)
      this.whole = this.prepare(
        this.steps.map((s) => s.row!),
        true,
      );
    const prog = this.whole.prog;
    if (prog) for (let k = 0; k < this.steps.length; k++) this.steps[k]!.row!.write(t, prog.args[k]!);
    return prog;
  }

  run(mem: FloatArray, pmem: FloatArray, offs: Float64Array, t: number, inputGrads = true): void {
    if (offs !== this.L.offs[this.k]) throw new Error("wasm kernel run with another layout's offsets");
    if (mem.byteOffset !== this.at[0] || pmem.byteOffset !== this.at[1]) this.place(mem, pmem, offs);
    if (this.rowWork) {
      const prog = this.wholeAt(t);
      if (prog && this.dev.runRows(prog, this.L.rows[this.k], this.rowWork)) return;
    }
    for (const s of this.groups) if (inputGrads || !s.inputGrad) s.run(t);
  }

  /**
   * Every step from `from` toward `to` as one job of the pool: each thread runs the rows it claims through
   * all the steps (a row program's calls read only the rows they write, and a step's rows only the same
   * rows at the step before). Every argument is linear in t, so a step's are the first step's plus s deltas.
   */
  runSteps(mem: FloatArray, pmem: FloatArray, offs: Float64Array, from: number, to: number): boolean {
    if (!this.rowWork || from === to) return false;
    if (offs !== this.L.offs[this.k]) throw new Error("wasm kernel run with another layout's offsets");
    if (mem.byteOffset !== this.at[0] || pmem.byteOffset !== this.at[1]) this.place(mem, pmem, offs);
    const prog = this.wholeAt(from);
    if (!prog) return false;
    const dir = to > from ? 1 : -1;
    for (let k = 0; k < this.steps.length; k++) {
      const [a, d] = [prog.args[k]!, prog.deltas[k]!];
      d.set(a);
      this.steps[k]!.row!.write(from + dir, d);
      for (let i = 0; i < d.length; i++) d[i]! -= a[i]!;
    }
    const done = this.dev.runSteps(prog, this.L.rows[this.k], Math.abs(to - from), this.rowWork);
    for (const d of prog.deltas) d.fill(0);
    return done;
  }
  // The masks copy a few rows at a step: the JS kernel's, over the same arena.
  premask(mem: FloatArray, pmem: FloatArray, offs: Float64Array, t: number, lens: Int32Array): void {
    (this.js ??= this.jsKernel()).premask(mem, pmem, offs, t, lens);
  }
  postmask(mem: FloatArray, pmem: FloatArray, offs: Float64Array, t: number, lens: Int32Array): void {
    (this.js ??= this.jsKernel()).postmask(mem, pmem, offs, t, lens);
  }
}
