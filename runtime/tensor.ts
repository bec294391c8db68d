import {
  CellcError,
  showShape,
  type DType,
  type FloatArray,
  type Tensor,
  type TensorData,
} from "../artifact/tensor.js";
import { shown } from "../artifact/validate.js";
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

const ARRAYS = { f32: Float32Array, f64: Float64Array, i32: Int32Array } as const;

/**
 * A tensor a caller gave, checked: a known dtype, a shape of whole numbers, and data of that dtype's array
 * type holding exactly as many values as the shape says. `what` names it in errors.
 */
export function checkTensor(t: unknown, what: string): Tensor {
  if (typeof t !== "object" || t === null || Array.isArray(t) || ArrayBuffer.isView(t))
    throw new CellcError(`${what} must be a tensor { dtype, shape, data }, got ${shown(t)}`);
  const { dtype, shape, data } = t as Record<string, unknown>;
  if (dtype !== "f32" && dtype !== "f64" && dtype !== "i32")
    throw new CellcError(`${what} has dtype ${shown(dtype)}; expected "f32", "f64" or "i32"`);
  if (!Array.isArray(shape) || shape.length > 32 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new CellcError(`${what} has shape ${shown(shape)}; expected an array of whole numbers`);
  const Ctor = ARRAYS[dtype];
  if (!(data instanceof Ctor))
    throw new CellcError(`${what} is ${dtype}: its data must be a ${Ctor.name}, got ${shown(data)}`);
  const n = sizeOf(shape as number[]);
  if (data.length !== n)
    throw new CellcError(
      `${what} of shape ${showShape(shape as number[])} needs ${n} values, got ${data.length}`,
    );
  return t as Tensor;
}

/** Tensors by name (a Map or a plain object), each checked; `what` names the group, `one` a member. */
export function tensorMap(m: unknown, what: string, one: string): Map<string, Tensor> {
  if (m === undefined) return new Map();
  let entries: [unknown, unknown][];
  if (m instanceof Map) entries = [...(m as Map<unknown, unknown>)];
  else if (typeof m === "object" && m !== null && !Array.isArray(m)) entries = Object.entries(m);
  else throw new CellcError(`${what} must be a Map or an object of tensors by name, got ${shown(m)}`);
  const out = new Map<string, Tensor>();
  for (const [k, v] of entries) {
    if (typeof k !== "string") throw new CellcError(`${what}: a name must be a string, got ${shown(k)}`);
    out.set(k, checkTensor(v, `${one} '${k}'`));
  }
  return out;
}
