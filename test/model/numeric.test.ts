import { describe, expect, it } from "vitest";
import type { NetworkArtifact } from "../../artifact/network.js";
import { compileNetwork } from "../../compiler/network/compile.js";
import { loadArtifact } from "../../runtime/cell.js";
import { renderAll } from "../../compiler/diag/diagnostic.js";
import { Model } from "../../runtime/model.js";
import type { Tensor } from "../../runtime/tensor.js";
import { nodeHost } from "../helpers.js";

/**
 * The compiled readout against a hand computation in f64, and its gradients against central finite
 * differences: the readout is a stateless cell run by the runtime's Model over [T, B, features].
 */
const SOURCE = `
import "../../examples/cells/lstm.cell"
model zzqLinear {
  input x[D]
  cell lstm, bidirectional
  param zzqWy : [O, 2*H] ~ uniform
  param by : [O] = 0
  readout y = zzqWy @ h + by
  loss mse(y, target)
}
model deep {
  input x[D]
  cell lstm
  param Wk : [K, H] ~ xavier
  param bk : [K] = 0
  param Wy : [O, K] ~ xavier
  param by : [O] = 0
  readout on last y = tanh(Wy @ tanh(Wk @ h + bk) + by)
  loss mse(y, target)
}
`;

function specOf(model: string, dims: Record<string, number>, source = SOURCE): NetworkArtifact {
  const r = compileNetwork(source, {
    file: "test/model/numeric.cell",
    host: nodeHost,
    choice: { model },
    dims,
  });
  if (!r.artifact) throw new Error(renderAll(r.diagnostics, r.sources));
  return r.artifact;
}

function random(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    return a / 2 ** 32 - 0.5;
  };
}
const tensor = (shape: number[], rnd: () => number): Tensor => {
  const data = new Float64Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rnd();
  return { dtype: "f64", shape, data };
};
const f64 = (t: Tensor) => t.data as Float64Array;

/** y = W v + b for each row, in plain f64. */
function affine(W: Tensor, v: Float64Array, b: Tensor): Float64Array {
  const [M, K] = W.shape as [number, number];
  const out = new Float64Array(M);
  for (let m = 0; m < M; m++) {
    let s = f64(b)[m]!;
    for (let k = 0; k < K; k++) s += f64(W)[m * K + k]! * v[k]!;
    out[m] = s;
  }
  return out;
}

/** Runs the readout over h [T, B, F]; returns y and the loss sum(G * y) with its gradients. */
function run(spec: NetworkArtifact, params: Map<string, Tensor>, h: Tensor, G: Tensor) {
  const model = new Model(loadArtifact(spec.readout), { dtype: "f64", params, dims: spec.readoutSizes });
  const fwd = model.forward({ h });
  const y = fwd.outputs.get("y")!;
  let loss = 0;
  for (let i = 0; i < f64(y).length; i++) loss += f64(y)[i]! * f64(G)[i]!;
  const grads = model.backward(fwd, { outputs: { y: G } });
  return { y, loss, grads };
}

/** Central differences of the loss in every entry of every parameter. */
function checkGradients(spec: NetworkArtifact, params: Map<string, Tensor>, h: Tensor, G: Tensor): number {
  const { grads } = run(spec, params, h, G);
  let worst = 0;
  const eps = 1e-6;
  for (const [name, p] of params) {
    const g = f64(grads.params.get(name)!);
    for (let i = 0; i < f64(p).length; i++) {
      const keep = f64(p)[i]!;
      f64(p)[i] = keep + eps;
      const up = run(spec, params, h, G).loss;
      f64(p)[i] = keep - eps;
      const down = run(spec, params, h, G).loss;
      f64(p)[i] = keep;
      const fd = (up - down) / (2 * eps);
      worst = Math.max(worst, Math.abs(fd - g[i]!) / Math.max(1, Math.abs(fd)));
    }
  }
  return worst;
}

describe("a model's readout, compiled as a stateless cell", () => {
  const [T, B, H, O, K] = [4, 3, 3, 2, 5];

  it("linear over both directions: y = Wy @ h + by, on every step", () => {
    const spec = specOf("zzqLinear", { D: 2, H, O });
    expect([spec.on, spec.loss.kind, spec.bidirectional, spec.layers]).toEqual(["every", "mse", true, 1]);
    expect(spec.readout.signature.inputs.map((i) => i.name)).toEqual(["h"]);
    const rnd = random(7);
    const params = new Map([
      ["zzqWy", tensor([O, 2 * H], rnd)],
      ["by", tensor([O], rnd)],
    ]);
    const h = tensor([T, B, 2 * H], rnd);
    const G = tensor([T, B, O], rnd);
    const { y, grads } = run(spec, params, h, G);
    expect(y.shape).toEqual([T, B, O]);
    for (let r = 0; r < T * B; r++) {
      const want = affine(
        params.get("zzqWy")!,
        f64(h).subarray(r * 2 * H, (r + 1) * 2 * H),
        params.get("by")!,
      );
      for (let o = 0; o < O; o++) expect(f64(y)[r * O + o]).toBeCloseTo(want[o]!, 12);
    }
    // dL/dh = Wy^T G, by hand.
    const W = f64(params.get("zzqWy")!);
    const gh = f64(grads.inputs.get("h")!);
    for (let r = 0; r < T * B; r++)
      for (let j = 0; j < 2 * H; j++) {
        let s = 0;
        for (let o = 0; o < O; o++) s += W[o * 2 * H + j]! * f64(G)[r * O + o]!;
        expect(gh[r * 2 * H + j]).toBeCloseTo(s, 12);
      }
    expect(checkGradients(spec, params, h, G)).toBeLessThan(1e-7);
  });

  it("nonlinear: y = tanh(Wy @ tanh(Wk @ h + bk) + by)", () => {
    const spec = specOf("deep", { D: 2, H, O, K });
    expect(spec.on).toBe("last");
    const rnd = random(11);
    const params = new Map([
      ["Wk", tensor([K, H], rnd)],
      ["bk", tensor([K], rnd)],
      ["Wy", tensor([O, K], rnd)],
      ["by", tensor([O], rnd)],
    ]);
    for (const p of params.values()) for (let i = 0; i < p.data.length; i++) f64(p)[i]! *= 3; // past tanh's linear part
    const h = tensor([T, B, H], rnd);
    const G = tensor([T, B, O], rnd);
    const { y } = run(spec, params, h, G);
    for (let r = 0; r < T * B; r++) {
      const z = affine(params.get("Wk")!, f64(h).subarray(r * H, (r + 1) * H), params.get("bk")!).map(
        Math.tanh,
      );
      const want = affine(params.get("Wy")!, z, params.get("by")!).map(Math.tanh);
      for (let o = 0; o < O; o++) expect(f64(y)[r * O + o]).toBeCloseTo(want[o]!, 12);
    }
    expect(checkGradients(spec, params, h, G)).toBeLessThan(1e-7);
  });

  it("the cell's outputs feed the readout as they are: names and sizes agree (bidirectional, 2 layers)", () => {
    const src = SOURCE.replace("cell lstm, bidirectional", "cell lstm, layers 2, bidirectional");
    const spec = specOf("zzqLinear", { D: 2, H, O }, src);
    const cell = new Model(loadArtifact(spec.cell), {
      layers: spec.layers,
      bidirectional: spec.bidirectional,
      dims: spec.sizes[0],
      dtype: "f64",
    });
    const fwd = cell.forward({ [spec.cell.signature.inputs[0]!.name]: tensor([T, B, 2], random(3)) });
    const h = fwd.outputs.get(spec.readout.signature.inputs[0]!.name)!;
    expect(h.shape).toEqual([T, B, 2 * H]);
    const readout = new Model(loadArtifact(spec.readout), { dims: spec.readoutSizes, dtype: "f64" });
    expect(readout.forward({ h }).outputs.get("y")!.shape).toEqual([T, B, O]);
  });

  it("keeps the file's names out of the generated code", () => {
    const spec = specOf("zzqLinear", { D: 2, H, O });
    for (const code of [spec.readout.js, spec.readout.wgsl, spec.loss, spec.optimizer])
      expect(JSON.stringify(code)).not.toMatch(/zzq/);
    expect(spec.readout.signature.params.map((p) => p.name)).toEqual(["zzqWy", "by"]);
  });
});
