import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DEFAULT_TILING, type GemmTiling } from "../../kernels/gemm.js";
import { engineTiling, relaxedSimd } from "../../runtime/wasm/features.js";
import { check, instantiate, layout, type Case } from "./helpers.js";

// The three GEMM forms against a naive f64 reference on random data: every output within 1e-5 of
// sum |a||b| (the scale of its rounding error), the padding between rows (ld > width) untouched.
const SIZES = [1, 3, 17, 129];
const TILINGS: GemmTiling[] = [
  DEFAULT_TILING,
  { mr: 3, nr: 4, kc: 5, nc: 8 },
  { mr: 5, nr: 12, kc: 64, nc: 24 },
  // Fused multiply-adds (relaxed SIMD), as the runtime builds the module on this engine.
  { ...DEFAULT_TILING, fma: true },
  { mr: 3, nr: 4, kc: 5, nc: 8, fma: true },
];

// Node >= 20.16 can switch relaxed SIMD on (process.getBuiltinModule); V8 11.4+ (Node 22) has it anyway.
const [major, minor] = process.versions.node.split(".").map(Number) as [number, number];
const nodeHasRelaxed = major > 20 || (major === 20 && minor >= 16);
// V8 fuses relaxed_madd where the CPU has FMA3 (x64 Linux: the fma flag of /proc/cpuinfo).
const cpuFlags = existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : "";
const fusedHere = process.arch === "x64" && /^flags\s*:.*\bfma\b/m.test(cpuFlags);

describe("relaxed SIMD", () => {
  it("is on where the engine can have it (so that CI tests the fused kernels)", () => {
    if (nodeHasRelaxed) expect(relaxedSimd()).toBe(true);
    expect(engineTiling().fma).toBe(relaxedSimd());
  });
  it.runIf(nodeHasRelaxed && fusedHere)(
    "the fused kernel rounds once: (1 + 2^-23)(1 - 2^-23) - 1 is -2^-46, not 0",
    () => {
      // C = A · P^T with A = [-1, 1 + e], P = [1, 1 - e]: the second step is exact only when fused.
      const e = 2 ** -23;
      const run = (fma: boolean) => {
        const { f32, k } = instantiate(4, { ...DEFAULT_TILING, fma });
        f32.set([-1, 1 + e], 16); // A [1, 2] at byte 64
        f32.set([1, 1 - e], 32); // P [1, 2] at byte 128
        k("gemm_nt")(256, 1, 64, 2, 128, 2, 1, 1, 2, 0, 512);
        return f32[64];
      };
      expect(run(false)).toBe(0);
      expect(run(true)).toBe(-(2 ** -46));
    },
  );
});

describe.each(TILINGS)("GEMM forms, tiling %o", (tiling) => {
  const { f32, k } = instantiate(256, tiling);
  for (const form of ["nt", "nn", "tn"] as const) {
    it(`gemm_${form}: sizes ${SIZES.join("/")} in every position, strides, accumulate`, () => {
      let seed = 1;
      let n = 0;
      for (const R of SIZES)
        for (const M of SIZES)
          for (const K of SIZES) {
            const c: Case = { form, R, M, K, pad: seed % 3 === 0 ? 0 : (seed % 5) + 1, acc: seed % 2 === 0 };
            const lay = layout(f32, c, tiling, seed++);
            const before = f32.slice();
            k(`gemm_${form}`)(...lay.args);
            const { worst, padChanged } = check(f32, c, lay, before);
            expect(worst, `${JSON.stringify(c)}`).toBeLessThan(1e-5);
            expect(padChanged, `${JSON.stringify(c)} wrote into the padding`).toBe(false);
            n++;
          }
      expect(n).toBe(64);
    });
  }
});

describe("GEMM, larger and odd shapes", () => {
  const { f32, k } = instantiate(1024);
  it.each([
    ["nt", 70, 260, 300],
    ["nn", 33, 130, 257],
    ["tn", 301, 66, 129],
  ] as const)("gemm_%s R=%i M=%i K=%i, accumulate on and off", (form, R, M, K) => {
    for (const acc of [false, true]) {
      const c: Case = { form, R, M, K, pad: 3, acc };
      const lay = layout(f32, c, DEFAULT_TILING, R + M + K);
      const before = f32.slice();
      k(`gemm_${form}`)(...lay.args);
      expect(check(f32, c, lay, before).worst).toBeLessThan(1e-5);
    }
  });
  it("a wrong result is caught: the check fails when an output is perturbed", () => {
    const c: Case = { form: "nt", R: 3, M: 5, K: 7, pad: 1, acc: false };
    const lay = layout(f32, c, DEFAULT_TILING, 9);
    const before = f32.slice();
    k("gemm_nt")(...lay.args);
    f32[lay.C + lay.ldc + 2] += 1e-3;
    expect(check(f32, c, lay, before).worst).toBeGreaterThan(1e-5);
  });
});
