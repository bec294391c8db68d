import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createThreadedWasmBackend, createWasmBackend } from "../../runtime/cpu/wasm.js";
import { compileCell, Model, tensor, type Backend } from "../../api/index.js";
import { nodeHost } from "../helpers.js";

// Streaming on the wasm backend: a step at a time (T = 1 per call, a plan of its own) gives what the
// whole sequence gives, on one thread and on two, with stacked layers; for minGRU, a scan of one step.
const cell = (name: string) => {
  const file = `examples/cells/${name}.cell`;
  return compileCell(readFileSync(file, "utf8"), { file, host: nodeHost });
};

describe("streaming on the wasm backend", () => {
  const cases: [string, () => Promise<Backend>][] = [
    ["1 thread", async () => createWasmBackend()],
    [
      "2 threads, every kernel divided",
      async () => {
        const b = await createThreadedWasmBackend(2);
        b.gemms.splitMin = 0;
        b.gemms.gemmSplitMin = 0;
        return b;
      },
    ],
  ];
  for (const [name, make] of cases)
    for (const cellName of ["gru", "mingru"])
      it(`${cellName}, ${name}: step by step equals the whole sequence`, async () => {
        const backend = await make();
        const model = new Model(cell(cellName), { dims: { D: 3, H: 9 }, seed: 2, layers: 2, backend });
        const [T, B] = [7, 5];
        const data = Float32Array.from({ length: T * B * 3 }, (_, i) => Math.sin(0.9 * i));
        const whole = model.forward({ x: tensor("f32", [T, B, 3], data) }, { train: false });
        const s = model.stream(B);
        for (let t = 0; t < T; t++) {
          const out = s.step({ x: tensor("f32", [B, 3], data.slice(t * B * 3, (t + 1) * B * 3)) });
          const want = whole.outputs.get("h")!.data.slice(t * B * 9, (t + 1) * B * 9);
          expect(Array.from(out.get("h")!.data), `t=${t}`).toEqual(Array.from(want));
        }
        for (const [k, v] of whole.finalStates)
          expect(Array.from(s.currentStates().get(k)!.data), k).toEqual(Array.from(v.data));
      });
});
