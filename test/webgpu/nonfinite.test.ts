import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { jsBackend, compileCell, Model, tensor, type Tensor } from "../../api/index.js";
import { hasWebGpu, webgpu } from "./setup.js";

/** Equal non-finite pattern (NaN where NaN, the same infinities), finite values close. */
function sameNonFinite(a: Tensor, b: Tensor): string[] {
  const bad: string[] = [];
  a.data.forEach((x, i) => {
    const y = b.data[i]!;
    const ok = Number.isNaN(x)
      ? Number.isNaN(y)
      : !Number.isFinite(x)
        ? x === y
        : Number.isFinite(y) && Math.abs(x - y) <= 1e-4 + 1e-3 * Math.abs(x);
    if (!ok && bad.length < 5) bad.push(`[${i}] js ${x} webgpu ${y}`);
  });
  return bad;
}

describe.skipIf(!hasWebGpu)("WebGPU: non-finite values and long sequences", () => {
  for (const name of ["rnn", "lstm", "gru", "indrnn"])
    it(`${name}: a NaN and an infinity in the input give what JS gives, forward and backward`, async () => {
      const backend = (await webgpu())!;
      const cell = compileCell(readFileSync(`examples/cells/${name}.cell`, "utf8"));
      const cpu = new Model(cell, { dims: { D: 3, H: 4 }, seed: 2, backend: jsBackend });
      const gpu = new Model(cell, { params: cpu.params, backend });
      const data = Float32Array.from({ length: 4 * 3 * 3 }, (_, i) => Math.sin(i));
      data[4] = NaN; // row 1 from step 0 on
      data[3 * 3 * 2 + 2 * 3] = Infinity; // row 2 from step 2 on
      data[3 * 3 * 3 + 2] = -Infinity; // row 0 at the last step
      const x = tensor("f32", [4, 3, 3], data);
      const a = cpu.forward({ x });
      const b = await gpu.forwardAsync({ x });
      const h = a.outputs.get("h")!;
      expect(h.data.some((v) => Number.isNaN(v))).toBe(true);
      expect(sameNonFinite(h, b.outputs.get("h")!)).toEqual([]);
      const ga = cpu.backward(a);
      const gb = await gpu.backwardAsync(b);
      for (const [k, v] of ga.inputs) expect(sameNonFinite(v, gb.inputs.get(k)!), k).toEqual([]);
    });

  it("a sequence of 40,000 steps (80,000 dispatches, several submissions) runs and matches JS", async () => {
    const backend = (await webgpu())!;
    const cell = compileCell(readFileSync("examples/cells/rnn.cell", "utf8"));
    const cpu = new Model(cell, { dims: { D: 1, H: 2 }, seed: 4, backend: jsBackend });
    const gpu = new Model(cell, { params: cpu.params, backend });
    const T = 40_000;
    const x = tensor(
      "f32",
      [T, 1, 1],
      Float32Array.from({ length: T }, (_, i) => Math.sin(i * 0.1)),
    );
    const a = cpu.forward({ x }, { train: false });
    const b = await gpu.forwardAsync({ x }, { train: false });
    expect(sameNonFinite(a.finalStates.get("h")!, b.finalStates.get("h")!)).toEqual([]);
  });
});
