import {
  CellcError,
  showShape,
  type DType,
  type FloatArray,
  type Tensor,
  type TensorData,
} from "../artifact/tensor.js";
export { CellcError, showShape, type DType, type FloatArray, type Tensor, type TensorData };

export const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** V8's limit on a typed array's length. */
export const MAX_ELEMENTS = 2 ** 32;
const GiB = 2 ** 30;

/** Bytes cellc may allocate for one run: CELLC_MEMORY_LIMIT (bytes, or with a K/M/G suffix), 4 GiB by default. */
export function memoryLimit(): number {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMG]?)i?B?\s*$/i.exec(env?.CELLC_MEMORY_LIMIT ?? "");
  if (!m) return 4 * GiB;
  return Number(m[1]) * 1024 ** " KMG".indexOf((m[2] || " ").toUpperCase());
}

export const showBytes = (n: number) =>
  n >= GiB ? `${(n / GiB).toFixed(1)} GiB` : n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${n} bytes`;

/**
 * Refuses, before anything is allocated, an array of `count` values of `bytes` each that typed arrays
 * cannot hold or that would pass the memory limit; `what` names it in the error.
 */
export function checkAllocation(count: number, bytes: number, what: string): void {
  if (count > MAX_ELEMENTS)
    throw new CellcError(`${what} needs ${count} values, more than a typed array holds (${MAX_ELEMENTS})`);
  checkMemory(count * bytes, `${what} (${count} values)`);
}

export function checkMemory(bytes: number, what: string): void {
  const limit = memoryLimit();
  if (bytes > limit)
    throw new CellcError(
      `${what} needs ${showBytes(bytes)}, over the memory limit of ${showBytes(limit)} (set CELLC_MEMORY_LIMIT to change it)`,
    );
}

const bytesOf = (dtype: DType) => (dtype === "f64" ? 8 : 4);

export function tensor(
  dtype: DType,
  shape: readonly number[],
  data?: TensorData | readonly number[],
): Tensor {
  const n = sizeOf(shape);
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new CellcError(`invalid tensor shape [${shape.join(", ")}]`);
  if (data === undefined) checkAllocation(n, bytesOf(dtype), `a tensor of shape [${shape.join(", ")}]`);
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

/** Converts a float tensor's data to the compute precision, copying only when the dtype differs. */
export function asFloat(t: Tensor, dtype: "f32" | "f64", what: string): FloatArray {
  if (t.dtype === "i32")
    throw new CellcError(`${what} must be a float tensor (F32, F64, F16 or BF16), got ${t.stored ?? "I32"}`);
  if (t.dtype === dtype) return t.data as FloatArray;
  return dtype === "f32" ? Float32Array.from(t.data) : Float64Array.from(t.data);
}
