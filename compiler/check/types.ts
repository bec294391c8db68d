import type { Span } from "../diag/span.js";
import type { LeafRole } from "../ir/graph.js";
import type { OpKind } from "../ops/ops.js";
import type { Dim, Type } from "../../artifact/shape.js";
import type { InitSpec } from "../../artifact/init.js";
export type { InitSpec };

/** A checked, typed expression: names resolved, user functions inlined, sugar expanded into primitives. */
export type TExpr = { readonly type: Type; readonly span: Span } & (
  | { readonly k: "const"; readonly value: number }
  | { readonly k: "dim"; readonly dim: Dim }
  | { readonly k: "leaf"; readonly role: LeafRole; readonly name: string }
  | { readonly k: "ref"; readonly key: string } // an equation: `i` or `h'`
  | { readonly k: "op"; readonly op: OpKind; readonly args: readonly TExpr[] }
  | { readonly k: "matvec"; readonly weight: string; readonly weightType: Type; readonly arg: TExpr }
  | { readonly k: "concat"; readonly items: readonly TExpr[] }
);

export interface CheckedCell {
  readonly name: string;
  readonly span: Span;
  readonly dims: readonly string[];
  readonly inputs: readonly { readonly name: string; readonly type: Type; readonly span: Span }[];
  readonly states: readonly {
    readonly name: string;
    readonly type: Type;
    readonly init: number;
    readonly span: Span;
  }[];
  readonly params: readonly {
    readonly name: string;
    readonly type: Type;
    readonly init: InitSpec;
    readonly span: Span;
  }[];
  /** Parameters the cell itself declares but no output uses (W001). */
  readonly unusedParams?: readonly string[];
  /** Reachable equations in dependency order, keyed `i` or `h'`. */
  readonly equations: ReadonlyMap<string, TExpr>;
  readonly outputs: readonly { readonly name: string; readonly expr: TExpr }[];
}
