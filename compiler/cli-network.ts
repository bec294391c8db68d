// The network a command trains from a .cell file: the file's declared model (compiler/model) when it has
// one, otherwise its cell in the task's default model (runtime/train/network.ts). One place for `train`,
// `compare` and `gradflow`, so that a file trains the same way under each.
import { nodeHost } from "./check/node-host.js";
import { CliError, type Io } from "./cli.js";
import { checkProgram, selectModel } from "./driver.js";
import { renderAll, hasErrors } from "./diag/diagnostic.js";
import type { Dim } from "./ir/shape.js";
import { buildNetworkSpec, type ModelNetworkSpec } from "./model/network.js";
import type { CheckedModel } from "./model/check.js";
import { compileCell, CellCompileError } from "../runtime/compile.js";
import { defaultNetworkSpec } from "../runtime/train/network.js";
import type { NetworkSpec, TaskInfo } from "../runtime/train/types.js";

export interface NetworkChoice {
  /** `--cell NAME`: train this cell in the default model even where the file declares models. */
  readonly cell?: string;
  /** `--model NAME`: which declared model. */
  readonly model?: string;
  readonly layers?: number;
  readonly bidirectional?: boolean;
}

export interface FileNetwork {
  readonly spec: NetworkSpec;
  /** The cell's or the model's name, for tables and file names. */
  readonly name: string;
  /** Set when the network is a declared model. */
  readonly model?: string;
}

/** Reads a .cell file as a CliError that names it when it cannot. */
export function readCellFile(file: string): string {
  try {
    return nodeHost.read(file);
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new CliError(`cannot read '${file}': ${code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
}

/**
 * What a file trains: its declared model (`--model NAME`, or the file's only model when no `--cell` is
 * given), or `{}` for its cell in the default model. Undefined after printing the diagnostics (errors, or
 * several models and none chosen).
 */
export function chooseNetwork(
  file: string,
  source: string,
  choice: { readonly cell?: string; readonly model?: string },
  io: Io,
): { readonly model?: CheckedModel } | undefined {
  if (choice.model === undefined && choice.cell !== undefined) return {};
  const r = checkProgram(file, nodeHost, source);
  if (choice.model === undefined && r.modelNames.length === 0) return {};
  const sel = hasErrors(r.diagnostics) ? undefined : selectModel(r, choice.model);
  const ds = [...r.diagnostics, ...(sel?.diagnostics ?? [])];
  if (ds.length) io.err(renderAll(ds, r.program.sources) + "\n");
  return sel?.model ? { model: sel.model } : undefined;
}

/**
 * The network of `file` (its text `source`) for `task`: diagnostics go to io.err and give undefined;
 * a model that does not fit the task is a CliError.
 */
export function fileNetwork(
  file: string,
  source: string,
  choice: NetworkChoice,
  task: TaskInfo,
  dims: Readonly<Record<string, number>>,
  io: Io,
): FileNetwork | undefined {
  const chosen = chooseNetwork(file, source, choice, io);
  if (!chosen) return undefined;
  const m = chosen.model;
  if (!m) {
    let cell;
    try {
      cell = compileCell(source, { file, cell: choice.cell, host: nodeHost });
    } catch (e) {
      if (!(e instanceof CellCompileError)) throw e;
      io.err(e.message + "\n");
      return undefined;
    }
    const spec = defaultNetworkSpec(cell, task, { ...dims }, choice);
    return { spec, name: cell.signature.name };
  }
  if (choice.layers !== undefined || choice.bidirectional)
    throw new CliError("--layers and --bidirectional belong to the cell line of a declared model");
  const spec = buildNetworkSpec(m, { dims: taskDims(m, task, dims) });
  fits(spec, task);
  return { spec, name: m.name, model: m.name };
}

/** The model's input and output sizes from the task, where they are plain names not given otherwise. */
function taskDims(m: CheckedModel, task: TaskInfo, dims: Readonly<Record<string, number>>) {
  const out = Object.assign(Object.create(null) as Record<string, number>, dims);
  const bind = (d: Dim | undefined, size: number, what: string) => {
    const names = d ? Object.keys(d.terms) : [];
    if (!d || names.length !== 1 || d.c !== 0 || d.terms[names[0]!] !== 1) return;
    const n = names[0]!;
    if (out[n] !== undefined && out[n] !== size)
      throw new CliError(`task '${task.name}' has ${size} ${what}, but ${n} = ${out[n]} was given`);
    out[n] = size;
  };
  const tokens = m.input.kind === "tokens";
  // Token models also read one-hot features (the embedding takes the hot index); not the other way round.
  if (!tokens && task.inputKind === "tokens")
    throw new CliError(
      `model '${m.name}' reads real features, but task '${task.name}' gives token ids: declare \`input ${m.input.name} : int[V]\` and an embedding`,
    );
  bind(m.input.type.dims[0], task.inputSize, tokens ? "symbols" : "input features");
  bind(m.readout.outputs[0]?.expr.type.dims[0], task.outputSize, "outputs");
  return out;
}

function fits(spec: ModelNetworkSpec, task: TaskInfo): void {
  const where = (on: string) => (on === "last" ? "on the last step" : "at every step");
  if (spec.on !== task.on)
    throw new CliError(
      `model '${spec.model}' reads out ${where(spec.on)}, but task '${task.name}' has its target ${where(task.on)}: write \`readout on ${task.on} ...\``,
    );
  const classes = task.loss === "cross_entropy";
  if (classes !== (spec.loss === "cross_entropy"))
    throw new CliError(
      `model '${spec.model}' uses ${spec.loss}, but task '${task.name}' has ${classes ? "class ids (use cross_entropy)" : "real targets"}`,
    );
}
