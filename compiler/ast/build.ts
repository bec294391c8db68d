import type { CstNode, IToken, CstElement } from "chevrotain";
import { cellLexer } from "../../grammar/tokens.js";
import { parser, strictParser } from "../../grammar/parser.js";
import type { Diagnostic } from "../diag/diagnostic.js";
import { diag } from "../diag/diagnostic.js";
import type { Span } from "../diag/span.js";
import type * as A from "./ast.js";

/**
 * The deepest expression nesting accepted: each bracket, call and unary minus is one level. The parser and
 * every later stage recurse on nesting, so this keeps them far from the stack's end in Node and browsers.
 */
export const NESTING_LIMIT = 100;

/** Past this many tokens a file is parsed up to its first syntax error only. */
const RECOVERY_TOKEN_LIMIT = 20_000;

/** Lexes and parses one file, collecting every error (chevrotain recovers), then builds the AST. */
export function parseFile(file: string, text: string): { ast: A.FileAst; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const lexed = cellLexer.tokenize(text);
  for (const e of lexed.errors) {
    const ch = text.slice(e.offset, e.offset + e.length);
    diagnostics.push(
      diag(
        "E001",
        { file, start: e.offset, end: e.offset + Math.max(1, e.length) },
        { char: JSON.stringify(ch) },
      ),
    );
  }
  const deep = tooDeep(lexed.tokens);
  if (deep) {
    const span = { file, start: deep.startOffset, end: (deep.endOffset ?? deep.startOffset) + 1 };
    diagnostics.push(diag("E004", span, { limit: NESTING_LIMIT }));
    return { ast: { file, imports: [], fns: [], cells: [], models: [] }, diagnostics };
  }
  // Recovery resynchronises by scanning ahead, which grows quadratic on long broken input; a real cell is
  // a few hundred tokens.
  const p = lexed.tokens.length > RECOVERY_TOKEN_LIMIT ? strictParser : parser;
  p.input = lexed.tokens;
  const cst = p.file();
  for (const e of p.errors) {
    const t = e.token;
    const eof = t.tokenType.name === "EOF" || Number.isNaN(t.startOffset);
    const start = eof ? text.length : t.startOffset;
    const end = eof ? text.length : (t.endOffset ?? t.startOffset) + 1;
    const found = eof ? "end of file" : `'${t.image}'`;
    const rule = e.context.ruleStack[e.context.ruleStack.length - 1] ?? "";
    const detail = `${describe(e.message, rule)}, found ${found}`;
    const opener = /^expected '[)\]]'/.test(detail) ? unclosed(lexed.tokens, start) : undefined;
    if (opener)
      diagnostics.push(
        diag(
          "E002",
          { file, start: opener.startOffset, end: opener.startOffset + 1 },
          {
            detail: `'${opener.image}' is never closed`,
          },
          [{ message: `the parser gave up here: ${detail}`, span: { file, start, end } }],
        ),
      );
    else diagnostics.push(diag("E002", { file, start, end }, { detail }));
  }
  const b = new AstBuilder(file, text, diagnostics);
  // Without recovery a failed parse may give no tree at all.
  const ast = (cst as CstNode | undefined)
    ? b.fileAst(cst)
    : { file, imports: [], fns: [], cells: [], models: [] };
  return { ast, diagnostics };
}

/** The first token past the nesting limit, if any. */
function tooDeep(tokens: readonly IToken[]): IToken | undefined {
  let depth = 0;
  let minus = 0;
  for (const t of tokens) {
    const n = t.tokenType.name;
    if (n === "LParen" || n === "LBracket") depth++;
    else if (n === "RParen" || n === "RBracket") depth = Math.max(0, depth - 1);
    minus = n === "Minus" ? minus + 1 : 0;
    if (depth + minus > NESTING_LIMIT) return t;
  }
  return undefined;
}

/** The innermost bracket open before `offset` that is never closed (before its cell's `}` or the end). */
function unclosed(tokens: readonly IToken[], offset: number): IToken | undefined {
  const never = new Set<IToken>();
  const open: IToken[] = [];
  let atOffset: IToken[] | undefined;
  for (const t of tokens) {
    if (!atOffset && t.startOffset >= offset) atOffset = [...open];
    const n = t.tokenType.name;
    if (n === "LParen" || n === "LBracket") open.push(t);
    else if (n === "RParen" || n === "RBracket") open.pop();
    else if (n === "LBrace" || n === "RBrace") for (const o of open.splice(0)) never.add(o);
  }
  atOffset ??= [...open];
  for (const o of open) never.add(o);
  return atOffset.reverse().find((o) => never.has(o));
}

/** Chevrotain's messages list token type names; say them as a person reads them. */
const EXPECTED_IN_RULE: Record<string, string> = {
  file: "expected 'cell', 'model', 'fn' or 'import'",
  member: "expected a declaration (input, state, param, output) or an equation",
  modelDecl: "expected a model clause (input, embed, cell, param, readout, loss)",
  cellClause: "expected ', layers N' or ', bidirectional'",
  lossDecl: "expected a loss such as cross_entropy(y, target)",
  readoutDecl: "expected 'y = expression'",
  expr: "expected an expression",
  term: "expected an expression",
  product: "expected an expression",
  unary: "expected an expression",
  primary: "expected an expression",
  dimTerm: "expected a dimension (a name or a positive integer)",
  initialiser: "expected '= number' or '~ initialiser'",
  outputDecl: "expected a name",
  inputDecl: "expected a name",
  stateDecl: "expected a name",
  paramDecl: "expected a name",
  concat: "expected an expression",
};

function describe(message: string, rule: string): string {
  const m = /Expecting:?\s*(.*?)(?:\s*but found|$)/s.exec(message);
  const body = (m?.[1] ?? message).replace(/\s+/g, " ").trim();
  const names: Record<string, string> = {
    Ident: "a name",
    NumberLit: "a number",
    StringLit: "a string",
    Prime: "'",
    LBrace: "'{'",
    RBrace: "'}'",
    LParen: "'('",
    RParen: "')'",
    LBracket: "'['",
    RBracket: "']'",
    Comma: "','",
    Colon: "':'",
    Equals: "'='",
    Tilde: "'~'",
    Plus: "'+'",
    Minus: "'-'",
    Star: "'*'",
    Slash: "'/'",
    At: "'@'",
    EOF: "end of file",
  };
  const text = body.replace(
    /--> (\w+) <--|\b([A-Z][A-Za-z]*)\b/g,
    (whole, a: string | undefined, b2: string | undefined) => {
      const n = a ?? b2 ?? "";
      return names[n] ?? (a ? `'${n.toLowerCase()}'` : whole);
    },
  );
  if (/one of these possible Token sequences|at least one iteration/.test(text))
    return EXPECTED_IN_RULE[rule] ?? "unexpected token";
  return `expected ${text.replace(/^expecting\s*/i, "").replace(/^token of type\s*/i, "")}`;
}

type Children = Record<string, CstElement[] | undefined>;
/** The empty list, shared; frozen, so that a write to it would throw rather than spread. */
const NONE = Object.freeze([]) as never[];

function isToken(e: CstElement): e is IToken {
  return (e as IToken).image !== undefined;
}
const isGoodToken = (e: CstElement | undefined) => !!e && isToken(e) && !Number.isNaN(e.startOffset);
const isGoodNode = (e: CstElement | undefined) => !!e && !isToken(e) && !e.recoveredNode;

class AstBuilder {
  constructor(
    private readonly file: string,
    private readonly text: string,
    private readonly diagnostics: Diagnostic[],
  ) {}

  private tokSpan(t: IToken): Span {
    return { file: this.file, start: t.startOffset, end: (t.endOffset ?? t.startOffset) + 1 };
  }
  /** Spans of CST nodes, each computed once from its children's (nodes nest, so walking each is quadratic). */
  private readonly ranges = new Map<CstNode, readonly [number, number]>();
  private range(n: CstNode): readonly [number, number] {
    const hit = this.ranges.get(n);
    if (hit) return hit;
    let start = Infinity;
    let end = -Infinity;
    for (const k in n.children)
      for (const e of n.children[k] ?? []) {
        if (!e) continue;
        if (!isToken(e)) {
          const [s, t] = this.range(e);
          start = Math.min(start, s);
          end = Math.max(end, t);
        } else if (!Number.isNaN(e.startOffset)) {
          start = Math.min(start, e.startOffset);
          end = Math.max(end, (e.endOffset ?? e.startOffset) + 1);
        }
      }
    const r = [start, end] as const;
    this.ranges.set(n, r);
    return r;
  }
  private nodeSpan(n: CstNode): Span {
    const [start, end] = this.range(n);
    if (start === Infinity) return { file: this.file, start: 0, end: 0 };
    return { file: this.file, start, end };
  }
  // Without recovery, a rule that failed leaves an undefined child behind. The lists are read, never
  // written: where every element is wanted, the CST's own list is returned (most are, and this runs for
  // every node of the tree).
  private toks(c: Children, k: string): IToken[] {
    const list = c[k];
    if (!list) return NONE;
    return (list.every(isGoodToken) ? list : list.filter(isGoodToken)) as IToken[];
  }
  private nodes(c: Children, k: string): CstNode[] {
    const list = c[k];
    if (!list) return NONE;
    return (list.every(isGoodNode) ? list : list.filter(isGoodNode)) as CstNode[];
  }

  fileAst(n: CstNode): A.FileAst {
    const c = n.children;
    return {
      file: this.file,
      imports: this.nodes(c, "importDecl").flatMap((d) => {
        const s = this.toks(d.children, "StringLit")[0];
        return s ? [{ path: s.image.slice(1, -1), span: this.tokSpan(s) }] : [];
      }),
      fns: this.nodes(c, "fnDecl").flatMap((d) => this.fn(d)),
      cells: this.nodes(c, "cellDecl").flatMap((d) => this.cell(d)),
      models: this.nodes(c, "modelDecl").flatMap((d) => this.model(d)),
    };
  }

  /** A syntax error lies in the span: what the parser recovered there may not be what was meant. */
  private broken(span: Span): boolean {
    return this.diagnostics.some(
      (d) =>
        d.code === "E002" && d.span !== undefined && d.span.start >= span.start && d.span.start <= span.end,
    );
  }

  /** Model clauses written in a cell: parsed, and refused here with what to do instead. */
  private modelOnly(mc: Children): void {
    const refuse = (what: string, n: CstNode, note: string) => {
      if (!this.broken(this.nodeSpan(n)))
        this.diagnostics.push(diag("E070", this.nodeSpan(n), { what }, [{ message: note }]));
    };
    const wrap = "a model wraps a cell: model NAME { input x[D]  cell NAME  readout y = ...  loss ... }";
    for (const d of this.nodes(mc, "cellClause")) refuse("'cell NAME'", d, wrap);
    for (const d of this.nodes(mc, "embedDecl")) refuse("'embed'", d, wrap);
    for (const d of this.nodes(mc, "readoutDecl")) refuse("'readout'", d, wrap);
    for (const d of this.nodes(mc, "lossDecl")) refuse("'loss'", d, wrap);
    for (const d of this.nodes(mc, "inputDecl"))
      for (const t of this.nodes(d.children, "typedInput"))
        refuse("a typed input ('name : int[V]')", t, "a cell's inputs are vectors: write x[D]");
  }

  private model(n: CstNode): A.ModelAst[] {
    const c = n.children;
    const name = this.toks(c, "name")[0];
    if (!name) return [];
    const inputs: A.ModelInputAst[] = [];
    const embeds: A.ParamDeclAst[] = [];
    const cells: A.ModelCellAst[] = [];
    const params: A.ParamDeclAst[] = [];
    const readouts: A.ReadoutAst[] = [];
    const losses: A.LossAst[] = [];
    const refuse = (what: string, span: Span, note: string) => {
      if (!this.broken(span)) this.diagnostics.push(diag("E071", span, { what }, [{ message: note }]));
    };
    for (const m of this.nodes(c, "member")) {
      const mc = m.children;
      for (const d of this.nodes(mc, "inputDecl")) {
        for (const t of this.nodes(d.children, "tensorDecl"))
          for (const x of this.tensor(t)) {
            if (x.init !== undefined)
              refuse(
                "an initial value of an input",
                this.nodeSpan(t),
                "only a cell's states start at a value",
              );
            inputs.push({ name: x.name, nameSpan: x.nameSpan, shape: x.shape });
          }
        for (const t of this.nodes(d.children, "typedInput")) {
          const id = this.toks(t.children, "name")[0];
          const ty = this.toks(t.children, "type")[0];
          const shape = this.nodes(t.children, "shape")[0];
          if (id && ty && shape)
            inputs.push({
              name: id.image,
              nameSpan: this.tokSpan(id),
              shape: this.shape(shape),
              type: { name: ty.image, span: this.tokSpan(ty) },
            });
        }
      }
      for (const d of this.nodes(mc, "stateDecl"))
        refuse("'state'", this.nodeSpan(d), "a model's states are its cell's: declare them in the cell");
      for (const d of this.nodes(mc, "outputDecl"))
        refuse("'output'", this.nodeSpan(d), "a model's output is its readout: readout y = ...");
      for (const d of this.nodes(mc, "equation"))
        refuse(
          "an equation",
          this.nodeSpan(d),
          "a model computes with its cell; write its readout as readout y = ...",
        );
      for (const d of this.nodes(mc, "paramDecl")) params.push(...this.param(d));
      for (const d of this.nodes(mc, "embedDecl")) {
        embeds.push(...this.param(d, this.toks(d.children, "name")));
      }
      for (const d of this.nodes(mc, "cellClause")) {
        const id = this.toks(d.children, "name")[0];
        if (!id) continue;
        // Each option is a name, then a number if one follows before the next comma.
        const toks = [...this.toks(d.children, "option"), ...this.toks(d.children, "value")].sort(
          (a, b) => a.startOffset - b.startOffset,
        );
        const options: { name: string; span: Span; value?: number }[] = [];
        for (const t of toks) {
          const last = options[options.length - 1];
          if (t.tokenType.name === "NumberLit" && last) {
            last.value = this.literal(t);
            last.span = { ...last.span, end: (t.endOffset ?? t.startOffset) + 1 };
          } else if (t.tokenType.name !== "NumberLit") options.push({ name: t.image, span: this.tokSpan(t) });
        }
        cells.push({ name: id.image, nameSpan: this.tokSpan(id), options, span: this.nodeSpan(d) });
      }
      for (const d of this.nodes(mc, "readoutDecl")) {
        const target = this.nodes(d.children, "nameRef")[0];
        const value = this.nodes(d.children, "expr")[0];
        const ref = target && this.nameRef(target);
        const v = value && this.expr(value);
        const on = this.toks(d.children, "position")[0];
        if (ref && v)
          readouts.push({
            target: ref.name,
            prime: ref.prime,
            targetSpan: ref.span,
            on: on ? { word: on.image, span: this.tokSpan(on) } : undefined,
            value: v,
            span: this.nodeSpan(d),
          });
      }
      for (const d of this.nodes(mc, "lossDecl")) {
        const call = this.nodes(d.children, "call")[0];
        const id = call && this.toks(call.children, "Ident")[0];
        const args = call ? this.nodes(call.children, "expr").map((a) => this.expr(a)) : [];
        if (id && args.every((a) => a))
          losses.push({
            kind: id.image,
            kindSpan: this.tokSpan(id),
            args: args as A.Expr[],
            span: this.nodeSpan(d),
          });
      }
    }
    return [
      {
        name: name.image,
        nameSpan: this.tokSpan(name),
        inputs,
        embeds,
        cells,
        params,
        readouts,
        losses,
        span: this.nodeSpan(n),
      },
    ];
  }

  private fn(n: CstNode): A.FnAst[] {
    const c = n.children;
    const name = this.toks(c, "Ident")[0];
    const body = this.nodes(c, "expr")[0];
    if (!name || !body) return [];
    const b = this.expr(body);
    if (!b) return [];
    return [
      {
        name: name.image,
        nameSpan: this.tokSpan(name),
        params: this.toks(c, "params").map((t) => ({ name: t.image, span: this.tokSpan(t) })),
        body: b,
        span: this.nodeSpan(n),
      },
    ];
  }

  private cell(n: CstNode): A.CellAst[] {
    const c = n.children;
    const name = this.toks(c, "name")[0];
    if (!name) return [];
    const parent = this.toks(c, "parent")[0];
    const inputs: A.TensorDeclAst[] = [];
    const states: A.TensorDeclAst[] = [];
    const params: A.ParamDeclAst[] = [];
    const outputs: A.OutputAst[] = [];
    const equations: A.EquationAst[] = [];
    for (const m of this.nodes(c, "member")) {
      const mc = m.children;
      this.modelOnly(mc);
      for (const d of this.nodes(mc, "inputDecl"))
        inputs.push(...this.nodes(d.children, "tensorDecl").flatMap((t) => this.tensor(t)));
      for (const d of this.nodes(mc, "stateDecl"))
        states.push(...this.nodes(d.children, "tensorDecl").flatMap((t) => this.tensor(t)));
      for (const d of this.nodes(mc, "paramDecl")) params.push(...this.param(d));
      for (const d of this.nodes(mc, "outputDecl"))
        for (const r of this.nodes(d.children, "nameRef")) {
          const ref = this.nameRef(r);
          if (ref) outputs.push(ref);
        }
      for (const d of this.nodes(mc, "equation")) {
        const target = this.nodes(d.children, "nameRef")[0];
        const value = this.nodes(d.children, "expr")[0];
        const ref = target && this.nameRef(target);
        const v = value && this.expr(value);
        if (ref && v)
          equations.push({
            target: ref.name,
            prime: ref.prime,
            targetSpan: ref.span,
            value: v,
            span: this.nodeSpan(d),
          });
      }
    }
    return [
      {
        name: name.image,
        nameSpan: this.tokSpan(name),
        parent: parent ? { name: parent.image, span: this.tokSpan(parent) } : undefined,
        inputs,
        states,
        params,
        outputs,
        equations,
        span: this.nodeSpan(n),
      },
    ];
  }

  private nameRef(n: CstNode): A.OutputAst | undefined {
    const id = this.toks(n.children, "Ident")[0];
    if (!id) return undefined;
    return { name: id.image, prime: this.toks(n.children, "Prime").length > 0, span: this.nodeSpan(n) };
  }

  private number(n: CstNode): number | undefined {
    const t = this.toks(n.children, "NumberLit")[0];
    if (!t) return undefined;
    const v = this.literal(t);
    return this.toks(n.children, "Minus").length ? -v : v;
  }

  /** Kernels compute in float32: a literal that would become infinite there is refused where it is written. */
  private literal(t: IToken): number {
    const v = Number(t.image);
    if (!Number.isFinite(Math.fround(v)))
      this.diagnostics.push(
        diag("E053", this.tokSpan(t), {
          value: t.image.length > 24 ? `${t.image.slice(0, 20)}...` : t.image,
        }),
      );
    return v;
  }

  private shape(n: CstNode): A.ShapeAst {
    const dims = this.nodes(n.children, "dimExpr").map((d) => ({
      terms: this.nodes(d.children, "dimTerm").map((t) => {
        const ids = this.toks(t.children, "Ident");
        const num = this.toks(t.children, "NumberLit")[0];
        const coeff = num ? Number(num.image) : 1;
        return { name: ids[0]?.image, coeff, span: this.nodeSpan(t) };
      }),
      span: this.nodeSpan(d),
    }));
    return { dims, span: this.nodeSpan(n) };
  }

  private tensor(n: CstNode): A.TensorDeclAst[] {
    const id = this.toks(n.children, "Ident")[0];
    const shape = this.nodes(n.children, "shape")[0];
    if (!id || !shape) return [];
    const num = this.nodes(n.children, "signedNumber")[0];
    return [
      {
        name: id.image,
        nameSpan: this.tokSpan(id),
        shape: this.shape(shape),
        init: num ? this.number(num) : undefined,
      },
    ];
  }

  private param(n: CstNode, names = this.toks(n.children, "Ident")): A.ParamDeclAst[] {
    const shapeNode = this.nodes(n.children, "shape")[0];
    if (!shapeNode) return [];
    const shape = this.shape(shapeNode);
    const initNode = this.nodes(n.children, "initialiser")[0];
    let init: A.InitAst | undefined;
    if (initNode) {
      const ic = initNode.children;
      const nums = this.nodes(ic, "signedNumber").map((s) => this.number(s) ?? NaN);
      const dist = this.toks(ic, "Ident")[0];
      if (dist) init = { kind: "dist", name: dist.image, args: nums, span: this.nodeSpan(initNode) };
      else if (nums.length) init = { kind: "const", value: nums[0]!, span: this.nodeSpan(initNode) };
    }
    return names.map((t) => ({
      name: t.image,
      nameSpan: this.tokSpan(t),
      shape,
      init,
    }));
  }

  /** `W @ x * y` is `(W @ x) * y`; a reader used to `@` as the loosest product may expect `W @ (x * y)`. */
  private warnMatvecTimes(products: readonly CstNode[], ops: readonly IToken[]): void {
    for (let i = 0; i + 1 < products.length; i++) {
      const left = products[i]!;
      if (ops[i]?.image !== "*" || this.toks(left.children, "At").length === 0) continue;
      const l = this.nodeSpan(left);
      const r = this.nodeSpan(products[i + 1]!);
      const lt = this.show(l);
      const rt = this.show(r);
      const notes =
        lt && rt
          ? [
              { message: `write (${lt}) * ${rt} if this is what you mean` },
              {
                message: `write ${lt.replace(/@\s*(?!.*@)/, "@ (")} * ${rt}) to multiply before the product`,
              },
            ]
          : [{ message: "add parentheses to say which product comes first" }];
      this.diagnostics.push(diag("W005", { file: this.file, start: l.start, end: r.end }, {}, notes));
    }
  }
  private show(s: Span): string | undefined {
    const t = this.text.slice(s.start, s.end).replace(/\s+/g, " ");
    return t.length <= 40 ? t : undefined;
  }

  private expr(n: CstNode): A.Expr | undefined {
    switch (n.name) {
      case "expr":
      case "term":
      case "product": {
        const sub = n.name === "expr" ? "term" : n.name === "term" ? "product" : "unary";
        const operands = this.nodes(n.children, sub).map((s) => this.expr(s));
        // Most levels hold one operand and no operator: nothing to combine (the common case, kept fast).
        if (operands.length === 1) return operands[0];
        const ops = (["Plus", "Minus", "Star", "Slash", "At"] as const)
          .flatMap((k) => this.toks(n.children, k))
          .sort((a, b) => a.startOffset - b.startOffset);
        if (operands.some((o) => !o) || operands.length === 0) return undefined;
        if (n.name === "term") this.warnMatvecTimes(this.nodes(n.children, sub), ops);
        let acc = operands[0]!;
        for (let i = 1; i < operands.length; i++) {
          const op = ops[i - 1];
          const right = operands[i]!;
          if (!op) return undefined;
          acc = {
            kind: "binary",
            op: op.image as "+" | "-" | "*" | "/" | "@",
            left: acc,
            right,
            span: { file: this.file, start: acc.span.start, end: right.span.end },
          };
        }
        return acc;
      }
      case "unary": {
        const inner = this.nodes(n.children, "unary")[0];
        if (inner) {
          const operand = this.expr(inner);
          return operand && { kind: "neg", operand, span: this.nodeSpan(n) };
        }
        const p = this.nodes(n.children, "primary")[0];
        return p && this.expr(p);
      }
      case "primary": {
        const c = n.children;
        const num = this.toks(c, "NumberLit")[0];
        if (num) return { kind: "num", value: this.literal(num), span: this.tokSpan(num) };
        const call = this.nodes(c, "call")[0];
        if (call) {
          const id = this.toks(call.children, "Ident")[0];
          const args = this.nodes(call.children, "expr").map((a) => this.expr(a));
          if (!id || args.some((a) => !a)) return undefined;
          return {
            kind: "call",
            callee: id.image,
            calleeSpan: this.tokSpan(id),
            args: args as A.Expr[],
            span: this.nodeSpan(call),
          };
        }
        const ref = this.nodes(c, "nameRef")[0];
        if (ref) {
          const r = this.nameRef(ref);
          return r && { kind: "name", name: r.name, prime: r.prime, span: r.span };
        }
        const cat = this.nodes(c, "concat")[0];
        if (cat) {
          const items = this.nodes(cat.children, "expr").map((a) => this.expr(a));
          if (items.some((a) => !a) || items.length === 0) return undefined;
          return { kind: "concat", items: items as A.Expr[], span: this.nodeSpan(cat) };
        }
        const inner = this.nodes(c, "expr")[0];
        if (!inner) return undefined;
        const e = this.expr(inner);
        return e;
      }
      default:
        return undefined;
    }
  }
}
