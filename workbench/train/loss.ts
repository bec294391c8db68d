// What a loss reads, checked before its kernel (compiler/network/loss.ts) runs.
import type { LossKind } from "./types.js";
import { CellcError, showShape, type Tensor } from "../../runtime/tensor.js";

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
