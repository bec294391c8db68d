import type * as A from "../ast/ast.js";
import { checkCell, initSpec, shapeType } from "../check/check.js";
import type { Program } from "../check/program.js";
import type { CheckedCell, InitSpec } from "../check/types.js";
import { didYouMean, type DiagnosticBag, type RelatedNote } from "../diag/diagnostic.js";
import type { Span } from "../diag/span.js";
import { dimEq, printType, type Dim, type Type } from "../../artifact/shape.js";
import { LOSS_KINDS, MAX_LAYERS, type LossKind } from "../../artifact/network.js";
export { MAX_LAYERS };

/** A checked model: the cell it wraps, and its readout as a stateless cell of its own. */
export interface CheckedModel {
  readonly name: string;
  /** false for a default model made by the compiler (see compiler/network/compile.ts). */
  readonly declared?: boolean;
  readonly span: Span;
  readonly input: {
    readonly name: string;
    readonly kind: "real" | "tokens";
    readonly type: Type;
    readonly span: Span;
  };
  readonly embed?: {
    readonly name: string;
    readonly type: Type;
    readonly init: InitSpec;
    readonly span: Span;
  };
  readonly cell: CheckedCell;
  readonly layers: number;
  readonly bidirectional: boolean;
  /** Input: the cell's first output (both directions when bidirectional); output: the readout's value. */
  readonly readout: CheckedCell;
  readonly on: "last" | "every";
  readonly loss: LossKind;
}

const OPTIONS = ["layers", "bidirectional"];

/**
 * Checks one model. `cellOf` gives the checked cell of a name (undefined when it has errors, which were
 * reported where it was checked). Returns nothing when the model has errors.
 */
export function checkModel(
  program: Program,
  ast: A.ModelAst,
  bag: DiagnosticBag,
  cellOf: (name: string) => CheckedCell | undefined,
): CheckedModel | undefined {
  const errorsBefore = errorCount(bag);
  const one = <T extends { span?: Span; nameSpan?: Span }>(
    list: readonly T[],
    clause: string,
    required: boolean,
  ): T | undefined => {
    if (list.length === 0 && required) bag.report("E073", ast.nameSpan, { name: ast.name, clause });
    if (list.length > 1) {
      const first = list[0]!;
      const at = (x: T) => (x.nameSpan ?? x.span)!;
      bag.report("E074", at(list[1]!), { name: ast.name, clause }, [
        { message: "the first one is here", span: at(first) },
      ]);
    }
    return list[0];
  };
  const inputAst = one(ast.inputs, "'input'", true);
  const embedAst = one(ast.embeds, "'embed'", false);
  const cellAst = one(ast.cells, "'cell'", true);
  const readoutAst = one(ast.readouts, "'readout'", true);
  const lossAst = one(ast.losses, "'loss'", true);

  // An option in error (a misspelt `bidirectional`) leaves the readout's input size unknown: the readout
  // is then not checked, rather than checked against a guess.
  const errorsBeforeCell = errorCount(bag);
  const { layers, bidirectional } = cellAst ? options(cellAst, bag) : { layers: 1, bidirectional: false };
  let cell: CheckedCell | undefined;
  if (cellAst) {
    if (!program.cells.has(cellAst.name))
      bag.report("E075", cellAst.nameSpan, {
        name: ast.name,
        cell: cellAst.name,
        hint: didYouMean(cellAst.name, program.cells.keys()),
      });
    else {
      cell = cellOf(cellAst.name);
      if (cell) usable(cell, cellAst, layers, bidirectional, bag);
    }
  }

  // Model names must not shadow the cell's: parameters of both end up in one table.
  if (cell && cellAst) {
    const cellParams = new Set(cell.params.map((p) => p.name));
    const outName = cell.outputs[0]?.name;
    for (const p of [...ast.params, ...ast.embeds]) {
      if (cellParams.has(p.name))
        bag.report(
          "E087",
          p.nameSpan,
          { name: p.name, what: `a parameter of cell '${cell.name}'`, kind: "a model's parameters" },
          [{ message: "the cell declares it here", span: cell.params.find((q) => q.name === p.name)!.span }],
        );
      else if (p.name === outName)
        bag.report("E087", p.nameSpan, {
          name: p.name,
          what: `the output of cell '${cell.name}', which the readout reads`,
          kind: "a model's parameters",
        });
    }
    for (const e of ast.embeds)
      for (const p of ast.params)
        if (p.name === e.name)
          bag.report("E013", p.nameSpan, { name: p.name }, [
            { message: "first declared here", span: e.nameSpan },
          ]);
    if (readoutAst && readoutAst.target === outName)
      bag.report("E087", readoutAst.targetSpan, {
        name: readoutAst.target,
        what: `the output of cell '${cell.name}', which the readout reads`,
        kind: "a readout's value and the cell's output",
      });
  }

  // The readout: a stateless cell over the cell's first output, checked by the cell checker itself.
  let readout: CheckedCell | undefined;
  if (readoutAst && cell && cellAst && errorCount(bag) === errorsBeforeCell) {
    const primed = primes(readoutAst.value);
    if (readoutAst.prime || primed.length) {
      const at = readoutAst.prime ? readoutAst.targetSpan : primed[0]!.span;
      const name = readoutAst.prime ? readoutAst.target : primed[0]!.name;
      bag.report("E083", at, { name }, [
        { message: `a readout computes from this step's cell output: write ${name} without '` },
      ]);
    } else readout = checkReadout(program, ast, readoutAst, cell, cellAst, bidirectional, bag);
  }

  // The input and its encoding.
  let input: CheckedModel["input"] | undefined;
  if (inputAst) {
    const tokens = inputAst.type !== undefined;
    if (inputAst.type && inputAst.type.name !== "int")
      bag.report(
        "E082",
        inputAst.type.span,
        { name: inputAst.type.name, hint: didYouMean(inputAst.type.name, ["int"]) },
        [{ message: "write `name : int[V]` for token ids, or `name[D]` for features" }],
      );
    const type = shapeType(inputAst.shape, 1, inputAst.name, true, bag);
    input = { name: inputAst.name, kind: tokens ? "tokens" : "real", type, span: inputAst.nameSpan };
  }
  let embed: CheckedModel["embed"] | undefined;
  if (embedAst) {
    const type = shapeType(embedAst.shape, 2, embedAst.name, false, bag);
    const init = initSpec(embedAst, bag);
    if (type.dims.length !== 2)
      bag.report("E079", embedAst.shape.span, {
        what: `embedding '${embedAst.name}'`,
        actual: printType(type),
        cell: cellAst?.name ?? "?",
        expected: "[V, D]: one row per token",
      });
    embed = { name: embedAst.name, type, init, span: embedAst.nameSpan };
  }
  if (input?.kind === "tokens" && !embed && inputAst)
    bag.report("E080", inputAst.nameSpan, { name: input.name }, [
      { message: `add an embedding: embed E : [${show(input.type.dims[0])}, D] ~ normal(0, 0.1)` },
    ]);
  if (embed && input?.kind === "real")
    bag.report("E081", embed.span, { name: embed.name }, [
      { message: `'${input.name}' is a feature vector`, span: input.span },
    ]);

  const cellIn = cell?.inputs[0]?.type.dims[0];
  if (cell && cellAst && cellIn && input) {
    if (input.kind === "real" && !sameDims(input.type, [cellIn]))
      bag.report(
        "E079",
        input.span,
        {
          what: `input '${input.name}'`,
          actual: printType(input.type),
          cell: cell.name,
          expected: `[${show(cellIn)}]`,
        },
        [{ message: `'${cell.inputs[0]!.name}' is declared here`, span: cell.inputs[0]!.span }],
      );
    if (input.kind === "tokens" && embed && embed.type.dims.length === 2) {
      const [V, D] = embed.type.dims as [Dim, Dim];
      if (input.type.dims.length !== 1 || !dimEq(input.type.dims[0]!, V))
        bag.report(
          "E079",
          embed.span,
          {
            what: `embedding '${embed.name}' ${printType(embed.type)}`,
            actual: `for ${printType({ dims: [V], batched: false })} tokens`,
            cell: cell.name,
            expected: `tokens ${printType(input.type)} (its first dimension must be the input's)`,
          },
          [{ message: `'${input.name}' is declared here`, span: input.span }],
        );
      else if (!dimEq(D, cellIn))
        bag.report(
          "E079",
          embed.span,
          {
            what: `embedding '${embed.name}' ${printType(embed.type)}: its rows`,
            actual: printType({ dims: [D], batched: false }),
            cell: cell.name,
            expected: `[${show(cellIn)}]`,
          },
          [{ message: `'${cell.inputs[0]!.name}' is declared here`, span: cell.inputs[0]!.span }],
        );
    }
  }

  const on = readoutAst?.on?.word ?? "every";
  if (readoutAst?.on && on !== "last" && on !== "every") bag.report("E086", readoutAst.on.span, { word: on });
  const loss = lossAst && readoutAst ? checkLoss(lossAst, readoutAst.target, bag) : undefined;

  if (errorCount(bag) > errorsBefore || !cell || !readout || !input || !loss) return undefined;
  return {
    name: ast.name,
    span: ast.span,
    input,
    embed,
    cell,
    layers,
    bidirectional,
    readout,
    on: on as "last" | "every",
    loss,
  };
}

function errorCount(bag: DiagnosticBag): number {
  return bag.items.filter((d) => d.severity === "error").length;
}

const show = (d: Dim | undefined) => (d ? printType({ dims: [d], batched: false }).slice(1, -1) : "?");

function sameDims(t: Type, dims: readonly Dim[]): boolean {
  return t.dims.length === dims.length && t.dims.every((d, i) => dimEq(d, dims[i]!));
}

function options(c: A.ModelCellAst, bag: DiagnosticBag): { layers: number; bidirectional: boolean } {
  let layers = 1;
  let bidirectional = false;
  const seen = new Map<string, Span>();
  for (const o of c.options) {
    if (!OPTIONS.includes(o.name)) {
      bag.report("E076", o.span, { name: o.name, hint: didYouMean(o.name, OPTIONS) }, [
        { message: "a model's cell takes: layers N, bidirectional" },
      ]);
      continue;
    }
    const prev = seen.get(o.name);
    if (prev) {
      bag.report("E077", o.span, { name: o.name, detail: "is given twice" }, [
        { message: "first given here", span: prev },
      ]);
      continue;
    }
    seen.set(o.name, o.span);
    if (o.name === "bidirectional") {
      if (o.value !== undefined) bag.report("E077", o.span, { name: o.name, detail: "takes no value" });
      bidirectional = true;
    } else if (o.value === undefined || !Number.isInteger(o.value) || o.value < 1 || o.value > MAX_LAYERS)
      bag.report("E077", o.span, {
        name: o.name,
        detail: `takes a whole number of layers from 1 to ${MAX_LAYERS}, found ${o.value ?? "none"}`,
      });
    else layers = o.value;
  }
  return { layers, bidirectional };
}

/** What the runtime needs of a cell it stacks and reads out (runtime/model.ts checks the same). */
function usable(
  cell: CheckedCell,
  c: A.ModelCellAst,
  layers: number,
  bidi: boolean,
  bag: DiagnosticBag,
): void {
  const refuse = (reason: string, notes: RelatedNote[] = []) =>
    bag.report("E078", c.nameSpan, { cell: cell.name, reason }, [
      { message: `'${cell.name}' is defined here`, span: cell.span },
      ...notes,
    ]);
  if (cell.inputs.length !== 1 || cell.inputs[0]!.type.dims.length !== 1)
    return refuse(`a model feeds one input vector per step; '${cell.name}' has ${cell.inputs.length} inputs`);
  if (cell.outputs[0]!.expr.type.dims.length !== 1)
    return refuse("its first output, which the readout reads, is not a vector");
  if (layers > 1 && cell.outputs.length !== 1)
    return refuse(`stacking layers needs one output; it has ${cell.outputs.length}`);
  if ((layers > 1 || bidi) && cell.outputs.some((o) => o.expr.type.dims.length !== 1))
    refuse("stacked or bidirectional cells need vector outputs");
}

/** Primed names in an expression (a readout has no states to read the next value of). */
function primes(e: A.Expr): { name: string; span: Span }[] {
  const out: { name: string; span: Span }[] = [];
  const stack: A.Expr[] = [e];
  while (stack.length) {
    const x = stack.pop()!;
    if (x.kind === "name" && x.prime) out.push({ name: x.name, span: x.span });
    else if (x.kind === "binary") stack.push(x.right, x.left);
    else if (x.kind === "neg") stack.push(x.operand);
    else if (x.kind === "call") stack.push(...[...x.args].reverse());
    else if (x.kind === "concat") stack.push(...[...x.items].reverse());
  }
  return out;
}

/** The name the readout cell has: not an identifier, so it never collides with a user's cell. */
export const readoutCellName = (model: string) => `${model}.readout`;

function checkReadout(
  program: Program,
  model: A.ModelAst,
  r: A.ReadoutAst,
  cell: CheckedCell,
  c: A.ModelCellAst,
  bidi: boolean,
  bag: DiagnosticBag,
): CheckedCell | undefined {
  const out = cell.outputs[0]!;
  const dirs = bidi ? 2 : 1;
  const d = out.expr.type.dims[0]!;
  const terms: A.DimTermAst[] = Object.entries(d.terms).map(([name, k]) => ({
    name,
    coeff: k * dirs,
    span: c.nameSpan,
  }));
  if (d.c !== 0 || terms.length === 0) terms.push({ coeff: d.c * dirs, span: c.nameSpan });
  const shape: A.ShapeAst = { dims: [{ terms, span: c.nameSpan }], span: c.nameSpan };
  const name = readoutCellName(model.name);
  const ast: A.CellAst = {
    name,
    nameSpan: model.nameSpan,
    inputs: [{ name: out.name, nameSpan: c.nameSpan, shape }],
    states: [],
    params: model.params,
    outputs: [{ name: r.target, prime: false, span: r.targetSpan }],
    equations: [{ target: r.target, prime: false, targetSpan: r.targetSpan, value: r.value, span: r.span }],
    span: model.span,
  };
  const cells = new Map(program.cells);
  cells.set(name, ast);
  const from = bag.items.length;
  const checked = checkCell({ ...program, cells }, name, bag);
  // Say what a readout can read, where the cell checker's message alone would puzzle.
  const inputType = printType({ dims: [shapeDim(d, dirs)], batched: false });
  for (let i = from; i < bag.items.length; i++) {
    const x = bag.items[i]!;
    const extra: RelatedNote[] = [];
    if (x.code === "E010")
      extra.push({
        message: `a readout reads the output '${out.name}' ${inputType} of cell '${cell.name}' and the model's parameters`,
      });
    if (x.code === "E041" && bidi)
      extra.push({ message: `bidirectional: '${out.name}' is both directions concatenated, ${inputType}` });
    if (x.code === "W003")
      extra.push({ message: `the readout never reads '${out.name}', the output of cell '${cell.name}'` });
    if (extra.length) bag.items[i] = { ...x, notes: [...x.notes, ...extra] };
  }
  if (!checked) return undefined;
  const y = checked.outputs[0]!;
  if (y.expr.type.dims.length !== 1) {
    bag.report("E088", r.targetSpan, {
      name: r.target,
      found: y.expr.type.dims.length === 0 ? "a scalar" : printType(y.expr.type),
    });
    return undefined;
  }
  return checked;
}

function shapeDim(d: Dim, k: number): Dim {
  const terms: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const [n, v] of Object.entries(d.terms)) terms[n] = v * k;
  return { terms, c: d.c * k };
}

function checkLoss(l: A.LossAst, readout: string, bag: DiagnosticBag): LossKind | undefined {
  if (!(LOSS_KINDS as readonly string[]).includes(l.kind)) {
    bag.report("E084", l.kindSpan, { name: l.kind, hint: didYouMean(l.kind, LOSS_KINDS) }, [
      { message: `the losses are ${LOSS_KINDS.join(", ")}` },
    ]);
    return undefined;
  }
  const bad = (detail: string, span: Span) => {
    bag.report("E085", span, { name: l.kind, readout, detail });
    return undefined;
  };
  if (l.args.length !== 2) return bad(`found ${l.args.length} argument(s)`, l.span);
  const [a, b] = l.args as [A.Expr, A.Expr];
  if (a.kind !== "name" || a.prime || a.name !== readout)
    return bad(`the first argument must be the readout '${readout}'`, a.span);
  if (b.kind !== "name" || b.prime || b.name !== "target")
    return bad("the second argument must be 'target', the task's targets", b.span);
  return l.kind as LossKind;
}
