import type { OpKind } from "../ops/ops.js";

/**
 * The functions a .cell file can call. Most are one primitive; the parameterised activations of the ONNX
 * recurrent operators are sugar over primitives, so each has one definition and its gradient comes free.
 * `consts` lists trailing arguments that must be numbers, with their ONNX defaults (undefined: required).
 */
export interface Builtin {
  readonly args: number; // tensor arguments
  readonly consts: readonly { readonly name: string; readonly default?: number }[];
  readonly prim?: OpKind;
}

/** A table keyed by user-visible names, without Object.prototype (`toString` must not be found). */
function table<T>(entries: Record<string, T>): Readonly<Record<string, T>> {
  return Object.freeze(Object.assign(Object.create(null) as Record<string, T>, entries));
}

export const BUILTINS: Readonly<Record<string, Builtin>> = table({
  sigmoid: { args: 1, consts: [], prim: "sigmoid" },
  tanh: { args: 1, consts: [], prim: "tanh" },
  relu: { args: 1, consts: [], prim: "relu" },
  exp: { args: 1, consts: [], prim: "exp" },
  log: { args: 1, consts: [], prim: "log" },
  sqrt: { args: 1, consts: [], prim: "sqrt" },
  softplus: { args: 1, consts: [], prim: "softplus" },
  softsign: { args: 1, consts: [], prim: "softsign" },
  abs: { args: 1, consts: [], prim: "abs" },
  min: { args: 2, consts: [], prim: "min" },
  max: { args: 2, consts: [], prim: "max" },
  clip: { args: 3, consts: [] },
  sum: { args: 1, consts: [] },
  mean: { args: 1, consts: [] },
  hard_sigmoid: {
    args: 1,
    consts: [
      { name: "alpha", default: 0.2 },
      { name: "beta", default: 0.5 },
    ],
  },
  leaky_relu: { args: 1, consts: [{ name: "alpha", default: 0.01 }] },
  elu: { args: 1, consts: [{ name: "alpha", default: 1 }] },
  thresholded_relu: { args: 1, consts: [{ name: "alpha", default: 1 }] },
  scaled_tanh: {
    args: 1,
    consts: [
      { name: "alpha", default: 1 },
      { name: "beta", default: 1 },
    ],
  },
  affine: {
    args: 1,
    consts: [
      { name: "alpha", default: 1 },
      { name: "beta", default: 0 },
    ],
  },
});

export const INITIALISERS: Readonly<Record<string, { min: number; max: number }>> = table({
  uniform: { min: 0, max: 2 },
  normal: { min: 0, max: 2 },
  xavier: { min: 0, max: 1 },
  glorot: { min: 0, max: 1 },
  orthogonal: { min: 0, max: 1 },
});
