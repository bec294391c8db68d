// The WebGPU kernels at sizes that span several workgroup tiles (the parity suite's sizes fit in one):
// rows, units and the inner dimension that end inside a tile, with padded rows (D and H not multiples of
// 4), and sizes whose rows need no padding (every GEMM operand read as vec4). Fused GEMMs (one launch per
// forward step: LSTM, GRU; two: MGU), per-step reductions (layer norm) with and without subgroup
// operations, sequence lengths, initial states and upstream gradients; the JS backend is the reference.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { jsBackend, compileCell, Model, tensor, type Tensor } from "../../api/index.js";
import { createNodeWebGpuBackend } from "../../runtime/webgpu/node.js";
import type { WebGpuBackend } from "../../runtime/webgpu/index.js";
import { Rng } from "../../runtime/init.js";
import { hasWebGpu, webgpu } from "./setup.js";
import { mismatches } from "../compare.js";

async function against(
  backend: WebGpuBackend,
  name: string,
  dims: { D: number; H: number },
  T: number,
  B: number,
): Promise<string[]> {
  const cell = compileCell(readFileSync(`examples/cells/${name}.cell`, "utf8"));
  const cpu = new Model(cell, { dims, seed: 3, backend: jsBackend });
  const gpu = new Model(cell, { params: cpu.params, backend });
  const rng = new Rng(9);
  const rand = (shape: number[], scale = 1) =>
    tensor(
      "f32",
      shape,
      Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => scale * (2 * rng.next() - 1)),
    );
  const x = rand([T, B, dims.D]);
  const probe = cpu.forward({ x }, { train: false });
  const initialStates = new Map([...probe.finalStates].map(([n, t]) => [n, rand([...t.shape], 0.5)]));
  const up = new Map([...probe.outputs].map(([n, t]) => [n, rand([...t.shape])]));
  const seqLens = Array.from({ length: B }, (_, b) => T - (b % 3));
  const a = cpu.forward({ x }, { seqLens, initialStates });
  const b = await gpu.forwardAsync({ x }, { seqLens, initialStates });
  const ga = cpu.backward(a, { outputs: up });
  const gb = await gpu.backwardAsync(b, { outputs: up });
  const named = (f: typeof a, g: typeof ga) =>
    new Map<string, Tensor>([
      ...[...f.outputs].map(([n, t]) => [`output ${n}`, t] as const),
      ...[...f.finalStates].map(([n, t]) => [`final ${n}`, t] as const),
      ...[...g.params].map(([n, t]) => [`grad ${n}`, t] as const),
      ...[...g.inputs].map(([n, t]) => [`grad ${n}`, t] as const),
      ...[...g.initialStates].map(([n, t]) => [`grad ${n}.init`, t] as const),
    ]);
  return mismatches(named(b, gb), named(a, ga), 2e-5, 2e-4);
}

describe.skipIf(!hasWebGpu)("WebGPU matches JS across tile edges", () => {
  const shapes = [
    ["padded rows", { D: 21, H: 37 }, 5, 19],
    ["rows of whole vec4s", { D: 32, H: 68 }, 4, 20],
  ] as const;
  for (const cell of ["lstm", "gru", "mgu", "layernorm_lstm"])
    for (const [what, dims, T, B] of shapes)
      it(`${cell}, ${what}: D ${dims.D}, H ${dims.H}, T ${T}, B ${B}`, async () =>
        expect(await against((await webgpu())!, cell, dims, T, B)).toEqual([]));
  it("layer norm's reductions without subgroup operations", async () => {
    const plain = await createNodeWebGpuBackend({ subgroups: false });
    expect(plain.context.subgroups).toBe(false);
    expect(await against(plain, "layernorm_lstm", { D: 21, H: 37 }, 3, 5)).toEqual([]);
  });
});
