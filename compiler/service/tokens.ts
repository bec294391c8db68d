import { BUILTINS, INITIALISERS } from "../check/builtins.js";
import { Ident, NumberLit } from "../../grammar/tokens.js";

/**
 * The highlighting classes of .cell text, one token at a time from a position in one line: the same
 * classes for the playground's editor (playground/cell-lang.ts) and the language server's semantic tokens.
 * Lexical only, so that it works on any text, however broken; the language server refines names from what
 * they resolve to.
 */
export type TokenClass =
  | "keyword"
  | "comment"
  | "string"
  | "number"
  | "builtin" // a built-in function or initialiser
  | "name"
  | "next" // `h'`: the next value of a state
  | "operator"
  | "bracket";

export interface ClassifiedToken {
  readonly start: number;
  readonly end: number;
  readonly cls: TokenClass;
}

export const KEYWORDS: ReadonlySet<string> = new Set([
  "cell",
  "extends",
  "input",
  "state",
  "param",
  "output",
  "fn",
  "import",
]);

/** Words that are keywords only where they open a line of a model and a name follows (not reserved). */
export const MODEL_WORDS: ReadonlySet<string> = new Set(["model", "embed", "readout", "loss"]);

const has = (table: object, word: string) => Object.prototype.hasOwnProperty.call(table, word);
const sticky = (r: RegExp) => new RegExp(r.source, "y");
const NAME = sticky(Ident.PATTERN as RegExp);
const NUMBER = sticky(NumberLit.PATTERN as RegExp);
const SPACE = /[ \t]+/y;
const COMMENT = /#.*/y;
const STRING = /"[^"\r\n]*"?/y;

function match(re: RegExp, line: string, pos: number): number {
  re.lastIndex = pos;
  return re.test(line) ? re.lastIndex : pos;
}

/** The token at `pos` in `line` (one line, without its break): where it ends and its class (null: blank). */
export function classifyAt(line: string, pos: number): { end: number; cls: TokenClass | null } {
  let end = match(SPACE, line, pos);
  if (end > pos) return { end, cls: null };
  if ((end = match(COMMENT, line, pos)) > pos) return { end, cls: "comment" };
  if ((end = match(STRING, line, pos)) > pos) return { end, cls: "string" };
  if ((end = match(NUMBER, line, pos)) > pos) return { end, cls: "number" };
  if ((end = match(NAME, line, pos)) > pos) {
    const word = line.slice(pos, end);
    if (KEYWORDS.has(word)) return { end, cls: "keyword" };
    if (contextualKeyword(line, pos, end, word)) return { end, cls: "keyword" };
    if (line[end] === "'") return { end, cls: "next" };
    if (has(BUILTINS, word) || has(INITIALISERS, word)) return { end, cls: "builtin" };
    return { end, cls: "name" };
  }
  const ch = line[pos]!;
  if (ch === "'") return { end: pos + 1, cls: "next" };
  if ("{}()[]".includes(ch)) return { end: pos + 1, cls: "bracket" };
  if ("@+-*/=~:,;".includes(ch)) return { end: pos + 1, cls: "operator" };
  return { end: pos + 1, cls: null };
}

/** `model NAME`, `embed E`, `readout y`, `readout on last`, `loss mse(`: first on their line, a name next. */
function contextualKeyword(line: string, start: number, end: number, word: string): boolean {
  NAME.lastIndex = match(SPACE, line, end);
  const nameNext = NAME.lastIndex > end && NAME.test(line);
  if (!nameNext) return false;
  const before = line.slice(0, start).trim();
  if (MODEL_WORDS.has(word)) return before === "";
  return word === "on" && /^readout$/.test(before);
}

/** Every token of one line, with offsets in the line. */
export function classifyLine(line: string): ClassifiedToken[] {
  const out: ClassifiedToken[] = [];
  for (let pos = 0; pos < line.length;) {
    const { end, cls } = classifyAt(line, pos);
    if (cls) out.push({ start: pos, end, cls });
    pos = end;
  }
  return out;
}

/** Every token of a text, with offsets in the text; no token spans a line break. */
export function classifyText(text: string): ClassifiedToken[] {
  const out: ClassifiedToken[] = [];
  const lines = /\r\n?|\n/g;
  let start = 0;
  for (;;) {
    const m = lines.exec(text);
    const end = m ? m.index : text.length;
    for (const t of classifyLine(text.slice(start, end)))
      out.push({ start: start + t.start, end: start + t.end, cls: t.cls });
    if (!m) return out;
    start = m.index + m[0].length;
  }
}
