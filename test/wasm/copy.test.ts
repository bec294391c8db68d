// copyIn (runtime/wasm/heap.ts): the copy into the shared memory that skips V8's element-by-element path.
import { describe, expect, it } from "vitest";
import { copyIn, WasmHeap } from "../../runtime/wasm/heap.js";

describe("copyIn into the shared memory", () => {
  const heap = new WasmHeap();
  const n = 20000;
  const dst = heap.f32(heap.take(4 * (n + 100)), n + 100);
  it("writes what TypedArray.set writes, at any offset, from any view, and nothing else", () => {
    const base = Float32Array.from({ length: n + 7 }, (_, i) => Math.sin(i) * 1e3);
    for (const [at, from, len] of [
      [0, 0, n],
      [37, 3, n],
      [100, 7, n],
      [5, 1, 4096],
      [11, 2, 10], // short: TypedArray.set
    ] as const) {
      dst.fill(-1);
      const src = base.subarray(from, from + len);
      copyIn(dst, at, src);
      const want = new Float32Array(n + 100).fill(-1);
      want.set(src, at);
      expect(dst).toEqual(want);
    }
  });
  it("converts another element type as TypedArray.set does", () => {
    const src = Float64Array.from({ length: 5000 }, (_, i) => i / 3);
    copyIn(dst, 1, src);
    expect(dst.subarray(1, 5001)).toEqual(Float32Array.from(src));
  });
  it("refuses a source that does not fit, writing nothing", () => {
    dst.fill(0);
    expect(() => copyIn(dst, 200, new Float32Array(n).fill(1))).toThrow(RangeError);
    expect(dst.every((v) => v === 0)).toBe(true);
  });
});
