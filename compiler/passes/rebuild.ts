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
