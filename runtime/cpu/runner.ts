import { KERNEL_NAMES, type KernelName } from "../../artifact/schedule.js";
import type { CompiledCell, Gemms, KernelFns } from "../cell.js";
import { bufferIndex, packCopies, planLayout, runCopies, type BlockCopy, type Layout } from "../layout.js";
import { RowSizes, type DirectionRunner, type SequenceGrads, type SequenceResult } from "../sequence.js";
import { floatArray, type FloatArray } from "../tensor.js";
import { hostScan, scanLanes, type ScanLanes } from "../scan.js";
import { walkBackward, walkForward, walkPlan, type KernelExecutor, type WalkPlan } from "../walk.js";

interface CpuTape {
  readonly T: number;
  readonly mem: FloatArray;
  readonly lens?: Int32Array;
  readonly plan: CallPlan;
  readonly lease?: ArenaLease;
}

/**
 * What a backend other than plain JS gives a runner (WebAssembly: wasm.ts): its GEMMs, where the arenas
 * live, and optionally its own kernels over the layout it plans (the JS kernels by default).
 */
export interface CpuHost extends Gemms {
  /** The parameter arena, kept by the runner. */
  alloc(n: number): Float32Array;
  /** Its own layout and kernels for T steps, or undefined for the JS kernels. */
  plan?(cell: CompiledCell, sizes: Readonly<Record<string, number>>, B: number, T: number): { L: Layout; fns: Record<KernelName, KernelFns> } | undefined; // prettier-ignore
  /** The sequence arena of one call (not zeroed: the schedule writes before it reads), for `owner`'s runs. */
  arena?(owner: object, n: number): ArenaLease;
  /** dst[at, ...) = src into its arenas, faster than TypedArray.set where it can be (wasm: shared memory). */
  copyIn?(dst: FloatArray, at: number, src: FloatArray): void;
  /** Its own scan over the arena (threads), or undefined to take the host's (runtime/scan.ts). */
  scan?(mem: FloatArray, lanes: readonly ScanLanes[], T: number, B: number, direction: "forward" | "backward", lens?: Int32Array): void; // prettier-ignore
}
/** An arena: `take()` gives it (the backward pass takes it again); `drop()` when the call keeps no tape. */
export interface ArenaLease {
  take(): FloatArray;
  drop(): void;
}

/** Everything planned once per sequence length: the layout, the kernels instantiated for it, the pack copies. */
interface CallPlan {
  readonly L: Layout;
  readonly fns: Record<KernelName, KernelFns>;
  readonly pack: readonly BlockCopy[];
  readonly unpack: readonly BlockCopy[];
  readonly scans: readonly ScanLanes[];
  readonly walk: WalkPlan;
}

/**
 * Runs one direction of one layer over a whole sequence on the CPU: an executor of the compiled schedule
 * with the generated JS kernels. Buffers are planned once per (sizes, B, T); the time loop (runtime/walk.ts)
 * calls kernels with numbers only, so nothing is allocated or looked up per step.
 */
export class CpuSequenceRunner extends RowSizes implements DirectionRunner {
  private readonly plans = new Map<number, CallPlan>();
  private readonly pmem = new Map<number, FloatArray>();

  constructor(
    cell: CompiledCell,
    sizes: Readonly<Record<string, number>>,
    readonly B: number,
    readonly dtype: "f32" | "f64",
    /** Other GEMMs than the kernels' own JS ones (WebAssembly: wasm.ts), with where their arenas live. */
    private readonly gemms?: CpuHost,
  ) {
    super(cell, sizes);
  }

  private get a() {
    return this.cell.artifact;
  }

  private plan(T: number): CallPlan {
    let p = this.plans.get(T);
    if (!p) {
      const own = this.gemms?.plan?.(this.cell, this.sizes, this.B, T);
      const L = own?.L ?? planLayout(this.a, this.sizes, this.B, T);
      const dims = this.a.signature.dims.map((d) => this.sizes[d]!);
      const F = this.dtype === "f32" ? Float32Array : Float64Array;
      const fns = own?.fns ?? ({} as Record<KernelName, KernelFns>);
      if (!own) for (const k of KERNEL_NAMES) fns[k] = this.cell.kernels[k](L.rows[k], dims, F, this.gemms);
      p = {
        L,
        fns,
        pack: packCopies(this.a, L, this.sizes, false),
        unpack: packCopies(this.a, L, this.sizes, true),
        scans: scanLanes(this.a, L, this.sizes),
        walk: walkPlan(this.a),
      };
      this.plans.set(T, p);
    }
    return p;
  }

  private executor(
    p: CallPlan,
    mem: FloatArray,
    pmem: FloatArray,
    lens?: Int32Array,
    inputGrads = true,
  ): KernelExecutor {
    const host = this.gemms;
    const scan: typeof hostScan = host?.scan ? (...args) => host.scan!(...args) : hostScan;
    return {
      run: (k, t) => p.fns[k].run(mem, pmem, p.L.offs[k], t, inputGrads),
      runSteps: (k, from, to) => p.fns[k].runSteps?.(mem, pmem, p.L.offs[k], from, to) ?? false,
      mask: (k, which, t) => p.fns[k][which](mem, pmem, p.L.offs[k], t, lens!),
      scan: (direction) => scan(mem, p.scans, p.L.T, this.B, direction, lens),
    };
  }

  /** dst[at, ...) = src: the host's copy into its arenas where it has one. */
  private put(dst: FloatArray, at: number, src: FloatArray): void {
    if (this.gemms?.copyIn) this.gemms.copyIn(dst, at, src);
    else dst.set(src, at);
  }

  private at(L: Layout, kind: Parameters<typeof bufferIndex>[1], i: number) {
    const b = bufferIndex(this.a, kind, i);
    return { base: L.base[b]!, size: L.size[b]! };
  }

  forward(
    inputs: readonly FloatArray[],
    T: number,
    inits: readonly FloatArray[],
    params: readonly FloatArray[],
    lens: Int32Array | undefined,
    keep: boolean,
    _paramVersion?: number,
    into?: readonly (FloatArray | undefined)[],
  ): SequenceResult {
    const p = this.plan(T);
    const L = p.L;
    const lease = this.gemms?.arena?.(this, L.memSize);
    const mem = lease?.take() ?? floatArray(this.dtype, L.memSize);
    // The parameter arena is the runner's: parameters copied in and packed at every call (a pass over the
    // weights, against T*B passes of compute).
    let pmem = this.pmem.get(L.pmemSize);
    if (!pmem)
      this.pmem.set(
        L.pmemSize,
        (pmem = this.gemms ? this.gemms.alloc(L.pmemSize) : floatArray(this.dtype, L.pmemSize)),
      );
    const sig = this.a.signature;
    inputs.forEach((x, i) => this.put(mem, this.at(L, "input", i).base, x));
    inits.forEach((s, i) => this.put(mem, this.at(L, "state", i).base, s));
    params.forEach((w, i) => this.put(pmem, this.at(L, "param", i).base, w));
    runCopies(pmem, p.pack, false);
    walkForward(this.executor(p, mem, pmem, lens), p.walk, T, !!lens);
    const B = this.B;
    const outputs = sig.outputs.map((_, i) => {
      const o = this.at(L, "output", i);
      return copyOut(mem, o.base, o.size, into?.[i]);
    });
    const finals = sig.states.map((_, i) => {
      const s = this.at(L, "state", i);
      const n = B * this.stateRow(i);
      return mem.slice(s.base + T * n, s.base + (T + 1) * n);
    });
    const tape: CpuTape | undefined = keep ? { T, mem, lens, plan: p, lease } : undefined;
    if (!keep) lease?.drop();
    return { outputs, finals, tape };
  }

  backward(
    tapeIn: unknown,
    params: readonly FloatArray[],
    dOutputs: readonly (FloatArray | undefined)[],
    dFinals: readonly (FloatArray | undefined)[],
    _paramVersion?: number,
    stateSteps = false,
    inputGrads = true,
    into?: readonly (FloatArray | undefined)[],
  ): SequenceGrads {
    const { T, lens, plan: p, lease, mem: kept } = tapeIn as CpuTape;
    const mem = lease?.take() ?? kept;
    const L = p.L;
    const pmem = this.pmem.get(L.pmemSize)!;
    const sig = this.a.signature;
    // The parameters again (another call may have used the arena since), gradients cleared.
    params.forEach((w, i) => this.put(pmem, this.at(L, "param", i).base, w));
    runCopies(pmem, p.pack, false);
    this.a.buffers.forEach((b, i) => {
      if (b.kind === "grad_param" || b.kind === "grad_pack") pmem.fill(0, L.base[i], L.base[i]! + L.size[i]!);
    });
    sig.outputs.forEach((_, i) => {
      const o = this.at(L, "grad_output", i);
      const d = dOutputs[i];
      if (d) this.put(mem, o.base, d);
      else mem.fill(0, o.base, o.base + o.size);
    });
    const B = this.B;
    sig.states.forEach((_, i) => {
      const s = this.at(L, "grad_state", i);
      const n = B * this.stateRow(i);
      const d = dFinals[i];
      if (d) this.put(mem, s.base + T * n, d);
      else mem.fill(0, s.base + T * n, s.base + (T + 1) * n);
    });
    walkBackward(this.executor(p, mem, pmem, lens, inputGrads), p.walk, T, !!lens);
    runCopies(pmem, p.unpack, true);
    const inputs = (inputGrads ? sig.inputs : []).map((_, i) => {
      const g = this.at(L, "grad_input", i);
      return T === 0 ? floatArray(this.dtype, 0) : copyOut(mem, g.base, g.size, into?.[i]);
    });
    const inits = sig.states.map((_, i) => {
      const g = this.at(L, "grad_state", i);
      return mem.slice(g.base, g.base + B * this.stateRow(i));
    });
    const grads = sig.params.map((_, i) => {
      const g = this.at(L, "grad_param", i);
      return pmem.slice(g.base, g.base + g.size);
    });
    if (!stateSteps) return { inputs, inits, params: grads };
    return {
      inputs,
      inits,
      params: grads,
      stateSteps: sig.states.map((_, i) => this.stepGrads(L, mem, T, i)),
    };
  }

  /**
   * The gradient of state i after each step t, [T, B, ...]. The backward loop leaves it in the state's
   * gradient buffer at t + 1 (what the steps after t, or the final state, take from it; 0 past a row's
   * length); an output that is this state's next value adds its own gradient at t.
   */
  private stepGrads(L: Layout, mem: FloatArray, T: number, i: number): FloatArray {
    const g = this.at(L, "grad_state", i);
    const n = this.B * this.stateRow(i);
    const out = mem.slice(g.base + n, g.base + (T + 1) * n);
    this.a.signature.outputs.forEach((o, k) => {
      if (o.state !== i) return;
      // Masked like the loop read it: 0 past each row's length.
      const d = this.at(L, "grad_output", k).base;
      for (let j = 0; j < out.length; j++) out[j]! += mem[d + j]!;
    });
    return out;
  }
}

/** mem[base, base + n) into `into` when it has that length (and the same element type), else a new array. */
function copyOut(mem: FloatArray, base: number, n: number, into: FloatArray | undefined): FloatArray {
  if (!into || into.length !== n || into.constructor !== mem.constructor) return mem.slice(base, base + n);
  into.set(mem.subarray(base, base + n));
  return into;
}
