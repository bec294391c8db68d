import type * as A from "../ast/ast.js";
import { BUILTINS, INITIALISERS } from "../check/builtins.js";
import type { Program } from "../check/program.js";
import type { Span } from "../diag/span.js";

/**
 * What every name in a program refers to: its declarations and its occurrences, by file, as side tables
 * built from the AST (nothing is written onto it). Names resolve as the checker resolves them: a cell's
 * members through its `extends` chain (the nearest declaration wins), `fn` and cell names across the
 * files a program imports, a function's parameters in its body. A declaration in a derived cell that
 * replaces one of its parent's (`i = 1 - f` in `cifg extends lstm`) belongs to the parent's symbol, so
 * that a rename renames both.
 */
export type DeclKind =
  | "cell"
  | "model"
  | "fn"
  | "fnParam"
  | "input"
  | "state"
  | "param"
  | "equation"
  | "next" // `h' = ...`, the next-state equation of state h (h's symbol)
  | "dim"
  | "modelInput"
  | "embed"
  | "readout";

interface DeclBase {
  readonly name: string;
  /** The name as written, without a prime. */
  readonly span: Span;
  /** The cell, model or function it belongs to. */
  readonly owner?: string;
  readonly sym: Sym;
}

export type Decl = DeclBase &
  (
    | { readonly kind: "cell"; readonly ast: A.CellAst }
    | { readonly kind: "model"; readonly ast: A.ModelAst }
    | { readonly kind: "fn" | "fnParam"; readonly ast: A.FnAst }
    | { readonly kind: "input" | "state"; readonly ast: A.TensorDeclAst }
    | { readonly kind: "param" | "embed"; readonly ast: A.ParamDeclAst }
    | { readonly kind: "modelInput"; readonly ast: A.ModelInputAst }
    | { readonly kind: "equation" | "next"; readonly ast: A.EquationAst }
    | { readonly kind: "readout"; readonly ast: A.ReadoutAst }
    | { readonly kind: "dim"; readonly ast?: undefined }
  );

/** Declarations renamed together. `id` names it the same way in every program that holds its file. */
export interface Sym {
  readonly id: string;
  readonly name: string;
  readonly kind: DeclKind;
  readonly decls: Decl[];
}

export type OccurrenceRole =
  | "decl" // a declaration's name
  | "ref" // a name read, resolved or not (unresolved: E010)
  | "call" // a call of a user function
  | "builtin" // a call of a built-in function
  | "initialiser" // `~ xavier`
  | "free"; // a name in a function's body that is none of its parameters: the calling cell's

export interface Occurrence {
  /** The identifier alone (no prime). */
  readonly span: Span;
  readonly name: string;
  readonly role: OccurrenceRole;
  readonly sym?: Sym;
  /** Where "go to definition" goes: for `h'`, the next-state equation. */
  readonly decl?: Decl;
  readonly prime?: boolean;
  /** The cell, model or function whose scope it is in. */
  readonly scope?: { readonly kind: "cell" | "model" | "fn"; readonly name: string };
}

/** A cell's names after `extends`: the nearest declaration of each. */
export interface Scope {
  readonly cell: A.CellAst;
  readonly parent?: Scope;
  readonly names: Map<string, Decl>;
  /** The next-state equation of each state, by the state's name. */
  readonly next: Map<string, Decl>;
  /** Dimension names, shared along an `extends` family (H is the same H in a parent and its child). */
  readonly dims: Map<string, Sym>;
}

export class SymbolIndex {
  private readonly byFile = new Map<string, Occurrence[]>();
  readonly symbols: Sym[] = [];
  readonly scopes = new Map<A.CellAst, Scope>();
  /** The cells that call each function, directly or through other functions. */
  private readonly callers = new Map<string, Set<A.CellAst>>();
  private readonly fnCalls = new Map<string, Set<string>>();

  constructor(readonly program: Program) {
    new Builder(this, program).build();
    for (const list of this.byFile.values()) list.sort((a, b) => a.span.start - b.span.start);
  }

  /** @internal */
  add(o: Occurrence): void {
    let list = this.byFile.get(o.span.file);
    if (!list) this.byFile.set(o.span.file, (list = []));
    list.push(o);
  }
  /** @internal */
  noteCall(from: { kind: "cell"; cell: A.CellAst } | { kind: "fn"; name: string }, fn: string): void {
    if (from.kind === "cell") {
      let s = this.callers.get(fn);
      if (!s) this.callers.set(fn, (s = new Set()));
      s.add(from.cell);
    } else {
      let s = this.fnCalls.get(from.name);
      if (!s) this.fnCalls.set(from.name, (s = new Set()));
      s.add(fn);
    }
  }

  occurrences(file: string): readonly Occurrence[] {
    return this.byFile.get(file) ?? [];
  }

  /** The occurrence under the cursor: one containing `offset`, else one ending there. */
  at(file: string, offset: number): Occurrence | undefined {
    const list = this.occurrences(file);
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.span.end < offset) lo = mid + 1;
      else hi = mid;
    }
    let touching: Occurrence | undefined;
    for (let i = lo; i < list.length && list[i]!.span.start <= offset; i++) {
      const o = list[i]!;
      if (offset < o.span.end) return o;
      if (offset === o.span.end) touching ??= o;
    }
    return touching;
  }

  /** Every occurrence of a symbol, declarations included, in every file of the program. */
  occurrencesOf(id: string): Occurrence[] {
    const out: Occurrence[] = [];
    for (const list of this.byFile.values()) for (const o of list) if (o.sym?.id === id) out.push(o);
    return out;
  }

  /** The cells whose steps run a function's body (directly, or through the functions that call it). */
  cellsCalling(fn: string): A.CellAst[] {
    const fns = new Set([fn]);
    for (let grew = true; grew;) {
      grew = false;
      for (const [f, calls] of this.fnCalls)
        if (!fns.has(f) && [...calls].some((c) => fns.has(c))) {
          fns.add(f);
          grew = true;
        }
    }
    const cells = new Set<A.CellAst>();
    for (const f of fns) for (const c of this.callers.get(f) ?? []) cells.add(c);
    return [...cells];
  }

  /** The functions a cell calls, directly or through other functions. */
  fnsCalledBy(cell: A.CellAst): Set<string> {
    const out = new Set<string>();
    for (const [f, cells] of this.callers) if (cells.has(cell)) out.add(f);
    for (let grew = true; grew;) {
      grew = false;
      for (const f of [...out])
        for (const g of this.fnCalls.get(f) ?? [])
          if (!out.has(g)) {
            out.add(g);
            grew = true;
          }
    }
    return out;
  }
}

const ident = (s: Span, name: string): Span => ({ file: s.file, start: s.start, end: s.start + name.length });

class Builder {
  private readonly building = new Set<A.CellAst>();

  constructor(
    private readonly index: SymbolIndex,
    private readonly program: Program,
  ) {}

  private sym(kind: DeclKind, name: string, at: Span): Sym {
    const s: Sym = { id: `${at.file}:${at.start}:${name}`, name, kind, decls: [] };
    this.index.symbols.push(s);
    return s;
  }

  private declare<D extends Decl>(d: D, scope?: Occurrence["scope"]): D {
    d.sym.decls.push(d);
    this.index.add({ span: d.span, name: d.name, role: "decl", sym: d.sym, decl: d, scope });
    return d;
  }

  build(): void {
    const cellSyms = new Map<A.CellAst, Sym>();
    const fnSyms = new Map<A.FnAst, Sym>();
    for (const f of this.program.files) {
      for (const c of f.cells) {
        const sym = this.sym("cell", c.name, c.nameSpan);
        cellSyms.set(c, sym);
        this.declare({ kind: "cell", name: c.name, span: c.nameSpan, sym, ast: c });
      }
      for (const fn of f.fns) {
        const sym = this.sym("fn", fn.name, fn.nameSpan);
        fnSyms.set(fn, sym);
        this.declare({ kind: "fn", name: fn.name, span: fn.nameSpan, sym, ast: fn });
      }
      for (const m of f.models) {
        const sym = this.sym("model", m.name, m.nameSpan);
        this.declare({ kind: "model", name: m.name, span: m.nameSpan, sym, ast: m });
      }
    }
    const cellRef = (name: string, span: Span, scope: Occurrence["scope"]) => {
      const target = this.program.cells.get(name);
      const sym = target && cellSyms.get(target);
      this.index.add({ span, name, role: "ref", sym, decl: sym?.decls[0], scope });
    };
    const calls: Calls = {
      fn: (name) => {
        const fn = this.program.fns.get(name);
        return fn && fnSyms.get(fn);
      },
    };
    for (const f of this.program.files)
      for (const c of f.cells) {
        const scope = this.scope(c);
        const where = { kind: "cell" as const, name: c.name };
        if (c.parent) cellRef(c.parent.name, c.parent.span, where);
        this.cellBody(c, scope, calls);
      }
    for (const f of this.program.files) {
      for (const fn of f.fns) this.fnBody(fn, calls);
      for (const m of f.models) this.model(m, cellRef, calls);
    }
  }

  /** A cell's declarations, after its parent's (memoised; a cycle of `extends` stops at the repeat). */
  private scope(c: A.CellAst): Scope {
    const done = this.index.scopes.get(c);
    if (done) return done;
    const parentAst = c.parent ? this.program.cells.get(c.parent.name) : undefined;
    this.building.add(c);
    const parent = parentAst && !this.building.has(parentAst) ? this.scope(parentAst) : undefined;
    this.building.delete(c);
    const names = new Map(parent?.names);
    const next = new Map(parent?.next);
    const dims = parent?.dims ?? new Map<string, Sym>();
    const scope: Scope = { cell: c, parent, names, next, dims };
    const where = { kind: "cell" as const, name: c.name };
    const own = new Map<string, Decl>();
    const claim = (name: string, span: Span, kind: DeclKind): Sym => {
      const mine = own.get(name);
      if (mine) return this.sym(kind, name, span); // declared twice (E013): a symbol of its own
      return names.get(name)?.sym ?? this.sym(kind, name, span);
    };
    const put = (d: Decl) => {
      this.declare(d, where);
      if (!own.has(d.name)) {
        own.set(d.name, d);
        names.set(d.name, d);
      }
    };
    for (const d of c.inputs) {
      put({
        kind: "input",
        name: d.name,
        span: d.nameSpan,
        owner: c.name,
        sym: claim(d.name, d.nameSpan, "input"),
        ast: d,
      });
      this.shape(d.shape, dims, where);
    }
    for (const d of c.states) {
      put({
        kind: "state",
        name: d.name,
        span: d.nameSpan,
        owner: c.name,
        sym: claim(d.name, d.nameSpan, "state"),
        ast: d,
      });
      this.shape(d.shape, dims, where);
    }
    const shared = new Set<unknown>();
    for (const d of c.params) {
      put({
        kind: "param",
        name: d.name,
        span: d.nameSpan,
        owner: c.name,
        sym: claim(d.name, d.nameSpan, "param"),
        ast: d,
      });
      this.declaration(d, dims, where, shared);
    }
    for (const eq of c.equations) {
      const span = ident(eq.targetSpan, eq.target);
      if (eq.prime) {
        const state = names.get(eq.target);
        const sym = state?.sym ?? this.sym("next", eq.target, span);
        const d: Decl = { kind: "next", name: eq.target, span, owner: c.name, sym, ast: eq };
        this.declare(d, where);
        if (!next.has(eq.target) || next.get(eq.target)!.owner !== c.name) next.set(eq.target, d);
      } else if (own.has(eq.target)) {
        // An equation for a declared name (E031): it names that declaration.
        const d = own.get(eq.target)!;
        this.index.add({ span, name: eq.target, role: "ref", sym: d.sym, decl: d, scope: where });
      } else
        put({
          kind: "equation",
          name: eq.target,
          span,
          owner: c.name,
          sym: claim(eq.target, span, "equation"),
          ast: eq,
        });
    }
    this.index.scopes.set(c, scope);
    return scope;
  }

  private shape(s: A.ShapeAst, dims: Map<string, Sym>, where: Occurrence["scope"]): void {
    for (const d of s.dims)
      for (const t of d.terms) {
        if (!t.name) continue;
        // `2*H`: the name ends the term.
        const span = { file: t.span.file, start: t.span.end - t.name.length, end: t.span.end };
        let sym = dims.get(t.name);
        if (!sym) {
          sym = this.sym("dim", t.name, span);
          dims.set(t.name, sym);
          this.declare({ kind: "dim", name: t.name, span, sym }, where);
        } else this.index.add({ span, name: t.name, role: "ref", sym, decl: sym.decls[0], scope: where });
      }
  }

  /** A parameter's shape and initialiser; names that share one declaration (`param W, U : [H]`) share them. */
  private declaration(
    d: A.ParamDeclAst,
    dims: Map<string, Sym>,
    where: Occurrence["scope"],
    shared: Set<unknown>,
  ) {
    if (!shared.has(d.shape)) this.shape(d.shape, dims, where);
    shared.add(d.shape);
    if (d.init?.kind === "dist" && !shared.has(d.init)) this.initialiser(d.init, where);
    if (d.init) shared.add(d.init);
  }

  private initialiser(init: Extract<A.InitAst, { kind: "dist" }>, where: Occurrence["scope"]): void {
    const text = this.program.sources.get(init.span.file) ?? "";
    const span = identAfterTilde(text, init.span, init.name);
    if (span && Object.hasOwn(INITIALISERS, init.name))
      this.index.add({ span, name: init.name, role: "initialiser", scope: where });
  }

  private cellBody(c: A.CellAst, scope: Scope, calls: Calls): void {
    const where = { kind: "cell" as const, name: c.name };
    const resolve = (name: string, prime: boolean, span: Span) => {
      const d = scope.names.get(name);
      this.index.add({
        span,
        name,
        role: "ref",
        sym: d?.sym,
        decl: prime ? (scope.next.get(name) ?? d) : d,
        prime,
        scope: where,
      });
    };
    for (const eq of c.equations)
      this.expr(eq.value, where, calls, (e) => resolve(e.name, e.prime, ident(e.span, e.name)), {
        kind: "cell",
        cell: c,
      });
    for (const o of c.outputs) resolve(o.name, o.prime, ident(o.span, o.name));
  }

  private fnBody(fn: A.FnAst, calls: Calls): void {
    const where = { kind: "fn" as const, name: fn.name };
    const params = new Map<string, Decl>();
    for (const p of fn.params) {
      const sym = this.sym("fnParam", p.name, p.span);
      const d = this.declare(
        { kind: "fnParam", name: p.name, span: p.span, owner: fn.name, sym, ast: fn },
        where,
      );
      if (!params.has(p.name)) params.set(p.name, d);
    }
    this.expr(
      fn.body,
      where,
      calls,
      (e) => {
        const d = e.prime ? undefined : params.get(e.name);
        const span = ident(e.span, e.name);
        this.index.add({
          span,
          name: e.name,
          role: d ? "ref" : "free",
          sym: d?.sym,
          decl: d,
          prime: e.prime,
          scope: where,
        });
      },
      { kind: "fn", name: fn.name },
    );
  }

  private model(
    m: A.ModelAst,
    cellRef: (name: string, span: Span, scope: Occurrence["scope"]) => void,
    calls: Calls,
  ): void {
    const where = { kind: "model" as const, name: m.name };
    const names = new Map<string, Decl>();
    const cellAst = m.cells[0] && this.program.cells.get(m.cells[0].name);
    const cellScope = cellAst && this.index.scopes.get(cellAst);
    const dims = cellScope?.dims ?? new Map<string, Sym>();
    const put = (d: Decl) => {
      this.declare(d, where);
      if (!names.has(d.name)) names.set(d.name, d);
    };
    for (const i of m.inputs) {
      put({
        kind: "modelInput",
        name: i.name,
        span: i.nameSpan,
        owner: m.name,
        sym: this.sym("modelInput", i.name, i.nameSpan),
        ast: i,
      });
      this.shape(i.shape, dims, where);
    }
    const shared = new Set<unknown>();
    for (const [kind, list] of [
      ["embed", m.embeds],
      ["param", m.params],
    ] as const)
      for (const p of list) {
        put({
          kind,
          name: p.name,
          span: p.nameSpan,
          owner: m.name,
          sym: this.sym(kind, p.name, p.nameSpan),
          ast: p,
        });
        this.declaration(p, dims, where, shared);
      }
    for (const c of m.cells) cellRef(c.name, c.nameSpan, where);
    const readouts: Decl[] = [];
    for (const r of m.readouts) {
      const span = ident(r.targetSpan, r.target);
      const d: Decl = {
        kind: "readout",
        name: r.target,
        span,
        owner: m.name,
        sym: this.sym("readout", r.target, span),
        ast: r,
      };
      this.declare(d, where);
      readouts.push(d);
    }
    // The readout reads the model's declarations and the cell's output (its state, by name).
    const resolve = (name: string, prime: boolean, span: Span) => {
      const d = names.get(name) ?? cellScope?.names.get(name);
      this.index.add({ span, name, role: "ref", sym: d?.sym, decl: d, prime, scope: where });
    };
    for (const r of m.readouts)
      this.expr(r.value, where, calls, (e) => resolve(e.name, e.prime, ident(e.span, e.name)));
    for (const l of m.losses)
      for (const a of l.args)
        this.expr(a, where, calls, (e) => {
          const d = readouts.find((r) => r.name === e.name);
          this.index.add({
            span: ident(e.span, e.name),
            name: e.name,
            role: "ref",
            sym: d?.sym,
            decl: d,
            scope: where,
          });
        });
  }

  /** Walks an expression (iteratively: a long sum is a deep tree), reporting names and calls. */
  private expr(
    root: A.Expr,
    where: Occurrence["scope"],
    calls: Calls,
    name: (e: Extract<A.Expr, { kind: "name" }>) => void,
    from?: { kind: "cell"; cell: A.CellAst } | { kind: "fn"; name: string },
  ): void {
    const stack: A.Expr[] = [root];
    while (stack.length) {
      const e = stack.pop()!;
      switch (e.kind) {
        case "name":
          name(e);
          break;
        case "binary":
          stack.push(e.right, e.left);
          break;
        case "neg":
          stack.push(e.operand);
          break;
        case "concat":
          stack.push(...[...e.items].reverse());
          break;
        case "call": {
          const sym = calls.fn(e.callee);
          const span = ident(e.calleeSpan, e.callee);
          if (sym) {
            this.index.add({ span, name: e.callee, role: "call", sym, decl: sym.decls[0], scope: where });
            if (from) this.index.noteCall(from, e.callee);
          } else if (Object.hasOwn(BUILTINS, e.callee))
            this.index.add({ span, name: e.callee, role: "builtin", scope: where });
          else this.index.add({ span, name: e.callee, role: "ref", scope: where });
          stack.push(...[...e.args].reverse());
          break;
        }
        case "num":
          break;
      }
    }
  }
}

interface Calls {
  fn(name: string): Sym | undefined;
}

/** The span of `name` after the `~` that starts `span` (blank space and comments may come between). */
function identAfterTilde(text: string, span: Span, name: string): Span | undefined {
  let i = span.start;
  if (text[i] === "~") i++;
  while (i < span.end) {
    const ch = text[i]!;
    if (ch === "#") while (i < span.end && text[i] !== "\n" && text[i] !== "\r") i++;
    else if (/\s/.test(ch)) i++;
    else break;
  }
  return text.startsWith(name, i) ? { file: span.file, start: i, end: i + name.length } : undefined;
}
