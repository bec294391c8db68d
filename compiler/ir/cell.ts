import type { InitSpec } from "../check/types.js";
import type { Span } from "../diag/span.js";
import type { Graph, NodeId } from "./graph.js";
import type { Type } from "../../artifact/shape.js";

/** A cell's step as IR: `(x_t, state_{t-1}, params) -> (outputs_t, state_t)`. */
export interface CellIR {
  readonly name: string;
  readonly dims: readonly string[];
  readonly inputs: readonly { readonly name: string; readonly type: Type }[];
  readonly states: readonly { readonly name: string; readonly type: Type; readonly init: number }[];
  readonly params: readonly {
    readonly name: string;
    readonly type: Type;
    readonly init: InitSpec;
    readonly span?: Span;
  }[];
  /** Declared by the cell itself but used by no output (warning W001): a params file may hold them. */
  readonly unusedParams?: readonly string[];
  readonly graph: Graph;
  readonly outputs: readonly { readonly name: string; readonly node: NodeId }[];
  readonly next: readonly { readonly state: string; readonly node: NodeId }[];
}

export function cellRoots(c: CellIR): NodeId[] {
  return [...c.outputs.map((o) => o.node), ...c.next.map((n) => n.node)];
}

/** The nodes the cell's outputs and next states need. */
export function reachableNodes(c: CellIR): Set<NodeId> {
  const seen = new Set<NodeId>();
  const stack = cellRoots(c);
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...c.graph.node(id).args);
  }
  return seen;
}
