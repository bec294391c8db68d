import type { Attrs, Builder, NodeId } from "../ir/graph.js";
import { dimAdd, dimConst } from "../../artifact/shape.js";

import type { OpKind } from "./kind.js";
export type { OpKind };

/**
 * How a primitive is scheduled: elementwise ops fuse into loops; barriers need their operands whole; a view
 * reads part of another value's buffer and costs nothing.
 */
export type OpClass = "leaf" | "elementwise" | "barrier" | "view";

/** Gradient rule: given the cotangent of the result, build the cotangents of the arguments (null: none). */
export type Vjp = (
  b: Builder,
  ct: NodeId,
  args: readonly NodeId[],
  y: NodeId,
  attrs: Attrs,
) => (NodeId | null)[];

interface BaseDef {
  readonly arity: number; // -1: any number
  readonly vjp: Vjp;
}
export interface LeafDef extends BaseDef {
  readonly class: "leaf";
}
export interface BarrierDef extends BaseDef {
  readonly class: "barrier";
}
export interface ElementwiseDef extends BaseDef {
  readonly class: "elementwise";
  readonly eval: (a: readonly number[]) => number;
  readonly js: (a: readonly string[]) => string;
  readonly wgsl: (a: readonly string[]) => string;
}
export interface ViewDef extends BaseDef {
  readonly class: "view";
}
export type OpDef = LeafDef | BarrierDef | ElementwiseDef | ViewDef;

const none: Vjp = () => [];
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));

const unary = (
  eval_: (x: number) => number,
  js: (x: string) => string,
  wgsl: (x: string) => string,
  vjp: Vjp,
): ElementwiseDef => ({
  class: "elementwise",
  arity: 1,
  eval: ([x]) => eval_(x!),
  js: ([x]) => js(x!),
  wgsl: ([x]) => wgsl(x!),
  vjp,
});
const binary = (
  eval_: (a: number, b: number) => number,
  js: (a: string, b: string) => string,
  wgsl: (a: string, b: string) => string,
  vjp: Vjp,
): ElementwiseDef => ({
  class: "elementwise",
  arity: 2,
  eval: ([a, b]) => eval_(a!, b!),
  js: ([a, b]) => js(a!, b!),
  wgsl: ([a, b]) => wgsl(a!, b!),
  vjp,
});

export const OPS: Readonly<Record<OpKind, OpDef>> = {
  leaf: { class: "leaf", arity: 0, vjp: none },
  const: { class: "leaf", arity: 0, vjp: none },
  dim: { class: "leaf", arity: 0, vjp: none },

  add: binary(
    (a, b) => a + b,
    (a, b) => `(${a} + ${b})`,
    (a, b) => `(${a} + ${b})`,
    (_b, ct) => [ct, ct],
  ),
  sub: binary(
    (a, b) => a - b,
    (a, b) => `(${a} - ${b})`,
    (a, b) => `(${a} - ${b})`,
    (b, ct) => [ct, b.neg(ct)],
  ),
  mul: binary(
    (a, b) => a * b,
    (a, b) => `(${a} * ${b})`,
    (a, b) => `(${a} * ${b})`,
    (b, ct, [x, y]) => [b.mul(ct, y!), b.mul(ct, x!)],
  ),
  div: binary(
    (a, b) => a / b,
    (a, b) => `(${a} / ${b})`,
    (a, b) => `(${a} / ${b})`,
    (b, ct, [, d], y) => [b.div(ct, d!), b.neg(b.div(b.mul(ct, y), d!))],
  ),
  neg: unary(
    (x) => -x,
    (x) => `(-${x})`,
    (x) => `(-${x})`,
    (b, ct) => [b.neg(ct)],
  ),
  sigmoid: unary(
    sigmoid,
    (x) => `(1 / (1 + Math.exp(-${x})))`,
    (x) => `(1.0 / (1.0 + exp(-${x})))`,
    (b, ct, _a, y) => [b.mul(ct, b.mul(y, b.sub(b.one(), y)))],
  ),
  tanh: unary(
    Math.tanh,
    (x) => `Math.tanh(${x})`,
    // tanh_ (codegen/wgsl.ts) clamps, since some WebGPU implementations return NaN for tanh of large
    // arguments, and keeps NaN a NaN as JS does.
    (x) => `tanh_(${x})`,
    (b, ct, _a, y) => [b.mul(ct, b.sub(b.one(), b.mul(y, y)))],
  ),
  relu: unary(
    (x) => Math.max(x, 0),
    (x) => `Math.max(${x}, 0)`,
    (x) => `max_(${x}, 0.0)`,
    (b, ct, [x]) => [b.mul(ct, b.gt(x!, b.zero()))],
  ),
  exp: unary(
    Math.exp,
    (x) => `Math.exp(${x})`,
    (x) => `exp(${x})`,
    (b, ct, _a, y) => [b.mul(ct, y)],
  ),
  log: unary(
    Math.log,
    (x) => `Math.log(${x})`,
    (x) => `log(${x})`,
    (b, ct, [x]) => [b.div(ct, x!)],
  ),
  sqrt: unary(
    Math.sqrt,
    (x) => `Math.sqrt(${x})`,
    (x) => `sqrt(${x})`,
    (b, ct, _a, y) => [b.div(b.mul(ct, b.const(0.5)), y)],
  ),
  softplus: unary(
    softplus,
    (x) => `(Math.max(${x}, 0) + Math.log1p(Math.exp(-Math.abs(${x}))))`,
    (x) => `(max_(${x}, 0.0) + log(1.0 + exp(-abs(${x}))))`,
    (b, ct, [x]) => [b.mul(ct, b.op("sigmoid", [x!]))],
  ),
  softsign: unary(
    (x) => x / (1 + Math.abs(x)),
    (x) => `(${x} / (1 + Math.abs(${x})))`,
    (x) => `(${x} / (1.0 + abs(${x})))`,
    (b, ct, [x]) => {
      const d = b.add(b.one(), b.op("abs", [x!]));
      return [b.div(ct, b.mul(d, d))];
    },
  ),
  abs: unary(
    Math.abs,
    (x) => `Math.abs(${x})`,
    (x) => `abs(${x})`,
    (b, ct, [x]) => [b.mul(ct, b.sub(b.gt(x!, b.zero()), b.gt(b.zero(), x!)))],
  ),
  min: binary(
    Math.min,
    (a, b) => `Math.min(${a}, ${b})`,
    (a, b) => `min_(${a}, ${b})`,
    // Ties go to the first argument, as in PyTorch's clamp.
    (b, ct, [x, y]) => {
      const m = b.gt(x!, y!);
      return [b.mul(ct, b.sub(b.one(), m)), b.mul(ct, m)];
    },
  ),
  max: binary(
    Math.max,
    (a, b) => `Math.max(${a}, ${b})`,
    (a, b) => `max_(${a}, ${b})`,
    (b, ct, [x, y]) => {
      const m = b.gt(y!, x!);
      return [b.mul(ct, b.sub(b.one(), m)), b.mul(ct, m)];
    },
  ),
  /** 1 where a > b, else 0: a step, whose derivative is zero almost everywhere. */
  gt: binary(
    (a, b) => (a > b ? 1 : 0),
    (a, b) => `(${a} > ${b} ? 1 : 0)`,
    (a, b) => `select(0.0, 1.0, ${a} > ${b})`,
    () => [null, null],
  ),
  /** Sum over the feature axis: a vector to a per-row scalar. */
  sum: { class: "barrier", arity: 1, vjp: (_b, ct) => [ct] },
  /** Sum over the batch axis: a batched value to an unbatched one (the gradient of a broadcast parameter). */
  sumbatch: { class: "barrier", arity: 1, vjp: (_b, ct) => [ct] },
  /** `W[:, c0:c1] @ v` per batch row; the weight's gradient is taken by autodiff as an outer product. */
  matvec: {
    class: "barrier",
    arity: 2,
    vjp: (b, ct, [w], _y, a) => {
      if (a.transpose) throw new Error("the gradient of a transposed matvec is not needed");
      return [null, b.matvec(w!, ct, a.c0!, a.c1!, true)];
    },
  },
  concat: {
    class: "barrier",
    arity: -1,
    vjp: (b, ct, args) => {
      let offset = dimConst(0);
      return args.map((a) => {
        const len = b.type(a).dims[0]!;
        const s = b.slice(ct, offset, len);
        offset = dimAdd(offset, len);
        return s;
      });
    },
  },
  slice: {
    class: "barrier",
    arity: 1,
    vjp: () => {
      throw new Error("the gradient of a slice is not needed");
    },
  },
  /**
   * `P @ v` per batch row, P a packed weight `[M, K]`: the stacked matvecs that share the operand v (see
   * compiler/schedule/stack.ts). The gradient of P is an outer product that the AD sweep defers.
   */
  gemm: {
    class: "barrier",
    arity: 2,
    vjp: (b, ct, [p]) => [
      null,
      b.op("gemmT", [p!, ct], {}, { dims: [b.type(p!).dims[1]!], batched: b.type(ct).batched }),
    ],
  },
  /** `P^T @ g` per batch row: the gradient flowing to a gemm's operand. */
  gemmT: {
    class: "barrier",
    arity: 2,
    vjp: () => {
      throw new Error("the gradient of a transposed gemm is not needed");
    },
  },
  /** Columns [start, start + len) of a value: one gate's block of a stacked gemm. The sweep gathers its gradient. */
  cols: {
    class: "view",
    arity: 1,
    vjp: () => {
      throw new Error("the gradient of a column view is gathered by the AD sweep");
    },
  },
};

export function opDef(op: OpKind): OpDef {
  return OPS[op];
}
