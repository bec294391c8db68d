import type { Analysis } from "./analysis.js";
import type { DeclKind } from "./symbols.js";
import { classifyText, type TokenClass } from "./tokens.js";

/**
 * Semantic tokens: the shared lexical classes (tokens.ts, as the playground highlights), with names
 * refined by what they resolve to. The legend uses the Language Server Protocol's standard names.
 */
export const SEMANTIC_TYPES = [
  "keyword",
  "comment",
  "string",
  "number",
  "operator",
  "function",
  "variable",
  "parameter",
  "property",
  "class",
  "typeParameter",
] as const;
export const SEMANTIC_MODIFIERS = ["declaration", "defaultLibrary", "modification", "readonly"] as const;

export type SemanticType = (typeof SEMANTIC_TYPES)[number];
export type SemanticModifier = (typeof SEMANTIC_MODIFIERS)[number];

export interface SemanticToken {
  readonly start: number;
  readonly end: number;
  readonly type: SemanticType;
  readonly modifiers: readonly SemanticModifier[];
}

const LEXICAL: Partial<Record<TokenClass, SemanticType>> = {
  keyword: "keyword",
  comment: "comment",
  string: "string",
  number: "number",
  operator: "operator",
  builtin: "function",
  name: "variable",
  next: "variable",
};

const BY_KIND: Record<DeclKind, SemanticType> = {
  cell: "class",
  model: "class",
  fn: "function",
  fnParam: "parameter",
  input: "variable",
  state: "variable",
  param: "property",
  embed: "property",
  equation: "variable",
  next: "variable",
  dim: "typeParameter",
  modelInput: "variable",
  readout: "variable",
};

export function semanticTokens(text: string, a?: Analysis, file?: string): SemanticToken[] {
  const out: SemanticToken[] = [];
  for (const t of classifyText(text)) {
    let type = LEXICAL[t.cls];
    if (!type) continue;
    const next = t.cls === "next";
    let modifiers: SemanticModifier[] =
      t.cls === "builtin" ? ["defaultLibrary"] : next ? ["modification"] : [];
    const o =
      (t.cls === "name" || next || t.cls === "builtin") && a && file ? a.index.at(file, t.start) : undefined;
    if (o && o.span.start === t.start && o.span.end === t.end) {
      // What the name resolves to: a function of the file's may hide a built-in of the same name.
      const kind = o.sym?.kind ?? o.decl?.kind;
      modifiers = next ? ["modification"] : [];
      if (o.role === "builtin" || o.role === "initialiser") {
        type = "function";
        modifiers.push("defaultLibrary");
      } else if (o.role === "call") type = "function";
      else if (kind) type = BY_KIND[kind];
      if (o.role === "decl") modifiers.push("declaration");
      if (kind === "input" || kind === "modelInput") modifiers.push("readonly");
    }
    out.push({ start: t.start, end: t.end, type, modifiers });
  }
  return out;
}
