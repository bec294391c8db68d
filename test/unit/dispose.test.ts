// Model.dispose() and the arrays a model writes again (runtime/model.ts `spare`): a pass that reuses arrays
// gives what a pass on a new model gives, bit for bit; reused arrays are ones given back, never ones a caller
// still holds.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileCell, jsBackend, Model, tensor, type Tensor } from "../../api/index.js";
import { createThreadedWasmBackend, createWasmBackend } from "../../runtime/cpu/wasm.js";
import type { Backend } from "../../runtime/backend.js";
import { nodeHost, passTensors } from "../helpers.js";

const file = "examples/cells/gru.cell";
const cell = compileCell(readFileSync(file, "utf8"), { file, host: nodeHost });
const [T, B, D, H] = [5, 3, 5, 5]; // D = H: inputs, outputs and their gradients all of one length
const input = (k: number) =>
  new Map([
    [
      "x",
      tensor(
        "f32",
        [T, B, D],
        Float32Array.from({ length: T * B * D }, (_, i) => Math.sin(i + k)),
      ),
    ],
  ]);
const copyOf = (m: Map<string, Tensor>) =>
  new Map([...m].map(([n, t]) => [n, { ...t, data: Float32Array.from(t.data) }] as const));
const upstream = (f: { outputs: Map<string, Tensor> }) =>
  new Map([...f.outputs].map(([n, t]) => [n, { ...t, data: t.data.map((_, i) => Math.cos(i)) }] as const));

const backends: [string, () => Promise<Backend> | Backend][] = [
  ["js", () => jsBackend],
  ["wasm", () => createWasmBackend()],
  ["wasm, 2 threads", () => createThreadedWasmBackend(2)],
];

describe("arrays written again after dispose()", () => {
  for (const [name, make] of backends)
    for (const [layers, bidirectional] of [
      [1, false],
      [3, false],
      [2, true],
    ] as const)
      it(`${name}: ${layers} layer(s)${bidirectional ? ", bidirectional" : ""}, seq_lens: every step as on a new model`, async () => {
        const backend = await make();
        const opts = { dims: { D, H }, seed: 3, layers, bidirectional, backend };
        const seqLens = [T, T - 2, 1];
        const pass = async (model: Model, k: number, dispose: boolean) => {
          const x = input(k);
          const f = await model.forwardAsync(x, { seqLens });
          const up = upstream(f);
          const given = [copyOf(x), copyOf(up)];
          const g = await model.backwardAsync(f, { outputs: up });
          const all = copyOf(passTensors(f, g));
          if (dispose) {
            model.dispose(f);
            model.dispose(g);
          }
          return { all, f, g, caller: [x, up], given };
        };
        const model = new Model(cell, opts);
        const first = await pass(model, 0, true);
        let last = first;
        for (let k = 1; k < 4; k++) {
          const got = await pass(model, k, true);
          // The caller's arrays (inputs, upstream gradients) are read, never given to a later pass.
          expect(last.caller).toEqual(last.given);
          last = got;
          const want = await pass(new Model(cell, { ...opts, params: model.params }), k, false);
          expect(got.all).toEqual(want.all);
          if (k === 1 && layers === 1) {
            // The outputs and input gradients went into the arrays given back (all of one length here).
            const back = [first.f.outputs.get("h")!.data, first.g.inputs.get("x")!.data];
            const reused = [got.f.outputs.get("h")!.data, got.g.inputs.get("x")!.data];
            expect(new Set([...back, ...reused]).size).toBe(2);
          }
        }
      });

  it("a result not given back is never written again, and a result given back twice is reused once", async () => {
    const model = new Model(cell, { dims: { D, H }, seed: 3, layers: 2, backend: createWasmBackend() });
    const kept = await model.forwardAsync(input(0));
    const before = copyOf(kept.outputs);
    const other = await model.forwardAsync(input(1));
    model.dispose(other);
    model.dispose(other);
    const [a, b] = [await model.forwardAsync(input(2)), await model.forwardAsync(input(3))];
    expect(kept.outputs).toEqual(before);
    expect(a.outputs.get("h")!.data).not.toBe(b.outputs.get("h")!.data);
    expect(a.outputs.get("h")!.data).not.toBe(kept.outputs.get("h")!.data);
    expect(b.outputs.get("h")!.data).not.toBe(kept.outputs.get("h")!.data);
  });

  it("refuses what is not a result", () => {
    const model = new Model(cell, { dims: { D, H }, seed: 3, backend: jsBackend });
    for (const bad of [null, 3, {}, { outputs: [] }])
      expect(() => model.dispose(bad as never)).toThrow(/dispose\(\) takes a result/);
  });
});
