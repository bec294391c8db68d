import { Builder, Graph, type NodeId, type Node } from "../ir/graph.js";

/**
 * Copies the nodes reachable from `roots` into a fresh graph in topological order, letting `rewrite` replace
 * a node by another built from already-copied arguments. Hash-consing in the new graph merges duplicates;
 * unreachable nodes are not copied. Returns the new graph and the map from old ids to new ids.
 */
export function rebuild(
  g: Graph,
  roots: readonly NodeId[],
  rewrite: (b: Builder, n: Node, args: NodeId[]) => NodeId | undefined = () => undefined,
): { graph: Graph; map: Map<NodeId, NodeId> } {
  const b = new Builder(new Graph());
  const map = new Map<NodeId, NodeId>();
  const visit = (id: NodeId): NodeId => {
    const hit = map.get(id);
    if (hit !== undefined) return hit;
    // Iterative post-order, so that long chains do not overflow the stack.
    const stack: [NodeId, boolean][] = [[id, false]];
    while (stack.length) {
      const [cur, expanded] = stack.pop()!;
      if (map.has(cur)) continue;
      const n = g.node(cur);
      if (!expanded) {
        stack.push([cur, true]);
        for (const a of [...n.args].reverse()) if (!map.has(a)) stack.push([a, false]);
        continue;
      }
      const args = n.args.map((a) => map.get(a)!);
      b.span = n.span;
      const out = rewrite(b, n, args) ?? b.g.add(n.op, args, n.attrs, n.type, n.span);
      map.set(cur, out);
    }
    return map.get(id)!;
  };
  for (const r of roots) visit(r);
  return { graph: b.g, map };
}

/**
 * Copies the subgraph of `src` that `roots` need into the builder's graph, in post-order (iteratively, so
 * that long chains do not overflow the stack). `resolve` may give a node of the target for a source node
 * (a leaf read from a buffer, say); then its arguments are not copied. `rewrite` may replace a copied node
 * by another built from its copied arguments (a simplification). Returns the roots' new ids.
 */
export function extract(
  src: Graph,
  roots: readonly NodeId[],
  into: Builder,
  resolve: (n: Node) => NodeId | undefined,
  memo: Map<NodeId, NodeId> = new Map(),
  rewrite: (b: Builder, n: Node, args: NodeId[]) => NodeId | undefined = () => undefined,
): NodeId[] {
  const copy = (root: NodeId) => {
    const stack: [NodeId, boolean][] = [[root, false]];
    while (stack.length) {
      const [id, expanded] = stack.pop()!;
      if (memo.has(id)) continue;
      const n = src.node(id);
      into.span = n.span;
      if (!expanded) {
        const r = resolve(n);
        if (r !== undefined) {
          memo.set(id, r);
          continue;
        }
        stack.push([id, true]);
        for (const a of n.args) if (!memo.has(a)) stack.push([a, false]);
        continue;
      }
      const args = n.args.map((a) => memo.get(a)!);
      memo.set(id, rewrite(into, n, args) ?? into.g.add(n.op, args, n.attrs, n.type, n.span));
    }
    return memo.get(root)!;
  };
  return roots.map(copy);
}
