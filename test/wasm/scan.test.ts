// The wasm backend's scan (kernels/scan.ts, WasmGemms.scan) against the host's (runtime/scan.ts) in
// float64, with and without sequence lengths, both directions; on two threads bit-identical to one.
import { afterAll, describe, expect, it } from "vitest";
import { createThreadedWasmBackend, createWasmBackend, type WasmGemms } from "../../runtime/cpu/wasm.js";
import { Rng } from "../../runtime/init.js";
import { hostScan, type ScanLanes } from "../../runtime/scan.js";

const [T, B, row] = [37, 5, 11];
const n = B * row;
const gemms: WasmGemms[] = [];
afterAll(async () => {
  for (const g of gemms) await g.useThreads(1);
});

/** An arena holding one scan state's buffers (state, gradient: [T + 1, B, row], coefficient: [T, B, row]). */
function arena(g: WasmGemms) {
  const mem = g.alloc(8 + (3 * T + 2) * n);
  const rng = new Rng(6);
  for (let i = 0; i < mem.length; i++) mem[i] = 2 * rng.next() - 1;
  const lanes: ScanLanes[] = [{ state: 8, grad: 8 + (T + 1) * n, coef: 8 + 2 * (T + 1) * n, row }];
  return { mem, lanes };
}

describe("the wasm scan", () => {
  for (const lens of [undefined, Int32Array.from([T, 0, 20, 1, T - 1])])
    it(`matches the host's in float64${lens ? ", with sequence lengths" : ""}, two threads as one`, async () => {
      const one = createWasmBackend().gemms;
      const two = (await createThreadedWasmBackend(2)).gemms;
      gemms.push(two);
      two.splitMin = 1;
      const results: Float32Array[] = [];
      for (const g of [one, two]) {
        const { mem, lanes } = arena(g);
        const ref = Float64Array.from(mem);
        for (const d of ["forward", "backward"] as const) {
          g.scan(mem, lanes, T, B, d, lens);
          hostScan(ref, lanes, T, B, d, lens);
        }
        let worst = 0;
        for (let i = 0; i < ref.length; i++)
          worst = Math.max(worst, Math.abs(mem[i]! - ref[i]!) / (1 + Math.abs(ref[i]!)));
        expect(worst).toBeLessThan(1e-5);
        results.push(Float32Array.from(mem));
      }
      expect(two.splitCalls).toBeGreaterThan(0);
      expect(results[1]).toEqual(results[0]);
    });
});
