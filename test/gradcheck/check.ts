import { Model, tensor, type Tensor } from "../../api/index.js";
import { Rng } from "../../runtime/init.js";

/**
 * Central finite differences in float64 along a random direction, one tensor at a time (each parameter,
 * the input, each initial state), against the gradients of backward() for the loss
 * sum(outputs * R) + sum(final states * Rf) with random R, Rf. Returns the mismatches.
 */
export const T = 4;
export const B = 3;
function randomTensor(rng: Rng, shape: number[], scale = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(
    "f64",
    shape,
    Float64Array.from({ length: n }, () => scale * (2 * rng.next() - 1)),
  );
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export function gradcheckModel(
  model: Model,
  inputName: string,
  D: number,
  seqLens: number[] | undefined,
  seed: number,
) {
  const rng = new Rng(seed);
  const x = randomTensor(rng, [T, B, D]);
  const inits = new Map<string, Tensor>();
  const probe = model.forward({ [inputName]: x }, { seqLens });
  for (const [name, t] of probe.finalStates) inits.set(name, randomTensor(rng, [...t.shape], 0.5));
  const base = model.forward({ [inputName]: x }, { seqLens, initialStates: inits });
  const R = new Map([...base.outputs].map(([n, t]) => [n, randomTensor(rng, [...t.shape])]));
  const Rf = new Map([...base.finalStates].map(([n, t]) => [n, randomTensor(rng, [...t.shape])]));
  const loss = () => {
    const f = model.forward({ [inputName]: x }, { seqLens, initialStates: inits, train: false });
    let s = 0;
    for (const [n, t] of f.outputs) s += dot(t.data, R.get(n)!.data);
    for (const [n, t] of f.finalStates) s += dot(t.data, Rf.get(n)!.data);
    return s;
  };
  const grads = model.backward(base, { outputs: R, finalStates: Rf });
  const targets: [string, Tensor, Tensor][] = [
    ...[...model.params].map(([n, t]) => [`param ${n}`, t, grads.params.get(n)!] as [string, Tensor, Tensor]),
    [`input ${inputName}`, x, grads.inputs.get(inputName)!],
    ...[...inits].map(([n, t]) => [`init ${n}`, t, grads.initialStates.get(n)!] as [string, Tensor, Tensor]),
  ];
  const eps = 1e-6;
  const failures: string[] = [];
  for (const [what, t, g] of targets) {
    const v = Float64Array.from({ length: t.data.length }, () => 2 * rng.next() - 1);
    const orig = Float64Array.from(t.data);
    const data = t.data as Float64Array;
    for (let i = 0; i < data.length; i++) data[i] = orig[i]! + eps * v[i]!;
    const up = loss();
    for (let i = 0; i < data.length; i++) data[i] = orig[i]! - eps * v[i]!;
    const down = loss();
    data.set(orig);
    const fd = (up - down) / (2 * eps);
    const an = dot(g.data, v);
    const err = Math.abs(fd - an) / Math.max(1e-6, Math.abs(fd) + Math.abs(an));
    if (!(err < 1e-5)) failures.push(`${what}: analytic ${an}, finite difference ${fd}`);
  }
  return failures;
}
