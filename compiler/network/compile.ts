// A whole network compiled into one artifact: a file's declared model, or a cell in the default model of
// its data (an embedding when the inputs are token ids, the cell stacked in layers and directions, the
// readout `y = Wy @ h + by` on the last or every step, the data's loss). The default model is a model
// AST made here and checked like a written one, so both are one path: the readout is a stateless cell
// compiled by the same pipeline as the cell, never source text.
import type { ModelAst, ParamDeclAst, ShapeAst, Expr } from "../ast/ast.js";
import type { SourceHost } from "../check/program.js";
import type { CheckedCell } from "../check/types.js";
import { checkCompileArgs, compileIR, type Target } from "../compile.js";
import { diag, DiagnosticBag, hasErrors, sortDiagnostics, type Diagnostic } from "../diag/diagnostic.js";
import type { SourceMap } from "../diag/span.js";
import { buildCellIR, checkProgram, selectCell, selectModel, type CompileResult } from "../driver.js";
import { checkModel, type CheckedModel } from "../model/check.js";
import { lossKernels } from "./loss.js";
import { optimKernels } from "./optim.js";
import {
  layerParamName,
  type LossKind,
  type NetworkArtifact,
  type NetworkParam,
  type OptimName,
} from "../../artifact/network.js";
import type { Signature } from "../../artifact/schedule.js";
import { evalDim, printDim, type Dim } from "../../artifact/shape.js";
import { checkDims, resolveShape, sizesOf, stackSizes } from "../../artifact/sizes.js";
import { CellcError } from "../../artifact/tensor.js";

/** What a network's data says about its two ends (a built-in task's or a data file's TaskInfo fits it). */
export interface DataShape {
  /** For messages: the task's name, or the data file's. */
  readonly name: string;
  readonly inputKind: "real" | "tokens";
  /** Features per step, or the vocabulary size for token ids. */
  readonly inputSize: number;
  /** Output features (classes for class targets). */
  readonly outputSize: number;
  readonly on: "last" | "every";
  readonly loss: LossKind;
  /** Class names, when the data has them (`chars`: its characters). */
  readonly vocab?: string;
}

/** Which network of a file: a declared model, or a cell in the default model. */
export interface NetworkChoice {
  /** A cell, in the default model, even where the file declares models. */
  readonly cell?: string;
  /** Which declared model. */
  readonly model?: string;
  /** The default model's stack (a declared model says its own). */
  readonly layers?: number;
  readonly bidirectional?: boolean;
}

export interface NetworkOptions {
  readonly file?: string;
  readonly host?: SourceHost;
  readonly choice?: NetworkChoice;
  /** The data the network is for: it gives the input and output sizes and must fit the model's loss and
   * readout. Without it (a declared model only), `dims` gives every size. */
  readonly data?: DataShape;
  /** Sizes the data does not give (H, 32 by default, and any other dimension of the cell). */
  readonly dims?: Readonly<Record<string, number>>;
  readonly optimizer?: OptimName;
  readonly targets?: readonly Target[];
  /** How the caller names a cell, for the error when several and none is named (the `cell` option). */
  readonly howToChoose?: string;
}

export interface NetworkOutput {
  readonly diagnostics: readonly Diagnostic[];
  readonly sources: SourceMap;
  readonly artifact?: NetworkArtifact;
  /** The checked model (declared or default), for tools that read it. */
  readonly model?: CheckedModel;
}

/**
 * Compiles the network of `source` (read through `host` when undefined) for `data`. Diagnostics are
 * located problems in the file; a network that does not fit its data (the sizes, the loss, where it
 * reads out) is a CellcError that says why.
 */
export function compileNetwork(source: string | undefined, opts: NetworkOptions): NetworkOutput {
  checkCompileArgs(source ?? "", opts, "compileNetwork");
  if (opts.dims !== undefined) checkDims(opts.dims, "compileNetwork()'s option 'dims'");
  const host = opts.host ?? {
    read: (p: string) => {
      throw new Error(`no source host to read '${p}'`);
    },
  };
  const file = opts.file ?? "input.cell";
  const choice = opts.choice ?? {};
  const r = checkProgram(file, host, source);
  const sources = r.program.sources;
  if (hasErrors(r.diagnostics)) return { diagnostics: r.diagnostics, sources };
  const useModel = choice.model !== undefined || (choice.cell === undefined && r.modelNames.length > 0);
  let model: CheckedModel | undefined;
  let diagnostics: Diagnostic[];
  if (useModel) {
    const sel = selectModel(r, choice.model, "pass the `model` option to choose one");
    diagnostics = [...r.diagnostics, ...sel.diagnostics];
    model = sel.model;
    if (model && (choice.layers !== undefined || choice.bidirectional))
      throw new CellcError("layers and bidirectional belong to the cell line of a declared model");
  } else {
    const sel = selectCell(r, choice.cell, opts.howToChoose ?? "pass the `cell` option to choose one");
    diagnostics = [...r.diagnostics, ...sel.diagnostics];
    if (sel.cell) {
      if (!opts.data)
        throw new CellcError(`a cell's network is its data's default model: give the data's shape`);
      const d = defaultModel(r, sel.cell, opts.data, choice, withHidden(opts.dims, sel.cell.dims));
      diagnostics.push(...d.diagnostics);
      model = d.model;
    }
  }
  if (!model || hasErrors(diagnostics)) return { diagnostics, sources };
  const dims = bindData(model, opts.data, withHidden(opts.dims, model.cell.dims));
  const missing = model.embed?.type.dims
    .flatMap((d) => Object.keys(d.terms))
    .find((n) => dims[n] === undefined);
  if (missing) {
    const e = model.embed!;
    diagnostics.push(
      diag("E090", e.span, { name: missing, of: e.name, hint: "" }, [
        {
          message: `give the vocabulary size, e.g. dims ${missing}=64 (the embedding is [${e.type.dims.map(printDim).join(", ")}])`,
        },
      ]),
    );
    return { diagnostics, sources, model };
  }
  const artifact = buildNetwork(model, opts.data, dims, opts.optimizer ?? "adam", opts.targets);
  return { diagnostics, sources, artifact, model };
}

/** The hidden size a network gets where none is given, when its cell has a dimension H. */
export const DEFAULT_HIDDEN = 32;

function withHidden(given: Readonly<Record<string, number>> | undefined, cellDims: readonly string[]) {
  const dims = sizesOf(given);
  if (cellDims.includes("H")) dims.H ??= DEFAULT_HIDDEN;
  return dims;
}

/** The sizes of a model's dimension names: the given ones, and its input and output sizes from the data. */
function bindData(m: CheckedModel, data: DataShape | undefined, given: Readonly<Record<string, number>>) {
  const out = sizesOf(given);
  if (!data) return out;
  const bind = (d: Dim | undefined, size: number, what: string) => {
    const names = d ? Object.keys(d.terms) : [];
    if (!d || names.length !== 1 || d.c !== 0 || d.terms[names[0]!] !== 1) return;
    const n = names[0]!;
    if (out[n] !== undefined && out[n] !== size)
      throw new CellcError(`'${data.name}' has ${size} ${what}, but ${n} = ${out[n]} was given`);
    out[n] = size;
  };
  const tokens = m.input.kind === "tokens";
  if (!tokens && data.inputKind === "tokens")
    throw new CellcError(
      `model '${m.name}' reads real features, but '${data.name}' gives token ids: declare \`input ${m.input.name} : int[V]\` and an embedding`,
    );
  bind(m.input.type.dims[0], data.inputSize, tokens ? "symbols" : "input features");
  bind(m.readout.outputs[0]?.expr.type.dims[0], data.outputSize, "outputs");
  const where = (on: string) => (on === "last" ? "on the last step" : "at every step");
  if (m.on !== data.on)
    throw new CellcError(
      `model '${m.name}' reads out ${where(m.on)}, but '${data.name}' has its target ${where(data.on)}: write \`readout on ${data.on} ...\``,
    );
  const classes = data.loss === "cross_entropy";
  if (classes !== (m.loss === "cross_entropy"))
    throw new CellcError(
      `model '${m.name}' uses ${m.loss}, but '${data.name}' has ${classes ? "class ids (use cross_entropy)" : "real targets"}`,
    );
  return out;
}

function buildNetwork(
  m: CheckedModel,
  data: DataShape | undefined,
  dims: Readonly<Record<string, number>>,
  optimizer: OptimName,
  targets: readonly Target[] | undefined,
): NetworkArtifact {
  const cellIR = buildCellIR(m.cell);
  const readoutIR = buildCellIR(m.readout);
  const cell = compileIR(cellIR, targets).artifact;
  const readout = compileIR(readoutIR, targets).artifact;
  const dirs = m.bidirectional ? 2 : 1;
  const sig = cell.signature;
  const need = (d: Dim, what: string) => {
    for (const n of Object.keys(d.terms))
      if (dims[n] === undefined)
        throw new CellcError(`dimension ${n} of ${what} has no size: give it (dims ${n}=32)`);
  };
  for (const d of sig.inputs[0]!.type.dims) need(d, `input '${sig.inputs[0]!.name}' of '${sig.name}'`);
  const sizes = stackSizes(sig, dims, m.layers, dirs);
  const inputSize =
    m.input.kind === "tokens"
      ? evalDim(m.embed!.type.dims[0]!, dims)
      : evalDim(sig.inputs[0]!.type.dims[0]!, sizes[0]!);
  const params: NetworkParam[] = [];
  const add = (
    p: Omit<NetworkParam, "shape">,
    type: Signature["params"][number]["type"],
    at: Record<string, number>,
  ) => params.push({ ...p, shape: resolveShape(type, at, `parameter '${p.name}'`) });
  let embed: NetworkArtifact["embed"];
  if (m.embed) {
    const [V, D] = [m.embed.type.dims[0]!, m.embed.type.dims[1]!];
    need(V, `embedding '${m.embed.name}'`);
    need(D, `embedding '${m.embed.name}'`);
    embed = { param: m.embed.name, V: evalDim(V, dims), D: evalDim(D, dims) };
    params.push({
      name: m.embed.name,
      part: "embed",
      layer: 0,
      direction: 0,
      index: 0,
      shape: [embed.V, embed.D],
      init: m.embed.init,
    });
  }
  const prefixed = m.layers > 1 || dirs > 1;
  sizes.forEach((at, layer) => {
    for (const [what, ds] of [
      ["parameter", sig.params],
      ["state", sig.states],
      ["output", sig.outputs],
    ] as const)
      for (const x of ds) for (const d of x.type.dims) need(d, `${what} '${x.name}' of '${sig.name}'`);
    for (let direction = 0; direction < dirs; direction++)
      sig.params.forEach((p, index) =>
        add(
          {
            name: layerParamName(prefixed, layer, direction, p.name),
            part: "cell",
            layer,
            direction,
            index,
            init: p.init,
          },
          p.type,
          at,
        ),
      );
  });
  const out = sig.outputs[0]!;
  const features = evalDim(out.type.dims[0]!, sizes[m.layers - 1]!) * dirs;
  // The readout's sizes: its own names (O, K) and the cell's, of the last layer.
  const readoutSizes = sizesOf({ ...dims, ...sizes[m.layers - 1]! });
  for (const p of readout.signature.params)
    for (const d of p.type.dims) need(d, `parameter '${p.name}' of the readout`);
  readout.signature.params.forEach((p, index) =>
    add({ name: p.name, part: "readout", layer: 0, direction: 0, index, init: p.init }, p.type, readoutSizes),
  );
  const rIn = evalDim(readout.signature.inputs[0]!.type.dims[0]!, readoutSizes);
  if (rIn !== features)
    throw new CellcError(
      `the readout of '${m.name}' reads ${rIn} features, but the cell gives ${features} per step`,
    );
  for (const d of readout.signature.outputs[0]!.type.dims) need(d, `the readout's output`);
  const outputSize = evalDim(readout.signature.outputs[0]!.type.dims[0]!, readoutSizes);
  return {
    format: "cellc-network",
    version: 1,
    name: m.name,
    ...(m.declared !== false ? { model: m.name } : {}),
    input: { name: m.input.name, kind: m.input.kind, size: inputSize },
    ...(embed ? { embed } : {}),
    cell,
    layers: m.layers,
    bidirectional: m.bidirectional,
    sizes,
    features,
    readout,
    readoutSizes,
    outputSize,
    on: m.on,
    loss: { kind: m.loss, ...lossKernels(m.loss) },
    optimizer: { kind: optimizer, ...optimKernels(optimizer) },
    params,
    ...(data?.vocab !== undefined && data.loss === "cross_entropy" ? { classes: [...data.vocab] } : {}),
  };
}

/**
 * The default model of a cell for its data, as a model AST checked like a written one (its spans point at
 * the cell): `input x[D]` (or token ids through an embedding `E : [V, D] ~ normal(0, 0.1)`), the cell,
 * `Wy : [O, F]` and `by : [O]` initialised as nn.Linear (U(-1/sqrt(F), 1/sqrt(F))), the readout `y = Wy @
 * h + by` on the data's steps, and the data's loss.
 */
function defaultModel(
  r: CompileResult,
  cell: CheckedCell,
  data: DataShape,
  choice: NetworkChoice,
  given: Readonly<Record<string, number>>,
): { model?: CheckedModel; diagnostics: Diagnostic[] } {
  const at = cell.span;
  if (cell.inputs.length !== 1)
    throw new CellcError(
      `the default model feeds one input, but '${cell.name}' has ${cell.inputs.length}: declare a model`,
    );
  const inp = cell.inputs[0]!;
  if (inp.type.dims.length !== 1)
    throw new CellcError(`the default model feeds a vector, but input '${inp.name}' is not one`);
  const d = inp.type.dims[0]!;
  const names = Object.keys(d.terms);
  const tokens = data.inputKind === "tokens";
  if (!tokens && (names.length !== 1 || d.c !== 0 || d.terms[names[0]!] !== 1))
    throw new CellcError(
      `input '${inp.name}' has size ${printDim(d)}; the default model needs a single name`,
    );
  if (tokens && names.some((n) => given[n] === undefined))
    throw new CellcError(
      `'${data.name}' gives token ids, and cell '${cell.name}' reads feature vectors: it needs an embedding. Give the embedding's width (dims ${names.join(", ")}), or declare a model with \`input tokens : int[V]\` and \`embed E : [V, ${printDim(d)}]\``,
    );
  const out = cell.outputs[0];
  if (!out) throw new CellcError(`'${cell.name}' has no output to read out`);
  if (out.expr.type.dims.length !== 1)
    throw new CellcError(
      `the readout reads a vector, but output '${out.name}' of '${cell.name}' has shape [${out.expr.type.dims.map(printDim).join(", ")}]`,
    );
  const dirs = choice.bidirectional ? 2 : 1;
  // Sizes to initialise the readout: the cell's, with its input bound to the data's.
  const sizes = sizesOf(given);
  if (!tokens) sizes[names[0]!] ??= data.inputSize;
  const fresh = (base: string) => {
    let n = base;
    while (cell.dims.includes(n)) n += "_";
    return n;
  };
  const O = fresh("O");
  const V = fresh("V");
  // The model's own names (Wy, by, E, y), renamed where the cell has one already (`output y`, `param E`).
  const taken = new Set([
    ...cell.params.map((p) => p.name),
    ...cell.inputs.map((p) => p.name),
    ...cell.states.map((p) => p.name),
    ...cell.outputs.map((p) => p.name),
    ...cell.equations.keys(),
  ]);
  const own = (base: string) => {
    let n = base;
    while (taken.has(n)) n += "_";
    taken.add(n);
    return n;
  };
  const [Wy, by, E, y] = [own("Wy"), own("by"), own("E"), own("y")];
  for (const n of Object.keys(out.expr.type.dims[0]!.terms))
    if (sizes[n] === undefined)
      throw new CellcError(
        `dimension ${n} of output '${out.name}' is not known: give its size (dims ${n}=32)`,
      );
  const F = evalDim(out.expr.type.dims[0]!, sizes) * dirs;
  const a = 1 / Math.sqrt(F);
  const shape = (...dims: Dim[]): ShapeAst => ({
    dims: dims.map((x) => ({
      terms: [
        ...Object.entries(x.terms).map(([name, coeff]) => ({ name, coeff, span: at })),
        ...(x.c !== 0 || Object.keys(x.terms).length === 0 ? [{ coeff: x.c, span: at }] : []),
      ],
      span: at,
    })),
    span: at,
  });
  const named = (n: string): Dim => ({ terms: { [n]: 1 }, c: 0 });
  const outDim = out.expr.type.dims[0]!;
  const F_dim: Dim = {
    terms: Object.fromEntries(Object.entries(outDim.terms).map(([k, v]) => [k, v * dirs])),
    c: outDim.c * dirs,
  };
  const uniform = { kind: "dist" as const, name: "uniform", args: [-a, a], span: at };
  const param = (name: string, s: ShapeAst): ParamDeclAst => ({
    name,
    nameSpan: at,
    shape: s,
    init: uniform,
  });
  const ref = (name: string): Expr => ({ kind: "name", name, prime: false, span: at });
  const value: Expr = {
    kind: "binary",
    op: "+",
    left: { kind: "binary", op: "@", left: ref(Wy), right: ref(out.name), span: at },
    right: ref(by),
    span: at,
  };
  const ast: ModelAst = {
    name: cell.name,
    nameSpan: at,
    inputs: [
      tokens
        ? { name: inp.name, nameSpan: at, shape: shape(named(V)), type: { name: "int", span: at } }
        : { name: inp.name, nameSpan: at, shape: shape(d) },
    ],
    embeds: tokens
      ? [
          {
            name: E,
            nameSpan: at,
            shape: shape(named(V), d),
            init: { kind: "dist", name: "normal", args: [0, 0.1], span: at },
          },
        ]
      : [],
    cells: [
      {
        name: cell.name,
        nameSpan: at,
        options: [
          ...(choice.layers !== undefined ? [{ name: "layers", span: at, value: choice.layers }] : []),
          ...(choice.bidirectional ? [{ name: "bidirectional", span: at }] : []),
        ],
        span: at,
      },
    ],
    params: [param(Wy, shape(named(O), F_dim)), param(by, shape(named(O)))],
    readouts: [{ target: y, prime: false, targetSpan: at, on: { word: data.on, span: at }, value, span: at }],
    losses: [{ kind: data.loss, kindSpan: at, args: [ref(y), ref("target")], span: at }],
    span: at,
  };
  const bag = new DiagnosticBag();
  const model = checkModel(r.program, ast, bag, (name) => (name === cell.name ? cell : r.checked.get(name)));
  return { model: model && { ...model, declared: false }, diagnostics: sortDiagnostics(bag.items) };
}
