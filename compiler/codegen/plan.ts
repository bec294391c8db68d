import type { Node, NodeId } from "../ir/graph.js";
import { dimAdd, dimConst, dimKey, type Dim, type Type } from "../../artifact/shape.js";
import { OPS } from "../ops/ops.js";
import type { KernelIR, OuterAccumulate, Store } from "../schedule/types.js";

/**
 * The fused-kernel plan, shared by every backend. Nodes are put in stages: a barrier (gemm, reduction,
 * concatenation) runs once all of its operands are complete; all elementwise work of a stage that iterates
 * the same domain (rows x feature length) is fused into one loop, where values used only inside that loop
 * stay in registers and the rest go to scratch or straight into the buffer they are stored to. A view (a
 * gate's block of a stacked gemm) reads its base's buffer; the parts of a concatenation computed in a loop
 * are written straight into it.
 */
export interface Domain {
  readonly batched: boolean;
  readonly dim?: Dim; // feature length; none for per-row scalars
}

export type Storage =
  | { readonly kind: "binding"; readonly index: number }
  | { readonly kind: "scratch"; readonly index: number }
  | { readonly kind: "local" }
  | { readonly kind: "free" } // consts, dims and leaves are read where they are
  | { readonly kind: "view"; readonly of: NodeId; readonly start: Dim }; // columns of another node's buffer

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
  /** Indices of the GEMM steps that run with the loop after them as one launch (the kernel's `fuse`). */
  readonly fused: ReadonlySet<number>;
}

export function domainOf(t: Type): Domain {
  return { batched: t.batched, dim: t.dims[0] };
}
const domainKey = (d: Domain) => `${d.batched ? "B" : "-"}|${d.dim ? dimKey(d.dim) : ""}`;
const domainRank = (d: Domain) => (d.batched ? 2 : 0) + (d.dim ? 1 : 0);

export function planKernel(k: KernelIR): KernelPlan {
  const g = k.graph;
  const keyOf = new Map(k.bindings.map((b, i) => [`${b.buffer}${b.shift ? "+1" : ""}`, i]));
  const leafBinding = new Map<NodeId, number>();
  for (const n of g.nodes)
    if (n.op === "leaf") {
      const idx = keyOf.get(n.attrs.name!);
      if (idx === undefined) throw new Error(`kernel ${k.name}: no binding for buffer ${n.attrs.name}`);
      leafBinding.set(n.id, idx);
    }

  // Which nodes are needed.
  const needed = new Set<NodeId>();
  const roots = [...k.stores.map((s) => s.node), ...k.outers.flatMap((o) => [o.dy, o.x])];
  while (roots.length) {
    const id = roots.pop()!;
    if (needed.has(id)) continue;
    needed.add(id);
    roots.push(...g.node(id).args);
  }
  const cls = (n: Node) => OPS[n.op].class;
  const isFree = (n: Node) => cls(n) === "leaf";

  const stage = new Map<NodeId, number>();
  for (const n of g.nodes) {
    if (!needed.has(n.id)) continue;
    if (isFree(n)) stage.set(n.id, 0);
    else {
      const argStage = Math.max(0, ...n.args.map((a) => stage.get(a)!));
      const anyComputed = n.args.some((a) => !isFree(g.node(a)));
      const c = cls(n);
      stage.set(n.id, c === "barrier" ? (anyComputed ? argStage + 1 : 1) : argStage);
    }
  }
  const outerStage = (o: OuterAccumulate) => 1 + Math.max(stage.get(o.dy)!, stage.get(o.x)!);
  const storeDomain = (s: Store) => domainOf(k.bindings[s.binding]!.type);

  // Where each computed node is read from: the loop it is computed in, other loops, barriers, stores.
  const loopOf = (id: NodeId) => `${stage.get(id)}|${domainKey(domainOf(g.node(id).type))}`;
  const readElsewhere = new Set<NodeId>();
  for (const n of g.nodes) {
    if (!needed.has(n.id) || isFree(n)) continue;
    const elementwise = cls(n) === "elementwise";
    for (const a of n.args) if (!elementwise || loopOf(a) !== loopOf(n.id)) readElsewhere.add(a);
  }
  for (const o of k.outers) {
    readElsewhere.add(o.dy);
    readElsewhere.add(o.x);
  }

  // Storage: a node stored once, whole, to a buffer of its own domain lives in that buffer.
  const storage = new Map<NodeId, Storage>();
  const scratch: Type[] = [];
  const droppedStores = new Set<Store>();
  const claimed = new Set<number>();
  for (const s of k.stores) {
    const n = g.node(s.node);
    if (s.accumulate || isFree(n) || cls(n) === "view" || storage.has(n.id) || claimed.has(s.binding))
      continue;
    if (domainKey(storeDomain(s)) !== domainKey(domainOf(n.type))) continue;
    storage.set(n.id, { kind: "binding", index: s.binding });
    claimed.add(s.binding);
    droppedStores.add(s);
  }
  // The parts of a concatenation, all computed in loops, are written into it where they are computed.
  const assembled = new Set<NodeId>();
  for (const n of g.nodes) {
    if (!needed.has(n.id) || n.op !== "concat") continue;
    const ok = n.args.every(
      (a, i) =>
        cls(g.node(a)) === "elementwise" &&
        !storage.has(a) &&
        n.args.indexOf(a) === i &&
        g.node(a).type.batched === n.type.batched,
    );
    if (!ok) continue;
    assembled.add(n.id);
    let start = dimConst(0);
    for (const a of n.args) {
      storage.set(a, { kind: "view", of: n.id, start });
      start = dimAdd(start, g.node(a).type.dims[0]!);
    }
  }
  for (const n of g.nodes) {
    if (!needed.has(n.id) || storage.has(n.id)) continue;
    if (isFree(n)) storage.set(n.id, { kind: "free" });
    else if (cls(n) === "view") storage.set(n.id, { kind: "view", of: n.args[0]!, start: n.attrs.start! });
    else if (cls(n) === "barrier" || readElsewhere.has(n.id))
      storage.set(n.id, { kind: "scratch", index: scratch.push(n.type) - 1 });
    else storage.set(n.id, { kind: "local" });
  }
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
      if (needed.has(n.id) && stage.get(n.id) === st && cls(n) === "barrier" && !assembled.has(n.id))
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
      if (needed.has(n.id) && stage.get(n.id) === st && cls(n) === "elementwise")
        loop(domainOf(n.type)).items.push({ kind: "node", node: n.id });
    for (const s of k.stores)
      if (!droppedStores.has(s) && stage.get(s.node) === st)
        loop(storeDomain(s)).items.push({ kind: "store", store: s });
    const ordered = [...loops.values()].sort((a, b) => domainRank(a.domain) - domainRank(b.domain));
    for (const l of ordered) steps.push({ kind: "loop", domain: l.domain, items: l.items });
  }
  const fused = new Set<number>();
  for (const id of k.fuse ?? []) {
    const i = steps.findIndex((s) => s.kind === "barrier" && s.node === id);
    if (i < 0 || steps[i + 1]?.kind !== "loop")
      throw new Error(`kernel ${k.name}: %${id} has no loop to fuse`);
    fused.add(i);
  }
  return { kernel: k, storage, scratch, steps, leafBinding, fused };
}
