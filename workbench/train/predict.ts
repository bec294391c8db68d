// What a trained network gives for new inputs: the readout `y`, and for class targets the class
// probabilities and the most likely class; rows past a sequence's length are zero (class -1), as
// PyTorch's pad_packed_sequence pads them.
import type { Tensor } from "../../runtime/tensor.js";
import type { Network } from "./network.js";

export interface Prediction {
  /** The readout: `[B, O]` on the last valid step, or `[T, B, O]` on every step. */
  readonly y: Tensor;
  /** softmax(y) for cross-entropy, sigmoid(y) for binary cross-entropy. */
  readonly probs?: Tensor;
  /** The most likely class of each row (cross-entropy), -1 past a sequence's length. */
  readonly argmax?: Tensor;
}

export async function predictOutputs(
  net: Network,
  inputs: ReadonlyMap<string, Tensor>,
  seqLens?: Int32Array,
): Promise<Prediction> {
  const y = await net.predict(inputs, seqLens);
  const O = net.outputSize;
  const rows = y.data.length / O;
  const B = net.artifact.on === "last" ? y.shape[0]! : y.shape[1]!;
  // Row r is step floor(r / B) of sequence r % B (on every step), or the last step of sequence r.
  const valid = (r: number) => {
    const n = seqLens ? seqLens[r % B]! : Infinity;
    return net.artifact.on === "last" ? n > 0 : Math.floor(r / B) < n;
  };
  const yd = y.data;
  for (let r = 0; r < rows; r++) if (!valid(r)) yd.fill(0, r * O, (r + 1) * O);
  const kind = net.artifact.loss.kind;
  if (kind === "mse") return { y };
  const probs = new Float32Array(yd.length);
  if (kind === "binary_cross_entropy") {
    for (let r = 0; r < rows; r++)
      if (valid(r)) for (let k = r * O; k < (r + 1) * O; k++) probs[k] = 1 / (1 + Math.exp(-yd[k]!));
    return { y, probs: { dtype: "f32", shape: y.shape, data: probs } };
  }
  const argmax = new Int32Array(rows).fill(-1);
  for (let r = 0; r < rows; r++) {
    if (!valid(r)) continue;
    let m = -Infinity;
    let best = 0;
    for (let k = 0; k < O; k++) if (yd[r * O + k]! > m) [m, best] = [yd[r * O + k]!, k];
    let s = 0;
    for (let k = 0; k < O; k++) s += Math.exp(yd[r * O + k]! - m);
    for (let k = 0; k < O; k++) probs[r * O + k] = Math.exp(yd[r * O + k]! - m) / s;
    argmax[r] = best;
  }
  return {
    y,
    probs: { dtype: "f32", shape: y.shape, data: probs },
    argmax: { dtype: "i32", shape: y.shape.slice(0, -1), data: argmax },
  };
}
