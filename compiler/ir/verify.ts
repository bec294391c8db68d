import { OPS } from "../ops/ops.js";
import type { Graph, NodeId } from "./graph.js";
import { dimEq, dimSub, printType } from "../../artifact/shape.js";

/** Checks the IR's invariants; throws (a compiler bug, not a user error) naming the pass that broke them. */
export function verifyGraph(g: Graph, roots: readonly NodeId[], after = "lowering"): void {
  const fail = (id: NodeId, why: string): never => {
    throw new Error(`IR verification failed after ${after}: %${id} ${g.node(id).op}: ${why}`);
  };
  for (const n of g.nodes) {
    const def = OPS[n.op];
    if (def.arity >= 0 && n.args.length !== def.arity)
      fail(n.id, `expects ${def.arity} arguments, has ${n.args.length}`);
    for (const a of n.args) if (a >= n.id || a < 0) fail(n.id, `argument %${a} is not defined before it`);
    const ts = n.args.map((a) => g.node(a).type);
    if (n.type.dims.length > 2) fail(n.id, "rank above 2");
    switch (def.class) {
      case "leaf":
        if (n.op === "leaf" && (!n.attrs.role || n.attrs.name === undefined))
          fail(n.id, "leaf without role or name");
        if (n.op === "const" && typeof n.attrs.value !== "number") fail(n.id, "const without value");
        break;
      case "elementwise":
        for (const t of ts) {
          if (t.dims.length > 1) fail(n.id, `elementwise on ${printType(t)}`);
          if (t.batched && !n.type.batched) fail(n.id, "batched argument, unbatched result");
          if (t.dims.length === 1 && (n.type.dims.length !== 1 || !dimEq(t.dims[0]!, n.type.dims[0]!)))
            fail(n.id, `argument ${printType(t)} does not fit result ${printType(n.type)}`);
        }
        break;
      case "barrier":
        if (n.op === "sum" && (n.type.dims.length !== 0 || ts[0]!.dims.length !== 1))
          fail(n.id, "sum must reduce a vector to a per-row scalar");
        if (n.op === "sumbatch" && n.type.batched) fail(n.id, "sumbatch must give an unbatched value");
        if (n.op === "matvec") {
          const [w, v] = ts;
          const width = dimSub(n.attrs.c1!, n.attrs.c0!);
          if (!w || w.dims.length !== 2 || !v || v.dims.length !== 1)
            fail(n.id, "matvec needs a matrix and a vector");
          const inner = n.attrs.transpose ? w!.dims[0]! : width;
          if (!dimEq(inner, v!.dims[0]!))
            fail(n.id, `inner dimensions differ: ${printType(w!)} and ${printType(v!)}`);
        }
        break;
    }
  }
  for (const r of roots)
    if (r < 0 || r >= g.nodes.length)
      throw new Error(`IR verification failed after ${after}: root %${r} missing`);
}
