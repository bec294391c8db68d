import { describe, expect, it } from "vitest";
import { jsBackend, compileCell, Model, tensor } from "../../api/index.js";
import { hasWebGpu, webgpu } from "../webgpu/setup.js";

/** Constants that fold to values outside float32 must still give WGSL that compiles (it used not to). */
const CASES = {
  "float32's largest value": "h' = x * 3.4028235e38 * 0.5 + h",
  "infinity from exp(1000)": "h' = max(x, -exp(1000)) + h",
  "NaN from 0 / 0 and log(0) * 0": "h' = x + h + min(0 / 0, 0) * 0 + log(0) * 0",
  "an underflow to zero": "h' = x * 1e-50 + h",
};

describe.skipIf(!hasWebGpu)("WGSL constants outside float32 compile and run", () => {
  for (const [what, eq] of Object.entries(CASES))
    it(what, async () => {
      const cell = compileCell(`cell c {\n  input x[H]\n  state h[H]\n  ${eq}\n  output h'\n}\n`);
      const cpu = new Model(cell, { dims: { H: 3 }, seed: 1, backend: jsBackend });
      const gpu = new Model(cell, { params: cpu.params, dims: { H: 3 }, backend: (await webgpu())! });
      const x = tensor("f32", [2, 2, 3], [0.1, -0.2, 0.3, 0.4, 0.5, -0.6, 0.7, 0.8, 0.9, 1, 1.1, 1.2]);
      const a = cpu.forward({ x }).outputs.get("h")!.data;
      const b = (await gpu.forwardAsync({ x })).outputs.get("h")!.data;
      expect(b.length).toBe(a.length);
      // Where JS gives a finite value, WebGPU must give the same float32 result (relative error).
      for (let i = 0; i < a.length; i++)
        if (Number.isFinite(a[i]))
          expect(Math.abs(b[i]! - a[i]!)).toBeLessThanOrEqual(1e-5 * Math.abs(a[i]!) + 1e-6);
    });
});
