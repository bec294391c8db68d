import type { Span } from "../diag/span.js";
import { dimAdd, dimSub, type Dim, type Type } from "../../artifact/shape.js";
import type { OpKind } from "../ops/kind.js";

export type NodeId = number;
/**
 * Leaves of a cell's step graph are its inputs, states and parameters (and, after stacking, packed weights);
 * the backward graph adds the upstream gradients and the forward values it reads (`tape`). A kernel's
 * graph reads schedule buffers only (`buffer`, named by the buffer's key).
 */
export type LeafRole = "input" | "state" | "param" | "pack" | "tape" | "upstream" | "buffer";

/** Attributes of a node; which are present depends on the op. */
export interface Attrs {
  readonly value?: number; // const
  readonly role?: LeafRole; // leaf
  readonly name?: string; // leaf
  readonly dim?: Dim; // dim: the value of a dimension
  readonly c0?: Dim; // matvec: first column of the weight used
  readonly c1?: Dim; // matvec: one past the last column
  readonly transpose?: boolean; // matvec
  readonly start?: Dim; // slice
  readonly len?: Dim; // slice, cols
  readonly pack?: number; // pack leaf: which packed weight
}

export interface Node {
  readonly id: NodeId;
  readonly op: OpKind;
  readonly args: readonly NodeId[];
  readonly attrs: Attrs;
  readonly type: Type;
  readonly span?: Span;
}

/** A hash-consed dataflow graph: building the same op on the same arguments returns the existing node. */
export class Graph {
  readonly nodes: Node[] = [];
  private readonly index = new Map<string, NodeId>();

  add(op: OpKind, args: readonly NodeId[], attrs: Attrs, type: Type, span?: Span): NodeId {
    const key = `${op}(${args.join(",")})${attrKey(attrs)}`;
    const hit = this.index.get(key);
    if (hit !== undefined) return hit;
    const id = this.nodes.length;
    this.nodes.push({ id, op, args, attrs, type, span });
    this.index.set(key, id);
    return id;
  }
  node(id: NodeId): Node {
    const n = this.nodes[id];
    if (!n) throw new Error(`no IR node %${id}`);
    return n;
  }
}

function attrKey(a: Attrs): string {
  const parts: string[] = [];
  for (const k of Object.keys(a).sort()) {
    const v = (a as Record<string, unknown>)[k];
    if (v !== undefined) parts.push(`${k}=${typeof v === "object" ? JSON.stringify(v) : String(v)}`);
  }
  return parts.length ? `{${parts.join(";")}}` : "";
}

export function broadcastType(ts: readonly Type[]): Type {
  let dims: readonly Dim[] = [];
  for (const t of ts) if (t.dims.length > dims.length) dims = t.dims;
  return { dims, batched: ts.some((t) => t.batched) };
}

/** Builds nodes with inferred types; the span given to `at` is attached to every node built until reset. */
export class Builder {
  span: Span | undefined;
  constructor(readonly g: Graph) {}

  type(id: NodeId): Type {
    return this.g.node(id).type;
  }
  op(op: OpKind, args: readonly NodeId[], attrs: Attrs = {}, type?: Type): NodeId {
    return this.g.add(op, args, attrs, type ?? broadcastType(args.map((a) => this.type(a))), this.span);
  }
  leaf(role: LeafRole, name: string, type: Type): NodeId {
    return this.g.add("leaf", [], { role, name }, type, this.span);
  }
  const(value: number): NodeId {
    return this.g.add("const", [], { value }, { dims: [], batched: false }, undefined);
  }
  dimValue(d: Dim): NodeId {
    return this.g.add("dim", [], { dim: d }, { dims: [], batched: false }, undefined);
  }
  add(a: NodeId, b: NodeId) {
    return this.op("add", [a, b]);
  }
  sub(a: NodeId, b: NodeId) {
    return this.op("sub", [a, b]);
  }
  mul(a: NodeId, b: NodeId) {
    return this.op("mul", [a, b]);
  }
  div(a: NodeId, b: NodeId) {
    return this.op("div", [a, b]);
  }
  neg(a: NodeId): NodeId {
    return this.op("neg", [a]);
  }
  gt(a: NodeId, b: NodeId) {
    return this.op("gt", [a, b]);
  }
  sum(v: NodeId) {
    const t = this.type(v);
    return this.op("sum", [v], {}, { dims: [], batched: t.batched });
  }
  sumBatch(v: NodeId) {
    const t = this.type(v);
    return this.op("sumbatch", [v], {}, { dims: t.dims, batched: false });
  }
  /** `W[:, c0:c1] @ v`, or with transpose `W[:, c0:c1]^T @ v`. */
  matvec(w: NodeId, v: NodeId, c0: Dim, c1: Dim, transpose: boolean) {
    const wt = this.type(w);
    const out = transpose ? dimSub(c1, c0) : wt.dims[0]!;
    return this.op("matvec", [w, v], { c0, c1, transpose }, { dims: [out], batched: this.type(v).batched });
  }
  concat(items: readonly NodeId[]) {
    let total: Dim | undefined;
    for (const i of items) {
      const d = this.type(i).dims[0]!;
      total = total ? dimAdd(total, d) : d;
    }
    return this.op("concat", items, {}, { dims: [total!], batched: items.some((i) => this.type(i).batched) });
  }
  slice(v: NodeId, start: Dim, len: Dim) {
    return this.op("slice", [v], { start, len }, { dims: [len], batched: this.type(v).batched });
  }
  one() {
    return this.const(1);
  }
  zero() {
    return this.const(0);
  }
}
