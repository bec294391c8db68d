// f16 storage on WebGPU (ModelOptions.precision "f16"): the tape and the packed weights in float16, every
// value computed and accumulated in float32, against the float32 reference (the JS backend). Float16 keeps
// 11 significant bits: each stored value is off by at most 2^-11 relative; through a few steps of a cell
// and a backward pass the results stay within a few parts in a thousand of the largest value.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { jsBackend, compileCell, Model, tensor, type Tensor } from "../../api/index.js";
import { createNodeWebGpuBackend } from "../../runtime/webgpu/node.js";
import { Rng } from "../../runtime/init.js";
import { hasWebGpu, webgpu } from "./setup.js";

/** Worst |a - r| relative to the largest |r| of each tensor, over every output, final state and gradient. */
async function worst(name: string, dims: { D: number; H: number }, T: number, B: number, layers = 1) {
  const backend = (await webgpu())!;
  const cell = compileCell(readFileSync(`examples/cells/${name}.cell`, "utf8"));
  const cpu = new Model(cell, { dims, seed: 3, layers, backend: jsBackend });
  const gpu = new Model(cell, { params: cpu.params, layers, backend, precision: "f16" });
  const rng = new Rng(4);
  const x = tensor(
    "f32",
    [T, B, dims.D],
    Array.from({ length: T * B * dims.D }, () => 2 * rng.next() - 1),
  );
  const seqLens = Array.from({ length: B }, (_, b) => T - (b % 2));
  const a = cpu.forward({ x }, { seqLens });
  const b = await gpu.forwardAsync({ x }, { seqLens });
  const ga = cpu.backward(a);
  const gb = await gpu.backwardAsync(b);
  const pairs: [Tensor, Tensor][] = [
    ...[...a.outputs].map(([n, t]) => [t, b.outputs.get(n)!] as [Tensor, Tensor]),
    ...[...a.finalStates].map(([n, t]) => [t, b.finalStates.get(n)!] as [Tensor, Tensor]),
    ...[...ga.params].map(([n, t]) => [t, gb.params.get(n)!] as [Tensor, Tensor]),
    ...[...ga.inputs].map(([n, t]) => [t, gb.inputs.get(n)!] as [Tensor, Tensor]),
  ];
  let w = 0;
  let any = 0;
  for (const [r, q] of pairs) {
    const scale = Math.max(1e-3, ...Array.from(r.data, Math.abs));
    for (let i = 0; i < r.data.length; i++) {
      const d = Math.abs(q.data[i]! - r.data[i]!);
      w = Math.max(w, d / scale);
      any = Math.max(any, d);
    }
  }
  return { worst: w, differs: any > 0 };
}

const half = hasWebGpu && !!(await webgpu())!.f16;
if (hasWebGpu && !half) console.warn("f16 storage tests skipped: this WebGPU adapter has no 'shader-f16'");

describe.skipIf(!hasWebGpu)("f16 storage of the tape and the weights", () => {
  it("is refused where the adapter has no 'shader-f16', and on the CPU backends", async () => {
    const cell = compileCell(readFileSync("examples/cells/lstm.cell", "utf8"));
    const noHalf = await createNodeWebGpuBackend({ f16: false });
    expect(noHalf.f16).toBe(false);
    expect(() => new Model(cell, { dims: { D: 2, H: 2 }, backend: noHalf, precision: "f16" })).toThrow(
      /precision f16 needs the WebGPU adapter's 'shader-f16' feature, which this adapter does not have/,
    );
    expect(() => new Model(cell, { dims: { D: 2, H: 2 }, backend: jsBackend, precision: "f16" })).toThrow(
      /precision f16 .* runs on the webgpu backend, not on js/,
    );
  });

  for (const [name, layers] of [
    ["lstm", 1],
    ["gru", 2],
    ["layernorm_lstm", 1],
    ["mgu", 1],
  ] as const)
    it.skipIf(!half)(
      `${name}${layers > 1 ? `, ${layers} layers` : ""}: within float16's precision of float32`,
      async () => {
        const r = await worst(name, { D: 13, H: 36 }, 6, 5, layers);
        // Stored in float16 indeed (not bit-identical to float32), and within 8 float16 roundings (2^-11 each) of the largest value.
        expect(r.differs).toBe(true);
        expect(r.worst).toBeLessThan(8 * 2 ** -11);
      },
    );
  it.skipIf(!half)("half the device memory for the tape and the weights", async () => {
    const backend = (await webgpu())!;
    const cell = compileCell(readFileSync("examples/cells/lstm.cell", "utf8"));
    const x = tensor("f32", [20, 8, 16]);
    const bytes = async (precision: "f32" | "f16") => {
      const m = new Model(cell, { dims: { D: 16, H: 32 }, seed: 1, backend, precision });
      await m.forwardAsync({ x });
      return Math.max(
        ...[...(m as unknown as { runners: Map<string, { deviceBytes: number }> }).runners.values()].map(
          (r) => r.deviceBytes,
        ),
      );
    };
    expect(await bytes("f16")).toBeLessThan(0.85 * (await bytes("f32")));
  });
});
