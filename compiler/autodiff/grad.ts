import type { CellIR } from "../ir/cell.js";
import { Builder, Graph, type Node, type NodeId } from "../ir/graph.js";
import type { Type } from "../ir/shape.js";
import { OPS } from "../ops/ops.js";
import { runPasses } from "../passes/pipeline.js";
import type { Binding, KernelIR, OuterAccumulate, Store } from "./kernel.js";

/**
 * The forward and backward step kernels of a cell.
 *
 * Backward: reverse-mode AD over the forward graph. Each primitive's VJP rule builds IR; the sweep here
 * sums contributions and reduces them to the operand's shape (over the feature axis for a broadcast
 * per-row scalar, over the batch for a parameter) — broadcasting is handled once, here.
 *
 * What the backward step reads of the forward step: the outputs of barrier nodes (matvecs, reductions,
 * concatenations) are saved by the forward step; elementwise values are recomputed from them, which costs
 * a few flops and saves their memory.
 */
export interface StepKernels {
  readonly forward: KernelIR;
  readonly backward: KernelIR;
  /** Forward nodes the backward step reads, in the order of the forward kernel's `saved` bindings. */
  readonly saved: readonly NodeId[];
}

const batchedOf = (t: Type): Type => ({ dims: t.dims, batched: true });

export function buildStepKernels(cell: CellIR): StepKernels {
  const fg = cell.graph;
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
  for (const o of cell.outputs)
    contribute(o.node, b.leaf("upstream", `out:${o.name}`, batchedOf(fg.node(o.node).type)));
  for (const s of cell.states) {
    const next = cell.next.find((n) => n.state === s.name)!;
    contribute(next.node, b.leaf("upstream", `next:${s.name}`, s.type));
  }

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

  const leafGrads = new Map<string, NodeId>();
  const outers: {
    param: string;
    dy: NodeId;
    x: NodeId;
    c0: OuterAccumulate["c0"];
    c1: OuterAccumulate["c1"];
  }[] = [];
  for (let id = forwardCount - 1; id >= 0; id--) {
    const n = joint.node(id);
    const ct = total(n);
    if (ct === undefined) continue;
    if (n.op === "leaf") {
      leafGrads.set(`${n.attrs.role}:${n.attrs.name}`, ct);
      continue;
    }
    if (n.op === "matvec" && !n.attrs.transpose) {
      const w = joint.node(n.args[0]!);
      outers.push({ param: w.attrs.name!, dy: ct, x: n.args[1]!, c0: n.attrs.c0!, c1: n.attrs.c1! });
    }
    b.span = n.span;
    const argCts = OPS[n.op].vjp(b, ct, n.args, n.id, n.attrs);
    argCts.forEach((a, i) => {
      if (a !== null && a !== undefined) contribute(n.args[i]!, a);
    });
  }

  // Bindings of the backward kernel: outputs first (their order is fixed), leaves are added as found.
  const bwdBindings: Binding[] = [];
  const stores: Store[] = [];
  const bind = (bd: Binding) => bwdBindings.push(bd) - 1;
  const gradRoots: NodeId[] = [];
  const gradTargets: { binding: number; accumulate: boolean }[] = [];
  const zero = b.const(0);
  for (const [index, i] of cell.inputs.entries()) {
    gradRoots.push(leafGrads.get(`input:${i.name}`) ?? zero);
    gradTargets.push({
      binding: bind({ role: "grad_input", name: i.name, type: i.type, index }),
      accumulate: false,
    });
  }
  for (const [index, s] of cell.states.entries()) {
    gradRoots.push(leafGrads.get(`state:${s.name}`) ?? zero);
    gradTargets.push({
      binding: bind({ role: "grad_state", name: s.name, type: s.type, index }),
      accumulate: false,
    });
  }
  const paramBinding = new Map<string, number>();
  for (const [index, p] of cell.params.entries()) {
    const idx = bind({ role: "grad_param", name: p.name, type: p.type, index });
    paramBinding.set(p.name, idx);
    const g = leafGrads.get(`param:${p.name}`);
    if (g !== undefined) {
      gradRoots.push(g);
      gradTargets.push({ binding: idx, accumulate: true });
    }
  }
  const outerRoots = outers.flatMap((o) => [o.dy, o.x]);

  // Optimise the backward computation on the joint graph, then cut it from the forward graph: forward
  // barriers become saved leaves, forward elementwise nodes are recomputed.
  const opt = runPasses(joint, [...gradRoots, ...outerRoots]);
  const og = opt.graph;
  const isForward = (n: Node) => n.op !== "leaf" || n.attrs.role !== "upstream";
  const forwardOf = forwardNodeIndex(fg, og);
  const bg = new Builder(new Graph());
  const map = new Map<NodeId, NodeId>();
  const savedNodes: NodeId[] = [];
  const copy = (id: NodeId): NodeId => {
    const hit = map.get(id);
    if (hit !== undefined) return hit;
    const n = og.node(id);
    const fwdId = forwardOf.get(id);
    let out: NodeId;
    bg.span = n.span;
    if (fwdId !== undefined && OPS[n.op].class === "barrier" && isForward(n)) {
      let k = savedNodes.indexOf(fwdId);
      if (k < 0) k = savedNodes.push(fwdId) - 1;
      out = bg.leaf("saved", `s${k}`, n.type);
    } else {
      const args = n.args.map(copy);
      out = bg.g.add(n.op, args, n.attrs, n.type, n.span);
    }
    map.set(id, out);
    return out;
  };
  gradTargets.forEach((target, i) => stores.push({ ...target, node: copy(opt.roots[i]!) }));
  const bwdOuters: OuterAccumulate[] = outers.map((o, i) => ({
    binding: paramBinding.get(o.param)!,
    dy: copy(opt.roots[gradRoots.length + 2 * i]!),
    x: copy(opt.roots[gradRoots.length + 2 * i + 1]!),
    c0: o.c0,
    c1: o.c1,
  }));

  // Forward kernel: outputs, next states and the saved barrier values.
  const fwdBindings: Binding[] = [];
  const fwdStores: Store[] = [];
  for (const [index, o] of cell.outputs.entries())
    fwdStores.push({
      binding:
        fwdBindings.push({ role: "output", name: o.name, type: batchedOf(fg.node(o.node).type), index }) - 1,
      node: o.node,
      accumulate: false,
    });
  for (const [index, s] of cell.states.entries()) {
    const next = cell.next.find((n) => n.state === s.name)!;
    fwdStores.push({
      binding: fwdBindings.push({ role: "next", name: s.name, type: s.type, index }) - 1,
      node: next.node,
      accumulate: false,
    });
  }
  savedNodes.forEach((id, k) => {
    fwdStores.push({
      binding: fwdBindings.push({ role: "saved", name: `s${k}`, type: fg.node(id).type, index: k }) - 1,
      node: id,
      accumulate: false,
    });
  });
  fwdBindings.push(...leafBindings(cell));
  bwdBindings.push(...leafBindings(cell));
  savedNodes.forEach((id, k) =>
    bwdBindings.push({ role: "saved", name: `s${k}`, type: fg.node(id).type, index: k }),
  );
  cell.outputs.forEach((o, index) =>
    bwdBindings.push({
      role: "upstream",
      name: `out:${o.name}`,
      type: batchedOf(fg.node(o.node).type),
      index,
    }),
  );
  cell.states.forEach((s, index) =>
    bwdBindings.push({ role: "upstream", name: `next:${s.name}`, type: s.type, index }),
  );

  return {
    forward: { name: "forward", graph: fg, bindings: fwdBindings, stores: fwdStores, outers: [] },
    backward: { name: "backward", graph: bg.g, bindings: bwdBindings, stores, outers: bwdOuters },
    saved: savedNodes,
  };
}

/** Maps nodes of the optimised joint graph back to the forward node they equal, by structure. */
function forwardNodeIndex(fg: Graph, og: Graph): Map<NodeId, NodeId> {
  const keyOf = new Map<string, NodeId>();
  const fwdKey = new Map<NodeId, string>();
  for (const n of fg.nodes) {
    const k = `${n.op}(${n.args.map((a) => fwdKey.get(a)).join(",")})${JSON.stringify(n.attrs)}`;
    fwdKey.set(n.id, k);
    keyOf.set(k, n.id);
  }
  const out = new Map<NodeId, NodeId>();
  const ogKey = new Map<NodeId, string>();
  for (const n of og.nodes) {
    const k = `${n.op}(${n.args.map((a) => ogKey.get(a)).join(",")})${JSON.stringify(n.attrs)}`;
    ogKey.set(n.id, k);
    const f = keyOf.get(k);
    if (f !== undefined) out.set(n.id, f);
  }
  return out;
}

/**
 * The buffers every step kernel of a cell reads, in a fixed order (inputs, states, params), whether or not
 * its graph uses each one: the kernels' calling convention does not depend on what optimisation removed.
 */
function leafBindings(cell: CellIR): Binding[] {
  return [
    ...cell.inputs.map((i, index) => ({ role: "input" as const, name: i.name, type: i.type, index })),
    ...cell.states.map((s, index) => ({ role: "state" as const, name: s.name, type: s.type, index })),
    ...cell.params.map((p, index) => ({ role: "param" as const, name: p.name, type: p.type, index })),
  ];
}
