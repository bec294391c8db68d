// Every built-in cell on the wasm backend (generated WebAssembly kernels, arenas in the wasm memory)
// against the JS backend in f64, on one thread and on two; two threads bit-identical to one.
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { createThreadedWasmBackend, createWasmBackend, type WasmGemms } from "../../runtime/cpu/wasm.js";
import { compileCell, Model, tensor, type Backend } from "../../api/index.js";
import type { CompiledCell } from "../../runtime/cell.js";
import { checkProgram } from "../../compiler/driver.js";
import { mismatches } from "../compare.js";
import { builtinCellFiles, nodeHost, everything } from "../helpers.js";

type WasmBackend = Backend & { readonly gemms: WasmGemms };

const CELLS: [string, string][] = builtinCellFiles().flatMap((file) =>
  checkProgram(file, nodeHost).cellNames.map((name) => [file, name] as [string, string]),
);
const compiled = (file: string, name: string) =>
  compileCell(readFileSync(file, "utf8"), { file, cell: name, host: nodeHost });

/** A model pair (wasm f32, JS f64, same parameters), with two layers and both directions where the cell allows. */
function models(cell: CompiledCell, H: number, backend: WasmBackend) {
  const dims = Object.fromEntries(cell.signature.dims.map((d) => [d, d === "D" ? 3 : H]));
  let opts = { dims, seed: 7, layers: 2, bidirectional: true };
  try {
    new Model(cell, opts);
  } catch {
    opts = { dims, seed: 7, layers: 1, bidirectional: false };
  }
  const wasm = new Model(cell, { ...opts, backend });
  const f64 = new Model(cell, { ...opts, params: wasm.params, dtype: "f64" });
  return { wasm, f64, opts };
}

function inputs(cell: CompiledCell, T: number, B: number, H: number, dtype: "f32" | "f64") {
  return new Map(
    cell.signature.inputs.map((inp, k) => {
      const feat: number[] = inp.type.dims.map((d) => (d.terms.D ? 3 : H));
      const n = T * B * feat.reduce((a, b) => a * b, 1);
      const data = Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i + k)));
      return [inp.name, tensor(dtype, [T, B, ...feat], data)];
    }),
  );
}

const backends: Record<1 | 2, WasmBackend> = {} as Record<1 | 2, WasmBackend>;
beforeAll(async () => {
  backends[1] = createWasmBackend();
  backends[2] = await createThreadedWasmBackend(2);
  backends[2].gemms.splitMin = 0; // divide every kernel that can be, however small
  backends[2].gemms.gemmSplitMin = 0;
  // New arenas full of NaN: a schedule must write every element of its arena before it reads it (the
  // runtime does not zero them), or the comparisons below see NaN.
  for (const b of [backends[1], backends[2]]) b.gemms.arenaFill = NaN;
});

describe("every built-in cell on the wasm backend against the JS backend in f64", () => {
  for (const threads of [1, 2] as const)
    for (const [file, name] of CELLS)
      for (const [H, B] of [
        [1, 1],
        [3, 1],
        [17, 3],
      ] as const)
        it(`${name}: H=${H}, B=${B}, ${threads} thread(s), layers 2, bidirectional, seq_lens`, async () => {
          const cell = compiled(file, name);
          const be = backends[threads];
          const { wasm, f64 } = models(cell, H, be);
          const T = 4;
          const lens = Array.from({ length: B }, (_, b) => Math.max(1, T - 1 - b));
          const want = await everything(f64, inputs(cell, T, B, H, "f64"), lens);
          const [calls, staged] = [be.gemms.kernelCalls, be.gemms.staged];
          const got = await everything(wasm, inputs(cell, T, B, H, "f32"), lens);
          // The generated kernels ran, and no GEMM operand had to be staged (everything is in place).
          expect(be.gemms.kernelCalls).toBeGreaterThan(calls);
          expect(be.gemms.staged).toBe(staged);
          expect(mismatches(got, want, 1e-5, 1e-4)).toEqual([]);
        });
});

describe("two threads give what one thread gives, bit for bit, with every kernel divided", () => {
  for (const [file, name] of CELLS)
    it(`${name}: T=5, B=9, H=17, forward and backward`, async () => {
      const cell = compiled(file, name);
      const { wasm: one, opts } = models(cell, 17, backends[1]);
      const two = new Model(cell, { ...opts, params: one.params, backend: backends[2] });
      const x = inputs(cell, 5, 9, 17, "f32");
      const lens = [5, 4, 3, 2, 1, 5, 5, 2, 3];
      const want = await everything(one, x, lens);
      const [split, seqs] = [backends[2].gemms.splitCalls, backends[2].gemms.rowSequences];
      const got = await everything(two, x, lens);
      expect(backends[2].gemms.splitCalls).toBeGreaterThan(split);
      // Every built-in cell's step kernels are row by row: each step runs as one row sequence.
      expect(backends[2].gemms.rowSequences).toBeGreaterThan(seqs);
      for (const [k, v] of want) expect(Array.from(got.get(k)!.data), k).toEqual(Array.from(v.data));
    });
});

describe("a kernel's steps as one job of the pool (no sequence lengths) give what one thread gives, bit for bit", () => {
  const pools: Partial<Record<number, WasmBackend>> = {};
  for (const threads of [2, 3])
    for (const [file, name] of CELLS)
      it(`${name}: T=6, B=13, H=17, ${threads} threads, twice`, async () => {
        const be = (pools[threads] ??= await createThreadedWasmBackend(threads));
        be.gemms.splitMin = 0;
        be.gemms.gemmSplitMin = 0;
        be.gemms.arenaFill = NaN;
        const cell = compiled(file, name);
        const { wasm: one, opts } = models(cell, 17, backends[1]);
        const many = new Model(cell, { ...opts, params: one.params, backend: be });
        const x = inputs(cell, 6, 13, 17, "f32");
        const full = undefined as unknown as number[]; // no sequence lengths: no masks between the steps
        const want = await everything(one, x, full);
        const runs = be.gemms.steppedRuns;
        for (let k = 0; k < 2; k++) {
          const got = await everything(many, x, full);
          for (const [key, v] of want)
            expect(Array.from(got.get(key)!.data), key).toEqual(Array.from(v.data));
        }
        // Every built-in cell's step kernels are row by row: their steps ran as one job; a cell whose
        // states are all scan states has no steps (its step kernel runs once over all T*B rows).
        const k = cell.artifact.kernels;
        const once = k.step.rows === "TB" && k.loop.rows === "TB";
        if (once) expect(be.gemms.steppedRuns).toBe(runs);
        else expect(be.gemms.steppedRuns).toBeGreaterThan(runs);
      });
});

describe("every elementwise op in a cell, forward and backward", () => {
  // Each function of the language (and through their gradients gt, neg, div) in one cell.
  const src = `cell allops {
  input x[D]
  state h[H]
  param W : [H, D] ~ uniform
  param U : [H, H] ~ uniform
  param b : [H] = 0.1
  a = W @ x + U @ h + b
  p = softplus(a) - softsign(a) + abs(a) * 0.5 + exp(min(a, 1)) - log(1.5 + sigmoid(a))
  q = sqrt(abs(a) + 1) + relu(a) - max(a, -0.5) / (2 + abs(a)) + clip(a, -0.3, 0.3) + elu(a)
  h' = tanh(p * 0.3 - q * 0.2 - mean(a) + sum(a) * 0.01 + leaky_relu(a) + hard_sigmoid(a))
  output h'
}`;
  for (const threads of [1, 2] as const)
    it(`matches the JS backend in f64 (${threads} thread(s), H=6, B=5)`, async () => {
      const cell = compileCell(src);
      const { wasm, f64 } = models(cell, 6, backends[threads]);
      const lens = [4, 3, 2, 1, 4];
      const want = await everything(f64, inputs(cell, 4, 5, 6, "f64"), lens);
      const got = await everything(wasm, inputs(cell, 4, 5, 6, "f32"), lens);
      expect(mismatches(got, want, 1e-5, 1e-4)).toEqual([]);
    });
});

describe("the arenas of kept forward passes", () => {
  it("a tape set aside by later forward passes still gives its own gradients", async () => {
    const be = createWasmBackend();
    const cell = compileCell(readFileSync("examples/cells/gru.cell", "utf8"));
    const m = new Model(cell, { dims: { D: 3, H: 5 }, seed: 1, backend: be });
    const xs = [0, 1, 2, 3].map((s) =>
      inputs(cell, 3, 2, 5, "f32").set(
        "x",
        tensor(
          "f32",
          [3, 2, 3],
          Array.from({ length: 18 }, (_, i) => Math.cos(i * (s + 1))),
        ),
      ),
    );
    const first = await m.forwardAsync(xs[0]!);
    for (const x of xs.slice(1)) await m.forwardAsync(x);
    const spills = be.gemms.spills;
    expect(spills).toBeGreaterThan(0); // the first arena was copied out of the memory
    const g = await m.backwardAsync(first);
    // Backward twice over a tape still in memory is fine; over one released after its backward, refused.
    const again = await m.backwardAsync(first);
    for (const [k, v] of g.params)
      expect(Array.from(again.params.get(k)!.data), k).toEqual(Array.from(v.data));
    const fresh = await m.backwardAsync(await m.forwardAsync(xs[0]!));
    for (const [k, v] of fresh.params)
      expect(Array.from(g.params.get(k)!.data), k).toEqual(Array.from(v.data));
    for (const x of xs.slice(1)) await m.forwardAsync(x);
    await expect(m.backwardAsync(first)).rejects.toThrow(/released after its backward pass/);
  });

  it("memory stays bounded over many training steps", async () => {
    const be = createWasmBackend();
    const cell = compileCell(readFileSync("examples/cells/lstm.cell", "utf8"));
    const m = new Model(cell, { dims: { D: 3, H: 8 }, seed: 1, backend: be });
    const x = inputs(cell, 6, 4, 8, "f32");
    const step = () => m.backward(m.forward(x));
    for (let i = 0; i < 3; i++) step();
    const [size, spills] = [be.gemms.heap.size, be.gemms.spills];
    for (let i = 0; i < 50; i++) step();
    expect(be.gemms.heap.size).toBe(size);
    expect(be.gemms.spills).toBe(spills); // the tapes released were those already used
  });
});
