import type { Span } from "../diag/span.js";
import type { CellIR } from "../ir/cell.js";
import { Builder, type Graph, type NodeId } from "../ir/graph.js";
import { dimEq } from "../../artifact/shape.js";
import type { StackedCell } from "./stack.js";

/**
 * Which states run as a scan over time. A state s is a *scan state* when its next value is affine in itself
 * with an elementwise coefficient, `s' = a * s + b`, where a and b read no state: then a (the derivative
 * ds'/ds) and b can be computed for all T*B rows before the loop, and the recurrence is a linear scan
 * (Blelloch 1990; "Were RNNs All We Needed?", Feng et al. 2024). The decision is made on the IR alone,
 * whatever the equation's form (`(1 - z) * h + z * n`, `f / (f + i) * h + ...`, `h + x`), by splitting every
 * node that reads s into a coefficient of s and a rest, and never by names.
 */
export interface Recurrence {
  readonly state: number;
  readonly scan: boolean;
  /** Why it is, or is not, a scan state (printed by `--emit schedule`). */
  readonly why: string;
  /** The source of the operation that keeps it from being one, when it has one. */
  readonly at?: Span;
  /** For a scan state: a (ds'/ds) and b (s' - a * s), nodes of the stacked graph that read no state. */
  readonly coef?: NodeId;
  readonly offset?: NodeId;
}

/** A node as `coef * s + rest`; undefined parts are zero. */
interface Affine {
  readonly coef?: NodeId;
  readonly rest?: NodeId;
}
class NotAffine extends Error {
  constructor(
    message: string,
    readonly at?: Span,
  ) {
    super(message);
  }
}

const BARRIER_TEXT: Partial<Record<string, string>> = {
  gemm: "a matrix product",
  gemmT: "a matrix product",
  matvec: "a matrix product",
  sum: "a sum over features",
  sumbatch: "a sum over the batch",
  concat: "a concatenation",
  slice: "a slice",
  cols: "a matrix product", // a gate's block of a stacked GEMM
};

/**
 * The recurrence of every state of a stacked cell. Coefficients and offsets are added to the stacked graph
 * (hash-consed: an existing `1 - z` is reused). `enabled` false: every state keeps the step loop.
 */
export function findRecurrences(cell: CellIR, st: StackedCell, enabled = true): Recurrence[] {
  const g = st.graph;
  const b = new Builder(g);
  const stateOf = (id: NodeId) => {
    const n = g.node(id);
    return n.op === "leaf" && n.attrs.role === "state"
      ? cell.states.findIndex((s) => s.name === n.attrs.name)
      : -1;
  };
  return cell.states.map((s, i): Recurrence => {
    if (!enabled) return { state: i, scan: false, why: "scans disabled" };
    const next = st.next[i]!;
    const reads = statesRead(g, next, stateOf);
    const others = [...reads].filter((k) => k !== i).map((k) => cell.states[k]!.name);
    if (others.length)
      return { state: i, scan: false, why: `${s.name}' reads the state ${others.join(", ")}` };
    let split: Affine;
    try {
      split = affine(g, b, next, i, stateOf, s.name);
    } catch (e) {
      if (!(e instanceof NotAffine)) throw e;
      return { state: i, scan: false, why: e.message, ...(e.at ? { at: e.at } : {}) };
    }
    const coef = split.coef ?? b.zero();
    const offset = split.rest ?? b.zero();
    const ct = g.node(coef).type;
    if (
      ct.dims.length > 0 &&
      !(ct.dims.length === s.type.dims.length && ct.dims.every((d, k) => dimEq(d, s.type.dims[k]!)))
    )
      return { state: i, scan: false, why: `the coefficient of ${s.name} in ${s.name}' is not elementwise` };
    const why =
      split.coef === undefined
        ? `${s.name}' reads no state (a = 0)`
        : `${s.name}' = a * ${s.name} + b, a and b reading no state`;
    return { state: i, scan: true, why, coef, offset };
  });
}

function statesRead(g: Graph, root: NodeId, stateOf: (id: NodeId) => number): Set<number> {
  const out = new Set<number>();
  const seen = new Set<NodeId>();
  const stack = [root];
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const k = stateOf(id);
    if (k >= 0) out.add(k);
    stack.push(...g.node(id).args);
  }
  return out;
}

/**
 * Splits `root` into coef * s + rest (s the state `which`), or throws NotAffine with the reason. Top-down, so
 * that the reason names the outermost operation that breaks the form (for GRU, the product of two values
 * that read h, not the matrix product deep inside).
 */
function affine(
  g: Graph,
  b: Builder,
  root: NodeId,
  which: number,
  stateOf: (id: NodeId) => number,
  name: string,
): Affine {
  const reads: boolean[] = [];
  for (const n of g.nodes) reads[n.id] = stateOf(n.id) === which || n.args.some((a) => reads[a]);
  const isOne = (id: NodeId | undefined) =>
    id !== undefined && g.node(id).op === "const" && g.node(id).attrs.value === 1;
  const add = (x?: NodeId, y?: NodeId) => (x === undefined ? y : y === undefined ? x : b.add(x, y));
  const neg = (x?: NodeId) => (x === undefined ? undefined : b.neg(x));
  const sub = (x?: NodeId, y?: NodeId) => (y === undefined ? x : x === undefined ? b.neg(y) : b.sub(x, y));
  const mul = (x?: NodeId, y?: NodeId) =>
    x === undefined || y === undefined ? undefined : isOne(x) ? y : isOne(y) ? x : b.mul(x, y);
  const div = (x: NodeId | undefined, y: NodeId) => (x === undefined ? undefined : b.div(x, y));
  const memo = new Map<NodeId, Affine>();
  const split = (id: NodeId): Affine => {
    const hit = memo.get(id);
    if (hit) return hit;
    const n = g.node(id);
    const fail = (why: string) => new NotAffine(why, n.span);
    let out: Affine;
    if (!reads[id]) out = { rest: id };
    else if (n.op === "leaf") out = { coef: b.one() };
    else
      switch (n.op) {
        case "add": {
          const [x, y] = n.args.map(split) as [Affine, Affine];
          out = { coef: add(x.coef, y.coef), rest: add(x.rest, y.rest) };
          break;
        }
        case "sub": {
          const [x, y] = n.args.map(split) as [Affine, Affine];
          out = { coef: sub(x.coef, y.coef), rest: sub(x.rest, y.rest) };
          break;
        }
        case "neg": {
          const x = split(n.args[0]!);
          out = { coef: neg(x.coef), rest: neg(x.rest) };
          break;
        }
        case "mul": {
          const [l, r] = n.args as [NodeId, NodeId];
          if (reads[l] && reads[r])
            throw fail(`${name}' is not affine in ${name}: a product of two values that read ${name}`);
          const [x, k] = reads[l] ? [split(l), r] : [split(r), l];
          out = { coef: mul(x.coef, k), rest: mul(x.rest, k) };
          break;
        }
        case "div": {
          const [l, r] = n.args as [NodeId, NodeId];
          if (reads[r])
            throw fail(`${name}' is not affine in ${name}: a division by a value that reads ${name}`);
          const x = split(l);
          out = { coef: div(x.coef, r), rest: div(x.rest, r) };
          break;
        }
        default: {
          const through = BARRIER_TEXT[n.op];
          throw fail(
            through
              ? `${name}' reads ${name} through ${through}, not elementwise`
              : `${name}' is not affine in ${name}: ${n.op} of a value that reads ${name}`,
          );
        }
      }
    memo.set(id, out);
    return out;
  };
  return split(root);
}
