import { createToken, Lexer, type TokenType } from "chevrotain";

export const WhiteSpace = createToken({ name: "WhiteSpace", pattern: /[ \t\r\n]+/, group: Lexer.SKIPPED });
export const Comment = createToken({ name: "Comment", pattern: /#[^\r\n]*/, group: Lexer.SKIPPED });

/** Names are ASCII identifiers only: this is what keeps user text out of generated code. */
export const Ident = createToken({ name: "Ident", pattern: /[A-Za-z_][A-Za-z0-9_]*/ });
const keyword = (word: string) =>
  createToken({ name: word[0]!.toUpperCase() + word.slice(1), pattern: word, longer_alt: Ident });

export const Cell = keyword("cell");
export const Extends = keyword("extends");
export const Input = keyword("input");
export const State = keyword("state");
export const Param = keyword("param");
export const Output = keyword("output");
export const Fn = keyword("fn");
export const Import = keyword("import");

export const NumberLit = createToken({ name: "NumberLit", pattern: /(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/ });
export const StringLit = createToken({ name: "StringLit", pattern: /"[^"\r\n]*"/ });

export const Prime = createToken({ name: "Prime", pattern: /'/ });
export const LBrace = createToken({ name: "LBrace", pattern: /{/ });
export const RBrace = createToken({ name: "RBrace", pattern: /}/ });
export const LParen = createToken({ name: "LParen", pattern: /\(/ });
export const RParen = createToken({ name: "RParen", pattern: /\)/ });
export const LBracket = createToken({ name: "LBracket", pattern: /\[/ });
export const RBracket = createToken({ name: "RBracket", pattern: /]/ });
export const Comma = createToken({ name: "Comma", pattern: /,/ });
export const Colon = createToken({ name: "Colon", pattern: /:/ });
export const Semi = createToken({ name: "Semi", pattern: /;/ });
export const Equals = createToken({ name: "Equals", pattern: /=/ });
export const Tilde = createToken({ name: "Tilde", pattern: /~/ });
export const Plus = createToken({ name: "Plus", pattern: /\+/ });
export const Minus = createToken({ name: "Minus", pattern: /-/ });
export const Star = createToken({ name: "Star", pattern: /\*/ });
export const Slash = createToken({ name: "Slash", pattern: /\// });
export const At = createToken({ name: "At", pattern: /@/ });

export const allTokens: TokenType[] = [
  WhiteSpace,
  Comment,
  Cell,
  Extends,
  Input,
  State,
  Param,
  Output,
  Fn,
  Import,
  Ident,
  NumberLit,
  StringLit,
  Prime,
  LBrace,
  RBrace,
  LParen,
  RParen,
  LBracket,
  RBracket,
  Comma,
  Colon,
  Semi,
  Equals,
  Tilde,
  Plus,
  Minus,
  Star,
  Slash,
  At,
];

export const cellLexer = new Lexer(allTokens, { positionTracking: "full", ensureOptimizations: false });
