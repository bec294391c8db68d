// Allocation in the wasm backend's one shared WebAssembly.Memory: blocks kept for good (parameter arenas,
// frames, the pool's control block) and blocks taken and given back (a call's sequence arena, GEMM scratch).
// The memory only grows; a growth gives a new SharedArrayBuffer over the same bytes, so views made earlier
// stay valid. (V8 may also hand out a new buffer object without a growth of ours once workers share the
// memory, so a view is known to be in the memory by being one the heap made, not by its buffer.)
import { CellcError } from "../tensor.js";

const ALIGN = 64; // a cache line: rows of an arena start aligned for the SIMD loads

/** Node's Buffer, where there is one: its copy is a memmove. */
interface ByteCopier {
  from(buffer: ArrayBufferLike, byteOffset: number, length: number): { copy(target: unknown): number };
}
const nodeBuffer = (globalThis as { Buffer?: ByteCopier }).Buffer;
/** Shorter copies (a small cell's parameters) keep TypedArray.set: a cutoff chosen, not tuned. */
const MEMMOVE_MIN = 4096;

/**
 * dst[at, at + src.length) = src, for a float view `dst` (of the shared memory, where it matters). V8's TypedArray.set into a
 * SharedArrayBuffer is slower than a memmove: 6 ms for 33 MB here, against 2 ms for Node's Buffer copy;
 * elsewhere, and for arrays of different types, TypedArray.set.
 */
export function copyIn(dst: Float32Array, at: number, src: ArrayLike<number>): void {
  if (!nodeBuffer || !(src instanceof Float32Array) || src.length < MEMMOVE_MIN) {
    dst.set(src, at);
    return;
  }
  if (at < 0 || at + src.length > dst.length) throw new RangeError("copyIn: the source does not fit");
  const bytes = src.byteLength;
  nodeBuffer
    .from(src.buffer, src.byteOffset, bytes)
    .copy(nodeBuffer.from(dst.buffer, dst.byteOffset + 4 * at, bytes));
}

export class WasmHeap {
  readonly memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
  /** The float views made here (arenas): what `holds` recognises. */
  private readonly views = new WeakSet<ArrayBufferView>();
  private top = ALIGN;
  /** Blocks given back, by address: [address, bytes]. */
  private readonly free: [number, number][] = [];

  private ensure(end: number) {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    if (end > 65536 * 65536)
      throw new CellcError(`the WebAssembly backend needs ${end} bytes of memory, above 4 GiB`);
    const want = Math.min(65536, Math.ceil(Math.max(end, have * 1.5) / 65536));
    this.memory.grow(want - have / 65536);
  }

  /** A block of at least `bytes`, from those given back (the smallest that fits) or past the top. */
  take(bytes: number): number {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    let best = -1;
    this.free.forEach(([, n], i) => {
      if (n >= size && (best < 0 || n < this.free[best]![1])) best = i;
    });
    if (best >= 0) {
      const [at, n] = this.free[best]!;
      if (n - size >= ALIGN) this.free[best] = [at + size, n - size];
      else this.free.splice(best, 1);
      return at;
    }
    this.ensure(this.top + size);
    this.top += size;
    return this.top - size;
  }

  /** Gives a block back (its address and the size it was taken with); neighbours are merged. */
  give(at: number, bytes: number): void {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    this.free.push([at, size]);
    this.free.sort((a, b) => a[0] - b[0]);
    for (let i = this.free.length - 1; i > 0; i--) {
      const [pa, pn] = this.free[i - 1]!;
      const [a, n] = this.free[i]!;
      if (pa + pn === a) {
        this.free[i - 1] = [pa, pn + n];
        this.free.splice(i, 1);
      }
    }
    const last = this.free[this.free.length - 1];
    if (last && last[0] + last[1] === this.top) {
      this.top = last[0];
      this.free.pop();
    }
  }

  /** A float view of n elements at byte address `at` (recognised by `holds`). */
  f32(at: number, n: number): Float32Array {
    const v = new Float32Array(this.memory.buffer, at, n);
    this.views.add(v);
    return v;
  }
  i32(at: number, n: number): Int32Array {
    return new Int32Array(this.memory.buffer, at, n);
  }
  /** The whole memory as floats (current size). */
  get floats(): Float32Array {
    return new Float32Array(this.memory.buffer);
  }

  /** Whether x is a view made by `f32` (so its byteOffset is its address in the memory). */
  holds(x: ArrayBufferView): boolean {
    return this.views.has(x);
  }

  /** Bytes up to the top (memory in use or given back), for tests and benchmarks. */
  get size(): number {
    return this.top;
  }
}
