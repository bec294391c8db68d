import type { CheckedCell, TExpr } from "../check/types.js";
import type { CellIR } from "./cell.js";
import { Builder, Graph, type NodeId } from "./graph.js";
import { dimAdd, dimConst, type Dim } from "../../artifact/shape.js";

/** Lowers a checked cell to IR. A matvec on a concatenation becomes one matvec per column block. */
export function lowerCell(cell: CheckedCell): CellIR {
  const b = new Builder(new Graph());
  const memo = new Map<string, NodeId>();

  const eq = (key: string): NodeId => {
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    const t = cell.equations.get(key);
    if (!t) throw new Error(`lowering: no equation '${key}'`);
    const id = expr(t);
    memo.set(key, id);
    return id;
  };

  const matvecBlocks = (w: NodeId, v: NodeId, offset: Dim): NodeId => {
    const n = b.g.node(v);
    if (n.op === "concat") {
      let acc: NodeId | undefined;
      let off = offset;
      for (const item of n.args) {
        const part = matvecBlocks(w, item, off);
        acc = acc === undefined ? part : b.add(acc, part);
        off = dimAdd(off, b.type(item).dims[0]!);
      }
      return acc!;
    }
    return b.matvec(w, v, offset, dimAdd(offset, n.type.dims[0]!), false);
  };

  // Checked expressions are DAGs (a function called twice on the same values is one subtree): lower each
  // node once, in post-order with an explicit stack so that long chains do not recurse.
  const lowered = new Map<TExpr, NodeId>();
  const expr = (root: TExpr): NodeId => {
    const stack: TExpr[] = [root];
    while (stack.length) {
      const t = stack[stack.length - 1]!;
      if (lowered.has(t)) {
        stack.pop();
        continue;
      }
      const kids = t.k === "op" ? t.args : t.k === "concat" ? t.items : t.k === "matvec" ? [t.arg] : [];
      const missing = kids.filter((c) => !lowered.has(c));
      if (missing.length) {
        stack.push(...missing.reverse());
        continue;
      }
      stack.pop();
      lowered.set(
        t,
        node(
          t,
          kids.map((c) => lowered.get(c)!),
        ),
      );
    }
    return lowered.get(root)!;
  };

  const node = (t: TExpr, args: NodeId[]): NodeId => {
    const ref = t.k === "ref" ? eq(t.key) : undefined;
    b.span = t.span;
    switch (t.k) {
      case "const":
        return b.const(t.value);
      case "dim":
        return b.dimValue(t.dim);
      case "leaf":
        return b.leaf(t.role, t.name, t.type);
      case "ref":
        return ref!;
      case "op":
        return b.op(t.op, args, {}, t.type);
      case "concat":
        return b.concat(args);
      case "matvec": {
        const w = b.leaf("param", t.weight, t.weightType);
        return matvecBlocks(w, args[0]!, dimConst(0));
      }
    }
  };

  for (const k of cell.equations.keys()) eq(k);
  const outputs = cell.outputs.map((o) => ({ name: o.name, node: expr(o.expr) }));
  const next = cell.states.map((s) => ({ state: s.name, node: eq(`${s.name}'`) }));
  return {
    name: cell.name,
    dims: cell.dims,
    inputs: cell.inputs.map(({ name, type }) => ({ name, type })),
    states: cell.states.map(({ name, type, init }) => ({ name, type, init })),
    params: cell.params.map(({ name, type, init, span }) => ({ name, type, init, span })),
    unusedParams: cell.unusedParams ?? [],
    graph: b.g,
    outputs,
    next,
  };
}
