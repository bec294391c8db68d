import type { CellIR } from "../ir/cell.js";
import { cellRoots } from "../ir/cell.js";
import { Builder, Graph, type Node, type NodeId } from "../ir/graph.js";
import { dimAdd, dimConst, dimKey, dimSub, type Dim } from "../../artifact/shape.js";
import { rebuild } from "../passes/rebuild.js";
import type { Pack, PackBlock } from "./types.js";

/** A cell's step after stacking: its matvecs are gemms on packed weights, read through column views. */
export interface StackedCell {
  readonly graph: Graph;
  readonly outputs: readonly NodeId[];
  readonly next: readonly NodeId[];
  readonly packs: readonly Pack[];
}

/** Which nodes read a state, directly or through their arguments. */
export function readsState(g: Graph): boolean[] {
  const out: boolean[] = [];
  for (const n of g.nodes)
    out[n.id] = (n.op === "leaf" && n.attrs.role === "state") || n.args.some((a) => out[a]);
  return out;
}

/**
 * Reassociates sums so that the terms that do not read the state are added first: `Wx@x + Uh@h + b`
 * becomes `(Wx@x + b) + Uh@h`, whose first part (input projection and bias) is hoisted out of the time
 * loop as a whole. Only single-use additions are regrouped, so no value is computed twice.
 */
export function reassociate(g: Graph, roots: readonly NodeId[]): { graph: Graph; roots: NodeId[] } {
  const uses = new Map<NodeId, number>();
  for (const n of g.nodes) for (const a of n.args) uses.set(a, (uses.get(a) ?? 0) + 1);
  for (const r of roots) uses.set(r, (uses.get(r) ?? 0) + 2);
  const state = readsState(g);
  const b = new Builder(new Graph());
  const map: NodeId[] = [];
  for (const n of g.nodes) {
    if (n.op === "add") {
      const terms: NodeId[] = [];
      const collect = (old: NodeId) => {
        const o = g.node(old);
        if (o.op === "add" && uses.get(old) === 1 && o.type.batched === n.type.batched)
          o.args.forEach(collect);
        else terms.push(old);
      };
      n.args.forEach(collect);
      const free = terms.filter((t) => !state[t]);
      const dep = terms.filter((t) => state[t]);
      if (free.length && dep.length) {
        b.span = n.span;
        const sum = (ts: NodeId[]) => ts.map((t) => map[t]!).reduce((acc, t) => b.add(acc, t));
        map[n.id] = b.add(sum(free), sum(dep));
        continue;
      }
    }
    map[n.id] = b.g.add(
      n.op,
      n.args.map((a) => map[a]!),
      n.attrs,
      n.type,
      n.span,
    );
  }
  // Additions absorbed into a regrouped sum are left unused: drop them.
  const r = rebuild(
    b.g,
    roots.map((id) => map[id]!),
  );
  return { graph: r.graph, roots: roots.map((id) => r.map.get(map[id]!)!) };
}

/**
 * Stacks the matvecs that share an operand into one gemm on a packed weight: `Wi@x, Wf@x, Wg@x, Wo@x`
 * become `P0 @ x` with P0 `[4H, D]`, and each matvec a view of its block of rows. `W @ [h, x]` (lowered as
 * one matvec per column block) and `Wx @ x + Wh @ h` give the same packs. Blocks are ordered by parameter
 * declaration, then column.
 */
export function stackCell(c: CellIR): StackedCell {
  const re = reassociate(c.graph, cellRoots(c));
  const g = re.graph;
  const state = readsState(g);
  const paramIndex = new Map(c.params.map((p, i) => [p.name, i]));
  const groups = new Map<NodeId, Node[]>();
  for (const n of g.nodes) {
    if (n.op !== "matvec") continue;
    const v = n.args[1]!;
    const list = groups.get(v);
    if (list) list.push(n);
    else groups.set(v, [n]);
  }
  const packs: Pack[] = [];
  const blockOf = new Map<NodeId, { pack: number; block: PackBlock }>();
  for (const [v, members] of groups) {
    const sorted = [...members].sort((a, b) => {
      const pa = paramIndex.get(g.node(a.args[0]!).attrs.name!)!;
      const pb = paramIndex.get(g.node(b.args[0]!).attrs.name!)!;
      return pa - pb || dimKey(a.attrs.c0!).localeCompare(dimKey(b.attrs.c0!));
    });
    let row0: Dim = dimConst(0);
    const blocks: PackBlock[] = [];
    for (const m of sorted) {
      const rows = g.node(m.args[0]!).type.dims[0]!;
      const block = {
        param: paramIndex.get(g.node(m.args[0]!).attrs.name!)!,
        row0,
        rows,
        c0: m.attrs.c0!,
        c1: m.attrs.c1!,
      };
      blocks.push(block);
      blockOf.set(m.id, { pack: packs.length, block });
      row0 = dimAdd(row0, rows);
    }
    const cols = dimSub(sorted[0]!.attrs.c1!, sorted[0]!.attrs.c0!);
    packs.push({ rows: row0, cols, blocks, phase: state[v] ? "step" : "before" });
  }
  const gemmOf = new Map<number, NodeId>();
  const r = rebuild(g, re.roots, (b, n, args) => {
    const at = blockOf.get(n.id);
    if (!at) return undefined;
    let gemm = gemmOf.get(at.pack);
    if (gemm === undefined) {
      const p = packs[at.pack]!;
      const pack = b.g.add(
        "leaf",
        [],
        { role: "pack", name: `P${at.pack}`, pack: at.pack },
        { dims: [p.rows, p.cols], batched: false },
      );
      gemm = b.op("gemm", [pack, args[1]!], {}, { dims: [p.rows], batched: b.type(args[1]!).batched });
      gemmOf.set(at.pack, gemm);
    }
    return b.op("cols", [gemm], { start: at.block.row0, len: at.block.rows }, n.type);
  });
  const no = c.outputs.length;
  const roots = re.roots.map((id) => r.map.get(id)!);
  return { graph: r.graph, outputs: roots.slice(0, no), next: roots.slice(no), packs };
}
