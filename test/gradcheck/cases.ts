import type { OpKind } from "../../compiler/ops/ops.js";

/**
 * Each primitive (and each function of the language) inside a small cell, checked against finite
 * differences. `a` is a pre-activation that reads the input, the state and parameters, so gradients reach
 * every kind of leaf through the op under test.
 */
export const CASES: Record<string, { eq: string; ops: OpKind[] }> = {
  // `a`'s matvecs are stacked into gemms read through column views; their gradients are transposed gemms.
  add: { eq: "h' = a + h", ops: ["add", "matvec", "sumbatch", "gemm", "gemmT", "cols"] },
  sub: { eq: "h' = a - h", ops: ["sub"] },
  mul: { eq: "h' = a * h", ops: ["mul"] },
  div: { eq: "h' = a / (2 + h * h)", ops: ["div"] },
  neg: { eq: "h' = -a", ops: ["neg"] },
  sigmoid: { eq: "h' = sigmoid(a)", ops: ["sigmoid"] },
  tanh: { eq: "h' = tanh(a)", ops: ["tanh"] },
  relu: { eq: "h' = relu(a)", ops: ["relu", "gt"] },
  exp: { eq: "h' = exp(0.5 * a)", ops: ["exp"] },
  log: { eq: "h' = log(1.5 + tanh(a))", ops: ["log"] },
  sqrt: { eq: "h' = sqrt(1 + a * a)", ops: ["sqrt"] },
  softplus: { eq: "h' = softplus(a)", ops: ["softplus"] },
  softsign: { eq: "h' = softsign(a)", ops: ["softsign"] },
  abs: { eq: "h' = abs(a)", ops: ["abs"] },
  min: { eq: "h' = min(a, h)", ops: ["min"] },
  max: { eq: "h' = max(a, h)", ops: ["max"] },
  clip: { eq: "h' = clip(a, -0.3, 0.4)", ops: [] },
  sum: { eq: "h' = tanh(a * sum(h))", ops: ["sum", "dim"] },
  mean: { eq: "h' = a - mean(a)", ops: [] },
  hard_sigmoid: { eq: "h' = hard_sigmoid(a, 0.3, 0.4)", ops: [] },
  leaky_relu: { eq: "h' = leaky_relu(a, 0.2)", ops: [] },
  elu: { eq: "h' = elu(a, 0.7)", ops: [] },
  thresholded_relu: { eq: "h' = thresholded_relu(a, 0.1)", ops: [] },
  scaled_tanh: { eq: "h' = scaled_tanh(a, 1.3, 0.8)", ops: [] },
  affine: { eq: "h' = affine(a, 0.5, 0.1)", ops: [] },
  concat: { eq: "h' = tanh(V @ [h, x] + b)", ops: ["concat", "slice", "const", "leaf"] },
  concat_elementwise: { eq: "y = [h, x] * [h, x]\n h' = tanh(V @ y)", ops: [] },
};

/** The small cell around one case: `a` reads the input, the state and parameters. */
export function caseCell(eq: string): string {
  return `cell t {
        input x[D]
        state h[H]
        param W : [H, D]
        param U : [H, H]
        param V : [H, H + D]
        param b : [H]
        a = W @ x + U @ h + b
        ${eq}
        output h'
      }`;
}

/**
 * Edge cases of cells (constant next states, inputs as outputs, no parameters, per-row scalar states and
 * outputs) and dimensions that are sums and multiples, so that generated index arithmetic is exercised.
 */
export const DIM_CASES: Record<string, string> = {
  constant_next_state: `cell t { input x[D] state h[D], c[D] h' = tanh(x + c) c' = 1 output h' }`,
  input_as_output: `cell t { input x[D] state h[D] h' = tanh(x + h) output h', x }`,
  no_parameters: `cell t { input x[D] state h[D] h' = tanh(h + x) output h' }`,
  scalar_state: `cell t { input x[D] state h[D], s[] param W : [D, D] s' = mean(h) * 0.5 + s * 0.5 h' = tanh(W @ x + s * h) output h' }`,
  scalar_output: `cell t { input x[D] state h[D] param W : [D, D] h' = tanh(W @ x + h) y = sum(h') output h', y }`,
  scaled_dims: `cell t {
    input x[D]
    state h[2*H]
    param W : [2*H, D]
    param U : [2*H, 2*H + D]
    h' = tanh(W @ x + U @ [h, x]) - mean(h)
    output h'
  }`,
};
