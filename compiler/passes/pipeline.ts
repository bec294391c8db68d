import type { CellIR } from "../ir/cell.js";
import { cellRoots } from "../ir/cell.js";
import type { Graph, NodeId } from "../ir/graph.js";
import { verifyGraph } from "../ir/verify.js";
import { rebuild } from "./rebuild.js";
import { simplifyNode } from "./simplify.js";

/** A pass is a pure function from a graph and its roots to a new graph; the map carries the roots over. */
export type Pass = (g: Graph, roots: readonly NodeId[]) => { graph: Graph; map: Map<NodeId, NodeId> };

/** The forward and backward step pipelines, in order. Zero-multiplied terms vanish before codegen. */
export const PASSES: readonly { readonly name: string; readonly run: Pass }[] = [
  { name: "simplify", run: (g, roots) => rebuild(g, roots, simplifyNode) },
  // A second round catches identities exposed by the first (a folded constant feeding a multiply).
  { name: "simplify-again", run: (g, roots) => rebuild(g, roots, simplifyNode) },
];

export interface PipelineOptions {
  readonly verify?: boolean;
  readonly after?: (pass: string, g: Graph) => void;
}

/** Runs the pipeline; `map` takes each node of `g` that survived to its id in the result. */
export function runPasses(g: Graph, roots: readonly NodeId[], opts: PipelineOptions = {}) {
  let graph = g;
  let ids = roots.slice();
  let map = new Map<NodeId, NodeId>(g.nodes.map((n) => [n.id, n.id]));
  for (const p of PASSES) {
    const r = p.run(graph, ids);
    graph = r.graph;
    ids = ids.map((i) => r.map.get(i)!);
    const composed = new Map<NodeId, NodeId>();
    for (const [from, to] of map) {
      const next = r.map.get(to);
      if (next !== undefined) composed.set(from, next);
    }
    map = composed;
    if (opts.verify) verifyGraph(graph, ids, p.name);
    opts.after?.(p.name, graph);
  }
  return { graph, roots: ids, map };
}

export function optimiseCell(c: CellIR, opts: PipelineOptions = {}): CellIR {
  const { graph, roots } = runPasses(c.graph, cellRoots(c), opts);
  const no = c.outputs.length;
  return {
    ...c,
    graph,
    outputs: c.outputs.map((o, i) => ({ name: o.name, node: roots[i]! })),
    next: c.next.map((n, i) => ({ state: n.state, node: roots[no + i]! })),
  };
}
