import type { CellIR } from "../ir/cell.js";
import type { Node, NodeId } from "../ir/graph.js";
import { dimEq } from "../../artifact/shape.js";

/**
 * Decides from the IR alone whether a cell is one of ONNX's recurrent operators (LSTM, GRU, RNN), and if so
 * which parameter plays which role. Names play no part: a cell is an LSTM when its next-state equations have
 * the LSTM's structure, whatever its gates and parameters are called.
 */

/** An ONNX activation function with its alpha and beta. */
export interface Activation {
  readonly name: string;
  readonly alpha?: number;
  readonly beta?: number;
}
/** One gate's pre-activation `W @ x + U @ h + (peephole * c) + biases`, by parameter name. */
export interface Gate {
  readonly W: string;
  readonly U: string;
  readonly biases: readonly string[];
  /** `r * (U @ h + inner)` in a GRU with linear_before_reset: biases inside the product. */
  readonly inner?: readonly string[];
  readonly peephole?: string;
}
export type Native =
  | {
      readonly op: "LSTM";
      readonly gates: { readonly i: Gate; readonly o: Gate; readonly f: Gate; readonly c: Gate };
      readonly acts: readonly [Activation, Activation, Activation];
      readonly h: string;
      readonly c: string;
    }
  | {
      readonly op: "GRU";
      readonly gates: { readonly z: Gate; readonly r: Gate; readonly h: Gate };
      readonly acts: readonly [Activation, Activation];
      readonly linearBeforeReset: 0 | 1;
      readonly h: string;
    }
  | { readonly op: "RNN"; readonly gate: Gate; readonly acts: readonly [Activation]; readonly h: string };

export function recognise(ir: CellIR): Native | undefined {
  if (ir.inputs.length !== 1 || ir.outputs.length !== 1) return undefined;
  if (ir.inputs[0]!.type.dims.length !== 1) return undefined;
  const m = new Matcher(ir);
  const out = ir.outputs[0]!.node;
  const hNext = ir.next.find((n) => n.node === out);
  if (!hNext) return undefined;
  if (ir.states.length === 1) return m.rnn(hNext.state, out) ?? m.gru(hNext.state, out);
  if (ir.states.length === 2) {
    const c = ir.next.find((n) => n.node !== out);
    return c && m.lstm(hNext.state, c.state, out, c.node);
  }
  return undefined;
}

class Matcher {
  constructor(private readonly ir: CellIR) {}
  private n(id: NodeId): Node {
    return this.ir.graph.node(id);
  }
  private isConst(id: NodeId, v?: number): number | undefined {
    const n = this.n(id);
    return n.op === "const" && (v === undefined || n.attrs.value === v) ? n.attrs.value : undefined;
  }
  private leaf(id: NodeId, role: string): string | undefined {
    const n = this.n(id);
    return n.op === "leaf" && n.attrs.role === role ? n.attrs.name : undefined;
  }
  /** Both orders of a commutative node's arguments. */
  private pairs(id: NodeId, op: string): [NodeId, NodeId][] {
    const n = this.n(id);
    if (n.op !== op || n.args.length !== 2) return [];
    return [
      [n.args[0]!, n.args[1]!],
      [n.args[1]!, n.args[0]!],
    ];
  }
  private terms(id: NodeId): NodeId[] {
    const n = this.n(id);
    return n.op === "add" ? [...this.terms(n.args[0]!), ...this.terms(n.args[1]!)] : [id];
  }
  /** A matvec over all of a parameter's columns, on a leaf of the given role. */
  private matvec(id: NodeId, role: string): { W: string; arg: string } | undefined {
    const n = this.n(id);
    if (n.op !== "matvec" || n.attrs.transpose) return undefined;
    const W = this.leaf(n.args[0]!, "param");
    const arg = this.leaf(n.args[1]!, role);
    return W && arg && this.fullColumns(id) ? { W, arg } : undefined;
  }
  /** A matvec that uses every column of its weight (not one block of a concatenation). */
  private fullColumns(id: NodeId): boolean {
    const n = this.n(id);
    const w = this.n(n.args[0]!);
    const c0 = n.attrs.c0!;
    return (
      w.type.dims.length === 2 &&
      c0.c === 0 &&
      !Object.keys(c0.terms).length &&
      dimEq(n.attrs.c1!, w.type.dims[1]!)
    );
  }
  private bias(id: NodeId): string | undefined {
    const n = this.n(id);
    const p = this.leaf(id, "param");
    return p && n.type.dims.length === 1 && !n.type.batched ? p : undefined;
  }

  /**
   * `W @ x + U @ h + biases [+ p * peep]`; `extra` may claim one further term (GRU's reset product).
   * Returns undefined unless every term is accounted for.
   */
  gate(
    id: NodeId,
    h: string,
    peep?: NodeId,
    extra?: (t: NodeId) => Partial<Gate> | undefined,
  ): Gate | undefined {
    let W: string | undefined, U: string | undefined, peephole: string | undefined;
    let got: Partial<Gate> | undefined;
    const biases: string[] = [];
    for (const t of this.terms(id)) {
      const wx = this.matvec(t, "input");
      const uh = this.matvec(t, "state");
      const b = this.bias(t);
      if (wx && !W) W = wx.W;
      else if (uh && uh.arg === h && !U) U = uh.W;
      else if (b) biases.push(b);
      else if (peep !== undefined && !peephole && this.peephole(t, peep)) peephole = this.peephole(t, peep);
      else if (extra && !got && (got = extra(t))) continue;
      else return undefined;
    }
    if (extra && !got) return undefined;
    U ??= got?.U;
    if (!W || !U) return undefined;
    return { W, U, biases, inner: got?.inner, peephole };
  }
  private peephole(t: NodeId, c: NodeId): string | undefined {
    for (const [p, v] of this.pairs(t, "mul")) if (v === c && this.bias(p)) return this.bias(p);
    return undefined;
  }

  /** The activation applied at the top of `id`, and the node it is applied to. */
  act(id: NodeId): { act: Activation; arg: NodeId } {
    const n = this.n(id);
    const simple: Record<string, string> = {
      sigmoid: "Sigmoid",
      tanh: "Tanh",
      relu: "Relu",
      softsign: "Softsign",
      softplus: "Softplus",
    };
    if (simple[n.op]) return { act: { name: simple[n.op]! }, arg: n.args[0]! };
    // hard_sigmoid: max(0, min(1, alpha * z + beta))
    for (const [zero, mn] of this.pairs(id, "max"))
      if (this.isConst(zero, 0) !== undefined)
        for (const [one, lin] of this.pairs(mn, "min"))
          if (this.isConst(one, 1) !== undefined)
            for (const [az, beta] of this.pairs(lin, "add"))
              for (const [alpha, z] of this.pairs(az, "mul"))
                if (this.isConst(alpha) !== undefined && this.isConst(beta) !== undefined)
                  return {
                    act: { name: "HardSigmoid", alpha: this.isConst(alpha), beta: this.isConst(beta) },
                    arg: z,
                  };
    // scaled_tanh: alpha * tanh(beta * z)
    for (const [alpha, th] of this.pairs(id, "mul"))
      if (this.isConst(alpha) !== undefined && this.n(th).op === "tanh")
        for (const [beta, z] of this.pairs(this.n(th).args[0]!, "mul"))
          if (this.isConst(beta) !== undefined)
            return {
              act: { name: "ScaledTanh", alpha: this.isConst(alpha), beta: this.isConst(beta) },
              arg: z,
            };
    // leaky_relu: gt(z, 0) * z + (1 - gt(z, 0)) * (alpha * z)
    for (const [pos, neg] of this.pairs(id, "add"))
      for (const [m, z] of this.pairs(pos, "mul")) {
        const g = this.n(m);
        if (g.op !== "gt" || g.args[0] !== z || this.isConst(g.args[1]!, 0) === undefined) continue;
        for (const [om, az] of this.pairs(neg, "mul"))
          for (const [one, m2] of this.pairs(om, "sub").slice(0, 1))
            if (m2 === m && this.isConst(one, 1) !== undefined)
              for (const [alpha, z2] of this.pairs(az, "mul"))
                if (z2 === z && this.isConst(alpha) !== undefined)
                  return { act: { name: "LeakyRelu", alpha: this.isConst(alpha) }, arg: z };
      }
    return { act: { name: "Affine", alpha: 1, beta: 0 }, arg: id };
  }

  rnn(h: string, next: NodeId): Native | undefined {
    const { act, arg } = this.act(next);
    if (act.name === "Affine") return undefined;
    const gate = this.gate(arg, h);
    return gate && { op: "RNN", gate, acts: [act], h };
  }

  /** h' = (1 - z) * n + z * h, z = f(gate), n = g(W x + r * (U h + b) + b') or g(W x + U (r * h) + b). */
  gru(h: string, next: NodeId): Native | undefined {
    for (const [a, b] of this.pairs(next, "add"))
      for (const [z, hs] of this.pairs(b, "mul")) {
        if (this.leaf(hs, "state") !== h) continue;
        for (const [omz, nn] of this.pairs(a, "mul")) {
          const s = this.n(omz);
          if (s.op !== "sub" || this.isConst(s.args[0]!, 1) === undefined || s.args[1] !== z) continue;
          const zf = this.act(z);
          const zg = zf.act.name !== "Affine" && this.gate(zf.arg, h);
          const ng = this.act(nn);
          if (!zg || ng.act.name === "Affine") continue;
          let r: NodeId | undefined;
          // linear_before_reset = 1: r * (U @ h + inner biases)
          const lbr = this.gate(ng.arg, h, undefined, (t) => {
            for (const [rr, inner] of this.pairs(t, "mul")) {
              const parts = this.terms(inner);
              const uh = parts.map((p) => this.matvec(p, "state")).filter((x) => x && x.arg === h);
              const bs = parts.map((p) => this.bias(p)).filter((x): x is string => !!x);
              if (uh.length === 1 && bs.length === parts.length - 1) {
                r = rr;
                return { U: uh[0]!.W, inner: bs };
              }
            }
            return undefined;
          });
          // linear_before_reset = 0: U @ (r * h)
          const rh = (t: NodeId): Partial<Gate> | undefined => {
            const n = this.n(t);
            const U = this.leaf(n.args[0] ?? -1, "param");
            if (n.op !== "matvec" || n.attrs.transpose || !U || !this.fullColumns(t)) return undefined;
            for (const [rr, hh] of this.pairs(n.args[1]!, "mul"))
              if (this.leaf(hh, "state") === h) {
                r = rr;
                return { U };
              }
            return undefined;
          };
          const gateN = lbr ?? this.gate(ng.arg, h, undefined, rh);
          if (!gateN || r === undefined) continue;
          const rf = this.act(r);
          const rg = this.gate(rf.arg, h);
          if (
            !rg ||
            rf.act.name !== zf.act.name ||
            rf.act.alpha !== zf.act.alpha ||
            rf.act.beta !== zf.act.beta
          )
            continue;
          return {
            op: "GRU",
            gates: { z: zg, r: rg, h: gateN },
            acts: [zf.act, ng.act],
            linearBeforeReset: lbr ? 1 : 0,
            h,
          };
        }
      }
    return undefined;
  }

  /** c' = f * c + i * g, h' = o * act_h(c'), gates i, f, o with activation f (peepholes allowed). */
  lstm(h: string, c: string, hNext: NodeId, cNext: NodeId): Native | undefined {
    const cLeaf = this.ir.graph.nodes.find(
      (n) => n.op === "leaf" && n.attrs.role === "state" && n.attrs.name === c,
    );
    for (const [fc, ig] of this.pairs(cNext, "add"))
      for (const [f, cs] of this.pairs(fc, "mul")) {
        if (this.leaf(cs, "state") !== c) continue;
        for (const [i, g] of this.pairs(ig, "mul"))
          for (const [o, hc] of this.pairs(hNext, "mul")) {
            const ha = this.act(hc);
            if (ha.arg !== cNext) continue;
            const [fi, ff, fo, fg] = [this.act(i), this.act(f), this.act(o), this.act(g)];
            const same = (a: Activation, b: Activation) =>
              a.name === b.name && a.alpha === b.alpha && a.beta === b.beta;
            if (!same(fi.act, ff.act) || !same(fi.act, fo.act)) continue;
            const gi = this.gate(fi.arg, h, cLeaf?.id);
            const gf = this.gate(ff.arg, h, cLeaf?.id);
            const go = this.gate(fo.arg, h, cNext);
            const gc = this.gate(fg.arg, h);
            if (!gi || !gf || !go || !gc) continue;
            return {
              op: "LSTM",
              gates: { i: gi, o: go, f: gf, c: gc },
              acts: [fi.act, fg.act, ha.act],
              h,
              c,
            };
          }
      }
    return undefined;
  }
}
