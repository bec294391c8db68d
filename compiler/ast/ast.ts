import type { Span } from "../diag/span.js";

/** A dimension expression in a shape: a sum of `coefficient * name` terms and a constant. */
export interface DimTermAst {
  readonly name?: string;
  readonly coeff: number;
  readonly span: Span;
}
export interface DimAst {
  readonly terms: readonly DimTermAst[];
  readonly span: Span;
}
export interface ShapeAst {
  readonly dims: readonly DimAst[];
  readonly span: Span;
}

export type Expr =
  | { readonly kind: "num"; readonly value: number; readonly span: Span }
  | { readonly kind: "name"; readonly name: string; readonly prime: boolean; readonly span: Span }
  | {
      readonly kind: "binary";
      readonly op: "+" | "-" | "*" | "/" | "@";
      readonly left: Expr;
      readonly right: Expr;
      readonly span: Span;
    }
  | { readonly kind: "neg"; readonly operand: Expr; readonly span: Span }
  | {
      readonly kind: "call";
      readonly callee: string;
      readonly calleeSpan: Span;
      readonly args: readonly Expr[];
      readonly span: Span;
    }
  | { readonly kind: "concat"; readonly items: readonly Expr[]; readonly span: Span };

export interface TensorDeclAst {
  readonly name: string;
  readonly nameSpan: Span;
  readonly shape: ShapeAst;
  readonly init?: number;
}

export type InitAst =
  | { readonly kind: "const"; readonly value: number; readonly span: Span }
  | { readonly kind: "dist"; readonly name: string; readonly args: readonly number[]; readonly span: Span };

export interface ParamDeclAst {
  readonly name: string;
  readonly nameSpan: Span;
  readonly shape: ShapeAst;
  readonly init?: InitAst;
}

export interface EquationAst {
  readonly target: string;
  readonly prime: boolean;
  readonly targetSpan: Span;
  readonly value: Expr;
  readonly span: Span;
}

export interface OutputAst {
  readonly name: string;
  readonly prime: boolean;
  readonly span: Span;
}

export interface CellAst {
  readonly name: string;
  readonly nameSpan: Span;
  readonly parent?: { readonly name: string; readonly span: Span };
  readonly inputs: readonly TensorDeclAst[];
  readonly states: readonly TensorDeclAst[];
  readonly params: readonly ParamDeclAst[];
  readonly outputs: readonly OutputAst[];
  readonly equations: readonly EquationAst[];
  readonly span: Span;
}

export interface FnAst {
  readonly name: string;
  readonly nameSpan: Span;
  readonly params: readonly { readonly name: string; readonly span: Span }[];
  readonly body: Expr;
  readonly span: Span;
}

export interface ImportAst {
  readonly path: string;
  readonly span: Span;
}

/** `input tokens : int[V]` (token ids) or `input x[D]` (features), in a model. */
export interface ModelInputAst {
  readonly name: string;
  readonly nameSpan: Span;
  readonly shape: ShapeAst;
  /** The written element type (`int`), if any. */
  readonly type?: { readonly name: string; readonly span: Span };
}

export interface ModelCellAst {
  readonly name: string;
  readonly nameSpan: Span;
  readonly options: readonly { readonly name: string; readonly span: Span; readonly value?: number }[];
  readonly span: Span;
}

export interface ReadoutAst {
  readonly target: string;
  readonly prime: boolean;
  readonly targetSpan: Span;
  /** `on last` / `on every`, as written. */
  readonly on?: { readonly word: string; readonly span: Span };
  readonly value: Expr;
  readonly span: Span;
}

export interface LossAst {
  readonly kind: string;
  readonly kindSpan: Span;
  readonly args: readonly Expr[];
  readonly span: Span;
}

/** A model: one cell wrapped in an input encoding, a readout and a loss. Lists keep repeats (reported). */
export interface ModelAst {
  readonly name: string;
  readonly nameSpan: Span;
  readonly inputs: readonly ModelInputAst[];
  readonly embeds: readonly ParamDeclAst[];
  readonly cells: readonly ModelCellAst[];
  readonly params: readonly ParamDeclAst[];
  readonly readouts: readonly ReadoutAst[];
  readonly losses: readonly LossAst[];
  readonly span: Span;
}

export interface FileAst {
  readonly file: string;
  readonly imports: readonly ImportAst[];
  readonly fns: readonly FnAst[];
  readonly cells: readonly CellAst[];
  readonly models: readonly ModelAst[];
}
