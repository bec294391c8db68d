import { CstParser } from "chevrotain";
import * as T from "./tokens.js";

/**
 * The .cell grammar: rules only, no actions. Precedence from loosest to tightest:
 * `+ -`, then `* /`, then `@`, then unary minus, then calls, names, literals, `( )` and `[ , ]`.
 */
export class CellParser extends CstParser {
  constructor(recoveryEnabled = true) {
    super(T.allTokens, { recoveryEnabled, maxLookahead: 3 });
    this.performSelfAnalysis();
  }

  file = this.RULE("file", () => {
    this.MANY(() =>
      this.OR([
        { ALT: () => this.SUBRULE(this.importDecl) },
        { ALT: () => this.SUBRULE(this.fnDecl) },
        { ALT: () => this.SUBRULE(this.cellDecl) },
        { GATE: () => this.LA(1).image === "model", ALT: () => this.SUBRULE(this.modelDecl) },
      ]),
    );
  });

  /**
   * `model NAME { ... }`. `model` and the words that open its clauses (`embed`, `readout`, `loss`, `on`) are
   * not reserved: they stay usable as names, and are recognised by where they stand.
   */
  modelDecl = this.RULE("modelDecl", () => {
    this.CONSUME(T.Ident, { LABEL: "keyword" });
    this.CONSUME1(T.Ident, { LABEL: "name" });
    this.CONSUME(T.LBrace);
    this.MANY(() => this.SUBRULE(this.member));
    this.CONSUME(T.RBrace);
  });

  importDecl = this.RULE("importDecl", () => {
    this.CONSUME(T.Import);
    this.CONSUME(T.StringLit);
  });

  fnDecl = this.RULE("fnDecl", () => {
    this.CONSUME(T.Fn);
    this.CONSUME(T.Ident);
    this.CONSUME(T.LParen);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.CONSUME1(T.Ident, { LABEL: "params" }) });
    this.CONSUME(T.RParen);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  cellDecl = this.RULE("cellDecl", () => {
    this.CONSUME(T.Cell);
    this.CONSUME(T.Ident, { LABEL: "name" });
    this.OPTION(() => {
      this.CONSUME(T.Extends);
      this.CONSUME1(T.Ident, { LABEL: "parent" });
    });
    this.CONSUME(T.LBrace);
    this.MANY(() => this.SUBRULE(this.member));
    this.CONSUME(T.RBrace);
  });

  member = this.RULE("member", () => {
    // One token of lookahead, the model clauses first and each gated on its word: a line that is no
    // clause stays an equation, so that broken cells get the messages they always got.
    this.OR({
      MAX_LOOKAHEAD: 1,
      IGNORE_AMBIGUITIES: true,
      DEF: [
        { ALT: () => this.SUBRULE(this.inputDecl) },
        { ALT: () => this.SUBRULE(this.stateDecl) },
        { ALT: () => this.SUBRULE(this.paramDecl) },
        { ALT: () => this.SUBRULE(this.outputDecl) },
        // Model clauses: parsed in cells too, so that one written in the wrong place gets a clear message.
        { ALT: () => this.SUBRULE(this.cellClause) },
        { GATE: () => this.clause("embed"), ALT: () => this.SUBRULE(this.embedDecl) },
        { GATE: () => this.clause("readout"), ALT: () => this.SUBRULE(this.readoutDecl) },
        { GATE: () => this.clause("loss"), ALT: () => this.SUBRULE(this.lossDecl) },
        { ALT: () => this.SUBRULE(this.equation) },
      ],
    });
    this.OPTION(() => this.CONSUME(T.Semi));
  });

  /** A clause word is a name like any other unless a name follows it (`loss = ...` is an equation). */
  private clause(word: string): boolean {
    return this.LA(1).image === word && this.LA(2).tokenType === T.Ident;
  }

  inputDecl = this.RULE("inputDecl", () => {
    this.CONSUME(T.Input);
    this.AT_LEAST_ONE_SEP({
      SEP: T.Comma,
      DEF: () =>
        this.OR({
          MAX_LOOKAHEAD: 1,
          IGNORE_AMBIGUITIES: true,
          DEF: [
            { GATE: () => this.LA(2).tokenType === T.Colon, ALT: () => this.SUBRULE(this.typedInput) },
            { ALT: () => this.SUBRULE(this.tensorDecl) },
          ],
        }),
    });
  });

  /** `tokens : int[V]`: token ids, in a model. */
  typedInput = this.RULE("typedInput", () => {
    this.CONSUME(T.Ident, { LABEL: "name" });
    this.CONSUME(T.Colon);
    this.CONSUME1(T.Ident, { LABEL: "type" });
    this.SUBRULE(this.shape);
  });

  /** `cell NAME, layers 2, bidirectional` in a model. */
  cellClause = this.RULE("cellClause", () => {
    this.CONSUME(T.Cell);
    this.CONSUME(T.Ident, { LABEL: "name" });
    this.MANY(() => {
      this.CONSUME(T.Comma);
      this.CONSUME1(T.Ident, { LABEL: "option" });
      this.OPTION(() => this.CONSUME(T.NumberLit, { LABEL: "value" }));
    });
  });

  /** `embed E : [V, D] ~ normal(0, 0.1)` */
  embedDecl = this.RULE("embedDecl", () => {
    this.CONSUME(T.Ident, { LABEL: "keyword" });
    this.CONSUME1(T.Ident, { LABEL: "name" });
    this.CONSUME(T.Colon);
    this.SUBRULE(this.shape);
    this.OPTION(() => this.SUBRULE(this.initialiser));
  });

  /** `readout y = expr`, or `readout on last y = expr` */
  readoutDecl = this.RULE("readoutDecl", () => {
    this.CONSUME(T.Ident, { LABEL: "keyword" });
    this.OPTION({
      GATE: () => this.LA(1).image === "on" && this.LA(2).tokenType === T.Ident,
      DEF: () => {
        this.CONSUME1(T.Ident, { LABEL: "on" });
        this.CONSUME2(T.Ident, { LABEL: "position" });
      },
    });
    this.SUBRULE(this.nameRef);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  /** `loss cross_entropy(y, target)` */
  lossDecl = this.RULE("lossDecl", () => {
    this.CONSUME(T.Ident, { LABEL: "keyword" });
    this.SUBRULE(this.call);
  });

  stateDecl = this.RULE("stateDecl", () => {
    this.CONSUME(T.State);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.tensorDecl) });
  });

  /** `name[dims]`, with an optional `= number` (a state's initial value). */
  tensorDecl = this.RULE("tensorDecl", () => {
    this.CONSUME(T.Ident);
    this.SUBRULE(this.shape);
    this.OPTION(() => {
      this.CONSUME(T.Equals);
      this.SUBRULE(this.signedNumber);
    });
  });

  paramDecl = this.RULE("paramDecl", () => {
    this.CONSUME(T.Param);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.CONSUME(T.Ident) });
    this.CONSUME(T.Colon);
    this.SUBRULE(this.shape);
    this.OPTION(() => this.SUBRULE(this.initialiser));
  });

  initialiser = this.RULE("initialiser", () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Equals);
          this.SUBRULE(this.signedNumber);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Tilde);
          this.CONSUME(T.Ident);
          this.OPTION(() => {
            this.CONSUME(T.LParen);
            this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE1(this.signedNumber) });
            this.CONSUME(T.RParen);
          });
        },
      },
    ]);
  });

  signedNumber = this.RULE("signedNumber", () => {
    this.OPTION(() => this.CONSUME(T.Minus));
    this.CONSUME(T.NumberLit);
  });

  shape = this.RULE("shape", () => {
    this.CONSUME(T.LBracket);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.dimExpr) });
    this.CONSUME(T.RBracket);
  });

  /** A sum of terms, each a dimension name, an integer, or `integer * name`. */
  dimExpr = this.RULE("dimExpr", () => {
    this.SUBRULE(this.dimTerm);
    this.MANY(() => {
      this.CONSUME(T.Plus);
      this.SUBRULE1(this.dimTerm);
    });
  });

  dimTerm = this.RULE("dimTerm", () => {
    this.OR([
      { ALT: () => this.CONSUME(T.Ident) },
      {
        ALT: () => {
          this.CONSUME(T.NumberLit);
          this.OPTION(() => {
            this.CONSUME(T.Star);
            this.CONSUME1(T.Ident);
          });
        },
      },
    ]);
  });

  outputDecl = this.RULE("outputDecl", () => {
    this.CONSUME(T.Output);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.nameRef) });
  });

  nameRef = this.RULE("nameRef", () => {
    this.CONSUME(T.Ident);
    this.OPTION(() => this.CONSUME(T.Prime));
  });

  equation = this.RULE("equation", () => {
    this.SUBRULE(this.nameRef);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  expr = this.RULE("expr", () => {
    this.SUBRULE(this.term);
    this.MANY(() => {
      this.OR([{ ALT: () => this.CONSUME(T.Plus) }, { ALT: () => this.CONSUME(T.Minus) }]);
      this.SUBRULE1(this.term);
    });
  });

  term = this.RULE("term", () => {
    this.SUBRULE(this.product);
    this.MANY(() => {
      this.OR([{ ALT: () => this.CONSUME(T.Star) }, { ALT: () => this.CONSUME(T.Slash) }]);
      this.SUBRULE1(this.product);
    });
  });

  product = this.RULE("product", () => {
    this.SUBRULE(this.unary);
    this.MANY(() => {
      this.CONSUME(T.At);
      this.SUBRULE1(this.unary);
    });
  });

  unary = this.RULE("unary", () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Minus);
          this.SUBRULE(this.unary);
        },
      },
      { ALT: () => this.SUBRULE(this.primary) },
    ]);
  });

  primary = this.RULE("primary", () => {
    this.OR([
      { ALT: () => this.CONSUME(T.NumberLit) },
      {
        GATE: () => this.LA(2).tokenType === T.LParen,
        ALT: () => this.SUBRULE(this.call),
      },
      { ALT: () => this.SUBRULE(this.nameRef) },
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.SUBRULE(this.expr);
          this.CONSUME(T.RParen);
        },
      },
      { ALT: () => this.SUBRULE(this.concat) },
    ]);
  });

  call = this.RULE("call", () => {
    this.CONSUME(T.Ident);
    this.CONSUME(T.LParen);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.expr) });
    this.CONSUME(T.RParen);
  });

  concat = this.RULE("concat", () => {
    this.CONSUME(T.LBracket);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.expr) });
    this.CONSUME(T.RBracket);
  });
}

export const parser = new CellParser();
/** Without error recovery: stops at the first error (recovery is slow on very long, very broken input). */
export const strictParser = new CellParser(false);
