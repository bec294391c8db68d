// The wasm target of an artifact: the cell's kernel module (base64) and, per kernel, the steps the wasm
// executor runs (calls into the module, GEMMs of the fixed kernel library), or why it falls back to JS.
import type { KernelName } from "./schedule.js";
import type { Dim, Type } from "./shape.js";

/** A matrix operand: its slot, a column offset and a leading dimension, in elements. */
export interface WasmOperand {
  readonly slot: number;
  readonly col: Dim;
  readonly ld: Dim;
}
/** How many rows a step covers: all the kernel's rows (B, or T*B), or one (unbatched values). */
export type WasmRows = "all" | "one";

export type WasmStep =
  /**
   * fn(frame, t, row0, rows); `split`: rows may be divided across threads; `width`: elements per row;
   * `slots`: the slots it reads or writes. `cols`: the function runs over every row itself and its row0
   * and rows are columns [row0, row0 + rows) of `width` (divided across threads in fours).
   */
  | { readonly kind: "call"; readonly fn: string; readonly rows: WasmRows; readonly split: boolean; readonly width: Dim; readonly slots: readonly number[]; readonly cols?: boolean } // prettier-ignore
  /** C = A P^T (nt) or C = G P (nn): out, left, right operands as the GEMM module's gemm_nt / gemm_nn. */
  | { readonly kind: "gemm"; readonly form: "nt" | "nn"; readonly out: WasmOperand; readonly left: WasmOperand; readonly right: WasmOperand; readonly M: Dim; readonly K: Dim; readonly rows: WasmRows } // prettier-ignore
  /** D += G^T X (gemm_tn): a packed weight's gradient. */
  | { readonly kind: "tn"; readonly out: WasmOperand; readonly left: WasmOperand; readonly right: WasmOperand; readonly M: Dim; readonly K: Dim; readonly rows: WasmRows }; // prettier-ignore

export interface WasmKernel {
  /** Scratch regions (slots after the bindings): per row when batched. */
  readonly scratch: readonly Type[];
  readonly steps: readonly WasmStep[];
}
/** A kernel the emitter does not lower runs as the JS kernel; `fallback` says why. */
export interface WasmFallback {
  readonly fallback: string;
}
export interface WasmTarget {
  /** The module (base64): imports a shared memory as env.memory, exports the functions the steps name. */
  readonly module: string;
  /**
   * The same module with relaxed SIMD's fused multiply-adds in its math (base64), for an engine that has
   * relaxed SIMD: the same functions, for the same steps. Absent in artifacts made before it.
   */
  readonly relaxed?: string;
  readonly kernels: Readonly<Record<KernelName, WasmKernel | WasmFallback>>;
}

export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
