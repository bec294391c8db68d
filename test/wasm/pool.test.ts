import { afterAll, describe, expect, it } from "vitest";
import { DEFAULT_TILING } from "../../kernels/gemm.js";
import { buildKernelModule, MEMORY_IMPORT } from "../../kernels/library.js";
import { engineTiling } from "../../runtime/wasm/features.js";
import { Func, ModuleWriter, T } from "../../kernels/writer.js";
import { poolGemm, gemm } from "../../runtime/wasm/gemm.js";
import { createNodePool } from "../../runtime/wasm/node.js";
import { CONTROL_BYTES, createPool, type Pool } from "../../runtime/wasm/pool.js";
import { check, layout, type Case } from "./helpers.js";

// Multi-threaded GEMMs are bit-identical to the single-threaded kernel (and correct), for every form,
// both divisions of the product, and shapes that are not multiples of the tile or of the thread count.
const PAGES = 512;
// The module as the runtime builds it here (fused multiply-adds where relaxed SIMD exists).
const { bytes } = buildKernelModule(engineTiling());
const module = new WebAssembly.Module(bytes);
const memory = new WebAssembly.Memory({ initial: PAGES, maximum: PAGES, shared: true });
const f32 = new Float32Array(memory.buffer);
const single = new WebAssembly.Instance(module, { env: { memory } }).exports as Record<
  string,
  (...a: number[]) => void
>;
const pools: Pool[] = [];
/** Each pool has its own control block, below the top MiB (the cases' data lives at the bottom). */
const control = (k: number) => (PAGES - 16) * 65536 - (k + 1) * CONTROL_BYTES;
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
  ["tn", 600, 45, 29], // three blocks of kc inner steps: pack_a divided by blocks
];

describe.each([2, 3])("pool of %i threads", (threads) => {
  it("GEMM results are bit-identical to one thread, divided by rows, by columns, and by default", async () => {
    // Each pool has its own control block: two pools on one block would answer each other's calls.
    const pool = await createNodePool({ module, memory, threads, control: control(threads) });
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
          gemm(poolGemm(pool, DEFAULT_TILING), form, lay.args, by);
          const got = f32.slice(lay.C, lay.C + lay.outRows * lay.ldc);
          expect(
            Buffer.from(got.buffer).equals(Buffer.from(want.buffer)),
            `${form} ${R}x${M}x${K} ${by}`,
          ).toBe(true);
          n++;
        }
    expect(n).toBe(42);
  });
});

describe("pool errors", () => {
  it("a trap in any thread is reported, and the pool stays usable", async () => {
    const pool = await createNodePool({ module, memory, threads: 2, control: control(8) });
    pools.push(pool);
    const beyond = PAGES * 65536;
    // C[100, 64] = A[100, 4096] panels[4096, 64], rows divided 52 + 48 (one chunk per thread); C's rows
    // from `rowsInBounds` on lie beyond the memory. Whichever thread claims them traps, and the call throws.
    const args = (rowsInBounds: number) => [beyond - rowsInBounds * 64 * 4, 64, 1 << 20, 4096, 4 << 20, 100, 64, 4096, 0]; // prettier-ignore
    const split = { count: 5, align: 4, shifts: [[0, 256], [2, 4096 * 4]] as const }; // prettier-ignore
    for (const rows of [52, 30, 0])
      expect(() => pool.run("mm_rows", args(rows), split)).toThrow(/in a worker|out of bounds/);
    // A worker's trap is reported as such: the caller claims the first chunk (rows 0-51, in bounds, a few
    // milliseconds of work) and the worker, awake by then, the second; tried until the worker took it.
    let worker = false;
    for (let k = 0; k < 20 && !worker; k++)
      try {
        pool.run("mm_rows", args(52), split);
      } catch (e) {
        worker = /in a worker/.test(String(e));
      }
    expect(worker).toBe(true);
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
    await expect(createPool({ module, memory, threads: 2, control: control(1) })).rejects.toThrow(/platform/);
  });
});

describe("modules loaded into a running pool", () => {
  /** A module with iota(dst, start, n): dst[i] = start + i, as floats (after `offset` added). */
  const iota = (offset: number) => {
    const m = new ModuleWriter({ ...MEMORY_IMPORT, initial: 1, maximum: 65536, shared: true });
    const f = new Func([T.i32, T.i32, T.i32]);
    const i = f.local(T.i32);
    f.block().loop();
    f.get(i).get(2).op("i32.ge_s").brIf(1);
    f.get(0).get(i).i32(2).op("i32.shl", "i32.add");
    f.get(1).get(i).op("i32.add").i32(offset).op("i32.add", "i32x4.splat", "f32x4.convert_i32x4_s");
    f.lane("f32x4.extract_lane", 0).mem("f32.store");
    f.get(i).i32(1).op("i32.add").set(i).br(0).end().end();
    m.add(f, "iota");
    return new WebAssembly.Module(m.encode());
  };
  const split = { count: 2, align: 1, shifts: [[0, 4] as const, [1, 1] as const] };

  it("every thread runs its slice with the new module's functions, under their own prefix", async () => {
    const pool = await createNodePool({ module, memory, threads: 3, control: control(9) });
    pools.push(pool);
    const [a, b] = [pool.load(iota(0)), pool.load(iota(1000))];
    expect(a).not.toBe(b);
    f32.fill(-1, 4096, 4096 + 200);
    pool.run(`${a}iota`, [4096 * 4, 0, 100], split);
    pool.run(`${b}iota`, [4196 * 4, 0, 100], split);
    // The last third of each range is a worker's: a worker without the module would have failed the call.
    expect(Array.from(f32.subarray(4096, 4196))).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(Array.from(f32.subarray(4196, 4296))).toEqual(Array.from({ length: 100 }, (_, i) => 1000 + i));
    // A row sequence: each thread runs its rows of both calls; rows align to 4 (3 threads: 36 + 36 + 28).
    f32.fill(-1, 4096, 4096 + 200);
    const rowCall = (fn: string, at: number) => ({ fn, args: [at * 4, 0, 100], count: 2, shifts: [[0, 4], [1, 1]] as const }); // prettier-ignore
    pool.runRows([rowCall(`${a}iota`, 4096), rowCall(`${b}iota`, 4196)], 100, 4);
    expect(Array.from(f32.subarray(4096, 4196))).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(Array.from(f32.subarray(4196, 4296))).toEqual(Array.from({ length: 100 }, (_, i) => 1000 + i));
    // More calls than the control block holds at once: run in several wake-ups, in order.
    f32.fill(-1, 4096, 4296);
    const many = Array.from({ length: 40 }, (_, k) => rowCall(`${k % 2 ? b : a}iota`, 4096 + 100 * (k % 2)));
    pool.runRows(many, 100, 4);
    expect(Array.from(f32.subarray(4096, 4196))).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(Array.from(f32.subarray(4196, 4296))).toEqual(Array.from({ length: 100 }, (_, i) => 1000 + i));
    // The kernel module's own functions still run.
    f32.fill(0, 8192, 8200);
    pool.run("vexp", [65536, 32768, 8], { count: 2, align: 4, shifts: [[0, 4], [1, 4]] }); // prettier-ignore
    expect(f32[16384]).toBe(1);
  });

  it("a module that does not instantiate is reported", async () => {
    const pool = await createNodePool({ module, memory, threads: 2, control: control(10) });
    pools.push(pool);
    const other = new WebAssembly.Module(
      new ModuleWriter({ module: "env", field: "other", initial: 1, maximum: 1, shared: true }).encode(),
    );
    expect(() => pool.load(other)).toThrow();
  });
});

describe("a pool under many jobs of every kind", () => {
  // inc(dst, src, n): dst[i] = src[i] + 1.
  const inc = (() => {
    const m = new ModuleWriter({ ...MEMORY_IMPORT, initial: 1, maximum: 65536, shared: true });
    const f = new Func([T.i32, T.i32, T.i32]);
    const i = f.local(T.i32);
    f.block().loop();
    f.get(i).get(2).op("i32.ge_s").brIf(1);
    f.get(0).get(i).i32(2).op("i32.shl", "i32.add");
    f.get(1).get(i).i32(2).op("i32.shl", "i32.add").mem("f32.load").f32(1).op("f32.add").mem("f32.store");
    f.get(i).i32(1).op("i32.add").set(i).br(0).end().end();
    m.add(f, "inc");
    return new WebAssembly.Module(m.encode());
  })();

  // Jobs back to back, of random kinds and sizes: a thread that sees a job late must take no part of a
  // later one (a job whose chunks are all claimed has its parameters rewritten for the next at once).
  it.each([2, 3])(
    "%i threads: divided calls, row programs, runs of steps and loads, each result checked",
    async (threads) => {
      const pool = await createNodePool({ module, memory, threads, control: control(10 + threads) });
      pools.push(pool);
      let prefix = pool.load(inc);
      const [A, N] = [1 << 20, 2000]; // floats
      let seed = 7;
      const r = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
      const shifts = [[0, 4], [1, 4]] as const; // prettier-ignore
      for (let it = 0; it < 20000; it++) {
        const n = 1 + r(N);
        const kind = r(10);
        f32.fill(0, A, A + 3 * N);
        if (kind < 4) {
          pool.run(`${prefix}inc`, [(A + N) * 4, A * 4, n], { count: 2, align: 1 + r(5), shifts });
          for (let k = 0; k < n; k++)
            if (f32[A + N + k] !== 1) throw new Error(`divided call ${it}: row ${k}`);
        } else if (kind < 7) {
          const call = { fn: `${prefix}inc`, args: [(A + N) * 4, A * 4, n], count: 2, shifts };
          pool.runRows([call, { ...call, args: [(A + 2 * N) * 4, (A + N) * 4, n] }], n, 1 + r(4));
          for (let k = 0; k < n; k++)
            if (f32[A + 2 * N + k] !== 2) throw new Error(`row program ${it}: row ${k}`);
        } else if (kind < 9) {
          // x at step s + 1 = x at step s + 1, a block of n floats per step.
          const steps = 1 + r(8);
          const at = A + 4 * N;
          f32.fill(0, at, at + (steps + 1) * n);
          const prog = pool.program([
            { fn: `${prefix}inc`, args: [(at + n) * 4, at * 4, n], count: 2, shifts },
          ]);
          prog.deltas[0]!.set([n * 4, n * 4, 0]);
          pool.runSteps(prog, n, 1 + r(4), steps);
          for (let k = 0; k < n; k++)
            if (f32[at + steps * n + k] !== steps) throw new Error(`steps ${it}: row ${k}`);
        } else prefix = pool.load(inc);
      }
      // Loads back to back: a worker that acknowledged one must still go back for the next one's module.
      for (let k = 0; k < 200; k++) prefix = pool.load(inc);
      pool.run(`${prefix}inc`, [(A + N) * 4, A * 4, N], { count: 2, align: 1, shifts });
      expect(f32[A + 2 * N - 1]).toBe(1);
    },
  );
});
