// Syntax highlighting for .cell text: the language service's token classes (compiler/service/tokens.ts),
// the same that the language server's semantic tokens start from, as a CodeMirror stream language.
import { HighlightStyle, StreamLanguage, syntaxHighlighting, type StringStream } from "@codemirror/language";
import { tags } from "@lezer/highlight";
import { classifyAt, type TokenClass } from "../compiler/service/tokens.js";

const TAGS: Record<TokenClass, string> = {
  keyword: "keyword",
  comment: "comment",
  string: "string",
  number: "number",
  builtin: "builtin",
  name: "variableName",
  next: "variableName.special", // `h'`: the next value of a state
  operator: "operator",
  bracket: "bracket",
};

function token(stream: StringStream): string | null {
  const { end, cls } = classifyAt(stream.string, stream.pos);
  stream.pos = Math.max(end, stream.pos + 1);
  return cls && TAGS[cls];
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
