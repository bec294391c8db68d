import type { IToken } from "chevrotain";
import { cellLexer } from "../../grammar/tokens.js";
import type * as A from "../ast/ast.js";
import { LOSS_KINDS as LOSSES } from "../../artifact/network.js";
import type { Analysis } from "./analysis.js";
import { builtinDoc, builtinNames, initialiserDoc, initialiserNames } from "./docs.js";
import { sourceText } from "./hover.js";
import type { Decl, Scope } from "./symbols.js";
import { classifyLine, KEYWORDS } from "./tokens.js";

export type CompletionKind =
  | "keyword"
  | "cell"
  | "fn"
  | "builtin"
  | "initialiser"
  | "input"
  | "state"
  | "param"
  | "equation"
  | "dim"
  | "fnParam"
  | "value"; // a fixed word: a loss, a cell option, `last`

export interface Completion {
  readonly label: string;
  readonly kind: CompletionKind;
  readonly detail?: string;
  readonly documentation?: string;
  /** LSP snippet syntax, for editors that take snippets (`sigmoid(${1:x})`); else the label is inserted. */
  readonly snippet?: string;
  /** Orders the list: names in scope first, then functions, then the rest. */
  readonly sort: number;
}

export interface CompletionResult {
  /** The part of a name already typed, which a completion replaces. */
  readonly start: number;
  readonly end: number;
  readonly items: readonly Completion[];
}

const CELL_MEMBERS = ["input", "state", "param", "output"];
const MODEL_MEMBERS = ["input", "embed", "cell", "param", "readout", "loss"];
const TOP = ["cell", "fn", "import", "model"];

/** Tokens that may end a statement: a name next starts a new one. */
const OPERAND_END = new Set(["Ident", "NumberLit", "RParen", "RBracket", "Prime", "StringLit"]);

/**
 * Completion from the text as typed, however broken: the statement around the cursor is found from the
 * tokens (a statement starts after `{`, or where a name follows a complete expression), and the names in
 * scope come from the symbol index of the last parse.
 */
export function complete(a: Analysis, file: string, offset: number): CompletionResult {
  const text = a.text(file) ?? "";
  let start = offset;
  while (start > 0 && /[A-Za-z0-9_]/.test(text[start - 1]!)) start--;
  const none = { start, end: offset, items: [] };
  if (/^[0-9]/.test(text.slice(start, offset)) || inCommentOrString(text, offset)) return none;
  const ctx = context(cellLexer.tokenize(text).tokens, start);
  const items = suggest(a, file, offset, ctx);
  return { start, end: offset, items };
}

function inCommentOrString(text: string, offset: number): boolean {
  let lineStart = offset;
  while (lineStart > 0 && text[lineStart - 1] !== "\n" && text[lineStart - 1] !== "\r") lineStart--;
  const line = text.slice(lineStart, offset);
  const last = classifyLine(line).at(-1);
  if (!last || last.end < line.length) return false;
  const s = line.slice(last.start, last.end);
  return last.cls === "comment" || (last.cls === "string" && (s.length === 1 || !s.endsWith('"')));
}

interface Context {
  /** 0: top level; 1: in a cell's or a model's braces. */
  readonly depth: number;
  readonly block?: { readonly kind: "cell" | "model"; readonly name?: string };
  /** The statement the cursor is in: its tokens before the cursor (none: a new statement starts here). */
  readonly stmt: readonly IToken[];
  /** The innermost bracket open at the cursor: a shape, an expression's, or a call's. */
  readonly bracket?: "shape" | "paren" | "call" | "concat";
  /** At top level, the name of the function whose body the cursor is in. */
  readonly fn?: string;
}

function context(tokens: readonly IToken[], offset: number): Context {
  let depth = 0;
  let block: Context["block"];
  let stmt: IToken[] = [];
  let brackets: ("shape" | "paren" | "call" | "concat")[] = [];
  let pendingBlock: { kind: "cell" | "model"; name?: string } | undefined;
  for (const t of tokens) {
    if (t.endOffset! + 1 > offset) break;
    const n = t.tokenType.name;
    const prev = stmt[stmt.length - 1];
    if (n === "LBrace") {
      depth = 1;
      block = { kind: pendingBlock?.kind ?? "cell", name: pendingBlock?.name };
      stmt = [];
      brackets = [];
      continue;
    }
    if (n === "RBrace") {
      depth = 0;
      block = undefined;
      pendingBlock = undefined;
      stmt = [];
      brackets = [];
      continue;
    }
    if (n === "Semi") {
      stmt = [];
      brackets = [];
      continue;
    }
    const startsItem =
      depth === 0 &&
      (n === "Cell" ||
        n === "Fn" ||
        n === "Import" ||
        (n === "Ident" &&
          t.image === "model" &&
          brackets.length === 0 &&
          (!prev || OPERAND_END.has(prev.tokenType.name))));
    const startsMember =
      depth === 1 &&
      brackets.length === 0 &&
      prev !== undefined &&
      OPERAND_END.has(prev.tokenType.name) &&
      (n === "Ident" || KEYWORDS.has(t.image)) &&
      !continues(stmt, t);
    if (startsItem || startsMember) {
      stmt = [];
      brackets = [];
    }
    if (depth === 0 && n === "Cell") pendingBlock = { kind: "cell" };
    if (depth === 0 && n === "Ident" && t.image === "model" && stmt.length === 0)
      pendingBlock = { kind: "model" };
    if (depth === 0 && pendingBlock && !pendingBlock.name && n === "Ident" && stmt.length === 1)
      pendingBlock.name = t.image;
    stmt.push(t);
    if (n === "LParen") brackets.push(prev?.tokenType.name === "Ident" ? "call" : "paren");
    else if (n === "LBracket")
      brackets.push(
        prev && (prev.tokenType.name === "Ident" || prev.tokenType.name === "Colon") ? "shape" : "concat",
      );
    else if (n === "RParen" || n === "RBracket") brackets.pop();
  }
  // A name typed after a complete expression, outside brackets, starts a new statement.
  const last = stmt[stmt.length - 1];
  if (last && brackets.length === 0 && OPERAND_END.has(last.tokenType.name) && !continuesAfter(stmt))
    stmt = [];
  const fn = depth === 0 && stmt[0]?.tokenType.name === "Fn" ? stmt[1]?.image : undefined;
  return { depth, block, stmt, bracket: brackets[brackets.length - 1], fn };
}

/** Model clauses whose opening words are names: `readout on last y`, `embed E`, `loss mse(...)`. */
function continues(stmt: readonly IToken[], t: IToken): boolean {
  const head = stmt[0]?.image;
  const seen = (img: string) => stmt.some((s) => s.image === img);
  if (t.tokenType.name !== "Ident") return false;
  if (head === "readout" && stmt[0]!.tokenType.name === "Ident") return !seen("=");
  if ((head === "embed" || head === "loss") && stmt[0]!.tokenType.name === "Ident") return stmt.length === 1;
  if (head === "cell" || head === "extends") return stmt.length === 1;
  return false;
}

/** Whether the statement's last word still waits for another (`readout on`, `cell NAME,`...). */
function continuesAfter(stmt: readonly IToken[]): boolean {
  const head = stmt[0];
  if (!head) return false;
  if (head.image === "readout" && head.tokenType.name === "Ident") return !stmt.some((s) => s.image === "=");
  if (stmt.length === 1 && (head.image === "embed" || head.image === "loss" || head.image === "readout"))
    return true;
  return false;
}

const keyword = (label: string, sort = 3): Completion => ({ label, kind: "keyword", sort });

function suggest(a: Analysis, file: string, offset: number, ctx: Context): Completion[] {
  const stmt = ctx.stmt;
  const head = stmt[0];
  const prev = stmt[stmt.length - 1];
  const prevName = prev?.tokenType.name;
  const has = (name: string) => stmt.some((t) => t.tokenType.name === name);
  const scope = cellScope(a, file, offset, ctx);

  if (
    prevName === "Extends" ||
    (ctx.depth === 1 && ctx.block?.kind === "model" && head?.image === "cell" && stmt.length === 1)
  )
    return cells(a);
  if (prevName === "Tilde") return initialisers();
  if (ctx.bracket === "shape") return dims(scope);
  if (ctx.depth === 0) {
    if (!head) return TOP.map((k) => keyword(k));
    if (ctx.fn && has("Equals")) return expression(a, undefined, fnParams(a, ctx.fn));
    return [];
  }
  // In a cell's or a model's braces.
  const model = ctx.block?.kind === "model" ? a.program.models.get(ctx.block.name ?? "") : undefined;
  if (!head) {
    const words = (model ? MODEL_MEMBERS : CELL_MEMBERS).map((k) => keyword(k, 2));
    return [...words, ...(model ? [] : targets(scope))];
  }
  const kw = head.image;
  if (model) {
    if (kw === "cell" && prevName === "Comma") return ["layers", "bidirectional"].map((v) => value(v));
    if (kw === "loss" && stmt.length === 1) return LOSSES.map((l) => value(l));
    if (kw === "loss")
      return [
        ...model.readouts.map((r) => value(r.target, 0, "readout")),
        value("target", 1, "the training target"),
      ];
    if (kw === "readout" && !has("Equals"))
      return prevName === "Ident" && prev!.image === "on"
        ? ["last", "every"].map((v) => value(v))
        : stmt.length === 1
          ? [value("on")]
          : [];
    if (kw === "readout") return expression(a, modelNames(a, model), []);
    return [];
  }
  if (kw === "output") return prevName === "Output" || prevName === "Comma" ? outputs(scope) : [];
  if (head.tokenType.name === "Ident" && !has("Equals")) return targets(scope);
  if (head.tokenType.name === "Ident") return expression(a, scope?.names, []);
  return [];
}

const value = (label: string, sort = 1, detail?: string): Completion => ({
  label,
  kind: "value",
  sort,
  detail,
});

function cells(a: Analysis): Completion[] {
  return [...a.program.cells.values()].map((c) => ({
    label: c.name,
    kind: "cell",
    detail: c.parent ? `cell ${c.name} extends ${c.parent.name}` : `cell ${c.name}`,
    sort: 0,
  }));
}

function initialisers(): Completion[] {
  return initialiserNames().map((n) => {
    const d = initialiserDoc(n)!;
    return { label: n, kind: "initialiser", detail: d.signature, documentation: d.doc, sort: 0 };
  });
}

function dims(scope: Scope | undefined): Completion[] {
  return [...(scope?.dims.keys() ?? [])].map((n) => ({
    label: n,
    kind: "dim",
    detail: "dimension",
    sort: 0,
  }));
}

/** The scope of the cell the cursor is in: the parsed cell there, else the program's cell of that name. */
function cellScope(a: Analysis, file: string, offset: number, ctx: Context): Scope | undefined {
  if (ctx.depth !== 1 || ctx.block?.kind !== "cell") return undefined;
  const ast = a.program.files.find((f) => f.file === file);
  const here =
    ast?.cells.find((c) => c.span.start <= offset && offset <= c.span.end) ??
    ast?.cells.find((c) => c.name === ctx.block?.name) ??
    a.program.cells.get(ctx.block.name ?? "");
  return here && a.index.scopes.get(here);
}

function describeDecl(a: Analysis, d: Decl): string {
  switch (d.kind) {
    case "input":
    case "state":
      return `${d.kind} ${d.name}${sourceText(a, d.ast.shape.span)}`;
    case "param":
    case "embed":
      return `param ${d.name} : ${sourceText(a, d.ast.shape.span)}`;
    case "equation":
      return `${d.name} = ${sourceText(a, d.ast.value.span)}`;
    default:
      return d.name;
  }
}

const KIND: Partial<Record<Decl["kind"], CompletionKind>> = {
  input: "input",
  modelInput: "input",
  state: "state",
  param: "param",
  embed: "param",
  equation: "equation",
  readout: "equation",
};

/** What an expression may read: the names in scope (`h` and `h'` of a state), functions, built-ins. */
function expression(
  a: Analysis,
  names: ReadonlyMap<string, Decl> | undefined,
  locals: readonly Completion[],
): Completion[] {
  const out: Completion[] = [...locals];
  for (const d of names?.values() ?? []) {
    const kind = KIND[d.kind];
    if (!kind) continue;
    const detail = describeDecl(a, d);
    out.push({ label: d.name, kind, detail, sort: 0 });
    if (d.kind === "state")
      out.push({ label: `${d.name}'`, kind, detail: `the next value of ${d.name}`, sort: 0 });
  }
  for (const f of a.program.fns.values()) {
    const params = f.params.map((p, i) => `\${${i + 1}:${p.name}}`).join(", ");
    out.push({
      label: f.name,
      kind: "fn",
      detail: `fn ${f.name}(${f.params.map((p) => p.name).join(", ")})`,
      documentation: sourceText(a, f.span),
      snippet: `${f.name}(${params})`,
      sort: 1,
    });
  }
  for (const n of builtinNames()) {
    if (a.program.fns.has(n)) continue;
    const d = builtinDoc(n)!;
    const params = d.params.slice(0, d.required).map((p, i) => `\${${i + 1}:${p}}`);
    out.push({
      label: n,
      kind: "builtin",
      detail: d.signature,
      documentation: d.doc,
      snippet: `${n}(${params.join(", ")})`,
      sort: 2,
    });
  }
  return out;
}

function fnParams(a: Analysis, name: string): Completion[] {
  const f = a.program.fns.get(name);
  return (f?.params ?? []).map((p) => ({
    label: p.name,
    kind: "fnParam",
    detail: `parameter of ${name}`,
    sort: 0,
  }));
}

/** What an equation may define: the next value of a state, an intermediate (to replace a parent's). */
function targets(scope: Scope | undefined): Completion[] {
  const out: Completion[] = [];
  for (const d of scope?.names.values() ?? []) {
    if (d.kind === "state")
      out.push({ label: `${d.name}'`, kind: "state", detail: `the next value of ${d.name}`, sort: 0 });
    else if (
      d.kind === "equation" ||
      ((d.kind === "param" || d.kind === "input") && d.owner !== scope?.cell.name)
    )
      out.push({
        label: d.name,
        kind: KIND[d.kind]!,
        detail: d.owner !== scope?.cell.name ? `replaces ${d.owner}'s` : undefined,
        sort: 1,
      });
  }
  return out;
}

function outputs(scope: Scope | undefined): Completion[] {
  const out: Completion[] = [];
  for (const d of scope?.names.values() ?? []) {
    if (d.kind === "state")
      out.push({ label: `${d.name}'`, kind: "state", detail: `the next value of ${d.name}`, sort: 0 });
    else if (d.kind === "equation" || d.kind === "input")
      out.push({ label: d.name, kind: KIND[d.kind]!, sort: 1 });
  }
  return out;
}

/** A model's readout reads its declarations and its cell's output. */
function modelNames(a: Analysis, m: A.ModelAst): Map<string, Decl> {
  const names = new Map<string, Decl>();
  for (const o of a.index.occurrences(m.span.file))
    if (
      o.role === "decl" &&
      o.decl &&
      o.scope?.kind === "model" &&
      o.scope.name === m.name &&
      o.decl.kind !== "readout" &&
      o.decl.kind !== "dim"
    )
      names.set(o.name, o.decl);
  const cell = m.cells[0] && a.program.cells.get(m.cells[0].name);
  const cellScope = cell && a.index.scopes.get(cell);
  for (let s = cellScope; s; s = s.parent)
    if (s.cell.outputs.length) {
      for (const out of s.cell.outputs) {
        const d = cellScope!.names.get(out.name);
        if (d && !names.has(out.name)) names.set(out.name, d);
      }
      break;
    }
  return names;
}
