import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkProgram } from "../../compiler/driver.js";
import { jsBackend, compileCell, Model, tensor, type Tensor } from "../../api/index.js";
import { Rng } from "../../runtime/init.js";
import { builtinCellFiles, nodeHost } from "../helpers.js";
import { hasWebGpu, webgpu } from "./setup.js";
import { mismatches } from "../compare.js";
import { CASES, DIM_CASES, caseCell } from "../gradcheck/cases.js";

/** WebGPU against the JS backend: forward outputs, final states and every gradient, float32 tolerance. */
export async function parity(
  file: string,
  name: string,
  opts: { layers?: number; bidirectional?: boolean },
  source?: string,
) {
  const backend = (await webgpu())!;
  const cell = compileCell(source ?? readFileSync(file, "utf8"), { file, cell: name, host: nodeHost });
  const D = name === "sru" ? 5 : 3;
  const cpu = new Model(cell, { dims: { D, H: 5 }, seed: 3, ...opts, backend: jsBackend });
  const gpu = new Model(cell, { params: cpu.params, backend, ...opts });
  const rng = new Rng(8);
  const T = 4;
  const B = 3;
  const x = tensor(
    "f32",
    [T, B, D],
    Array.from({ length: T * B * D }, () => 2 * rng.next() - 1),
  );
  const probe = cpu.forward({ x }, { train: false });
  const inits = new Map(
    [...probe.finalStates].map(([n, t]) => [
      n,
      tensor(
        "f32",
        [...t.shape],
        Array.from(t.data, () => rng.next() - 0.5),
      ),
    ]),
  );
  const up = new Map(
    [...probe.outputs].map(([n, t]) => [
      n,
      tensor(
        "f32",
        [...t.shape],
        Array.from(t.data, () => 2 * rng.next() - 1),
      ),
    ]),
  );
  const fopts = { seqLens: [4, 2, 3], initialStates: inits };
  const a = cpu.forward({ x }, fopts);
  const b = await gpu.forwardAsync({ x }, fopts);
  const ga = cpu.backward(a, { outputs: up });
  const gb = await gpu.backwardAsync(b, { outputs: up });
  // The JS backend is the reference; every output, final state and gradient is compared.
  const named = (f: { outputs: Map<string, Tensor>; finalStates: Map<string, Tensor> }, g: typeof ga) =>
    new Map<string, Tensor>([
      ...[...f.outputs].map(([n, t]) => [`output ${n}`, t] as const),
      ...[...f.finalStates].map(([n, t]) => [`final ${n}`, t] as const),
      ...[...g.params].map(([n, t]) => [`grad ${n}`, t] as const),
      ...[...g.inputs].map(([n, t]) => [`grad ${n}`, t] as const),
      ...[...g.initialStates].map(([n, t]) => [`grad ${n}.init`, t] as const),
    ]);
  return mismatches(named(b, gb), named(a, ga), 2e-5, 2e-4);
}

describe.skipIf(!hasWebGpu)("WebGPU matches the JS backend", () => {
  // Every case also has sequence lengths, initial states and upstream gradients.
  for (const file of builtinCellFiles())
    for (const name of checkProgram(file, nodeHost).cellNames) {
      it(`${name}: one layer`, async () => expect(await parity(file, name, {})).toEqual([]));
      it(`${name}: two stacked layers`, async () =>
        expect(await parity(file, name, { layers: 2 })).toEqual([]));
      it(`${name}: bidirectional`, async () =>
        expect(await parity(file, name, { bidirectional: true })).toEqual([]));
    }
});

describe.skipIf(!hasWebGpu)("WebGPU matches the JS backend on every primitive", () => {
  for (const [op, c] of Object.entries(CASES))
    it(op, async () => expect(await parity("case.cell", "t", {}, caseCell(c.eq))).toEqual([]));
  for (const [name, src] of Object.entries(DIM_CASES))
    it(name, async () => expect(await parity("case.cell", "t", {}, src)).toEqual([]));
});
