import { BUILTINS, INITIALISERS } from "../check/builtins.js";

/**
 * What the editor says about built-in functions and initialisers: a signature and one line. The
 * signatures come from the checker's tables (builtins.ts), so the constants and their defaults are the
 * ones it applies; the tensor arguments are named here.
 */
const FUNCTIONS: Readonly<Record<string, { readonly args: readonly string[]; readonly doc: string }>> = {
  sigmoid: { args: ["x"], doc: "The logistic function 1 / (1 + exp(-x)), elementwise." },
  tanh: { args: ["x"], doc: "The hyperbolic tangent, elementwise." },
  relu: { args: ["x"], doc: "max(x, 0), elementwise." },
  exp: { args: ["x"], doc: "e to the power x, elementwise." },
  log: { args: ["x"], doc: "The natural logarithm, elementwise." },
  sqrt: { args: ["x"], doc: "The square root, elementwise." },
  softplus: { args: ["x"], doc: "log(1 + exp(x)), elementwise." },
  softsign: { args: ["x"], doc: "x / (1 + |x|), elementwise." },
  abs: { args: ["x"], doc: "The absolute value, elementwise." },
  min: { args: ["a", "b"], doc: "The smaller of a and b, elementwise." },
  max: { args: ["a", "b"], doc: "The larger of a and b, elementwise." },
  clip: { args: ["x", "lo", "hi"], doc: "x limited to [lo, hi]: min(max(x, lo), hi)." },
  sum: { args: ["v"], doc: "The sum of a vector's elements: a per-row scalar." },
  mean: { args: ["v"], doc: "The mean of a vector's elements: a per-row scalar." },
  hard_sigmoid: { args: ["x"], doc: "max(0, min(1, alpha * x + beta)) (ONNX HardSigmoid)." },
  leaky_relu: { args: ["x"], doc: "x where x > 0, else alpha * x (ONNX LeakyRelu)." },
  elu: { args: ["x"], doc: "x where x > 0, else alpha * (exp(x) - 1) (ONNX Elu)." },
  thresholded_relu: { args: ["x"], doc: "x where x > alpha, else 0 (ONNX ThresholdedRelu)." },
  scaled_tanh: { args: ["x"], doc: "alpha * tanh(beta * x) (ONNX ScaledTanh)." },
  affine: { args: ["x"], doc: "alpha * x + beta (ONNX Affine)." },
};

const INITS: Readonly<Record<string, { readonly forms: readonly string[]; readonly doc: string }>> = {
  uniform: {
    forms: ["", "(a)", "(lo, hi)"],
    doc: "Uniform: without arguments PyTorch's default U(-1/sqrt(n), 1/sqrt(n)), n the first dimension; U(-a, a); U(lo, hi).",
  },
  normal: {
    forms: ["", "(std)", "(mean, std)"],
    doc: "Normal: N(0, 1) without arguments; N(0, std); N(mean, std).",
  },
  xavier: { forms: ["", "(gain)"], doc: "Glorot (Xavier) uniform, with an optional gain (1 by default)." },
  glorot: { forms: ["", "(gain)"], doc: "Glorot (Xavier) uniform, with an optional gain (1 by default)." },
  orthogonal: {
    forms: ["", "(gain)"],
    doc: "A random orthogonal matrix, with an optional gain (1 by default).",
  },
};

export interface BuiltinDoc {
  /** `hard_sigmoid(x, alpha=0.2, beta=0.5)` */
  readonly signature: string;
  /** The tensor arguments, then the constants: for a snippet. */
  readonly params: readonly string[];
  /** How many leading parameters are required. */
  readonly required: number;
  readonly doc: string;
}

export function builtinDoc(name: string): BuiltinDoc | undefined {
  if (!Object.hasOwn(BUILTINS, name)) return undefined;
  const b = BUILTINS[name]!;
  const f = FUNCTIONS[name] ?? { args: Array.from({ length: b.args }, (_, i) => `x${i + 1}`), doc: "" };
  const consts = b.consts.map((c) => (c.default === undefined ? c.name : `${c.name}=${c.default}`));
  const params = [...f.args, ...consts];
  const required = f.args.length + b.consts.filter((c) => c.default === undefined).length;
  return { signature: `${name}(${params.join(", ")})`, params, required, doc: f.doc };
}

export function initialiserDoc(
  name: string,
): { readonly signature: string; readonly doc: string } | undefined {
  if (!Object.hasOwn(INITIALISERS, name)) return undefined;
  const i = INITS[name];
  const forms = i?.forms ?? [""];
  return { signature: forms.map((f) => `~ ${name}${f}`).join(" | "), doc: i?.doc ?? "" };
}

export const builtinNames = (): string[] => Object.keys(BUILTINS);
export const initialiserNames = (): string[] => Object.keys(INITIALISERS);
