import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fromBase64 } from "../../artifact/wasm.js";
import { WASM_OPS } from "../../compiler/wasm/elementwise.js";
import { MEMORY_IMPORT } from "../../kernels/library.js";
import { Func, ModuleWriter, T } from "../../kernels/writer.js";
import { OPS, type ElementwiseDef } from "../../compiler/ops/ops.js";
import { compile } from "../../compiler/compile.js";
import { checkProgram } from "../../compiler/driver.js";
import { relaxedSimd } from "../../runtime/wasm/features.js";
import { builtinCellFiles, nodeHost } from "../helpers.js";

describe("the WebAssembly kernels of every built-in cell", () => {
  for (const file of builtinCellFiles())
    for (const name of checkProgram(file, nodeHost).cellNames)
      it(`${name}: the module validates, and no kernel falls back to JS`, () => {
        const out = compile(readFileSync(file, "utf8"), { file, cell: name, host: nodeHost });
        const w = out.artifact!.wasm!;
        const bytes = fromBase64(w.module);
        expect(WebAssembly.validate(bytes)).toBe(true);
        for (const [k, v] of Object.entries(w.kernels)) expect("steps" in v ? "" : v.fallback, k).toBe("");
        // Export names are kernel and function indices only.
        const exports = WebAssembly.Module.exports(new WebAssembly.Module(bytes));
        for (const e of exports) expect(e.name).toMatch(/^k[0-3]_\d+$/);
        // The relaxed-SIMD build has the same functions (the steps name them), where the engine has it.
        const relaxed = fromBase64(w.relaxed!);
        if (relaxedSimd()) {
          expect(WebAssembly.validate(relaxed)).toBe(true);
          expect(WebAssembly.Module.exports(new WebAssembly.Module(relaxed))).toEqual(exports);
        }
      });

  it("no user name reaches the module", () => {
    const src = readFileSync("examples/cells/lstm.cell", "utf8").replace(/\bWi\b/g, "zqxparamname");
    const w = compile(src).artifact!.wasm!;
    for (const m of [w.module, w.relaxed!]) {
      expect(Buffer.from(fromBase64(m)).includes("zqxparamname")).toBe(false);
      expect(Buffer.from(fromBase64(m)).includes("lstm")).toBe(false);
    }
  });
});

// Each op's emitter on its own, against the op's reference `eval` (f64, rounded to f32): arithmetic is
// exact, the transcendental ones within a few ulps; NaN, the infinities and the sign of zero as in f64.
const bits = new Uint32Array(1);
const asF32 = new Float32Array(bits.buffer);
function ulps(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity;
  if (a === b) return Object.is(a, b) ? 0 : Infinity; // +0 vs -0
  const ord = (x: number): number => {
    asF32[0] = x;
    const u = bits[0]!;
    return u & 0x80000000 ? -(u & 0x7fffffff) : u;
  };
  return Math.abs(ord(a) - ord(b));
}
const VALUES = [0, -0, 1, -1, 0.5, -0.5, 1e-3, -1e-3, 2.5, -2.5, 17, -17, 88, -88, 100, -100, 1e-30, -1e-30, 1e-45, -1e-45, 3e38, -3e38, Infinity, -Infinity, NaN]; // prettier-ignore
const EXACT = ["add", "sub", "mul", "div", "min", "max", "neg", "abs", "sqrt", "relu", "gt"];
const MAX_ULPS: Readonly<Record<string, number>> = {
  sigmoid: 2,
  tanh: 2,
  exp: 1,
  log: 1,
  softplus: 4,
  softsign: 1,
};

// Both builds of the math: plain SIMD128, and relaxed SIMD's fused multiply-adds where this engine has them.
const VARIANTS = relaxedSimd() ? [false, true] : [false];

describe.each(VARIANTS)("each elementwise op in WebAssembly against its reference eval (fma %s)", (fma) => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  const m = new ModuleWriter({ ...MEMORY_IMPORT, initial: 1, maximum: 65536, shared: true });
  const names = Object.keys(WASM_OPS) as (keyof typeof WASM_OPS)[];
  for (const op of names) {
    // (dst, a, b, n): dst[i] = op(a[i], b[i]), four lanes at a time (n a multiple of 4).
    const f = new Func([T.i32, T.i32, T.i32, T.i32]);
    const [i, x, y] = [f.local(T.i32), f.local(T.v128), f.local(T.v128)];
    f.block().loop();
    f.get(i).get(3).op("i32.ge_s").brIf(1);
    f.get(1).get(i).op("i32.add").mem("v128.load").set(x);
    f.get(2).get(i).op("i32.add").mem("v128.load").set(y);
    const r = WASM_OPS[op](f, [x, y], { fma });
    f.get(0).get(i).op("i32.add").get(r).mem("v128.store");
    f.get(i).i32(16).op("i32.add").set(i).br(0).end().end();
    m.add(f, op);
  }
  const bytes = m.encode();
  it("the module validates", () => expect(WebAssembly.validate(bytes)).toBe(true));
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  const pairs = VALUES.flatMap((a) => VALUES.map((b) => [a, b] as const));
  const n = Math.ceil(pairs.length / 4) * 4;
  const heap = new Float32Array(memory.buffer);
  heap.set(
    pairs.map(([a]) => a),
    0,
  );
  heap.set(
    pairs.map(([, b]) => b),
    n,
  );
  for (const op of names)
    it(`${op}: ${EXACT.includes(op) ? "exact" : `at most ${MAX_ULPS[op]} ulps`}`, () => {
      (inst.exports[op] as (...a: number[]) => void)(8 * n, 0, 4 * n, 4 * n);
      const def = OPS[op] as ElementwiseDef;
      let worst = 0;
      const bad: string[] = [];
      pairs.forEach(([a, b], k) => {
        const want = Math.fround(
          def.eval(def.arity === 1 ? [Math.fround(a)] : [Math.fround(a), Math.fround(b)]),
        );
        const got = heap[2 * n + k]!;
        const u = ulps(got, want);
        worst = Math.max(worst, u);
        if (u > (MAX_ULPS[op] ?? 0)) bad.push(`${op}(${a}, ${b}) = ${got}, want ${want}`);
      });
      expect(bad.slice(0, 5)).toEqual([]);
      expect(worst).toBeLessThanOrEqual(MAX_ULPS[op] ?? 0);
    });
  it("every elementwise op of ops.ts has an emitter", () => {
    const elementwise = Object.entries(OPS)
      .filter(([, d]) => d.class === "elementwise")
      .map(([k]) => k);
    expect(names.sort()).toEqual(elementwise.sort());
  });
});
