// The language service: what an editor asks about a .cell program, as pure functions of the source texts
// (a SourceHost) and byte offsets. The language server (cli/lsp.ts) turns offsets into line and column,
// and file names into URIs; the playground uses the token classes and the formatter.
export { Analysis, fileDiagnostics, type FileDiagnostic } from "./analysis.js";
export { codeFixes, type CodeFix } from "./actions.js";
export { complete, type Completion, type CompletionKind, type CompletionResult } from "./complete.js";
export { builtinDoc, initialiserDoc } from "./docs.js";
export { hover, type HoverResult } from "./hover.js";
export {
  definition,
  documentSymbols,
  prepareRename,
  references,
  rename,
  type OutlineSymbol,
  type PrepareRename,
  type RenameResult,
} from "./navigate.js";
export { LineIndex, type Position } from "./positions.js";
export {
  SEMANTIC_MODIFIERS,
  SEMANTIC_TYPES,
  semanticTokens,
  type SemanticModifier,
  type SemanticToken,
  type SemanticType,
} from "./semantic.js";
export { SymbolIndex, type Decl, type DeclKind, type Occurrence, type Sym } from "./symbols.js";
export {
  classifyAt,
  classifyLine,
  classifyText,
  KEYWORDS,
  type ClassifiedToken,
  type TokenClass,
} from "./tokens.js";
