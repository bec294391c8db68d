import type { Builder, Node, NodeId } from "../ir/graph.js";
import { typeEq } from "../../artifact/shape.js";
import { OPS } from "../ops/ops.js";

/**
 * Algebraic simplification: folds constants and removes identities (x + 0, x * 1, x * 0, x / 1, --x). An
 * identity is only removed when the result has the same type as what replaces it, so no broadcast is lost.
 */
export function simplifyNode(b: Builder, n: Node, args: NodeId[]): NodeId | undefined {
  const def = OPS[n.op];
  if (def.class !== "elementwise") return undefined;
  const nodes = args.map((a) => b.g.node(a));
  const consts = nodes.map((m) => (m.op === "const" ? m.attrs.value! : undefined));
  if (consts.every((c) => c !== undefined)) return b.const(def.eval(consts as number[]));
  const keep = (id: NodeId) => (typeEq(b.type(id), n.type) ? id : undefined);
  const [a, c] = args;
  const [ka, kc] = consts;
  switch (n.op) {
    case "add":
      if (ka === 0) return keep(c!);
      if (kc === 0) return keep(a!);
      break;
    case "sub":
      if (kc === 0) return keep(a!);
      if (ka === 0) return b.neg(c!);
      break;
    case "mul":
      if (ka === 1) return keep(c!);
      if (kc === 1) return keep(a!);
      if (
        (ka === 0 && n.type.dims.length === 0 && !n.type.batched) ||
        (kc === 0 && n.type.dims.length === 0 && !n.type.batched)
      )
        return b.const(0);
      if (ka === -1) return b.neg(c!);
      if (kc === -1) return b.neg(a!);
      break;
    case "div":
      if (kc === 1) return keep(a!);
      break;
    case "neg":
      if (nodes[0]!.op === "neg") return keep(nodes[0]!.args[0]!);
      break;
  }
  return undefined;
}
