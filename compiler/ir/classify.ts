import type { CellIR } from "./cell.js";
import type { NodeId } from "./graph.js";

/**
 * Where each node's work belongs in the time loop: `hoist` (reads inputs but no state: all time steps can be
 * computed before the loop), `recur` (a matvec on the previous state itself), `split` (a matvec on a value
 * computed from the state in the same step, such as GRU's reset applied before the recurrent matmul), or
 * `step` (other per-step work that reads the state).
 */
export type Placement = "const" | "hoist" | "recur" | "split" | "step";

export interface Classification {
  readonly placement: ReadonlyMap<NodeId, Placement>;
  readonly kind:
    "matmul on previous state" | "elementwise recurrence" | "split inside step" | "no recurrence";
  readonly counts: Readonly<Record<Placement, number>>;
}

export function classify(c: CellIR): Classification {
  const g = c.graph;
  const readsState = new Map<NodeId, boolean>();
  const placement = new Map<NodeId, Placement>();
  const counts: Record<Placement, number> = { const: 0, hoist: 0, recur: 0, split: 0, step: 0 };
  for (const n of g.nodes) {
    const state = n.op === "leaf" && n.attrs.role === "state";
    const rs = state || n.args.some((a) => readsState.get(a));
    readsState.set(n.id, rs);
    if (n.op === "leaf" || n.op === "const" || n.op === "dim") continue;
    let p: Placement;
    if (!rs) p = n.type.batched ? "hoist" : "const";
    else if (n.op === "matvec") {
      const arg = g.node(n.args[1]!);
      p = arg.op === "leaf" ? "recur" : "split";
    } else p = "step";
    placement.set(n.id, p);
    if (n.op === "matvec") counts[p]++;
  }
  const anyState = c.states.length > 0;
  const kind = !anyState
    ? "no recurrence"
    : counts.split > 0
      ? "split inside step"
      : counts.recur > 0
        ? "matmul on previous state"
        : "elementwise recurrence";
  return { placement, kind, counts };
}
