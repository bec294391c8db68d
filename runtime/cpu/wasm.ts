import { fromBase64 } from "../../artifact/wasm.js";
import { DEFAULT_TILING, scratchBytes } from "../../kernels/gemm.js";
import { buildKernelModule } from "../../kernels/library.js";
import type { Artifact } from "../../artifact/artifact.js";
import { KERNEL_NAMES } from "../../artifact/schedule.js";
import type { CompiledCell } from "../cell.js";
import { hostOps, type Backend } from "../backend.js";
import { CellcError, type FloatArray } from "../tensor.js";
import { CpuSequenceRunner, type ArenaLease, type CpuHost } from "./runner.js";
import { hostScan, type ScanLanes } from "../scan.js";
import { Arenas } from "../wasm/arenas.js";
import {
  planWasm,
  type CellModule,
  type DeviceRows,
  type KernelRowCall,
  type RowWork,
  type WasmDevice,
} from "../wasm/executor.js";
import { mm as poolMm, gemm as poolGemmCall, poolGemm, type PoolGemm } from "../wasm/gemm.js";
import { engineTiling, relaxedSimd } from "../wasm/features.js";
import { copyIn, WasmHeap } from "../wasm/heap.js";
import { CONTROL_BYTES, createPool, type Pool, type RowProgram } from "../wasm/pool.js";

/** A row program on the pool, with its calls counted (cell module, GEMM module) and whether a whole kernel. */
interface PoolRows extends DeviceRows {
  readonly prog: RowProgram;
  readonly cells: number;
  readonly cores: number;
  readonly sequence: boolean;
}

type Fn = (...args: number[]) => void;
/** A matrix operand: array, element offset, leading dimension, rows, columns. */
type Operand = [FloatArray, number, number, number, number];

/**
 * The wasm backend's device: one shared WebAssembly memory holding every arena (parameters, packs and the
 * sequence arena of each call), the GEMM module, each cell's generated kernels (compiler/wasm/elementwise.ts)
 * and, with more than one thread, a worker pool that splits every GEMM and every elementwise kernel. The
 * runner (CpuSequenceRunner) keeps its time loop; kernels read and write the arenas in place. GEMM operands
 * outside the memory (a JS kernel's scratch, when a kernel falls back to JS) are staged through it.
 */
export class WasmGemms implements CpuHost, WasmDevice {
  readonly heap = new WasmHeap();
  private readonly module: WebAssembly.Module;
  private readonly arenas = new Arenas(this.heap);
  /** Workers sharing the memory: the kernels are split across them (bit-identical to one thread). */
  private pool?: Pool;
  private poolGemm?: PoolGemm;
  private readonly fns: Readonly<Record<"nt" | "nn" | "tn" | "pack_t" | "pack_n" | "mm_rows" | "scan", Fn>>;
  epoch = 0;
  private readonly cells = new WeakMap<Artifact, CellModule>();
  private readonly loaded = new WeakMap<CellModule, { pool: Pool; prefix: string }>();
  private temp = { at: 0, bytes: 0 };
  /** Changes whenever the pool does (row programs belong to one pool). */
  poolGen = 0;
  /** GEMMs run here so far, and how many of them had operands to stage (for tests and benchmarks). */
  calls = 0;
  staged = 0;
  /** Generated kernel functions run so far, and how many of them were divided across threads. */
  kernelCalls = 0;
  splitCalls = 0;
  /** Kernel steps run as one row sequence on the pool (one job each, or one job for a run of steps). */
  rowSequences = 0;
  /** Runs of a kernel's steps as one job of the pool (no barrier between the steps). */
  steppedRuns = 0;
  /** Elements below which a kernel runs on the calling thread alone (waking the workers costs more). */
  splitMin = 16384;
  /** Multiply-adds below which a GEMM runs on the calling thread alone (a step's GEMM at small sizes). */
  gemmSplitMin = 1 << 18;

  /** Whether the kernels use relaxed SIMD's fused multiply-adds (the GEMM's, and a cell's math). */
  readonly fma: boolean;

  /** `fma`: fused multiply-adds (relaxed SIMD); by default where this engine has them. */
  constructor(opts: { fma?: boolean } = {}) {
    if (opts.fma && !relaxedSimd())
      throw new CellcError("fused multiply-adds need relaxed SIMD, which this WebAssembly engine lacks");
    this.fma = opts.fma ?? relaxedSimd();
    const { bytes } = buildKernelModule({ ...engineTiling(), fma: this.fma });
    this.module = new WebAssembly.Module(bytes);
    const instance = new WebAssembly.Instance(this.module, { env: { memory: this.heap.memory } });
    const e = instance.exports as Record<string, Fn>;
    this.fns = { nt: e.gemm_nt!, nn: e.gemm_nn!, tn: e.gemm_tn!, pack_t: e.pack_t!, pack_n: e.pack_n!, mm_rows: e.mm_rows!, scan: e.scan! }; // prettier-ignore
  }

  /**
   * Threads for the kernels, the caller included (Node: worker_threads; they do not keep the process
   * alive); `chains`: chains of rows per thread in a kernel's run of steps (see wasm/pool.ts).
   */
  async useThreads(threads: number, opts: { chains?: number } = {}): Promise<void> {
    await this.pool?.close();
    this.pool = undefined;
    this.poolGemm = undefined;
    this.poolGen++;
    if (threads <= 1) return;
    // Node's worker_threads, or Web Workers in a page (or a worker) that may share memory.
    const node = typeof process !== "undefined" && process.versions?.node !== undefined;
    const platform = node
      ? (await import("../wasm/node.js")).nodePlatform
      : (await import("../wasm/web.js")).webPlatform;
    const control = this.heap.take(CONTROL_BYTES);
    this.pool = await createPool({
      module: this.module,
      memory: this.heap.memory,
      threads,
      control,
      platform,
      ...opts,
    });
    this.poolGemm = poolGemm(this.pool, DEFAULT_TILING);
    this.poolGen++;
  }

  get threads(): number {
    return this.pool?.threads ?? 1;
  }
  /** Arenas copied out of the memory and back so far (see wasm/arenas.ts). */
  get spills(): number {
    return this.arenas.spills;
  }
  /** What a new sequence arena is filled with: nothing by default (see wasm/arenas.ts); tests use NaN. */
  get arenaFill(): number | undefined {
    return this.arenas.fill;
  }
  set arenaFill(v: number | undefined) {
    this.arenas.fill = v;
  }

  copyIn(dst: FloatArray, at: number, src: FloatArray): void {
    if (dst instanceof Float32Array) copyIn(dst, at, src);
    else dst.set(src, at);
  }

  /** A float array in the memory, kept for good (a runner's parameter arena). */
  alloc(n: number): Float32Array {
    return this.heap.f32(this.heap.take(4 * n), n);
  }
  arena(owner: object, n: number): ArenaLease {
    this.epoch++;
    const lease = this.arenas.lease(owner, n);
    return {
      take: () => {
        this.epoch++;
        return lease.take();
      },
      drop: () => lease.drop(),
    };
  }
  plan(cell: CompiledCell, sizes: Readonly<Record<string, number>>, B: number, T: number) {
    const mod = this.cellModule(cell.artifact);
    if (mod) return planWasm(this, cell, mod, sizes, B, T);
    return undefined;
  }

  /**
   * The artifact's kernel module, compiled once (its relaxed-SIMD build where this device uses fused
   * multiply-adds); none when the artifact has no wasm target.
   */
  private cellModule(a: Artifact): CellModule | undefined {
    if (!a.wasm) return undefined;
    let m = this.cells.get(a);
    if (!m) {
      const module = checkedModule(a, this.fma);
      const inst = new WebAssembly.Instance(module, { env: { memory: this.heap.memory } });
      this.cells.set(a, (m = { module, exports: inst.exports as Record<string, Fn> }));
    }
    return m;
  }

  rowProgram(mod: CellModule, calls: readonly KernelRowCall[], sequence: boolean): PoolRows | undefined {
    const pool = this.pool;
    if (!pool) return undefined;
    const prefix = this.prefix(pool, mod);
    const prog = pool.program(calls.map((c) => (c.core ? c : { ...c, fn: prefix + c.fn })));
    const cells = calls.filter((c) => !c.core).length;
    return { args: prog.args, deltas: prog.deltas, prog, cells, cores: calls.length - cells, sequence };
  }

  /** Whether a program's work (per step) is worth a job of the pool. */
  private big(work: RowWork): boolean {
    return (
      (work.elements > 0 && work.elements >= this.splitMin) ||
      (work.macs > 0 && work.macs >= this.gemmSplitMin)
    );
  }

  runRows(rows: PoolRows, total: number, work: RowWork, align = 1): boolean {
    const pool = this.pool;
    if (!pool || rows.prog.pool !== pool || !this.big(work)) return false;
    // A whole kernel's rows go in micro-tile multiples (its GEMMs'); divided calls' in `align`.
    pool.runProgram(rows.prog, total, rows.sequence ? DEFAULT_TILING.mr : align);
    this.kernelCalls += rows.cells;
    this.calls += rows.cores;
    if (rows.sequence) this.rowSequences++;
    else this.splitCalls++;
    return true;
  }

  runSteps(rows: PoolRows, total: number, steps: number, work: RowWork): boolean {
    const pool = this.pool;
    if (!pool || rows.prog.pool !== pool || !rows.sequence || !this.big(work)) return false;
    if (rows.prog.chunks.length !== 1) return false; // too many calls for the control block at once
    pool.runSteps(rows.prog, total, DEFAULT_TILING.mr, steps);
    this.kernelCalls += rows.cells * steps;
    this.calls += rows.cores * steps;
    this.rowSequences += steps;
    this.steppedRuns++;
    return true;
  }

  /** The prefix of a cell module's functions on the pool (loaded there the first time). */
  private prefix(pool: Pool, mod: CellModule): string {
    let l = this.loaded.get(mod);
    if (!l || l.pool !== pool) this.loaded.set(mod, (l = { pool, prefix: pool.load(mod.module) }));
    return l.prefix;
  }

  /** A scratch block of at least `bytes`, reused from call to call. */
  private scratch(bytes: number): number {
    if (bytes > this.temp.bytes) {
      if (this.temp.bytes) this.heap.give(this.temp.at, this.temp.bytes);
      const size = Math.max(bytes, 2 * this.temp.bytes);
      this.temp = { at: this.heap.take(size), bytes: size };
    }
    return this.temp.at;
  }

  /**
   * The scans of a call in place in the arena (kernels/scan.ts): every lane's recurrence in order over time,
   * the lanes divided across the threads. With sequence lengths, each batch row's valid steps are scanned
   * and the rest filled as the step loop's masks leave them (runtime/scan.ts, hostScan).
   */
  scan(
    mem: FloatArray,
    lanes: readonly ScanLanes[],
    T: number,
    B: number,
    direction: "forward" | "backward",
    lens?: Int32Array,
  ): void {
    if (!this.heap.holds(mem)) return hostScan(mem, lanes, T, B, direction, lens);
    const at = (offset: number) => mem.byteOffset + 4 * offset;
    const run = (args: number[]) => {
      this.kernelCalls++;
      if (this.pool && args[4]! * args[5]! >= this.splitMin) {
        this.splitCalls++;
        this.pool.run("scan", args, {
          count: 5,
          align: 4,
          shifts: [
            [0, 4],
            [1, 4],
            [2, 4],
          ],
        });
      } else this.fns.scan.apply(null, args);
    };
    for (const l of lanes) {
      const n = B * l.row;
      const step = 4 * n;
      if (!lens) {
        if (direction === "forward") run([at(l.state) + step, at(l.state), at(l.coef), step, T, n]);
        else
          run([at(l.grad) + (T - 1) * step, at(l.grad) + T * step, at(l.coef) + (T - 1) * step, -step, T, n]);
        continue;
      }
      for (let b = 0; b < B; b++) {
        const [len, o, w] = [lens[b]!, 4 * b * l.row, l.row];
        if (direction === "forward") {
          run([at(l.state) + step + o, at(l.state) + o, at(l.coef) + o, step, len, w]);
          const last = l.state + len * n + b * w;
          for (let t = len + 1; t <= T; t++) mem.copyWithin(l.state + t * n + b * w, last, last + w);
        } else {
          const g = l.grad + b * w;
          if (len < T) {
            mem.copyWithin(g + len * n, g + T * n, g + T * n + w);
            for (let t = len + 1; t <= T; t++) mem.fill(0, g + t * n, g + t * n + w);
          }
          run([at(l.grad) + (len - 1) * step + o, at(l.grad) + len * step + o, at(l.coef) + (len - 1) * step + o, -step, len, w]); // prettier-ignore
        }
      }
    }
  }

  packAt(form: "nt" | "nn", [dst, src, ld, M, K]: readonly number[]): void {
    if (form === "nt") this.fns.pack_t(dst!, src!, ld!, M!, K!);
    else this.fns.pack_n(dst!, src!, ld!, M!, K!);
  }

  mmAt(args: readonly number[]): void {
    this.calls++;
    if (this.poolGemm && args[5]! * args[6]! * args[7]! >= this.gemmSplitMin)
      poolMm(this.poolGemm, "rows", args);
    else this.fns.mm_rows.apply(null, args as number[]);
  }

  gemmAt(form: "nt" | "nn" | "tn", args: number[]): void {
    const [R, M, K] = [args[6]!, args[7]!, args[8]!];
    args[10] = this.scratch(scratchBytes(DEFAULT_TILING, form, R, M, K));
    this.calls++;
    if (this.poolGemm && R * M * K >= this.gemmSplitMin) poolGemmCall(this.poolGemm, form, args);
    else this.fns[form].apply(null, args);
  }

  /**
   * One GEMM form on (array, offset, ld, rows, cols) operands: left, right, then the output. Operands
   * outside the memory are staged in (the output only when accumulating) and the output copied back.
   */
  private run(
    form: "nt" | "nn" | "tn",
    ops: [Operand, Operand, Operand],
    dims: [number, number, number],
    acc: boolean,
  ) {
    const out = ops[2];
    if (out[3] === 0 || out[4] === 0) return;
    const outside = ops.map(([x]) => !this.heap.holds(x));
    const bytes = ops.map(([, , , r, c], i) => (outside[i] ? Math.ceil((r * c) / 16) * 64 : 0));
    let at = 0;
    const where = ops.map(([x, off, ld, rows, cols], i) => {
      if (!outside[i]) return { ptr: x.byteOffset + off * 4, ld };
      return { ptr: (at += bytes[i]!) - bytes[i]!, ld: cols, rows };
    });
    if (at > 0) {
      this.staged++;
      const block = this.heap.take(at);
      const h = this.heap.floats;
      where.forEach((w, i) => (w.ptr += outside[i] ? block : 0));
      ops.forEach(([x, off, ld, rows, cols], i) => {
        if (!outside[i] || (i === 2 && !acc)) return;
        for (let r = 0; r < rows; r++)
          h.set(x.subarray(off + r * ld, off + r * ld + cols), where[i]!.ptr / 4 + r * cols);
      });
      this.gemmAt(form, [where[2]!.ptr, where[2]!.ld, where[0]!.ptr, where[0]!.ld, where[1]!.ptr, where[1]!.ld, ...dims, acc ? 1 : 0]); // prettier-ignore
      if (outside[2]) {
        const [x, off, ld, rows, cols] = out;
        const h2 = this.heap.floats;
        for (let r = 0; r < rows; r++)
          x.set(h2.subarray(where[2]!.ptr / 4 + r * cols, where[2]!.ptr / 4 + (r + 1) * cols), off + r * ld);
      }
      this.heap.give(block, at);
      return;
    }
    this.gemmAt(form, [where[2]!.ptr, where[2]!.ld, where[0]!.ptr, where[0]!.ld, where[1]!.ptr, where[1]!.ld, ...dims, acc ? 1 : 0]); // prettier-ignore
  }

  // prettier-ignore
  nt(C: FloatArray, co: number, ldc: number, A: FloatArray, ao: number, lda: number, P: FloatArray, po: number, ldp: number, R: number, M: number, K: number, acc = 0): void {
    this.run("nt", [[A, ao, lda, R, K], [P, po, ldp, M, K], [C, co, ldc, R, M]], [R, M, K], acc === 1);
  }
  // prettier-ignore
  nn(C: FloatArray, co: number, ldc: number, G: FloatArray, go: number, ldg: number, P: FloatArray, po: number, ldp: number, R: number, M: number, K: number): void {
    this.run("nn", [[G, go, ldg, R, M], [P, po, ldp, M, K], [C, co, ldc, R, K]], [R, M, K], false);
  }
  // prettier-ignore
  tn(D: FloatArray, dof: number, ldd: number, G: FloatArray, go: number, ldg: number, X: FloatArray, xo: number, ldx: number, R: number, M: number, K: number): void {
    this.run("tn", [[G, go, ldg, R, M], [X, xo, ldx, R, K], [D, dof, ldd, M, K]], [R, M, K], true);
  }
}

/**
 * The CPU backend in WebAssembly SIMD (`--backend wasm`): float32 only (`--f64` runs on the JS backend).
 * The time loop and the masks are the JS backend's; the GEMMs and the fused kernels are WebAssembly, in
 * place in one memory. One thread; see createThreadedWasmBackend for more.
 */
export function createWasmBackend(): Backend & { readonly gemms: WasmGemms } {
  if (typeof WebAssembly === "undefined" || typeof SharedArrayBuffer === "undefined")
    throw new CellcError("the wasm backend needs WebAssembly with shared memory here");
  const gemms = new WasmGemms();
  return {
    name: "wasm",
    async: false,
    gemms,
    runner: (cell, sizes, B, dtype) => {
      if (dtype !== "f32")
        throw new CellcError("the wasm backend computes in float32: use the js backend for f64");
      return new CpuSequenceRunner(cell, sizes, B, dtype, gemms);
    },
    ops: hostOps,
  };
}

/** The wasm backend with its kernels split across `threads` threads (Node: worker_threads over shared memory). */
export async function createThreadedWasmBackend(
  threads: number,
): Promise<Backend & { readonly gemms: WasmGemms }> {
  const b = createWasmBackend();
  await b.gemms.useThreads(threads);
  return b;
}

/**
 * An artifact's wasm module, validated before it is compiled: well-formed, importing only the shared
 * memory (`env.memory`) and exporting a function for every call the kernels' steps make.
 */
/** The cell's wasm module (its relaxed-SIMD form where `fma` and the artifact has one), checked. */
function checkedModule(a: Artifact, fma: boolean): WebAssembly.Module {
  const refuse = (why: string): never => {
    throw new CellcError(`the wasm kernels of '${a.signature.name}' are refused: ${why}`);
  };
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = fromBase64(fma && a.wasm!.relaxed !== undefined ? a.wasm!.relaxed : a.wasm!.module);
  } catch {
    return refuse("the module is not base64");
  }
  if (!WebAssembly.validate(bytes)) refuse("the module is not valid WebAssembly");
  const module = new WebAssembly.Module(bytes);
  for (const i of WebAssembly.Module.imports(module))
    if (!(i.module === "env" && i.name === "memory" && i.kind === "memory"))
      refuse(
        `the module imports ${i.kind} '${i.module}.${i.name}'; only the memory env.memory may be imported`,
      );
  const fns = new Set(
    WebAssembly.Module.exports(module)
      .filter((e) => e.kind === "function")
      .map((e) => e.name),
  );
  for (const k of KERNEL_NAMES) {
    const p = a.wasm!.kernels[k];
    if ("steps" in p)
      for (const s of p.steps)
        if (s.kind === "call" && !fns.has(s.fn))
          refuse(`the ${k} kernel calls '${s.fn}', which the module does not export`);
  }
  return module;
}
