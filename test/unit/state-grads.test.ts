import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileCell, Model, tensor, type Tensor } from "../../api/index.js";
import { createWasmBackend } from "../../runtime/cpu/wasm.js";
import { jsBackend, type Backend } from "../../runtime/model.js";
import { Rng } from "../../runtime/init.js";
import { nodeHost } from "../helpers.js";

// Per-step state gradients (Model.backward's stateGrads) against central finite differences in float64.
// The reference perturbs the state after step t by splitting that direction's run at t: steps 0..t, the
// perturbation, then the rest from the perturbed state (initialStates). rnn, lstm and gru all end in
// `output h'`, so the output at t is the state h after step t and moves with it.
const T = 5;
const B = 3;
const D = 2;
const H = 3;
const load = (name: string) =>
  compileCell(readFileSync(`examples/cells/${name}.cell`, "utf8"), {
    file: `examples/cells/${name}.cell`,
    host: nodeHost,
  });

const random = (rng: Rng, n: number, scale = 1) =>
  Float64Array.from({ length: n }, () => scale * (2 * rng.next() - 1));
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

/** Each row's first lens[b] steps reversed (the reverse direction's view of a sequence). */
function reverseRows(x: Float64Array, F: number, lens: readonly number[]): Float64Array {
  const out = x.slice();
  for (let b = 0; b < B; b++)
    for (let t = 0; t < lens[b]!; t++)
      for (let k = 0; k < F; k++) out[(t * B + b) * F + k] = x[((lens[b]! - 1 - t) * B + b) * F + k]!;
  return out;
}

interface Perturbation {
  l: number;
  d: number;
  state: string;
  t: number; // the direction's own step
  b: number;
  k: number;
  eps: number;
}

/** The loss sum(dY * outputs) + sum(dF * finals) of the stacked model, built from one-direction models. */
function referenceLoss(
  model: Model,
  parts: Model[][],
  x: Float64Array,
  lens: readonly number[],
  dY: Float64Array,
  dF: Map<string, Float64Array>,
  p?: Perturbation,
): number {
  let X = x;
  let F = D;
  let loss = 0;
  for (let l = 0; l < model.layers; l++) {
    const outs: Float64Array[] = [];
    for (let d = 0; d < model.directions; d++) {
      const m = parts[l]![d]!;
      const xin = d ? reverseRows(X, F, lens) : X;
      const r = runSplit(m, xin, F, lens, p && p.l === l && p.d === d ? p : undefined);
      outs.push(d ? reverseRows(r.y, H, lens) : r.y);
      for (const [s, v] of r.finals) loss += dot(dF.get(model.name(l, d, s))!, v);
    }
    X = new Float64Array(T * B * H * outs.length);
    for (let row = 0; row < T * B; row++)
      outs.forEach((o, d) => X.set(o.subarray(row * H, (row + 1) * H), (row * outs.length + d) * H));
    F = H * outs.length;
  }
  return loss + dot(dY, X);
}

function runSplit(m: Model, x: Float64Array, F: number, lens: readonly number[], p?: Perturbation) {
  const fwd = (from: number, to: number, ls: number[], inits?: Map<string, Tensor>) => {
    const r = m.forward(
      { x: tensor("f64", [to - from, B, F], x.slice(from * B * F, to * B * F)) },
      { seqLens: ls, initialStates: inits, train: false },
    );
    return { y: r.outputs.get("h")!.data as Float64Array, finals: r.finalStates };
  };
  if (!p) {
    const r = fwd(0, T, [...lens]);
    return { y: r.y, finals: new Map([...r.finals].map(([n, t]) => [n, t.data as Float64Array])) };
  }
  const t1 = p.t + 1;
  const a = fwd(
    0,
    t1,
    lens.map((n) => Math.min(n, t1)),
  );
  const s = a.finals.get(p.state)!.data as Float64Array;
  s[p.b * H + p.k] += p.eps;
  if (p.state === "h") a.y[(p.t * B + p.b) * H + p.k] += p.eps;
  if (t1 === T)
    return { y: a.y, finals: new Map([...a.finals].map(([n, v]) => [n, v.data as Float64Array])) };
  const rest = fwd(
    t1,
    T,
    lens.map((n) => Math.max(n - t1, 0)),
    a.finals,
  );
  const y = new Float64Array(T * B * H);
  y.set(a.y);
  y.set(rest.y, t1 * B * H);
  return { y, finals: new Map([...rest.finals].map(([n, v]) => [n, v.data as Float64Array])) };
}

function setup(name: string, layers: number, bidirectional: boolean, seed: number, backend?: Backend) {
  const cell = load(name);
  const dtype = backend ? "f32" : "f64";
  const model = new Model(cell, { dtype, dims: { D, H }, layers, bidirectional, seed, backend });
  // Larger parameters than the initialisers give, so that gates leave their linear range.
  const rng = new Rng(seed + 1);
  for (const t of model.params.values())
    for (let i = 0; i < t.data.length; i++) t.data[i] += 0.4 * (2 * rng.next() - 1);
  return { cell, model, rng };
}

function check(name: string, layers: number, bidirectional: boolean, lens: number[]) {
  const { cell, model, rng } = setup(name, layers, bidirectional, 5);
  const parts = Array.from({ length: layers }, (_, l) =>
    Array.from({ length: model.directions }, (_, d) => {
      const params = new Map<string, Tensor>();
      for (const p of cell.signature.params) params.set(p.name, model.params.get(model.name(l, d, p.name))!);
      return new Model(cell, { dtype: "f64", params });
    }),
  );
  const x = random(rng, T * B * D);
  const fwd = model.forward({ x: tensor("f64", [T, B, D], x) }, { seqLens: lens });
  const dY = random(rng, T * B * H * model.directions);
  const dF = new Map([...fwd.finalStates].map(([n, t]) => [n, random(rng, t.data.length)]));
  const g = model.backward(
    fwd,
    { outputs: { h: tensor("f64", [T, B, H * model.directions], dY) }, finalStates: new Map() },
    { stateGrads: true },
  );
  // finalStates given through a map of tensors
  const g2 = model.backward(
    fwd,
    {
      outputs: { h: tensor("f64", [T, B, H * model.directions], dY) },
      finalStates: new Map([...dF].map(([n, v]) => [n, tensor("f64", [B, H], v)])),
    },
    { stateGrads: true },
  );
  expect(g.stateSteps).toBeDefined();
  const base = referenceLoss(model, parts, x, lens, dY, dF);
  expect(Math.abs(base - lossOf(fwd, dY, dF))).toBeLessThan(1e-9);
  const failures: string[] = [];
  let checked = 0;
  for (let l = 0; l < layers; l++)
    for (let d = 0; d < model.directions; d++)
      for (const s of cell.signature.states) {
        const name = model.name(l, d, s.name);
        const got = g2.stateSteps!.get(name)!;
        expect(got.shape).toEqual([T, B, H]);
        for (let b = 0; b < B; b++)
          for (let t = 0; t < T; t++)
            for (let k = 0; k < H; k++) {
              const v = got.data[(t * B + b) * H + k]!;
              if (t >= lens[b]!) {
                if (v !== 0) failures.push(`${name}[${t},${b},${k}] = ${v} past the row's length`);
                continue;
              }
              const own = d ? lens[b]! - 1 - t : t; // the reverse direction's step at forward time t
              const eps = 1e-5;
              const at = (e: number) =>
                referenceLoss(model, parts, x, lens, dY, dF, { l, d, state: s.name, t: own, b, k, eps: e });
              const fd = (at(eps) - at(-eps)) / (2 * eps);
              checked++;
              if (!(Math.abs(fd - v) <= 1e-6 * (1 + Math.abs(fd))))
                failures.push(`${name}[${t},${b},${k}]: ${v} vs finite differences ${fd}`);
            }
      }
  expect(failures).toEqual([]);
  expect(checked).toBeGreaterThan(0);
  // Without final-state upstream, the last valid step's h gradient is the output's alone.
  const h = g.stateSteps!.get(model.name(layers - 1, 0, "h"))!;
  const b0 = 0;
  const last = lens[b0]! - 1;
  for (let k = 0; k < H; k++)
    expect(h.data[(last * B + b0) * H + k]).toBe(dY[(last * B + b0) * H * model.directions + k]);
}

function lossOf(fwd: ReturnType<Model["forward"]>, dY: Float64Array, dF: Map<string, Float64Array>) {
  let s = dot(fwd.outputs.get("h")!.data, dY);
  for (const [n, t] of fwd.finalStates) s += dot(t.data, dF.get(n)!);
  return s;
}

describe("per-step state gradients against finite differences (float64)", () => {
  for (const name of ["rnn", "lstm", "gru"]) {
    it(`${name}: one layer`, () => check(name, 1, false, [T, T, T]));
    it(`${name}: seq_lens`, () => check(name, 1, false, [T, 2, 0]));
    it(`${name}: two layers, bidirectional, seq_lens`, () => check(name, 2, true, [3, T, 1]));
  }
});

describe("per-step state gradients: the API", () => {
  it("are absent unless asked for", () => {
    const { model, rng } = setup("lstm", 1, false, 2);
    const fwd = model.forward({ x: tensor("f64", [T, B, D], random(rng, T * B * D)) });
    expect(model.backward(fwd).stateSteps).toBeUndefined();
    const g = model.backward(fwd, {}, { stateGrads: true });
    expect([...g.stateSteps!.keys()]).toEqual(["h", "c"]);
  });

  it("agree between the js and wasm backends (float32)", () => {
    const js = setup("gru", 2, true, 9, jsBackend);
    const wasm = setup("gru", 2, true, 9, createWasmBackend());
    const x = tensor("f32", [T, B, D], Float32Array.from(random(js.rng, T * B * D)));
    const run = (m: Model) =>
      m.backward(m.forward({ x }, { seqLens: [T, 3, 1] }), {}, { stateGrads: true }).stateSteps!;
    const a = run(js.model);
    const b = run(wasm.model);
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [n, t] of a) {
      const u = b.get(n)!.data;
      expect(t.data.some((v) => v !== 0)).toBe(true);
      t.data.forEach((v, i) => expect(Math.abs(v - u[i]!)).toBeLessThan(1e-4 * (1 + Math.abs(v))));
    }
  });

  it("a backend whose runner has none says so", () => {
    const backend: Backend = {
      ...jsBackend,
      name: "nostep",
      runner: (...args) => {
        const r = jsBackend.runner(...args);
        return {
          outputRow: (i) => r.outputRow(i),
          stateRow: (i) => r.stateRow(i),
          inputRow: (i) => r.inputRow(i),
          forward: (...a) => r.forward(...a),
          backward: (tape, params, dOut, dFin) => r.backward(tape, params, dOut, dFin),
        };
      },
    };
    const { model, rng } = setup("rnn", 1, false, 3, backend);
    const fwd = model.forward({ x: tensor("f32", [T, B, D], Float32Array.from(random(rng, T * B * D))) });
    expect(() => model.backward(fwd, {}, { stateGrads: true })).toThrow(
      /per-step state gradients \(stateGrads\) are not available on the nostep backend/,
    );
  });
});
