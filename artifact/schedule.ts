// The serialisable part of a schedule (see compiler/schedule/types.ts): buffers, packs, the cell's
// signature and the kernels' names. Plain data, read by every runtime.
import type { InitSpec } from "./init.js";
import type { Dim, Type } from "./shape.js";

export type BufferKind =
  | "input" // a cell input, [T, B, ...]
  | "state" // a state at every step, [T + 1, B, ...]
  | "output" // a cell output, [T, B, ...]
  | "param" // a parameter as the user wrote it
  | "pack" // stacked gate weights, laid out from the parameters once per parameter update
  | "tape" // forward values read later: hoisted out of the loop, or kept for the backward pass
  | "grad_output" // upstream gradient into an output, [T, B, ...]
  | "grad_state" // gradient of the state before step t at t; the upstream of the final state at T
  | "grad_input" // gradient of an input, [T, B, ...]
  | "grad_param"
  | "grad_pack"
  | "gtape" // gradients computed in the backward loop and read after it, [T, B, ...]
  | "carry" // rows set aside by the backward masks, [B, ...]
  | "coef"; // a scan state's coefficient a at every step (s' = a * s + b), [T, B, ...]

export type Extent = "seq" | "seq1" | "batch" | "one";

export interface BufferDecl {
  readonly kind: BufferKind;
  /** Which one of its kind: the position in the cell's inputs, states, outputs or params, or in the schedule's list. */
  readonly index: number;
  /** For printing only; never reaches generated code. */
  readonly name: string;
  /** The type of one row (per batch row and step when batched). */
  readonly type: Type;
  readonly extent: Extent;
  readonly arena: "mem" | "pmem";
}

/** One block of a pack: rows [row0, row0 + rows) are the parameter's columns [c0, c1). */
export interface PackBlock {
  readonly param: number;
  readonly row0: Dim;
  readonly rows: Dim;
  readonly c0: Dim;
  readonly c1: Dim;
}

/** Gate weights that multiply the same operand, stacked into one `[rows, cols]` matrix. */
export interface Pack {
  readonly rows: Dim;
  readonly cols: Dim;
  readonly blocks: readonly PackBlock[];
  /** Where its operand lives: before the loop (over all steps at once) or inside it. */
  readonly phase: "before" | "step";
}

/** The cell's interface: what a runtime needs to bind tensors to buffers. Serialisable. */
export interface Signature {
  readonly name: string;
  readonly dims: readonly string[];
  readonly inputs: readonly { readonly name: string; readonly type: Type }[];
  readonly states: readonly { readonly name: string; readonly type: Type; readonly init: number }[];
  readonly params: readonly { readonly name: string; readonly type: Type; readonly init: InitSpec }[];
  /** `state`: the output is that state's next value itself (`output h'`), the same value, not a copy of it. */
  readonly outputs: readonly { readonly name: string; readonly type: Type; readonly state?: number }[];
  /** Parameters the cell declares but never uses: accepted in a parameter file, with a warning. */
  readonly unusedParams?: readonly string[];
}

export const KERNEL_NAMES = ["before", "step", "loop", "after"] as const;
export type KernelName = (typeof KERNEL_NAMES)[number];

/**
 * A state run as a scan over time (compiler/schedule/scan.ts). Forward, after `before` has written the
 * coefficient a_t to `coef` and the offset b_t to `buffer` at t + 1: s[t+1] = a_t * s[t] + s[t+1] for t = 0
 * .. T-1. Backward, after `loop` has written to `grad` at t the state's gradient at step t without what
 * comes from s[t+1]: g[t] = a_t * g[t+1] + g[t] for t = T-1 .. 0. Rows past their length carry the state
 * (a = 1, b = 0) and its gradient back to the last valid step, and their gradients after it are 0, as the
 * step loop's masks do.
 */
export interface ScanState {
  /** Which state of the signature. */
  readonly state: number;
  /** Its buffers: the state [T + 1, B, ...], its gradient [T + 1, B, ...], the coefficient [T, B, ...]. */
  readonly buffer: number;
  readonly grad: number;
  readonly coef: number;
}
