import type { KernelIR, OuterAccumulate, Store } from "../autodiff/kernel.js";
import type { Node, NodeId } from "../ir/graph.js";
import { dimKey, type Dim, type Type } from "../ir/shape.js";
import { OPS } from "../ops/ops.js";

/**
 * The fused-kernel plan, shared by every backend. Nodes are put in stages: a barrier (matvec, reduction,
 * concatenation) runs once all of its operands are complete; all elementwise work of a stage that iterates
 * the same domain (batch x feature length) is fused into one loop, where values used only inside that
 * loop stay in registers and the rest go to scratch or straight into the output buffer they are stored to.
 */
export interface Domain {
  readonly batched: boolean;
  readonly dim?: Dim; // feature length; none for per-row scalars
}

export type Storage =
  | { readonly kind: "binding"; readonly index: number }
  | { readonly kind: "scratch"; readonly index: number }
  | { readonly kind: "local" }
  | { readonly kind: "free" }; // consts, dims and leaves are read where they are

export type LoopItem =
  { readonly kind: "node"; readonly node: NodeId } | { readonly kind: "store"; readonly store: Store };

export type PlanStep =
  | { readonly kind: "loop"; readonly domain: Domain; readonly items: readonly LoopItem[] }
  | { readonly kind: "barrier"; readonly node: NodeId }
  | { readonly kind: "outer"; readonly outer: OuterAccumulate };

export interface KernelPlan {
  readonly kernel: KernelIR;
  readonly storage: ReadonlyMap<NodeId, Storage>;
  readonly scratch: readonly Type[];
  readonly steps: readonly PlanStep[];
  readonly leafBinding: ReadonlyMap<NodeId, number>;
}

export function domainOf(t: Type): Domain {
  return { batched: t.batched, dim: t.dims[0] };
}
const domainKey = (d: Domain) => `${d.batched ? "B" : "-"}|${d.dim ? dimKey(d.dim) : ""}`;
const domainRank = (d: Domain) => (d.batched ? 2 : 0) + (d.dim ? 1 : 0);

export function planKernel(k: KernelIR): KernelPlan {
  const g = k.graph;
  const leafBinding = new Map<NodeId, number>();
  for (const n of g.nodes)
    if (n.op === "leaf") {
      const idx = k.bindings.findIndex((b) => b.role === n.attrs.role && b.name === n.attrs.name);
      if (idx < 0) throw new Error(`kernel ${k.name}: no binding for ${n.attrs.role} ${n.attrs.name}`);
      leafBinding.set(n.id, idx);
    }

  // Which nodes are needed, and by whom.
  const needed = new Set<NodeId>();
  const mark = (id: NodeId) => {
    if (needed.has(id)) return;
    needed.add(id);
    for (const a of g.node(id).args) mark(a);
  };
  for (const s of k.stores) mark(s.node);
  for (const o of k.outers) {
    mark(o.dy);
    mark(o.x);
  }
  const isFree = (n: Node) => OPS[n.op].class === "leaf";

  const stage = new Map<NodeId, number>();
  for (const n of g.nodes) {
    if (!needed.has(n.id)) continue;
    if (isFree(n)) stage.set(n.id, 0);
    else {
      const argStage = Math.max(0, ...n.args.map((a) => stage.get(a)!));
      const barrier = OPS[n.op].class === "barrier";
      const anyComputed = n.args.some((a) => !isFree(g.node(a)));
      stage.set(n.id, barrier ? (anyComputed ? argStage + 1 : 1) : argStage);
    }
  }
  const outerStage = (o: OuterAccumulate) => 1 + Math.max(stage.get(o.dy)!, stage.get(o.x)!);
  const storeDomain = (s: Store) => domainOf(k.bindings[s.binding]!.type);

  // Where each computed node is read from: the loop it is computed in, other loops, barriers, stores.
  const loopOf = (id: NodeId) => `${stage.get(id)}|${domainKey(domainOf(g.node(id).type))}`;
  const readElsewhere = new Set<NodeId>();
  for (const n of g.nodes) {
    if (!needed.has(n.id) || isFree(n)) continue;
    const barrier = OPS[n.op].class === "barrier";
    for (const a of n.args) if (barrier || loopOf(a) !== loopOf(n.id)) readElsewhere.add(a);
  }
  for (const o of k.outers) {
    readElsewhere.add(o.dy);
    readElsewhere.add(o.x);
  }

  // Storage: a node stored once, whole, to an output buffer of its own domain lives in that buffer.
  const storage = new Map<NodeId, Storage>();
  const scratch: Type[] = [];
  const droppedStores = new Set<Store>();
  const claimed = new Set<number>();
  for (const s of k.stores) {
    const n = g.node(s.node);
    if (s.accumulate || isFree(n) || storage.has(n.id) || claimed.has(s.binding)) continue;
    if (domainKey(storeDomain(s)) !== domainKey(domainOf(n.type))) continue;
    storage.set(n.id, { kind: "binding", index: s.binding });
    claimed.add(s.binding);
    droppedStores.add(s);
  }
  for (const n of g.nodes) {
    if (!needed.has(n.id) || storage.has(n.id)) continue;
    if (isFree(n)) storage.set(n.id, { kind: "free" });
    else if (OPS[n.op].class === "barrier" || readElsewhere.has(n.id))
      storage.set(n.id, { kind: "scratch", index: scratch.push(n.type) - 1 });
    else storage.set(n.id, { kind: "local" });
  }
  // A node that lives in a binding but is also read in another loop is read from that binding: fine.
  // A local read by a store in another domain must be materialised.
  for (const s of k.stores) {
    if (droppedStores.has(s)) continue;
    const n = g.node(s.node);
    const st = storage.get(n.id)!;
    const sameLoop = `${stage.get(n.id)}|${domainKey(storeDomain(s))}` === loopOf(n.id);
    if (st.kind === "local" && !sameLoop)
      storage.set(n.id, { kind: "scratch", index: scratch.push(n.type) - 1 });
  }

  // Steps: per stage, barriers then loops ordered so that narrower domains (which may feed wider ones) come first.
  const maxStage = Math.max(0, ...[...stage.values()], ...k.outers.map(outerStage));
  const steps: PlanStep[] = [];
  for (let st = 0; st <= maxStage; st++) {
    for (const n of g.nodes)
      if (needed.has(n.id) && stage.get(n.id) === st && OPS[n.op].class === "barrier")
        steps.push({ kind: "barrier", node: n.id });
    for (const o of k.outers) if (outerStage(o) === st) steps.push({ kind: "outer", outer: o });
    const loops = new Map<string, { domain: Domain; items: LoopItem[] }>();
    const loop = (d: Domain) => {
      const key = domainKey(d);
      let l = loops.get(key);
      if (!l) loops.set(key, (l = { domain: d, items: [] }));
      return l;
    };
    for (const n of g.nodes)
      if (needed.has(n.id) && stage.get(n.id) === st && OPS[n.op].class === "elementwise")
        loop(domainOf(n.type)).items.push({ kind: "node", node: n.id });
    for (const s of k.stores)
      if (!droppedStores.has(s) && stage.get(s.node) === st)
        loop(storeDomain(s)).items.push({ kind: "store", store: s });
    const ordered = [...loops.values()].sort((a, b) => domainRank(a.domain) - domainRank(b.domain));
    for (const l of ordered) steps.push({ kind: "loop", domain: l.domain, items: l.items });
  }
  // Bindings that receive no store at all (a gradient that is identically zero) are cleared by the caller;
  // `write` stores of free nodes (a constant next state) are loops like any other.
  return { kernel: k, storage, scratch, steps, leafBinding };
}
