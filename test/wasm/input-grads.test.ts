import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createThreadedWasmBackend, createWasmBackend, type WasmGemms } from "../../runtime/cpu/wasm.js";
import { jsBackend, compileCell, Model, tensor, type Backend } from "../../api/index.js";
import { nodeHost } from "../helpers.js";

// backward(..., { inputGrads: false }): the data needs no gradient (requires_grad=False). The gradients
// that are returned are exactly those of a full backward pass; the inputs' are left out, and the wasm
// backend runs one GEMM fewer per layer-0 direction.
const file = "examples/cells/lstm.cell";
const cell = compileCell(readFileSync(file, "utf8"), { file, host: nodeHost });

async function both(backend: Backend | undefined, layers: number, bidirectional: boolean) {
  const m = new Model(cell, { dims: { D: 5, H: 7 }, seed: 3, layers, bidirectional, backend });
  const [T, B] = [6, 3];
  const data = Float32Array.from({ length: T * B * 5 }, (_, i) => Math.sin(1.7 * i));
  const x = { x: tensor("f32", [T, B, 5], data) };
  const seqLens = new Int32Array([6, 2, 4]);
  const gemms = (backend as { gemms?: WasmGemms } | undefined)?.gemms;
  const calls = () => gemms?.calls ?? 0;
  let c0 = calls();
  const full = m.backward(m.forward(x, { seqLens }));
  const fullCalls = calls() - c0;
  c0 = calls();
  const part = m.backward(m.forward(x, { seqLens }), {}, { inputGrads: false });
  return { full, part, saved: fullCalls - (calls() - c0) };
}

describe("backward without the inputs' gradients", () => {
  const cases: [string, () => Promise<Backend | undefined>][] = [
    ["js", async () => jsBackend],
    ["wasm", async () => createWasmBackend()],
    ["wasm, 2 threads", () => createThreadedWasmBackend(2)],
  ];
  for (const [name, make] of cases)
    for (const [layers, bidi] of [
      [1, false],
      [2, true],
    ] as const)
      it(`${name}: ${layers} layer(s)${bidi ? ", bidirectional" : ""}`, async () => {
        const { full, part, saved } = await both(await make(), layers, bidi);
        expect(full.inputs.size).toBe(1);
        expect(part.inputs.size).toBe(0);
        expect([...part.params.keys()]).toEqual([...full.params.keys()]);
        for (const [k, g] of full.params)
          expect(Array.from(part.params.get(k)!.data), k).toEqual(Array.from(g.data));
        for (const [k, g] of full.initialStates)
          expect(Array.from(part.initialStates.get(k)!.data), k).toEqual(Array.from(g.data));
        // One dX GEMM per direction of the first layer is skipped on wasm.
        if (name.startsWith("wasm")) expect(saved).toBe(bidi ? 2 : 1);
      });
});

describe("a step that reads the inputs' gradient keeps it", () => {
  // For W @ (x + c) the gradient of c is the batch sum of the gradient of x, which the after-loop GEMM
  // writes in place: that GEMM must run even when the inputs' gradients are not wanted.
  const src = `cell shifted {
  input x[D]
  state h[H]
  param W : [H, D] ~ uniform
  param U : [H, H] ~ uniform
  param c : [D] ~ uniform

  h' = tanh(W @ (x + c) + U @ h)
  output h'
}`;
  const shifted = compileCell(src, { file: "shifted.cell", host: nodeHost });
  it("the gradient of c matches a full backward pass (arenas full of NaN)", async () => {
    const wasm = createWasmBackend();
    wasm.gemms.arenaFill = NaN;
    const m = new Model(shifted, { dims: { D: 4, H: 6 }, seed: 5, backend: wasm });
    const x = {
      x: tensor(
        "f32",
        [5, 3, 4],
        Float32Array.from({ length: 60 }, (_, i) => Math.cos(i)),
      ),
    };
    const full = m.backward(m.forward(x));
    const part = m.backward(m.forward(x), {}, { inputGrads: false });
    expect(part.inputs.size).toBe(0);
    for (const [k, g] of full.params)
      expect(Array.from(part.params.get(k)!.data), k).toEqual(Array.from(g.data));
    expect(part.params.get("c")!.data.every(Number.isFinite)).toBe(true);
  });
});
