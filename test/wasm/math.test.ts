import { describe, expect, it } from "vitest";
import { emitExp, emitLog, emitSigmoid, emitTanh } from "../../kernels/math.js";
import { DEFAULT_TILING } from "../../kernels/gemm.js";
import { Func, ModuleWriter, T } from "../../kernels/writer.js";
import { relaxedSimd } from "../../runtime/wasm/features.js";
import { instantiate } from "./helpers.js";

// Both builds: plain SIMD128, and with fused multiply-adds (relaxed SIMD) where this engine has them.
const VARIANTS = relaxedSimd() ? [false, true] : [false];

// Accuracy of the vector math against Math.* computed in f64 and rounded to f32, over the whole float
// range: every 509th bit pattern (both signs, denormals, NaNs included) plus the special values.
const bits = new Uint32Array(new ArrayBuffer(4));
const asF32 = new Float32Array(bits.buffer);

/** Distance in units of the last place between two f32s (0 for NaN vs NaN, Infinity for NaN vs number). */
function ulps(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity;
  const ord = (x: number): number => {
    asF32[0] = x;
    const u = bits[0]!;
    return u & 0x80000000 ? -(u & 0x7fffffff) : u;
  };
  return Math.abs(ord(a) - ord(b));
}

const SPECIAL = [
  0,
  -0,
  1,
  -1,
  Infinity,
  -Infinity,
  NaN,
  1e-45,
  -1e-45,
  1.1754942e-38,
  1.17549435e-38,
  3.4028235e38,
];
const MAX_ULPS = { vexp: 1, vlog: 1, vtanh: 2, vsigmoid: 2 } as const;
const REF: Record<keyof typeof MAX_ULPS, (x: number) => number> = {
  vexp: Math.exp,
  vlog: Math.log,
  vtanh: Math.tanh,
  vsigmoid: (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))),
};

describe.each(VARIANTS)("vector exp/log/tanh/sigmoid over the whole f32 range (fma %s)", (fma) => {
  const n = Math.ceil(2 ** 32 / 509) + SPECIAL.length + 1000;
  const { f32, k } = instantiate(Math.ceil((n * 8) / 65536) + 1, { ...DEFAULT_TILING, fma });
  const input = new Uint32Array(f32.buffer, 0, n);
  let i = 0;
  for (let u = 0; u < 2 ** 32; u += 509) input[i++] = u;
  // Dense near the interesting range of the RNN gates: [-20, 20].
  for (let j = 0; j < 1000; j++) {
    asF32[0] = -20 + (40 * j) / 999;
    input[i++] = bits[0]!;
  }
  const x = new Float32Array(f32.buffer, 0, n);
  x.set(SPECIAL, i);
  for (const [name, max] of Object.entries(MAX_ULPS) as [keyof typeof MAX_ULPS, number][]) {
    it(`${name}: at most ${max} ulps`, () => {
      const out = new Float32Array(f32.buffer, n * 4, n);
      out.fill(12345);
      k(name)(n * 4, 0, n);
      let worst = 0;
      let at = 0;
      for (let j = 0; j < n; j++) {
        const e = ulps(out[j]!, Math.fround(REF[name](x[j]!)));
        if (e > worst) [worst, at] = [e, x[j]!];
      }
      console.log(`${name}${fma ? " (fma)" : ""}: max ${worst} ulps (at x = ${at}) over ${n} inputs`);
      expect(worst, `worst at x = ${at}`).toBeLessThanOrEqual(max);
    });
  }
  it("handles array lengths that are not multiples of 4, in place", () => {
    for (const len of [1, 2, 3, 5, 7]) {
      const a = new Float32Array(f32.buffer, 0, 8);
      a.set([0.5, -2, 3, 0.1, -0.7, 8, 1.5, 9]);
      const before = Array.from(a);
      k("vtanh")(0, 0, len);
      for (let j = 0; j < 8; j++) {
        const want = j < len ? Math.fround(Math.tanh(before[j]!)) : before[j]!;
        expect(ulps(a[j]!, want)).toBeLessThanOrEqual(3);
      }
    }
  });
});

describe.each(VARIANTS)("the math emitters inline into a fused kernel (fma %s)", (fma) => {
  it("y = sigmoid(a) * tanh(b) + exp(log(c)), four lanes, validated and checked against f64", () => {
    const m = new ModuleWriter({ module: "env", field: "memory", initial: 1, maximum: 1, shared: true });
    const f = new Func([T.i32]);
    const [a, b, c] = [f.local(T.v128), f.local(T.v128), f.local(T.v128)];
    f.get(0).mem("v128.load", 0).set(a).get(0).mem("v128.load", 16).set(b).get(0).mem("v128.load", 32).set(c);
    const s = emitSigmoid(f, a, { fma });
    const t = emitTanh(f, b, { fma });
    const l = emitLog(f, c, { fma });
    const e = emitExp(f, l, { fma });
    f.get(0).get(s).get(t).op("f32x4.mul").get(e).op("f32x4.add").mem("v128.store", 48);
    m.add(f, "fused");
    const bytes = m.encode();
    expect(WebAssembly.validate(bytes)).toBe(true);
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
    const x = new Float32Array(memory.buffer);
    const [A, B, C] = [
      [-3, 0.2, 5, 0],
      [1, -0.4, 2, 7],
      [0.5, 2, 10, 1e-3],
    ];
    x.set([...A, ...B, ...C]);
    (inst.exports.fused as (p: number) => void)(0);
    for (let i = 0; i < 4; i++) {
      const want = (1 / (1 + Math.exp(-A[i]!))) * Math.tanh(B[i]!) + C[i]!;
      expect(Math.abs(x[12 + i]! - want)).toBeLessThan(4e-7 * (Math.abs(want) + 1));
    }
  });
});
