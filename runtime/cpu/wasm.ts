import { DEFAULT_TILING, scratchBytes } from "../../compiler/wasm/gemm.js";
import { buildKernelModule } from "../../compiler/wasm/kernels.js";
import type { Gemms } from "../cell.js";
import { hostOps, type Backend } from "../model.js";
import { CellcError, type FloatArray } from "../tensor.js";
import { CpuSequenceRunner } from "./runner.js";
import { gemm as poolGemm } from "../wasm/gemm.js";
import { CONTROL_BYTES, type Pool } from "../wasm/pool.js";

type Fn = (...args: number[]) => void;
/** A matrix operand: array, element offset, leading dimension, rows, columns. */
type Operand = [FloatArray, number, number, number, number];
interface Placed {
  readonly ptr: number;
  readonly ld: number;
  readonly staged: boolean;
}
const align = (bytes: number) => Math.ceil(bytes / 16) * 16;

/**
 * The GEMMs of the CPU kernels in WebAssembly SIMD (compiler/wasm: packed panels, a register-blocked
 * micro-kernel), over one WebAssembly memory. The parameter arenas are allocated in that memory and used in
 * place; other operands (rows of the sequence arena) are staged through it, which costs a pass over them
 * against a pass over the whole product. Elementwise work stays in the generated JS. One thread for now.
 */
export class WasmGemms implements Gemms {
  private readonly memory: WebAssembly.Memory;
  private readonly module: WebAssembly.Module;
  /** Workers sharing the memory: the GEMMs are split across them (bit-identical to one thread). */
  private pool?: Pool;
  private readonly fns: { nt: Fn; nn: Fn; tn: Fn };
  /** Every SharedArrayBuffer the memory has had: a growth gives a new one over the same bytes. */
  private readonly buffers = new Set<ArrayBufferLike>();
  private heap: Float32Array;
  /** GEMMs run here so far (for tests and benchmarks). */
  calls = 0;
  private top = 16; // persistent allocations end here; staging starts here
  private staged = 16; // where staging has reached

  constructor() {
    const { bytes } = buildKernelModule(DEFAULT_TILING);
    this.memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
    this.module = new WebAssembly.Module(bytes);
    const instance = new WebAssembly.Instance(this.module, { env: { memory: this.memory } });
    const e = instance.exports as Record<string, Fn>;
    this.fns = { nt: e.gemm_nt!, nn: e.gemm_nn!, tn: e.gemm_tn! };
    this.heap = new Float32Array(this.memory.buffer);
    this.buffers.add(this.memory.buffer);
  }

  private ensure(bytes: number) {
    const have = this.memory.buffer.byteLength;
    if (bytes <= have) return;
    if (bytes > 65536 * 65536)
      throw new CellcError(`the WebAssembly backend needs ${bytes} bytes, above 4 GiB`);
    const want = Math.min(65536, Math.ceil(Math.max(bytes, have * 1.5) / 65536));
    this.memory.grow(want - have / 65536);
    this.buffers.add(this.memory.buffer);
    this.heap = new Float32Array(this.memory.buffer);
  }

  /** Threads for the GEMMs, the caller included (Node: worker_threads; they do not keep the process alive). */
  async useThreads(threads: number): Promise<void> {
    await this.pool?.close();
    this.pool = undefined;
    if (threads <= 1) return;
    const { createNodePool } = await import("../wasm/node.js");
    const control = this.alloc(CONTROL_BYTES / 4).byteOffset;
    this.pool = await createNodePool({ module: this.module, memory: this.memory, threads, control });
  }

  get threads(): number {
    return this.pool?.threads ?? 1;
  }

  /** A float array in the module's memory, kept for good (a runner's parameter arena). */
  alloc(n: number): Float32Array {
    const at = Math.max(this.top, this.staged);
    this.ensure(at + align(n * 4));
    this.top = this.staged = at + align(n * 4);
    return new Float32Array(this.memory.buffer, at, n);
  }

  private inHeap(x: FloatArray) {
    return this.buffers.has(x.buffer);
  }

  /**
   * Byte addresses and leading dimensions of the operands (rows x cols each, from (array, offset, ld)),
   * staging those outside the memory; `out` (the last) is copied in only when accumulating.
   */
  private place(ops: readonly Operand[], scratch: number, accOut: boolean) {
    let at = this.top;
    const where = ops.map(([x, off, ld, rows, cols]): Placed => {
      if (this.inHeap(x)) return { ptr: x.byteOffset + off * 4, ld, staged: false };
      const ptr = at;
      at += align(rows * cols * 4);
      return { ptr, ld: cols, staged: true };
    });
    const scratchAt = at;
    this.ensure(at + align(scratch));
    this.staged = Math.max(this.staged, at + align(scratch));
    const h = this.heap;
    ops.forEach(([x, off, ld, rows, cols], i) => {
      const w = where[i]!;
      if (!w.staged || (i === ops.length - 1 && !accOut)) return;
      const base = w.ptr / 4;
      for (let r = 0; r < rows; r++) {
        const s = off + r * ld;
        const d = base + r * cols;
        for (let j = 0; j < cols; j++) h[d + j] = x[s + j]!;
      }
    });
    return { where, scratchAt };
  }

  private copyOut(x: FloatArray, off: number, ld: number, rows: number, cols: number, ptr: number) {
    const h = this.heap;
    const base = ptr / 4;
    for (let r = 0; r < rows; r++) {
      const d = off + r * ld;
      const s = base + r * cols;
      for (let j = 0; j < cols; j++) x[d + j] = h[s + j]!;
    }
  }

  /**
   * One GEMM form on (array, offset, ld, rows, cols) operands: left, right, then the output. The output
   * is staged in only when the form accumulates into it.
   */
  private run(
    form: "nt" | "nn" | "tn",
    ops: [Operand, Operand, Operand],
    dims: [number, number, number],
    acc: boolean,
  ) {
    const [R, M, K] = dims;
    const out = ops[2];
    if (out[3] === 0 || out[4] === 0) return;
    const { where, scratchAt } = this.place(ops, scratchBytes(DEFAULT_TILING, form, R, M, K), acc);
    const [l, r, o] = where as [Placed, Placed, Placed];
    this.calls++;
    const args = [o.ptr, o.ld, l.ptr, l.ld, r.ptr, r.ld, R, M, K, acc ? 1 : 0, scratchAt];
    if (this.pool) poolGemm(this.pool, DEFAULT_TILING, form, args);
    else this.fns[form](...args);
    if (o.staged) this.copyOut(out[0], out[1], out[2], out[3], out[4], o.ptr);
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
 * The CPU backend with its GEMMs in WebAssembly SIMD (`--backend wasm`): float32 only (`--f64` runs on the
 * JS backend). The time loop, masks and elementwise kernels are the JS backend's. One thread; see
 * createThreadedWasmBackend for more.
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

/** The wasm backend with its GEMMs split across `threads` threads (Node: worker_threads over shared memory). */
export async function createThreadedWasmBackend(
  threads: number,
): Promise<Backend & { readonly gemms: WasmGemms }> {
  const b = createWasmBackend();
  await b.gemms.useThreads(threads);
  return b;
}
