// Scan states on WebGPU (runtime/webgpu/scan.ts): the chunked scan against the JS backend's step loop, and
// a training step's dispatches independent of T.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileCell, jsBackend, Model, tensor } from "../../api/index.js";
import { Rng } from "../../runtime/init.js";
import type { GpuSequenceRunner } from "../../runtime/webgpu/runner.js";
import { mismatches } from "../compare.js";
import { nodeHost, passTensors } from "../helpers.js";
import { hasWebGpu, webgpu } from "./setup.js";

const source = (name: string) => readFileSync(`examples/cells/${name}.cell`, "utf8");

async function pass(model: Model, T: number, B: number, lens: number[] | undefined) {
  const rng = new Rng(4);
  const rand = (shape: number[]) =>
    tensor(
      "f32",
      shape,
      Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 2 * rng.next() - 1),
    );
  const x = rand([T, B, model.sizes[0]!.D!]);
  const inits = new Map([["h", rand([B, model.sizes[0]!.H!])]]);
  const f = await model.forwardAsync({ x }, { seqLens: lens, initialStates: inits });
  const up = new Map([...f.outputs].map(([n, t]) => [n, rand([...t.shape])]));
  const g = await model.backwardAsync(f, { outputs: up, finalStates: new Map([["h", rand([B, 64])]]) });
  return passTensors(f, g);
}

describe.skipIf(!hasWebGpu)("scans on WebGPU", () => {
  // B * H = 1024 lanes: the scan runs in chunks of several steps (T = 300 over 32 chunks).
  for (const name of ["mingru", "minlstm"])
    it(`${name}: the chunked scan matches the JS step loop, with sequence lengths`, async () => {
      const backend = (await webgpu())!;
      const dims = { D: 4, H: 64 };
      const cpu = new Model(compileCell(source(name), { host: nodeHost, scan: false }), { dims, seed: 1, backend: jsBackend }); // prettier-ignore
      const gpu = new Model(compileCell(source(name), { host: nodeHost }), { params: cpu.params, backend });
      for (const lens of [undefined, [300, 17, 0, 299, ...Array(12).fill(150)]]) {
        const a = await pass(gpu, 300, 16, lens);
        const b = await pass(cpu, 300, 16, lens);
        expect(mismatches(a, b, 1e-4, 1e-3)).toEqual([]);
      }
    });

  it("a training step's dispatches do not grow with T", async () => {
    const backend = (await webgpu())!;
    const cell = compileCell(source("mingru"), { host: nodeHost });
    const dispatches = async (T: number) => {
      const model = new Model(cell, { dims: { D: 4, H: 64 }, seed: 1, backend });
      await pass(model, T, 16, undefined);
      const runners = (model as unknown as { runners: Map<string, GpuSequenceRunner> }).runners;
      return [...runners.values()].reduce((a, r) => a + r.dispatches, 0);
    };
    const [short, long] = [await dispatches(8), await dispatches(512)];
    expect(short).toBe(long);
    expect(short).toBeLessThan(40);
  });
});
