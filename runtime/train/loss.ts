// The losses of a network's readout, in f64 whatever the compute precision, masked row by row.
import type { LossKind } from "./types.js";
import { CellcError, showShape, type Tensor, type TensorData } from "../tensor.js";

/**
 * Adds `scale` times the loss of the valid rows of `y` (`rows x O`, row-major) to the result, and writes
 * its gradient into `dy` (zero on invalid rows). `scale` is 1 / (the number of terms of the batch's
 * mean), so summing chunks (truncated BPTT) gives the mean over the whole batch.
 */
export function lossRows(
  kind: LossKind,
  y: ArrayLike<number>,
  O: number,
  target: TensorData,
  valid: Uint8Array,
  scale: number,
  dy: Float64Array | undefined,
): number {
  let sum = 0;
  const rows = valid.length;
  for (let r = 0; r < rows; r++) {
    const at = r * O;
    if (!valid[r]) {
      dy?.fill(0, at, at + O);
      continue;
    }
    if (kind === "cross_entropy") {
      const c = target[r]!;
      if (!(c >= 0 && c < O) || !Number.isInteger(c))
        throw new CellcError(`target holds class ${c} at row ${r}: classes are 0 to ${O - 1}`);
      let m = -Infinity;
      for (let k = 0; k < O; k++) m = Math.max(m, y[at + k]!);
      let s = 0;
      for (let k = 0; k < O; k++) s += Math.exp(y[at + k]! - m);
      const lse = m + Math.log(s);
      sum += lse - y[at + c]!;
      if (dy)
        for (let k = 0; k < O; k++) dy[at + k] = (Math.exp(y[at + k]! - lse) - (k === c ? 1 : 0)) * scale;
    } else
      for (let k = 0; k < O; k++) {
        const x = y[at + k]!;
        const z = target[at + k]!;
        if (kind === "mse") {
          sum += (x - z) * (x - z);
          if (dy) dy[at + k] = 2 * (x - z) * scale;
        } else {
          // log(1 + e^x) - x z, written so that neither exponential overflows.
          sum += Math.max(x, 0) - x * z + Math.log1p(Math.exp(-Math.abs(x)));
          if (dy) dy[at + k] = (1 / (1 + Math.exp(-x)) - z) * scale;
        }
      }
  }
  return sum * scale;
}

/**
 * Checks a batch's target against the loss and the readout's rows: class ids `[B]` / `[T, B]` in
 * `[0, O)` for cross-entropy (checked on the valid rows only, by lossRows), reals `[B, O]` / `[T, B, O]` otherwise.
 */
export function checkTarget(
  target: Tensor,
  kind: LossKind,
  on: "last" | "every",
  T: number,
  B: number,
  O: number,
): void {
  const lead = on === "last" ? [B] : [T, B];
  const names = on === "last" ? ["B"] : ["T", "B"];
  const classes = kind === "cross_entropy";
  const want = classes ? lead : [...lead, O];
  const sym = classes ? names : [...names, "O"];
  const what = on === "last" ? "one per sequence (the readout reads the last step)" : "one per step";
  if (target.shape.length !== want.length || target.shape.some((d, i) => d !== want[i]))
    throw new CellcError(
      `target has shape ${showShape(target.shape)}; expected ${showShape(sym)} = ${showShape(want)}, ${what}`,
    );
  if (classes) {
    if (target.dtype !== "i32")
      throw new CellcError(
        `target must hold class ids (I32 or I64) for cross_entropy, got ${target.stored ?? target.dtype.toUpperCase()}`,
      );
  } else if (target.dtype === "i32")
    throw new CellcError(`target must be a float tensor for ${kind}, got ${target.stored ?? "I32"}`);
}
