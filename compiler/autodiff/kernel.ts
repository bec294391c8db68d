import type { Graph, LeafRole, NodeId } from "../ir/graph.js";
import { storedShape, type Dim, type Type } from "../ir/shape.js";

/**
 * A step kernel as IR, ready for code generation: the graph, the buffers it reads (its leaves), the values
 * it writes or accumulates into output buffers, and the weight gradients it accumulates as outer products.
 */
export type OutRole = "output" | "next" | "saved" | "grad_input" | "grad_state" | "grad_param";

export interface Binding {
  readonly role: LeafRole | OutRole;
  readonly name: string;
  readonly type: Type;
  /**
   * Which one of its kind: the position in the cell's inputs, states, params or outputs, or the saved
   * value's number. For `upstream`, the output (`out:` names) or the state (`next:` names) it flows into.
   * Runtimes resolve their buffers by it once, not by name at every step.
   */
  readonly index: number;
}

export interface Store {
  readonly binding: number; // index into bindings
  readonly node: NodeId;
  readonly accumulate: boolean;
}

/** `G[:, c0:c1] += sum over the batch of dy^T x`: the gradient of a matvec's weight. */
export interface OuterAccumulate {
  readonly binding: number;
  readonly dy: NodeId;
  readonly x: NodeId;
  readonly c0: Dim;
  readonly c1: Dim;
}

export interface KernelIR {
  readonly name: "forward" | "backward";
  readonly graph: Graph;
  readonly bindings: readonly Binding[];
  readonly stores: readonly Store[];
  readonly outers: readonly OuterAccumulate[];
}

/** A binding as a manifest describes it: role, name, and shape in the cell's dimensions (B first if batched). */
export function describeBinding(b: Binding) {
  return { role: b.role, name: b.name, shape: storedShape(b.type) };
}
