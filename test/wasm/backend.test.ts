import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createWasmBackend } from "../../runtime/cpu/wasm.js";
import { compileCell, Model, tensor, type Tensor } from "../../runtime/index.js";
import { checkProgram } from "../../compiler/driver.js";
import { mismatches } from "../compare.js";
import { builtinCellFiles, nodeHost } from "../helpers.js";

/** Every tensor of a forward and backward pass, by a name that says what it is. */
async function everything(model: Model, x: Map<string, Tensor>, seqLens: number[]) {
  const f = await model.forwardAsync(x, { seqLens });
  const g = await model.backwardAsync(f);
  const all = new Map<string, Tensor>();
  for (const [k, v] of f.outputs) all.set(`out ${k}`, v);
  for (const [k, v] of f.finalStates) all.set(`final ${k}`, v);
  for (const [k, v] of g.params) all.set(`grad ${k}`, v);
  for (const [k, v] of g.inputs) all.set(`grad input ${k}`, v);
  for (const [k, v] of g.initialStates) all.set(`grad init ${k}`, v);
  return all;
}

describe("the wasm backend matches the JS backend on every built-in cell, at sizes no tile divides", () => {
  const wasm = createWasmBackend();
  for (const file of builtinCellFiles())
    for (const name of checkProgram(file, nodeHost).cellNames)
      for (const [H, B] of [
        [1, 1],
        [17, 5],
        [3, 2],
      ] as const)
        it(`${name}: H=${H}, B=${B}, two layers, bidirectional, seq_lens`, async () => {
          const cell = compileCell(readFileSync(file, "utf8"), { file, cell: name, host: nodeHost });
          const dims = Object.fromEntries(cell.signature.dims.map((d) => [d, d === "D" ? 3 : H]));
          let opts = { dims, seed: 7, layers: 2, bidirectional: true };
          try {
            new Model(cell, opts);
          } catch {
            opts = { dims, seed: 7, layers: 1, bidirectional: false };
          }
          const js = new Model(cell, opts);
          const wm = new Model(cell, { ...opts, params: js.params, backend: wasm });
          const T = 4;
          const x = new Map(
            cell.signature.inputs.map((inp, k) => {
              const feat: number[] = inp.type.dims.map((d) => (d.terms.D ? 3 : H));
              const n = T * B * feat.reduce((a, b) => a * b, 1);
              return [
                inp.name,
                tensor(
                  "f32",
                  [T, B, ...feat],
                  Float32Array.from({ length: n }, (_, i) => Math.sin(i + k)),
                ),
              ];
            }),
          );
          const lens = Array.from({ length: B }, (_, b) => Math.max(1, T - b));
          const want = await everything(js, x, lens);
          const calls = wasm.gemms.calls;
          const got = await everything(wm, x, lens);
          // The GEMMs ran in WebAssembly (every built-in cell has a matmul).
          expect(wasm.gemms.calls).toBeGreaterThan(calls);
          expect(mismatches(got, want, 1e-5, 1e-4)).toEqual([]);
        });
});
