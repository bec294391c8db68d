// Syntax highlighting for .cell text: a small stream tokenizer over the lexer's token classes
// (grammar/tokens.ts), with the checker's own tables of built-in functions and initialisers.
import { HighlightStyle, StreamLanguage, syntaxHighlighting, type StringStream } from "@codemirror/language";
import { tags } from "@lezer/highlight";
import { BUILTINS, INITIALISERS } from "../compiler/check/builtins.js";

const KEYWORDS = new Set(["cell", "extends", "input", "state", "param", "output", "fn", "import"]);
const has = (table: object, word: string) => Object.prototype.hasOwnProperty.call(table, word);

function token(stream: StringStream): string | null {
  if (stream.eatSpace()) return null;
  if (stream.match(/^#.*/)) return "comment";
  if (stream.match(/^"[^"\r\n]*"?/)) return "string";
  if (stream.match(/^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/)) return "number";
  const word = stream.match(/^[A-Za-z_][A-Za-z0-9_]*/) as RegExpMatchArray | null;
  if (word) {
    const w = word[0];
    if (KEYWORDS.has(w)) return "keyword";
    if (has(BUILTINS, w) || has(INITIALISERS, w)) return "builtin";
    // `name'`: the next value of a state.
    if (stream.peek() === "'") return "variableName.special";
    return "variableName";
  }
  const ch = stream.next();
  if (ch === "'") return "variableName.special";
  if (ch && "{}()[]".includes(ch)) return "bracket";
  if (ch && "@+-*/=~:,;".includes(ch)) return "operator";
  return null;
}

export const cellLanguage = StreamLanguage.define({
  name: "cell",
  token,
  languageData: { commentTokens: { line: "#" } },
});

export const cellHighlight = syntaxHighlighting(
  HighlightStyle.define([
    { tag: tags.keyword, color: "#8839ef", fontWeight: "600" },
    { tag: tags.comment, color: "#7c7f93", fontStyle: "italic" },
    { tag: tags.number, color: "#d20f39" },
    { tag: tags.string, color: "#40a02b" },
    { tag: tags.standard(tags.variableName), color: "#1e66f5" },
    { tag: tags.special(tags.variableName), color: "#df8e1d" },
    { tag: tags.operator, color: "#179299" },
  ]),
);
