import { afterAll, describe, expect, it } from "vitest";
import { DEFAULT_TILING } from "../../compiler/wasm/gemm.js";
import { buildKernelModule } from "../../compiler/wasm/kernels.js";
import { gemm } from "../../runtime/wasm/gemm.js";
import { createNodePool } from "../../runtime/wasm/node.js";
import { CONTROL_BYTES, createPool, type Pool } from "../../runtime/wasm/pool.js";
import { check, layout, type Case } from "./helpers.js";

// Multi-threaded GEMMs are bit-identical to the single-threaded kernel (and correct), for every form,
// both divisions of the product, and shapes that are not multiples of the tile or of the thread count.
const PAGES = 512;
const { bytes } = buildKernelModule();
const module = new WebAssembly.Module(bytes);
const memory = new WebAssembly.Memory({ initial: PAGES, maximum: PAGES, shared: true });
const f32 = new Float32Array(memory.buffer);
const single = new WebAssembly.Instance(module, { env: { memory } }).exports as Record<
  string,
  (...a: number[]) => void
>;
const pools: Pool[] = [];
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

const CASES: [Case["form"], number, number, number][] = [
  ["nt", 37, 129, 17],
  ["nt", 3, 300, 65],
  ["nn", 130, 17, 33],
  ["nn", 5, 64, 257],
  ["tn", 70, 45, 129],
  ["tn", 1, 3, 1],
];

describe.each([2, 3])("pool of %i threads", (threads) => {
  it("GEMM results are bit-identical to one thread, divided by rows, by columns, and by default", async () => {
    // Each pool has its own control block: two pools on one block would answer each other's calls.
    const pool = await createNodePool({ module, memory, threads, control: threads * CONTROL_BYTES });
    pools.push(pool);
    expect(pool.threads).toBe(threads);
    let n = 0;
    for (const [form, R, M, K] of CASES)
      for (const acc of [false, true])
        for (const by of ["rows", "cols", undefined] as const) {
          const c: Case = { form, R, M, K, pad: 2, acc };
          const lay = layout(f32, c, DEFAULT_TILING, R * 7 + M + K);
          const before = f32.slice();
          single[`gemm_${form}`]!(...lay.args);
          const want = f32.slice(lay.C, lay.C + lay.outRows * lay.ldc);
          expect(check(f32, c, lay, before).worst).toBeLessThan(1e-5);
          f32.set(before);
          gemm(pool, DEFAULT_TILING, form, lay.args, by);
          const got = f32.slice(lay.C, lay.C + lay.outRows * lay.ldc);
          expect(
            Buffer.from(got.buffer).equals(Buffer.from(want.buffer)),
            `${form} ${R}x${M}x${K} ${by}`,
          ).toBe(true);
          n++;
        }
    expect(n).toBe(36);
  });
});

describe("pool errors", () => {
  it("a trap in any thread is reported, and the pool stays usable", async () => {
    const pool = await createNodePool({ module, memory, threads: 2, control: 8 * CONTROL_BYTES });
    pools.push(pool);
    const beyond = PAGES * 65536;
    // 100 rows split 52 + 48: the caller's rows in bounds, the worker's beyond the memory, then the reverse.
    const args = (rowsInBounds: number) => [beyond - rowsInBounds * 64 * 4, 64, 1024, 8, 8192, 100, 64, 8, 0];
    const split = { count: 5, align: 4, shifts: [[0, 256]] as const };
    expect(() => pool.run("mm_rows", args(52), split)).toThrow(/in a worker/);
    expect(() => pool.run("mm_rows", args(30), split)).toThrow(/out of bounds/);
    expect(() => pool.run("nope", [], { count: 0, align: 1, shifts: [] })).toThrow(/no export "nope"/);
    f32.fill(1, 8192, 8192 + 1000);
    pool.run("vexp", [65536, 32768, 1000], {
      count: 2,
      align: 4,
      shifts: [
        [0, 4],
        [1, 4],
      ],
    });
    expect(f32[16384]).toBeCloseTo(Math.E, 5);
    expect(f32[16384 + 999]).toBeCloseTo(Math.E, 5);
  });
  it("refuses an unshared memory, and a worker pool without a platform", async () => {
    const plain = new WebAssembly.Memory({ initial: 1 });
    await expect(createPool({ module, memory: plain, threads: 1, control: 0 })).rejects.toThrow(/shared/);
    await expect(createPool({ module, memory, threads: 2, control: CONTROL_BYTES })).rejects.toThrow(
      /platform/,
    );
  });
});
