import type * as A from "../ast/ast.js";
import { didYouMean, DiagnosticBag, type RelatedNote } from "../diag/diagnostic.js";
import type { Span } from "../diag/span.js";
import { broadcastType } from "../ir/graph.js";
import { dim, dimAdd, dimConst, dimEq, printType, type Dim, type Type } from "../../artifact/shape.js";
import { OPS, type OpKind } from "../ops/ops.js";
import { NESTING_LIMIT } from "../ast/build.js";
import { BUILTINS, INITIALISERS } from "./builtins.js";
import type { Program } from "./program.js";
import type { CheckedCell, InitSpec, TExpr } from "./types.js";

interface Origin<T> {
  readonly decl: T;
  readonly origin: string; // the cell that declared it
}

interface Merged {
  inputs: Map<string, Origin<A.TensorDeclAst>>;
  states: Map<string, Origin<A.TensorDeclAst>>;
  params: Map<string, Origin<A.ParamDeclAst>>;
  eqs: Map<string, Origin<A.EquationAst>>; // key `i` or `h'`
  outputs: readonly A.OutputAst[];
}

/** Sizes and indices are u32 in WGSL kernels. */
const MAX_DIM = 2 ** 32 - 1;

const key = (name: string, prime: boolean) => (prime ? `${name}'` : name);

/**
 * Checks one cell of a program: resolves `extends`, names and shapes; returns the typed cell or nothing.
 * `types`, when given, receives the type of every equation that could be typed (`i`, `h'`), errors or not.
 */
export function checkCell(
  program: Program,
  name: string,
  bag: DiagnosticBag,
  types?: Map<string, Type>,
): CheckedCell | undefined {
  const ast = program.cells.get(name);
  if (!ast) return undefined;
  const chain = extendsChain(program, ast, bag);
  if (!chain) return undefined;
  const merged = merge(chain, bag);
  const checker = new CellChecker(program, ast, merged, bag);
  const checked = checker.run();
  if (types) for (const [k, t] of checker.equationTypes()) types.set(k, t);
  return checked;
}

function extendsChain(program: Program, cell: A.CellAst, bag: DiagnosticBag): A.CellAst[] | undefined {
  const chain: A.CellAst[] = [cell];
  let cur = cell;
  while (cur.parent) {
    const parent = program.cells.get(cur.parent.name);
    if (!parent) {
      bag.report("E018", cur.parent.span, {
        name: cur.name,
        parent: cur.parent.name,
        hint: didYouMean(cur.parent.name, program.cells.keys()),
      });
      return undefined;
    }
    if (chain.includes(parent)) {
      bag.report("E019", cell.parent!.span, {
        name: cell.name,
        chain: [...chain.map((c) => c.name), parent.name].join(" -> "),
      });
      return undefined;
    }
    chain.push(parent);
    cur = parent;
  }
  return chain.reverse();
}

function merge(chain: readonly A.CellAst[], bag: DiagnosticBag): Merged {
  const m: Merged = { inputs: new Map(), states: new Map(), params: new Map(), eqs: new Map(), outputs: [] };
  for (const cell of chain) {
    const own = new Map<string, Span>();
    const claim = (name: string, span: Span) => {
      const prev = own.get(name);
      if (prev) {
        bag.report("E013", span, { name }, [{ message: "first declared here", span: prev }]);
        return false;
      }
      own.set(name, span);
      // A declaration in a derived cell replaces whatever the parent had under that name.
      m.inputs.delete(name);
      m.states.delete(name);
      m.params.delete(name);
      m.eqs.delete(name);
      return true;
    };
    for (const d of cell.inputs)
      if (claim(d.name, d.nameSpan)) m.inputs.set(d.name, { decl: d, origin: cell.name });
    for (const d of cell.states)
      if (claim(d.name, d.nameSpan)) m.states.set(d.name, { decl: d, origin: cell.name });
    for (const d of cell.params)
      if (claim(d.name, d.nameSpan)) m.params.set(d.name, { decl: d, origin: cell.name });
    const ownEqs = new Map<string, Span>();
    for (const eq of cell.equations) {
      const k = key(eq.target, eq.prime);
      const prev = ownEqs.get(k);
      if (prev) {
        bag.report("E014", eq.targetSpan, { name: k }, [{ message: "first equation here", span: prev }]);
        continue;
      }
      ownEqs.set(k, eq.targetSpan);
      if (!eq.prime) {
        const declared = own.get(eq.target);
        if (declared) {
          const kind = m.inputs.has(eq.target) ? "input" : m.states.has(eq.target) ? "state" : "parameter";
          const hint: RelatedNote[] = [{ message: "declared here", span: declared }];
          if (kind === "state")
            hint.push({ message: `write ${eq.target}' = ... for the next value of the state` });
          bag.report("E031", eq.targetSpan, { kind, name: eq.target }, hint);
          continue;
        }
        // An equation in a derived cell may replace a parent's parameter or input by a computed value.
        m.params.delete(eq.target);
        m.inputs.delete(eq.target);
      }
      m.eqs.set(k, { decl: eq, origin: cell.name });
    }
    if (cell.outputs.length) m.outputs = cell.outputs;
  }
  return m;
}

type Env = ReadonlyMap<string, TExpr>;

class CellChecker {
  private readonly typed = new Map<string, TExpr | null>(); // null: failed
  private readonly inProgress: string[] = [];
  private readonly fnStack: string[] = [];
  private readonly stateTypes = new Map<string, Type>();
  private readonly inputTypes = new Map<string, Type>();
  private readonly paramTypes = new Map<string, Type>();
  private readonly order: string[] = [];
  private readonly cycleReported = new Set<string>();
  /** Inlined calls by callee and argument identity: a function called twice on the same values is one DAG. */
  private readonly inlined = new Map<string, TExpr | undefined>();
  private readonly ids = new TExprIds();
  private depth = 0;

  constructor(
    private readonly program: Program,
    private readonly cell: A.CellAst,
    private readonly m: Merged,
    private readonly bag: DiagnosticBag,
  ) {}

  *equationTypes(): Iterable<[string, Type]> {
    for (const [k, t] of this.typed) if (t) yield [k, t.type];
  }

  run(): CheckedCell | undefined {
    const errorsBefore = this.bag.items.filter((d) => d.severity === "error").length;
    for (const [n, { decl }] of this.m.inputs) this.inputTypes.set(n, this.declType(decl.shape, 1, n, true));
    for (const [n, { decl }] of this.m.states) this.stateTypes.set(n, this.declType(decl.shape, 1, n, true));
    for (const [n, { decl }] of this.m.params) this.paramTypes.set(n, this.declType(decl.shape, 2, n, false));

    for (const { decl } of this.m.eqs.values())
      if (decl.prime && !this.m.states.has(decl.target))
        this.bag.report("E016", decl.targetSpan, { name: decl.target }, this.declaredAs(decl.target));
    for (const [n, { decl }] of this.m.states)
      if (!this.m.eqs.has(`${n}'`)) this.bag.report("E015", decl.nameSpan, { name: n });

    for (const k of this.typingOrder()) this.typeEquation(k);

    // Next-state shapes must agree with the declared state.
    for (const [n, t] of this.stateTypes) {
      const e = this.typed.get(`${n}'`);
      if (!e) continue;
      const ok =
        e.type.dims.length === 0 ||
        (e.type.dims.length === 1 && t.dims.length === 1 && dimEq(e.type.dims[0]!, t.dims[0]!));
      if (!ok || (t.dims.length === 0 && e.type.dims.length > 0))
        this.bag.report("E045", e.span, { name: n, actual: printType(e.type), expected: printType(t) }, [
          { message: `'${n}' is declared here`, span: this.m.states.get(n)!.decl.nameSpan },
        ]);
    }

    const outputs = this.outputs();
    const inits = new Map<string, InitSpec>();
    for (const [n, { decl }] of this.m.params) inits.set(n, this.init(decl));

    const errorsAfter = this.bag.items.filter((d) => d.severity === "error").length;
    if (errorsAfter > errorsBefore || !outputs) return undefined;
    return this.finish(outputs, inits);
  }

  /**
   * Equations with their dependencies first (the order recursion would visit them), so that typing one never
   * recurses through a long chain of forward references. With a cycle, declaration order: it is reported.
   */
  private typingOrder(): string[] {
    const order: string[] = [];
    const state = new Map<string, "open" | "done">();
    for (const root of this.m.eqs.keys()) {
      if (state.has(root)) continue;
      const stack: { k: string; deps: string[]; i: number }[] = [];
      const enter = (k: string) => {
        state.set(k, "open");
        stack.push({ k, deps: references(this.m.eqs.get(k)!.decl.value), i: 0 });
      };
      enter(root);
      while (stack.length) {
        const top = stack[stack.length - 1]!;
        if (top.i < top.deps.length) {
          const d = top.deps[top.i++]!;
          if (!this.m.eqs.has(d)) continue;
          const st = state.get(d);
          if (st === "open") return [...this.m.eqs.keys()];
          if (!st) enter(d);
          continue;
        }
        stack.pop();
        state.set(top.k, "done");
        order.push(top.k);
      }
    }
    return order;
  }

  private declaredAs(name: string): RelatedNote[] {
    const d = this.m.inputs.get(name) ?? this.m.params.get(name);
    if (d) return [{ message: `'${name}' is declared here`, span: d.decl.nameSpan }];
    const eq = this.m.eqs.get(name);
    if (eq) return [{ message: `'${name}' is defined here`, span: eq.decl.targetSpan }];
    return [];
  }

  private declType(shape: A.ShapeAst, maxRank: number, name: string, batched: boolean): Type {
    return shapeType(shape, maxRank, name, batched, this.bag);
  }

  private init(d: A.ParamDeclAst): InitSpec {
    return initSpec(d, this.bag);
  }

  private typeEquation(k: string): TExpr | null {
    const done = this.typed.get(k);
    if (done !== undefined) return done;
    const at = this.inProgress.indexOf(k);
    if (at >= 0) {
      const cycle = [...this.inProgress.slice(at), k];
      const id = [...cycle].sort().join(",");
      if (!this.cycleReported.has(id)) {
        this.cycleReported.add(id);
        const eq = this.m.eqs.get(k)!.decl;
        const notes: RelatedNote[] = cycle
          .slice(1, -1)
          .map((c) => ({ message: `'${c}' is defined here`, span: this.m.eqs.get(c)!.decl.targetSpan }));
        notes.push({
          message: "recurrence goes through states: read a state's previous value (no ') to close a loop",
        });
        this.bag.report("E017", eq.targetSpan, { cycle: cycle.join(" -> ") }, notes);
      }
      return null;
    }
    const eq = this.m.eqs.get(k);
    if (!eq) return null;
    this.inProgress.push(k);
    const t = this.expr(eq.decl.value, new Map()) ?? null;
    this.inProgress.pop();
    this.typed.set(k, t);
    this.order.push(k);
    return t;
  }

  /** Every recursion of the checker passes here; the bound keeps it (and lowering) off the stack's end. */
  private expr(e: A.Expr, env: Env): TExpr | undefined {
    if (this.depth >= CHECK_DEPTH_LIMIT) {
      this.bag.report("E004", e.span, { limit: NESTING_LIMIT }, [
        {
          message: `counting the equations and function bodies it reads, this goes ${CHECK_DEPTH_LIMIT} levels deep`,
        },
      ]);
      return undefined;
    }
    this.depth++;
    try {
      return this.exprAt(e, env);
    } finally {
      this.depth--;
    }
  }

  private exprAt(e: A.Expr, env: Env): TExpr | undefined {
    switch (e.kind) {
      case "num":
        return { k: "const", value: e.value, type: { dims: [], batched: false }, span: e.span };
      case "name":
        return this.name(e, env);
      case "neg": {
        const x = this.expr(e.operand, env);
        return x && this.elementwise("neg", [x], e.span, "-");
      }
      case "concat": {
        const items = e.items.map((i) => this.expr(i, env));
        if (items.some((i) => !i)) return undefined;
        let total: Dim | undefined;
        let ok = true;
        for (const it of items as TExpr[]) {
          if (it.type.dims.length !== 1) {
            this.bag.report("E047", it.span, { found: describeType(it.type) });
            ok = false;
            continue;
          }
          total = total ? dimAdd(total, it.type.dims[0]!) : it.type.dims[0]!;
        }
        if (!ok || !total) return undefined;
        return {
          k: "concat",
          items: items as TExpr[],
          type: { dims: [total], batched: (items as TExpr[]).some((i) => i.type.batched) },
          span: e.span,
        };
      }
      case "binary": {
        // A long flat chain (a sum of thousands of terms) is left-deep: walk its spine in a loop.
        const spine: Extract<A.Expr, { kind: "binary" }>[] = [];
        let cur: A.Expr = e;
        while (cur.kind === "binary") {
          spine.push(cur);
          cur = cur.left;
        }
        let acc = this.expr(cur, env);
        for (let i = spine.length - 1; i >= 0; i--) {
          const b = spine[i]!;
          const r = this.expr(b.right, env);
          acc = acc && r && this.binary(b, acc, r);
        }
        return acc;
      }
      case "call":
        return this.call(e, env);
    }
  }

  private binary(e: Extract<A.Expr, { kind: "binary" }>, l: TExpr, r: TExpr): TExpr | undefined {
    if (e.op === "@") return this.matvec(l, r, e.span);
    const op: OpKind = e.op === "+" ? "add" : e.op === "-" ? "sub" : e.op === "*" ? "mul" : "div";
    return this.elementwise(op, [l, r], e.span, e.op);
  }

  private name(e: Extract<A.Expr, { kind: "name" }>, env: Env): TExpr | undefined {
    if (e.prime) {
      if (!this.m.states.has(e.name)) {
        this.bag.report("E030", e.span, { name: e.name }, this.declaredAs(e.name));
        return undefined;
      }
      const t = this.typeEquation(`${e.name}'`);
      return t ? { k: "ref", key: `${e.name}'`, type: t.type, span: e.span } : undefined;
    }
    const bound = env.get(e.name);
    if (bound) return { ...bound, span: e.span };
    if (this.m.eqs.has(e.name)) {
      const t = this.typeEquation(e.name);
      return t ? { k: "ref", key: e.name, type: t.type, span: e.span } : undefined;
    }
    const input = this.inputTypes.get(e.name);
    if (input) return { k: "leaf", role: "input", name: e.name, type: input, span: e.span };
    const state = this.stateTypes.get(e.name);
    if (state) return { k: "leaf", role: "state", name: e.name, type: state, span: e.span };
    const param = this.paramTypes.get(e.name);
    if (param) return { k: "leaf", role: "param", name: e.name, type: param, span: e.span };
    const known = [
      ...env.keys(),
      ...this.m.eqs.keys(),
      ...this.inputTypes.keys(),
      ...this.stateTypes.keys(),
      ...this.paramTypes.keys(),
    ];
    this.bag.report("E010", e.span, {
      name: e.name,
      hint: didYouMean(
        e.name,
        known.filter((n) => !n.endsWith("'")),
      ),
    });
    return undefined;
  }

  private elementwise(op: OpKind, args: TExpr[], span: Span, shown: string): TExpr | undefined {
    for (const a of args)
      if (a.type.dims.length > 1) {
        this.bag.report("E044", a.span, { name: a.k === "leaf" ? a.name : "expression" });
        return undefined;
      }
    const vecs = args.filter((a) => a.type.dims.length === 1);
    for (let i = 1; i < vecs.length; i++)
      if (!dimEq(vecs[0]!.type.dims[0]!, vecs[i]!.type.dims[0]!)) {
        const a = vecs[0]!;
        const b = vecs[i]!;
        this.bag.report("E040", span, { op: shown, left: printType(a.type), right: printType(b.type) }, [
          { message: `this is ${printType(a.type)}`, span: a.span },
          { message: `this is ${printType(b.type)}`, span: b.span },
        ]);
        return undefined;
      }
    return { k: "op", op, args, type: broadcastType(args.map((a) => a.type)), span };
  }

  private matvec(l: TExpr, r: TExpr, span: Span): TExpr | undefined {
    if (l.k !== "leaf" || l.role !== "param" || l.type.dims.length !== 2) {
      this.bag.report("E042", l.span, {
        found: l.k === "leaf" ? `${l.role} '${l.name}' ${printType(l.type)}` : describeType(l.type),
      });
      return undefined;
    }
    if (r.type.dims.length !== 1) {
      this.bag.report("E043", r.span, { found: describeType(r.type) });
      return undefined;
    }
    if (!dimEq(l.type.dims[1]!, r.type.dims[0]!)) {
      this.bag.report("E041", span, { left: `${l.name} ${printType(l.type)}`, right: printType(r.type) }, [
        {
          message: `'${l.name}' is ${printType(l.type)}: it takes vectors of length ${printType({ dims: [l.type.dims[1]!], batched: false }).slice(1, -1)}`,
          span: l.span,
        },
        { message: `this is ${printType(r.type)}`, span: r.span },
      ]);
      return undefined;
    }
    return {
      k: "matvec",
      weight: l.name,
      weightType: l.type,
      arg: r,
      type: { dims: [l.type.dims[0]!], batched: r.type.batched },
      span,
    };
  }

  private call(e: Extract<A.Expr, { kind: "call" }>, env: Env): TExpr | undefined {
    const fn = this.program.fns.get(e.callee);
    if (fn) return this.inline(fn, e, env);
    const b = BUILTINS[e.callee];
    if (!b) {
      const names = [...Object.keys(BUILTINS), ...this.program.fns.keys()];
      this.bag.report("E011", e.calleeSpan, { name: e.callee, hint: didYouMean(e.callee, names) });
      return undefined;
    }
    const required = b.args + b.consts.filter((c) => c.default === undefined).length;
    const max = b.args + b.consts.length;
    if (e.args.length < required || e.args.length > max) {
      this.bag.report("E012", e.calleeSpan, {
        name: e.callee,
        expected: required === max ? `${max}` : `${required} to ${max}`,
        actual: e.args.length,
      });
      return undefined;
    }
    const args = e.args.slice(0, b.args).map((a) => this.expr(a, env));
    if (args.some((a) => !a)) return undefined;
    const consts: number[] = [];
    for (let i = 0; i < b.consts.length; i++) {
      const a = e.args[b.args + i];
      if (!a) {
        consts.push(b.consts[i]!.default!);
        continue;
      }
      const t = this.expr(a, env);
      const v = t && constValue(t);
      if (v === undefined) {
        if (t) this.bag.report("E029", a.span, { param: b.consts[i]!.name, name: e.callee });
        return undefined;
      }
      consts.push(v);
    }
    return this.expand(e.callee, args as TExpr[], consts, e.span);
  }

  /** Builtins as primitives; the parameterised activations as compositions of primitives. */
  private expand(name: string, args: TExpr[], c: number[], span: Span): TExpr | undefined {
    const k = (value: number): TExpr => ({ k: "const", value, type: { dims: [], batched: false }, span });
    const op = (o: OpKind, ...xs: (TExpr | undefined)[]) =>
      xs.every((x) => x) ? this.elementwise(o, xs as TExpr[], span, name) : undefined;
    const [x] = args as [TExpr, ...TExpr[]];
    const prim = BUILTINS[name]!.prim;
    if (prim) return op(prim, ...args);
    switch (name) {
      case "clip":
        return op("min", op("max", x, args[1]), args[2]);
      case "sum":
      case "mean": {
        if (x.type.dims.length !== 1) {
          this.bag.report("E046", x.span, { op: name, found: describeType(x.type) });
          return undefined;
        }
        const s: TExpr = { k: "op", op: "sum", args: [x], type: { dims: [], batched: x.type.batched }, span };
        if (name === "sum") return s;
        return op("div", s, { k: "dim", dim: x.type.dims[0]!, type: { dims: [], batched: false }, span });
      }
      case "hard_sigmoid":
        return op("max", k(0), op("min", k(1), op("add", op("mul", k(c[0]!), x), k(c[1]!))));
      case "leaky_relu": {
        const m = op("gt", x, k(0));
        return op("add", op("mul", m, x), op("mul", op("sub", k(1), m), op("mul", k(c[0]!), x)));
      }
      case "elu": {
        // exp of min(x, 0): the unused branch must not overflow to inf (0 * inf is NaN).
        const m = op("gt", x, k(0));
        const neg = op("mul", k(c[0]!), op("sub", op("exp", op("min", x, k(0))), k(1)));
        return op("add", op("mul", m, x), op("mul", op("sub", k(1), m), neg));
      }
      case "thresholded_relu":
        return op("mul", op("gt", x, k(c[0]!)), x);
      case "scaled_tanh":
        return op("mul", k(c[0]!), op("tanh", op("mul", k(c[1]!), x)));
      case "affine":
        return op("add", op("mul", k(c[0]!), x), k(c[1]!));
    }
    return undefined;
  }

  private inline(fn: A.FnAst, e: Extract<A.Expr, { kind: "call" }>, env: Env): TExpr | undefined {
    const seen = new Map<string, Span>();
    for (const p of fn.params) {
      if (seen.has(p.name)) {
        this.bag.report("E027", p.span, { name: fn.name, param: p.name });
        return undefined;
      }
      seen.set(p.name, p.span);
    }
    if (e.args.length !== fn.params.length) {
      this.bag.report(
        "E012",
        e.calleeSpan,
        { name: fn.name, expected: fn.params.length, actual: e.args.length },
        [{ message: `'${fn.name}' is defined here`, span: fn.nameSpan }],
      );
      return undefined;
    }
    if (this.fnStack.includes(fn.name)) {
      this.bag.report("E028", fn.nameSpan, {
        name: fn.name,
        chain: [...this.fnStack.slice(this.fnStack.indexOf(fn.name)), fn.name].join(" -> "),
      });
      return undefined;
    }
    const args = e.args.map((a) => this.expr(a, env));
    if (args.some((a) => !a)) return undefined;
    const memoKey = `${fn.name}(${args.map((a) => this.ids.of(a!)).join(",")})`;
    if (this.inlined.has(memoKey)) {
      const hit = this.inlined.get(memoKey);
      return hit && { ...hit, span: e.span };
    }
    const inner = new Map<string, TExpr>();
    fn.params.forEach((p, i) => inner.set(p.name, args[i]!));
    this.fnStack.push(fn.name);
    const errors = this.bag.items.length;
    const body = this.expr(fn.body, inner);
    this.fnStack.pop();
    // Errors inside the body point there; add where the call that instantiated it is.
    for (let i = errors; i < this.bag.items.length; i++) {
      const d = this.bag.items[i]!;
      if (d.notes.length >= MAX_CALL_NOTES) continue; // a deep chain of calls: the innermost say enough
      this.bag.items[i] = {
        ...d,
        notes: [...d.notes, { message: `in this call of '${fn.name}'`, span: e.span }],
      };
    }
    this.inlined.set(memoKey, body);
    return body && { ...body, span: e.span };
  }

  private outputs(): { name: string; expr: TExpr }[] | undefined {
    if (this.m.outputs.length === 0) {
      this.bag.report("E024", this.cell.nameSpan, { name: this.cell.name });
      return undefined;
    }
    const out: { name: string; expr: TExpr }[] = [];
    const names = new Map<string, Span>();
    for (const o of this.m.outputs) {
      const prev = names.get(o.name);
      if (prev) {
        this.bag.report("E052", o.span, { name: o.name }, [{ message: "first listed here", span: prev }]);
        continue;
      }
      names.set(o.name, o.span);
      const known = o.prime
        ? this.m.states.has(o.name)
        : this.m.eqs.has(o.name) || this.m.states.has(o.name) || this.m.inputs.has(o.name);
      if (!known) {
        this.bag.report("E023", o.span, { name: key(o.name, o.prime) });
        continue;
      }
      const t = this.name({ kind: "name", name: o.name, prime: o.prime, span: o.span }, new Map());
      if (!t) continue;
      if (t.type.dims.length > 1) {
        this.bag.report("E049", o.span, { name: o.name, found: describeType(t.type) });
        continue;
      }
      if (!o.prime && t.k === "leaf" && t.role === "state")
        this.bag.report("W004", o.span, { name: o.name }, [
          { message: `write \`output ${o.name}'\` for the value computed in this step` },
        ]);
      out.push({ name: o.name, expr: t });
    }
    return out;
  }

  private finish(outputs: { name: string; expr: TExpr }[], inits: Map<string, InitSpec>): CheckedCell {
    // Reachability from the outputs; a state is reached when its previous value is read.
    const eqs = new Set<string>();
    const states = new Set<string>();
    const params = new Set<string>();
    const inputs = new Set<string>();
    // A worklist over the DAG: shared subexpressions are visited once.
    const seen = new Set<TExpr>();
    const work: TExpr[] = outputs.map((o) => o.expr);
    const visitEq = (k: string) => {
      if (eqs.has(k)) return;
      eqs.add(k);
      const t = this.typed.get(k);
      if (t) work.push(t);
    };
    while (work.length) {
      const t = work.pop()!;
      if (seen.has(t)) continue;
      seen.add(t);
      switch (t.k) {
        case "leaf":
          if (t.role === "param") params.add(t.name);
          else if (t.role === "input") inputs.add(t.name);
          else if (t.role === "state" && !states.has(t.name)) {
            states.add(t.name);
            visitEq(`${t.name}'`);
          }
          break;
        case "ref":
          visitEq(t.key);
          break;
        case "op":
          work.push(...t.args);
          break;
        case "concat":
          work.push(...t.items);
          break;
        case "matvec":
          params.add(t.weight);
          work.push(t.arg);
          break;
      }
    }

    const own = this.cell.name;
    const dropped = new Map<string, { names: string[]; span: Span }>();
    for (const [n, { decl, origin }] of this.m.params)
      if (!params.has(n)) {
        if (origin === own) this.bag.report("W001", decl.nameSpan, { name: n });
        else {
          const d = dropped.get(origin) ?? { names: [], span: decl.nameSpan };
          d.names.push(`'${n}'`);
          dropped.set(origin, d);
        }
      }
    for (const [parent, d] of dropped)
      this.bag.report("N001", this.cell.nameSpan, { names: d.names.join(", "), parent }, [
        { message: `'${parent}' declares them here`, span: d.span },
      ]);
    for (const [n, { decl, origin }] of this.m.states)
      if (!states.has(n) && origin !== own)
        this.bag.report("N002", this.cell.nameSpan, { name: n, parent: origin }, [
          { message: "declared here", span: decl.nameSpan },
        ]);
    for (const [k, { decl, origin }] of this.m.eqs)
      if (!eqs.has(k) && origin === own) this.bag.report("W002", decl.targetSpan, { name: k });
    for (const [n, { decl }] of this.m.inputs)
      if (!inputs.has(n)) this.bag.report("W003", decl.nameSpan, { name: n });

    const dimsSeen: string[] = [];
    const noteDims = (t: Type) => {
      for (const d of t.dims)
        for (const n of Object.keys(d.terms)) if (!dimsSeen.includes(n)) dimsSeen.push(n);
    };
    const inputList = [...this.m.inputs].map(([n, { decl }]) => ({
      name: n,
      type: this.inputTypes.get(n)!,
      span: decl.nameSpan,
    }));
    const stateList = [...this.m.states]
      .filter(([n]) => states.has(n))
      .map(([n, { decl }]) => ({
        name: n,
        type: this.stateTypes.get(n)!,
        init: decl.init ?? 0,
        span: decl.nameSpan,
      }));
    const paramList = [...this.m.params]
      .filter(([n]) => params.has(n))
      .map(([n, { decl }]) => ({
        name: n,
        type: this.paramTypes.get(n)!,
        init: inits.get(n)!,
        span: decl.nameSpan,
      }));
    for (const x of [...inputList, ...stateList, ...paramList]) noteDims(x.type);

    const equations = new Map<string, TExpr>();
    for (const k of this.order) if (eqs.has(k)) equations.set(k, this.typed.get(k)!);
    return {
      name: own,
      span: this.cell.span,
      dims: dimsSeen,
      inputs: inputList,
      states: stateList,
      params: paramList,
      unusedParams: [...this.m.params]
        .filter(([n, { origin }]) => !params.has(n) && origin === own)
        .map(([n]) => n),
      equations,
      outputs,
    };
  }
}

/** A declared shape as a type, reporting bad dimensions (shared with models' declarations). */
export function shapeType(
  shape: A.ShapeAst,
  maxRank: number,
  name: string,
  batched: boolean,
  bag: DiagnosticBag,
): Type {
  if (shape.dims.length > maxRank)
    bag.report("E048", shape.span, { name, rank: shape.dims.length, max: maxRank });
  const dims: Dim[] = shape.dims.map((d) => {
    let acc = dimConst(0);
    for (const t of d.terms) {
      if (t.coeff <= 0 || !Number.isInteger(t.coeff)) bag.report("E050", t.span, { value: t.coeff });
      else if (t.coeff > MAX_DIM) bag.report("E054", t.span, { value: t.coeff, limit: MAX_DIM });
      acc = dimAdd(acc, t.name ? dim({ [t.name]: t.coeff }) : dimConst(t.coeff));
    }
    if (acc.c > MAX_DIM && d.terms.every((t) => t.coeff <= MAX_DIM))
      bag.report("E054", d.span, { value: acc.c, limit: MAX_DIM });
    return acc;
  });
  return { dims, batched };
}

/** A parameter's initialiser, reporting unknown ones and wrong argument counts. */
export function initSpec(d: A.ParamDeclAst, bag: DiagnosticBag): InitSpec {
  const i = d.init;
  if (!i) return { kind: "uniform" };
  if (i.kind === "const") return { kind: "const", value: i.value };
  const spec = INITIALISERS[i.name];
  if (!spec) {
    bag.report("E025", i.span, { name: i.name, hint: didYouMean(i.name, Object.keys(INITIALISERS)) });
    return { kind: "uniform" };
  }
  if (i.args.length < spec.min || i.args.length > spec.max) {
    const expected = spec.min === spec.max ? `${spec.min}` : `${spec.min} to ${spec.max}`;
    bag.report("E026", i.span, { name: i.name, expected, actual: i.args.length });
    return { kind: "uniform" };
  }
  const a = i.args;
  // What is no distribution (and PyTorch's initialisers refuse): an empty range, a negative spread.
  const call = `${i.name}(${a.join(", ")})`;
  const refuse = (detail: string) => {
    bag.report("E091", i.span, { call, detail });
    return { kind: "uniform" } as const;
  };
  if (i.name === "uniform" && a.length === 1 && a[0]! < 0)
    return refuse(`has a negative bound ${a[0]} (uniform(a) draws from U(-a, a))`);
  if (i.name === "uniform" && a.length === 2 && a[0]! > a[1]!)
    return refuse(`has its low end ${a[0]} above its high end ${a[1]}`);
  if (i.name === "normal" && a.length >= 1 && a[a.length - 1]! < 0)
    return refuse(`has a negative standard deviation ${a[a.length - 1]}`);
  if ((i.name === "xavier" || i.name === "glorot") && a.length === 1 && a[0]! < 0)
    return refuse(
      `has a negative gain ${a[0]} (it draws from U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)))`,
    );
  switch (i.name) {
    case "uniform":
      return a.length === 0
        ? { kind: "uniform" }
        : a.length === 1
          ? { kind: "uniform", lo: -a[0]!, hi: a[0]! }
          : { kind: "uniform", lo: a[0]!, hi: a[1]! };
    case "normal":
      return {
        kind: "normal",
        mean: a.length === 2 ? a[0]! : 0,
        std: a.length === 2 ? a[1]! : (a[0] ?? 1),
      };
    case "orthogonal":
      return { kind: "orthogonal", gain: a[0] ?? 1 };
    default:
      return { kind: "xavier", gain: a[0] ?? 1 };
  }
}

const MAX_CALL_NOTES = 8;

/** Checker recursion depth (expressions, plus the equations and function bodies they read). */
const CHECK_DEPTH_LIMIT = 4 * NESTING_LIMIT;

/** The names an equation reads, in the order they appear: `h` or `h'`. */
function references(e: A.Expr): string[] {
  const out: string[] = [];
  const stack: A.Expr[] = [e];
  while (stack.length) {
    const x = stack.pop()!;
    switch (x.kind) {
      case "name":
        out.push(key(x.name, x.prime));
        break;
      case "binary":
        stack.push(x.right, x.left);
        break;
      case "neg":
        stack.push(x.operand);
        break;
      case "call":
        stack.push(...[...x.args].reverse());
        break;
      case "concat":
        stack.push(...[...x.items].reverse());
        break;
    }
  }
  return out;
}

/** Structural ids for checked expressions, ignoring spans: equal ids mean the same value. */
class TExprIds {
  private readonly ids = new WeakMap<TExpr, number>();
  private readonly byKey = new Map<string, number>();
  of(t: TExpr): number {
    // Post-order with an explicit stack: a long chain must not recurse.
    const stack: TExpr[] = [t];
    while (stack.length) {
      const x = stack[stack.length - 1]!;
      if (this.ids.has(x)) {
        stack.pop();
        continue;
      }
      const kids = x.k === "op" ? x.args : x.k === "concat" ? x.items : x.k === "matvec" ? [x.arg] : [];
      const missing = kids.filter((c) => !this.ids.has(c));
      if (missing.length) {
        stack.push(...missing);
        continue;
      }
      stack.pop();
      this.assign(x);
    }
    return this.ids.get(t)!;
  }
  private assign(t: TExpr): void {
    const id = (a: TExpr) => this.ids.get(a)!;
    let k: string;
    switch (t.k) {
      case "const":
        k = `c${Object.is(t.value, -0) ? "-0" : t.value}`;
        break;
      case "dim":
        k = `d${printType({ dims: [t.dim], batched: false })}`;
        break;
      case "leaf":
        k = `l${t.role}:${t.name}`;
        break;
      case "ref":
        k = `r${t.key}`;
        break;
      case "op":
        k = `o${t.op}(${t.args.map(id).join(",")})`;
        break;
      case "matvec":
        k = `m${t.weight}(${id(t.arg)})`;
        break;
      case "concat":
        k = `[${t.items.map(id).join(",")}]`;
        break;
    }
    let n = this.byKey.get(k);
    if (n === undefined) {
      n = this.byKey.size;
      this.byKey.set(k, n);
    }
    this.ids.set(t, n);
  }
}

/** The number a constant expression folds to, or undefined when it reads anything per-step. */
export function constValue(t: TExpr): number | undefined {
  // Post-order with an explicit stack and a memo: the expression may be a long chain or a shared DAG.
  const value = new Map<TExpr, number | undefined>();
  const stack: TExpr[] = [t];
  while (stack.length) {
    const x = stack[stack.length - 1]!;
    if (value.has(x)) {
      stack.pop();
      continue;
    }
    const def = x.k === "op" ? OPS[x.op] : undefined;
    if (def?.class !== "elementwise") {
      value.set(x, x.k === "const" ? x.value : undefined);
      stack.pop();
      continue;
    }
    const args = (x as Extract<TExpr, { k: "op" }>).args;
    const missing = args.filter((a) => !value.has(a));
    if (missing.length) {
      stack.push(...missing);
      continue;
    }
    stack.pop();
    const vals = args.map((a) => value.get(a));
    value.set(x, vals.some((v) => v === undefined) ? undefined : def.eval(vals as number[]));
  }
  return value.get(t);
}

function describeType(t: Type): string {
  if (t.dims.length === 0) return "a scalar";
  if (t.dims.length === 1) return `a vector ${printType(t)}`;
  return `a matrix ${printType(t)}`;
}
