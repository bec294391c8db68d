import type { InitSpec } from "../check/types.js";
import type { Graph, NodeId } from "../ir/graph.js";
import type { Dim, Type } from "../ir/shape.js";

/**
 * The schedule: how a whole sequence runs, decided once by the compiler for every backend. It is plain data
 * (no functions); the graphs in it are for the code generators and printers, and the runtime reads only the
 * serialisable part (see artifact.ts).
 *
 * Buffers. Everything a run touches is a buffer of the schedule, with a typed role. A buffer's size is its
 * row (the per-row type) times its number of rows, given by its extent:
 *   seq   [T, B, row]       per-step values of the whole sequence
 *   seq1  [T + 1, B, row]   states (the state before step t at t; the final state at T) and their gradients
 *   batch [B, row]          per-call values that do not move with t (the masks' carried rows)
 *   one   [row]             unbatched values: parameters, packed weights, their gradients
 * Parameters, packed weights and their gradients live in the `pmem` arena, everything else in `mem`.
 */
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
  | "carry"; // rows set aside by the backward masks, [B, ...]

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

/** Binding of a kernel: a buffer, read or written at step t, or one step later (`shift` 1: a next state). */
export interface Binding {
  readonly buffer: number;
  readonly shift: 0 | 1;
  readonly type: Type;
  readonly arena: "mem" | "pmem";
}

export interface Store {
  readonly binding: number; // index into the kernel's bindings
  readonly node: NodeId;
  readonly accumulate: boolean;
}

/** `D += G^T X` over all rows: a packed weight's gradient (D a `grad_pack` binding). */
export interface OuterAccumulate {
  readonly binding: number;
  readonly dy: NodeId;
  readonly x: NodeId;
}

/** Rows past their sequence length: `dst` gets `src` (or zeros); `save`, when given, keeps dst's old rows first. */
export interface MaskOp {
  readonly dst: number; // binding
  readonly src?: number; // binding; none: zeros
  readonly save?: number; // binding
}

/**
 * A kernel: a graph computed over a number of rows (`B` per step, or `T*B` once before or after the loop),
 * its bindings, and what it stores. Leaves of the graph are `buffer` leaves whose name is the binding's key
 * (`bindingKey`). Masks run only when the call has sequence lengths: `premask` before the kernel at a step,
 * `postmask` after it.
 */
export interface KernelIR {
  readonly name: string;
  readonly rows: "B" | "TB";
  readonly graph: Graph;
  readonly bindings: readonly Binding[];
  readonly stores: readonly Store[];
  readonly outers: readonly OuterAccumulate[];
  readonly premask: readonly MaskOp[];
  readonly postmask: readonly MaskOp[];
}

export const bindingKey = (b: { buffer: number; shift: 0 | 1 }) => `${b.buffer}${b.shift ? "+1" : ""}`;

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

/**
 * The program over the whole sequence. Forward: `before` once over all T*B rows, then `step` at t = 0..T-1.
 * Backward: `loop` at t = T-1..0, then `after` once over all T*B rows, then each pack's gradient is added to
 * its parameters' gradients.
 */
export interface Schedule {
  readonly signature: Signature;
  readonly buffers: readonly BufferDecl[];
  readonly packs: readonly Pack[];
  readonly forward: { readonly before: KernelIR; readonly step: KernelIR };
  readonly backward: { readonly loop: KernelIR; readonly after: KernelIR };
}

export const KERNEL_NAMES = ["before", "step", "loop", "after"] as const;
export type KernelName = (typeof KERNEL_NAMES)[number];

export function kernelsOf(s: Schedule): Record<KernelName, KernelIR> {
  return {
    before: s.forward.before,
    step: s.forward.step,
    loop: s.backward.loop,
    after: s.backward.after,
  };
}
