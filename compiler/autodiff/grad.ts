import type { CellIR } from "../ir/cell.js";
import { Builder, Graph, type Node, type NodeId } from "../ir/graph.js";
import { dimKey, type Type } from "../../artifact/shape.js";
import { OPS } from "../ops/ops.js";
import { runPasses } from "../passes/pipeline.js";
import { extract } from "../passes/rebuild.js";
import type { StackedCell } from "../schedule/stack.js";

/**
 * The backward step of a stacked cell, as one graph: reverse-mode AD over the forward step. Each primitive's
 * VJP rule builds IR; the sweep here sums contributions and reduces them to the operand's shape (over the
 * feature axis for a broadcast per-row scalar, over the batch for a parameter) — broadcasting is handled
 * once, here. A gemm's gradient is gathered from the gradients of its column views into one stacked
 * gradient, which flows to the operand through one transposed gemm and to the packed weight as an outer
 * product (deferred by the schedule to one GEMM over all steps).
 *
 * What the backward reads of the forward: barrier values (gemms, reductions, concatenations) and the values
 * in `kept` (kept by the forward pass anyway) are `tape` leaves; other elementwise values are recomputed
 * from them, which costs a few flops and saves their memory.
 */
export interface BackwardGraph {
  readonly graph: Graph;
  /** Per cell input, state and parameter: its gradient (a const 0 where there is none). */
  readonly gradInputs: readonly NodeId[];
  readonly gradStates: readonly NodeId[];
  readonly gradParams: readonly (NodeId | undefined)[];
  /** Per gemm: its pack's gradient is the sum over rows of dy^T x. */
  readonly outers: readonly { readonly pack: number; readonly dy: NodeId; readonly x: NodeId }[];
  /** Forward nodes read as tape leaves `t<k>`, in order. */
  readonly tape: readonly NodeId[];
}

const batchedOf = (t: Type): Type => ({ dims: t.dims, batched: true });

/** The upstream gradient leaves: `out:<i>` for output i, `next:<s>` for the next value of state s. */
export const upstreamName = (kind: "out" | "next", index: number) => `${kind}:${index}`;

export function differentiate(
  cell: CellIR,
  st: StackedCell,
  kept: ReadonlySet<NodeId> = new Set(),
): BackwardGraph {
  const fg = st.graph;
  // The joint graph: the forward nodes, copied with the same ids, then the backward nodes.
  const joint = new Graph();
  for (const n of fg.nodes) joint.add(n.op, n.args, n.attrs, n.type, n.span);
  const b = new Builder(joint);
  const forwardCount = fg.nodes.length;

  const cts = new Map<NodeId, NodeId[]>();
  const contribute = (target: NodeId, ct: NodeId) => {
    const list = cts.get(target);
    if (list) list.push(ct);
    else cts.set(target, [ct]);
  };
  st.outputs.forEach((o, i) =>
    contribute(o, b.leaf("upstream", upstreamName("out", i), batchedOf(fg.node(o).type))),
  );
  cell.states.forEach((s, i) => contribute(st.next[i]!, b.leaf("upstream", upstreamName("next", i), s.type)));

  /** Sum the contributions and reduce them to the node's type. */
  const total = (n: Node): NodeId | undefined => {
    const list = cts.get(n.id);
    if (!list) return undefined;
    b.span = n.span;
    let acc: NodeId | undefined;
    for (let c of list) {
      const t = b.type(c);
      if (t.dims.length > n.type.dims.length) c = b.sum(c);
      if (b.type(c).batched && !n.type.batched) c = b.sumBatch(c);
      acc = acc === undefined ? c : b.add(acc, c);
    }
    return acc;
  };

  // Column views of each gemm, by block start, and their gradients.
  const views = new Map<NodeId, Map<string, NodeId>>();
  for (const n of fg.nodes)
    if (n.op === "cols") {
      const m = views.get(n.args[0]!) ?? new Map<string, NodeId>();
      m.set(dimKey(n.attrs.start!), n.id);
      views.set(n.args[0]!, m);
    }
  const blockCt = new Map<NodeId, NodeId>();

  const leafGrads = new Map<string, NodeId>();
  const outers: { pack: number; dy: NodeId; x: NodeId }[] = [];
  for (let id = forwardCount - 1; id >= 0; id--) {
    const n = joint.node(id);
    if (n.op === "gemm") {
      const pack = st.packs[joint.node(n.args[0]!).attrs.pack!]!;
      const mine = views.get(id)!;
      const got = pack.blocks.map((blk) => blockCt.get(mine.get(dimKey(blk.row0))!));
      if (got.every((c) => c === undefined)) continue;
      // A block whose gradient is zero (cut by a step function, say) still takes its rows.
      const parts = pack.blocks.map((blk, i) => got[i] ?? b.mul(mine.get(dimKey(blk.row0))!, b.zero()));
      b.span = n.span;
      const ct = parts.length === 1 ? parts[0]! : b.concat(parts);
      outers.push({ pack: joint.node(n.args[0]!).attrs.pack!, dy: ct, x: n.args[1]! });
      const [, dv] = OPS.gemm.vjp(b, ct, n.args, n.id, n.attrs);
      if (dv) contribute(n.args[1]!, dv);
      continue;
    }
    const ct = total(n);
    if (ct === undefined) continue;
    if (n.op === "leaf") {
      leafGrads.set(`${n.attrs.role}:${n.attrs.name}`, ct);
      continue;
    }
    if (n.op === "cols") {
      blockCt.set(id, ct);
      continue;
    }
    b.span = n.span;
    const argCts = OPS[n.op].vjp(b, ct, n.args, n.id, n.attrs);
    argCts.forEach((a, i) => {
      if (a !== null && a !== undefined) contribute(n.args[i]!, a);
    });
  }

  const zero = b.zero();
  const gradInputs = cell.inputs.map((i) => leafGrads.get(`input:${i.name}`) ?? zero);
  const gradStates = cell.states.map((s) => leafGrads.get(`state:${s.name}`) ?? zero);
  const gradParams = cell.params.map((p) => leafGrads.get(`param:${p.name}`));
  const defined = gradParams.filter((g): g is NodeId => g !== undefined);
  const roots = [...gradInputs, ...gradStates, ...defined, ...outers.flatMap((o) => [o.dy, o.x])];

  // Optimise the backward computation on the joint graph, then cut it from the forward graph: forward
  // barriers become tape leaves, forward elementwise values are recomputed.
  const opt = runPasses(joint, roots);
  const og = opt.graph;
  const forwardOf = new Map<NodeId, NodeId>();
  for (const [from, to] of opt.map) if (from < forwardCount) forwardOf.set(to, from);
  const bg = new Builder(new Graph());
  const tape: NodeId[] = [];
  const out = extract(og, opt.roots, bg, (n) => {
    const fwd = forwardOf.get(n.id);
    if (fwd === undefined || (OPS[n.op].class !== "barrier" && !kept.has(fwd))) return undefined;
    let k = tape.indexOf(fwd);
    if (k < 0) k = tape.push(fwd) - 1;
    return bg.leaf("tape", `t${k}`, n.type);
  });
  let k = 0;
  const take = () => out[k++]!;
  const gi = gradInputs.map(take);
  const gs = gradStates.map(take);
  const gp = gradParams.map((g) => (g === undefined ? undefined : take()));
  const go = outers.map((o) => ({ pack: o.pack, dy: take(), x: take() }));
  return { graph: bg.g, gradInputs: gi, gradStates: gs, gradParams: gp, outers: go, tape };
}
