// Tensors as plain data (what safetensors files, exporters and runtimes exchange), and the error every
// layer throws for what the caller gave it.
/** A dense, row-major tensor. Sequences are time-major: `[T, B, ...features]`. */
export type DType = "f32" | "f64" | "i32";
export type FloatArray = Float32Array | Float64Array;
export type TensorData = Float32Array | Float64Array | Int32Array;

export interface Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TensorData;
  /** The dtype in the file when the reader converted it (F16, BF16 to f32; I64 to i32). */
  readonly stored?: string;
}

/** An error in what the caller gave cellc (a tensor, a file, an option): reported as its message alone. */
export class CellcError extends Error {
  override readonly name = "CellcError";
}

export function showShape(s: readonly (number | string)[]): string {
  return `[${s.join(", ")}]`;
}
