import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkProgram } from "../../compiler/driver.js";
import { compileCell, Model, tensor, type Tensor } from "../../runtime/index.js";
import { Rng } from "../../runtime/init.js";
import { builtinCellFiles, nodeHost } from "../helpers.js";
import { hasWebGpu, webgpu } from "./setup.js";
import { CASES, DIM_CASES, caseCell } from "../gradcheck/cases.js";

/** WebGPU against the JS backend: forward outputs, final states and every gradient, float32 tolerance. */
function close(a: Tensor, b: Tensor, what: string, problems: string[]) {
  if (a.shape.join() !== b.shape.join()) return problems.push(`${what}: shape [${a.shape}] vs [${b.shape}]`);
  let worst = 0;
  for (let i = 0; i < a.data.length; i++) {
    const excess = Math.abs(a.data[i]! - b.data[i]!) - (2e-5 + 2e-4 * Math.abs(a.data[i]!));
    worst = Math.max(worst, Number.isNaN(b.data[i]!) ? Infinity : excess);
  }
  if (worst > 0) problems.push(`${what}: off by ${worst}`);
  return 0;
}

export async function parity(
  file: string,
  name: string,
  opts: { layers?: number; bidirectional?: boolean },
  source?: string,
) {
  const backend = (await webgpu())!;
  const cell = compileCell(source ?? readFileSync(file, "utf8"), { file, cell: name, host: nodeHost });
  const D = name === "sru" ? 5 : 3;
  const cpu = new Model(cell, { dims: { D, H: 5 }, seed: 3, ...opts });
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
  const problems: string[] = [];
  for (const [n, t] of a.outputs) close(t, b.outputs.get(n)!, `output ${n}`, problems);
  for (const [n, t] of a.finalStates) close(t, b.finalStates.get(n)!, `final ${n}`, problems);
  for (const [n, t] of ga.params) close(t, gb.params.get(n)!, `grad ${n}`, problems);
  for (const [n, t] of ga.inputs) close(t, gb.inputs.get(n)!, `grad ${n}`, problems);
  for (const [n, t] of ga.initialStates) close(t, gb.initialStates.get(n)!, `grad ${n}.init`, problems);
  return problems;
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
