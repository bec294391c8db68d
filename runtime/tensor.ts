/** A dense, row-major tensor. Sequences are time-major: `[T, B, ...features]`. */
export type DType = "f32" | "f64" | "i32";
export type FloatArray = Float32Array | Float64Array;
export type TensorData = Float32Array | Float64Array | Int32Array;

export interface Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

/** An error in what the caller gave cellc (a tensor, a file, an option): reported as its message alone. */
export class CellcError extends Error {
  override readonly name = "CellcError";
}

export const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function tensor(
  dtype: DType,
  shape: readonly number[],
  data?: TensorData | readonly number[],
): Tensor {
  const n = sizeOf(shape);
  const Ctor = dtype === "f32" ? Float32Array : dtype === "f64" ? Float64Array : Int32Array;
  const d =
    data === undefined ? new Ctor(n) : data instanceof Ctor ? data : Ctor.from(data as ArrayLike<number>);
  if (d.length !== n)
    throw new CellcError(`tensor of shape [${shape.join(", ")}] needs ${n} values, got ${d.length}`);
  return { dtype, shape: [...shape], data: d };
}

export function floatArray(dtype: "f32" | "f64", n: number): FloatArray {
  return dtype === "f32" ? new Float32Array(n) : new Float64Array(n);
}

export function showShape(s: readonly (number | string)[]): string {
  return `[${s.join(", ")}]`;
}

/** Converts a float tensor's data to the compute precision, copying only when the dtype differs. */
export function asFloat(t: Tensor, dtype: "f32" | "f64", what: string): FloatArray {
  if (t.dtype === "i32") throw new CellcError(`${what} must be a float tensor (F32 or F64), got I32`);
  if (t.dtype === dtype) return t.data as FloatArray;
  return dtype === "f32" ? Float32Array.from(t.data) : Float64Array.from(t.data);
}
