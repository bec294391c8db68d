import type { CstElement, CstNode, IToken } from "chevrotain";
import { cellLexer } from "../../grammar/tokens.js";
import { parser, strictParser } from "../../grammar/parser.js";
import type { FileAst } from "../ast/ast.js";
import { parseFile } from "../ast/build.js";
import type { Diagnostic } from "../diag/diagnostic.js";

/**
 * The canonical layout of a .cell file (`cellc fmt`, the editor's "Format Document", the playground's
 * Format button). One statement a line: top-level items at column 0, a cell's or model's members indented
 * two spaces, a line that continues a statement four more. One space around binary operators, `=`, `~` and
 * `:`, after commas, none inside brackets, none in `f(`, `x[D]`, `h'`, `-x` and `2*H`. The keywords of a
 * run of declarations (lines not parted by a blank line) are padded to the longest, so that the names line
 * up. Comments stay where they were (on their own line, or after code); blank lines are kept, at most one
 * in a row, none after `{` or before `}`; `;` between members is dropped; the line break is the file's.
 *
 * Only the layout changes: the formatted file parses to the same AST with the same comments, which is
 * checked on every call (a failure is a bug in the formatter, thrown, and the text is not used). A file
 * with a syntax error is not formatted: its parse diagnostics are returned instead.
 */
export type FormatResult =
  | { readonly ok: true; readonly text: string; readonly changed: boolean }
  | { readonly ok: false; readonly diagnostics: readonly Diagnostic[] };

/** The codes that mean the file does not parse. */
const SYNTAX = new Set(["E001", "E002", "E004"]);

/** Past this many tokens the parser runs without recovery, as in parseFile (the file parses either way). */
const RECOVERY_TOKEN_LIMIT = 20_000;

const INDENT = "  ";
const CONTINUATION = "    ";

export function formatSource(file: string, text: string): FormatResult {
  const parsed = parseFile(file, text);
  if (parsed.diagnostics.some((d) => SYNTAX.has(d.code)))
    return { ok: false, diagnostics: parsed.diagnostics };
  const out = layout(text);
  const again = parseFile(file, out);
  if (again.diagnostics.some((d) => SYNTAX.has(d.code)) || !sameAst(parsed.ast, again.ast))
    throw new Error(`formatting ${file} would change what it means`);
  if (comments(text).join("\n") !== comments(out).join("\n"))
    throw new Error(`formatting ${file} would lose or move a comment`);
  return { ok: true, text: out, changed: out !== text };
}

/** What lies between two tokens: comments (after code on its line, or on a line of their own) and line breaks. */
type GapItem = { readonly comment: string; readonly ownLine: boolean } | { readonly breaks: number };

function scanGap(text: string, from: number, to: number): GapItem[] {
  const items: GapItem[] = [];
  let breaks = 0;
  let sawBreak = false;
  for (let i = from; i < to; i++) {
    const ch = text[i]!;
    if (ch === "\n" || (ch === "\r" && text[i + 1] !== "\n")) {
      breaks++;
      sawBreak = true;
    } else if (ch === "#") {
      let end = i;
      while (end < to && text[end] !== "\n" && text[end] !== "\r") end++;
      if (breaks) items.push({ breaks });
      breaks = 0;
      items.push({ comment: text.slice(i, end).trimEnd(), ownLine: sawBreak || from === 0 });
      i = end - 1;
    }
    // Anything else is blank space or a `;` between members, which the layout drops.
  }
  if (breaks) items.push({ breaks });
  return items;
}

type Role =
  | { readonly kind: "item" }
  | { readonly kind: "member"; readonly pad: number }
  | { readonly kind: "open" }
  | { readonly kind: "close" };

function isToken(e: CstElement): e is IToken {
  return (e as IToken).image !== undefined;
}

/** The first token of a node, looking two levels down (every statement's first token is that shallow). */
function firstToken(n: CstNode, depth = 2): IToken | undefined {
  let best: IToken | undefined;
  for (const list of Object.values(n.children))
    for (const e of list ?? []) {
      const t = isToken(e) ? e : depth > 0 ? firstToken(e, depth - 1) : undefined;
      if (t && !Number.isNaN(t.startOffset) && (!best || t.startOffset < best.startOffset)) best = t;
    }
  return best;
}

const nodes = (n: CstNode, key: string): CstNode[] =>
  (n.children[key] ?? []).filter((e): e is CstNode => !isToken(e));
const tokens = (n: CstNode, key: string): IToken[] => (n.children[key] ?? []).filter(isToken);

/** Rules whose first token is a keyword to align (the member rules other than an equation). */
const DECLARATIONS = new Set([
  "inputDecl",
  "stateDecl",
  "paramDecl",
  "outputDecl",
  "cellClause",
  "embedDecl",
  "readoutDecl",
  "lossDecl",
]);

/** Where items, members and blocks start, by the offset of their first token. */
function roles(cst: CstNode, text: string, toks: readonly IToken[]): Map<number, Role> {
  const at = new Map<number, Role>();
  const index = new Map(toks.map((t, i) => [t.startOffset, i]));
  const blankBefore = (t: IToken) => {
    const i = index.get(t.startOffset)!;
    const from = i > 0 ? toks[i - 1]!.endOffset! + 1 : 0;
    return scanGap(text, from, t.startOffset).some((g) => "breaks" in g && g.breaks > 1);
  };
  const items = ["importDecl", "fnDecl", "cellDecl", "modelDecl"].flatMap((k) => nodes(cst, k));
  for (const item of items) {
    const first = firstToken(item, 0);
    if (first) at.set(first.startOffset, { kind: "item" });
    for (const t of tokens(item, "LBrace")) at.set(t.startOffset, { kind: "open" });
    for (const t of tokens(item, "RBrace")) at.set(t.startOffset, { kind: "close" });
    // Runs of declarations, each padded to its longest keyword.
    let run: { first: IToken; decl: boolean }[] = [];
    const flush = () => {
      const width = Math.max(0, ...run.filter((m) => m.decl).map((m) => m.first.image.length));
      for (const m of run) at.set(m.first.startOffset, { kind: "member", pad: m.decl ? width : 0 });
      run = [];
    };
    const members = nodes(item, "member")
      .map((m) => {
        const rule = Object.keys(m.children).find((k) => k !== "Semi") ?? "";
        return { first: firstToken(m), decl: DECLARATIONS.has(rule) };
      })
      .filter((m): m is { first: IToken; decl: boolean } => m.first !== undefined)
      .sort((a, b) => a.first.startOffset - b.first.startOffset);
    for (const m of members) {
      if (!m.decl || blankBefore(m.first)) flush();
      run.push(m);
      if (!m.decl) flush();
    }
    flush();
  }
  return at;
}

const OPERAND_END = new Set(["Ident", "NumberLit", "RParen", "RBracket", "Prime"]);

function layout(text: string): string {
  const eol = /\r\n?|\n/.exec(text)?.[0] ?? "\n";
  const all = cellLexer.tokenize(text).tokens;
  const p = all.length > RECOVERY_TOKEN_LIMIT ? strictParser : parser;
  p.input = all;
  const cst = p.file();
  const toks = all.filter((t) => t.tokenType.name !== "Semi");
  const role = roles(cst, text, toks);

  const lines: string[] = [];
  let line = "";
  let depth = 0; // 1 inside a cell's or a model's braces
  let base = ""; // the indentation of the current statement
  const flush = () => {
    lines.push(line.trimEnd());
    line = "";
  };
  const blank = () => {
    if (lines.length > 0 && lines[lines.length - 1] !== "") lines.push("");
  };
  /**
   * Comments and breaks between statements, then the next statement's indentation. `opened`: right after
   * `{` (no blank line there); `closing`: before `}` or the end (none there either), whose comments stand
   * at `commentIndent`.
   */
  const between = (
    gap: GapItem[],
    indent: string,
    opened: boolean,
    closing: boolean,
    commentIndent = indent,
  ) => {
    let pendingBlank = false;
    for (const g of gap) {
      if ("breaks" in g) pendingBlank ||= g.breaks > 1;
      else if (!g.ownLine && line.trim() !== "") line += `  ${g.comment}`;
      else {
        if (line.trim() !== "") flush();
        if (pendingBlank && !opened) blank();
        lines.push(commentIndent + g.comment);
        opened = false;
        pendingBlank = false;
      }
    }
    if (line.trim() !== "") flush();
    if (pendingBlank && !opened && !closing) blank();
    line = indent;
  };

  // Brackets open: a shape (`x[D]`, `: [H, D]`), where `2*H` is written tight, or an expression.
  const brackets: ("shape" | "expr")[] = [];
  let unaryMinus = false;
  let prev: IToken | undefined;
  let prevEnd = 0;
  for (const t of toks) {
    const gap = scanGap(text, prevEnd, t.startOffset);
    const r = role.get(t.startOffset);
    const name = t.tokenType.name;
    if (!prev) {
      between(gap, "", true, false);
      base = "";
    } else if (r?.kind === "item" || r?.kind === "member" || r?.kind === "close") {
      const inside = depth ? INDENT : "";
      if (r.kind === "close") depth = 0;
      base = depth ? INDENT : "";
      between(gap, base, role.get(prev.startOffset)?.kind === "open", r.kind === "close", inside);
    } else if (gap.length) {
      // A statement that goes on over several lines: its comments kept, its breaks kept.
      between(gap, base + CONTINUATION, false, true);
    } else if (spaced(prev, t, brackets, unaryMinus)) line += " ";
    line += r?.kind === "member" && r.pad ? t.image.padEnd(r.pad) : t.image;
    if (r?.kind === "open") depth = 1;
    if (name === "LBracket")
      brackets.push(
        prev && (prev.tokenType.name === "Ident" || prev.tokenType.name === "Colon") ? "shape" : "expr",
      );
    else if (name === "RBracket") brackets.pop();
    unaryMinus = name === "Minus" && !(prev && OPERAND_END.has(prev.tokenType.name));
    prev = t;
    prevEnd = t.endOffset! + 1;
  }
  between(scanGap(text, prevEnd, text.length), base, !prev, true);
  while (lines.length && lines[lines.length - 1] === "") lines.pop();
  return lines.length ? lines.join(eol) + eol : "";
}

/** Whether one space goes between two tokens on a line. */
function spaced(a: IToken, b: IToken, brackets: readonly string[], afterUnary: boolean): boolean {
  const x = a.tokenType.name;
  const y = b.tokenType.name;
  if (y === "Comma" || y === "RParen" || y === "RBracket" || y === "Prime") return false;
  if (x === "LParen" || x === "LBracket" || afterUnary) return false;
  if ((y === "LParen" || y === "LBracket") && x === "Ident") return false;
  if ((x === "Star" || y === "Star") && brackets[brackets.length - 1] === "shape") return false;
  return true;
}

/** The comments of a text, in order. */
function comments(text: string): string[] {
  const out: string[] = [];
  let from = 0;
  const take = (to: number) => {
    for (const g of scanGap(text, from, to)) if ("comment" in g) out.push(g.comment);
  };
  for (const t of cellLexer.tokenize(text).tokens) {
    take(t.startOffset);
    from = t.endOffset! + 1;
  }
  take(text.length);
  return out;
}

/** Whether two ASTs are the same but for their spans; iterative, since a long sum is a deep tree. */
function sameAst(a: FileAst, b: FileAst): boolean {
  const stack: [unknown, unknown][] = [[a, b]];
  while (stack.length) {
    const [x, y] = stack.pop()!;
    if (typeof x !== "object" || x === null || typeof y !== "object" || y === null) {
      if (!Object.is(x, y)) return false;
      continue;
    }
    if (Array.isArray(x) !== Array.isArray(y)) return false;
    const kx = Object.keys(x).filter(
      (k) => !/span$/i.test(k) && (x as Record<string, unknown>)[k] !== undefined,
    );
    const ky = Object.keys(y).filter(
      (k) => !/span$/i.test(k) && (y as Record<string, unknown>)[k] !== undefined,
    );
    if (kx.length !== ky.length) return false;
    for (const k of kx) {
      if (!Object.hasOwn(y, k)) return false;
      stack.push([(x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k]]);
    }
  }
  return true;
}
