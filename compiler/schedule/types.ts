import type { Graph, NodeId } from "../ir/graph.js";
import type { Type } from "../../artifact/shape.js";
import type { Span } from "../diag/span.js";
import type { BufferDecl, KernelName, Pack, ScanState, Signature } from "../../artifact/schedule.js";
export { KERNEL_NAMES } from "../../artifact/schedule.js";
export type {
  BufferDecl,
  BufferKind,
  Extent,
  KernelName,
  Pack,
  PackBlock,
  ScanState,
  Signature,
} from "../../artifact/schedule.js";

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
  /**
   * GEMMs that run with the elementwise loop after them as one launch, where a target can (WGSL; the CPU
   * targets run the two one after the other): see fuse.ts.
   */
  readonly fuse?: readonly NodeId[];
}

export const bindingKey = (b: { buffer: number; shift: 0 | 1 }) => `${b.buffer}${b.shift ? "+1" : ""}`;

/** How a state's next value depends on it: a scan over time, or the step loop, and why. */
export interface StateRecurrence {
  readonly state: number;
  readonly scan: boolean;
  readonly why: string;
  /** The operation that keeps the state from being a scan state. */
  readonly at?: Span;
}

/**
 * The program over the whole sequence. Forward: `before` once over all T*B rows, then the scans of the scan
 * states, then `step` at t = 0..T-1 (once over all T*B rows when every state is a scan state). Backward:
 * `loop` at t = T-1..0 (likewise), then the reverse scans, then `after` once over all T*B rows, then each
 * pack's gradient is added to its parameters' gradients.
 */
export interface Schedule {
  readonly signature: Signature;
  readonly buffers: readonly BufferDecl[];
  readonly packs: readonly Pack[];
  readonly recurrences: readonly StateRecurrence[];
  readonly scans: readonly ScanState[];
  readonly forward: { readonly before: KernelIR; readonly step: KernelIR };
  readonly backward: { readonly loop: KernelIR; readonly after: KernelIR };
}

export function kernelsOf(s: Schedule): Record<KernelName, KernelIR> {
  return {
    before: s.forward.before,
    step: s.forward.step,
    loop: s.backward.loop,
    after: s.backward.after,
  };
}
