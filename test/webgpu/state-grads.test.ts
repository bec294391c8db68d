import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { jsBackend, compileCell, Model, tensor } from "../../api/index.js";
import type { Backend } from "../../runtime/model.js";
import { nodeHost } from "../helpers.js";
import { hasWebGpu, webgpu } from "./setup.js";

describe.skipIf(!hasWebGpu)("WebGPU: per-step state gradients", () => {
  it("match the JS backend's (two layers, both directions, sequence lengths)", async () => {
    const file = "examples/cells/lstm.cell";
    const cell = compileCell(readFileSync(file, "utf8"), { file, host: nodeHost });
    const make = (backend?: Backend) =>
      new Model(cell, { backend, dims: { D: 2, H: 3 }, layers: 2, bidirectional: true, seed: 4 });
    const [T, B] = [5, 3];
    const x = tensor(
      "f32",
      [T, B, 2],
      Float32Array.from({ length: T * B * 2 }, (_, i) => Math.sin(i)),
    );
    const seqLens = [5, 2, 0];
    const js = make(jsBackend);
    const want = js.backward(js.forward({ x }, { seqLens }), {}, { stateGrads: true }).stateSteps!;
    const gpu = make((await webgpu())!);
    const got = (
      await gpu.backwardAsync(await gpu.forwardAsync({ x }, { seqLens }), {}, { stateGrads: true })
    ).stateSteps!;
    expect([...got.keys()]).toEqual([...want.keys()]);
    for (const [n, t] of want) {
      expect(got.get(n)!.shape).toEqual(t.shape);
      expect(t.data.some((v) => v !== 0)).toBe(true);
      const g = got.get(n)!.data;
      t.data.forEach((v, i) =>
        expect(Math.abs(g[i]! - v), `${n}[${i}]`).toBeLessThan(1e-5 * (1 + Math.abs(v))),
      );
    }
  });
});
