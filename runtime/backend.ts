// A backend: where a model's sequences run (the runner of one layer and direction) and how sequences move
// between layers and directions where the backend keeps them. The JS backend is here; wasm in cpu/wasm.ts,
// WebGPU in webgpu/; backends.ts names them all.
import type { CompiledCell } from "./cell.js";
import { CpuSequenceRunner } from "./cpu/runner.js";
import type { DirectionRunner, Seq, SeqOps } from "./sequence.js";
import { floatArray, type FloatArray } from "./tensor.js";

/** Where a model's sequences run: the CPU (JS kernels) or WebGPU (see runtime/webgpu). */
export interface Backend {
  readonly name: string;
  /** True when results come back asynchronously: use forwardAsync() and backwardAsync(). */
  readonly async: boolean;
  runner(
    cell: CompiledCell,
    sizes: Readonly<Record<string, number>>,
    B: number,
    dtype: "f32" | "f64",
    /** "f16": the tape and the packed weights in float16 (a backend with `f16` only). */
    precision?: "f32" | "f16",
  ): DirectionRunner;
  /** Whether it can keep the tape and the weights in float16 (`ModelOptions.precision`): WebGPU with `shader-f16`. */
  readonly f16?: boolean;
  /** Moving sequences between layers and directions, where the backend keeps them. */
  readonly ops: SeqOps;
}

const host = (x: Seq) => x as FloatArray;

/** The host's sequence operations: plain typed arrays. */
export const hostOps: SeqOps = {
  reverseValid: (x, T, B, F, lens) => reverseValid(host(x), T, B, F, lens),
  concatFeatures: (parts, rows, F, dtype) => concatFeatures(parts.map(host), rows, F, dtype),
  sliceFeatures: (x, rows, F, d, n, dtype) => sliceFeatures(host(x), rows, F, d, n, dtype),
  add: (a, b) => {
    const x = host(a);
    const y = host(b);
    for (let k = 0; k < x.length; k++) x[k]! += y[k]!;
    return x;
  },
  readAll: (xs) => xs.map(host),
};

export const jsBackend: Backend = {
  name: "js",
  async: false,
  runner: (cell, sizes, B, dtype) => new CpuSequenceRunner(cell, sizes, B, dtype),
  ops: hostOps,
};

/** Reverses each row's first lens[b] time steps; steps past the length stay where they are. */
function reverseValid(
  x: FloatArray,
  T: number,
  B: number,
  F: number,
  lens: Int32Array | undefined,
): FloatArray {
  const out = x.slice();
  for (let b = 0; b < B; b++) {
    const n = lens ? lens[b]! : T;
    for (let t = 0; t < n; t++)
      out.set(x.subarray(((n - 1 - t) * B + b) * F, ((n - 1 - t) * B + b + 1) * F), (t * B + b) * F);
  }
  return out;
}

function concatFeatures(parts: FloatArray[], rows: number, F: number, dtype: "f32" | "f64"): FloatArray {
  const out = floatArray(dtype, rows * F * parts.length);
  for (let r = 0; r < rows; r++)
    parts.forEach((p, d) => out.set(p.subarray(r * F, (r + 1) * F), (r * parts.length + d) * F));
  return out;
}

function sliceFeatures(
  x: FloatArray,
  rows: number,
  F: number,
  d: number,
  n: number,
  dtype: "f32" | "f64",
): FloatArray {
  const out = floatArray(dtype, rows * F);
  for (let r = 0; r < rows; r++) out.set(x.subarray((r * n + d) * F, (r * n + d + 1) * F), r * F);
  return out;
}
