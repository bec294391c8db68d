// The network a command trains from a .cell file: the file's declared model when it has one, otherwise
// its cell in the data's default model, compiled whole by compiler/network/compile.ts. One place for
// `train`, `compare` and `gradflow`, so that a file trains the same way under each.
import { createHash } from "node:crypto";
import {
  sourceDigestText,
  type NetworkArtifact,
  type NetworkSource,
  type OptimName,
} from "../artifact/network.js";
import { checkProgram, selectModel } from "../compiler/driver.js";
import { renderAll, hasErrors } from "../compiler/diag/diagnostic.js";
import type { CheckedModel } from "../compiler/model/check.js";
import { compileNetwork, type DataShape, type NetworkChoice } from "../compiler/network/compile.js";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { nodeHost } from "./node-host.js";
import { hiddenLine, pickedDiagnostics } from "./cellref.js";
import { CliError, type Io } from "./io.js";
import type { Parsed } from "./args.js";

export type { NetworkChoice };

export interface FileNetwork {
  readonly artifact: NetworkArtifact;
  /** The cell's or the model's name, for tables and file names. */
  readonly name: string;
  /** Set when the network is a declared model. */
  readonly model?: string;
}

/** What the command line says when a file has several cells and none is named. */
export const CHOOSE_CELL = "choose one with --cell NAME (or FILE.cell:NAME)";

/**
 * A file argument as given, or a built-in cell's file for a bare name that is no file (`mingru` for
 * examples/cells/mingru.cell), so that `cellc compare mingru gru ...` runs from anywhere.
 */
export function builtinCellFile(arg: string): string {
  if (arg.endsWith(".cell") || !/^[\w-]+$/.test(arg) || existsSync(arg)) return arg;
  // From dist/cli/ (the built command) or cli/ (the sources, in tests).
  for (const up of ["../../", "../"]) {
    const file = fileURLToPath(new URL(`${up}examples/cells/${arg}.cell`, import.meta.url));
    if (existsSync(file)) return file;
  }
  return arg;
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
  if (sel?.model) return { model: sel.model }; // its warnings are fileNetwork's to print
  const ds = [...r.diagnostics, ...(sel?.diagnostics ?? [])];
  if (ds.length) io.err(renderAll(ds, r.program.sources) + "\n");
  return undefined;
}

/**
 * The network of `file` (its text `source`) for `data`, compiled whole: diagnostics go to io.err (those of
 * the network's cell or model, and a count of the others') and errors give undefined; a network that
 * does not fit its data is an error that says why.
 */
export function fileNetwork(
  file: string,
  source: string,
  choice: NetworkChoice,
  data: DataShape,
  dims: Readonly<Record<string, number>>,
  io: Io,
  optimizer: OptimName = "adam",
): FileNetwork | undefined {
  // Every file read is kept with the network, so that the exporters can compile it again.
  const files: Record<string, string> = Object.create(null) as Record<string, string>;
  files[file] = source;
  const host = {
    read: (path: string) => {
      const text = nodeHost.read(path);
      files[path] = text;
      return text;
    },
  };
  const out = compileNetwork(source, {
    file,
    host,
    choice,
    data,
    dims,
    optimizer,
    howToChoose: CHOOSE_CELL,
  });
  const picked = out.model
    ? { [out.model.declared === false ? "cell" : "model"]: out.model.name }
    : { cell: choice.cell, model: choice.model };
  const { shown, hidden } = pickedDiagnostics(checkProgram(file, nodeHost, source), picked, out.diagnostics);
  if (shown.length) io.err(renderAll(shown, out.sources) + "\n");
  if (hidden) io.err(hiddenLine(hidden, file));
  if (!out.artifact) return undefined;
  const a: NetworkArtifact = { ...out.artifact, source: networkSource(file, files, choice, dims) };
  return { artifact: a, name: a.name, ...(a.model !== undefined ? { model: a.model } : {}) };
}

/**
 * `cellc compile FILE --emit network [--task NAME [--T N]] [--dims ...] [--cell NAME | --model NAME]
 * [--layers N] [--bidirectional] [--optim NAME]`: the network compiled whole, printed. A cell's network is
 * its task's default model, so it needs --task; a declared model needs --task or every size in --dims.
 */
export async function emitNetwork(file: string, args: Parsed, io: Io): Promise<number> {
  const { makeTask } = await import("../workbench/tasks/index.js");
  const { printNetwork } = await import("../compiler/network/print.js");
  const { parseDims } = await import("./args.js");
  const T = args.options.T === undefined ? undefined : Number(args.options.T);
  const data = args.options.task ? makeTask(args.options.task, T === undefined ? {} : { T }) : undefined;
  const layers = args.options.layers === undefined ? undefined : Number(args.options.layers);
  const choice = {
    ...(args.options.cell !== undefined ? { cell: args.options.cell } : {}),
    ...(args.options.model !== undefined ? { model: args.options.model } : {}),
    ...(layers !== undefined ? { layers } : {}),
    ...(args.flags.has("bidirectional") ? { bidirectional: true } : {}),
  };
  const dims = parseDims(args.options.dims);
  const source = readCellFile(file);
  if (
    !data &&
    !args.options.model &&
    (args.options.cell || checkProgram(file, nodeHost, source).modelNames.length === 0)
  )
    throw new CliError(
      "--emit network of a cell needs --task NAME: a cell's network is its task's default model",
    );
  const out = compileNetwork(source, {
    file,
    host: nodeHost,
    choice,
    ...(data ? { data } : {}),
    dims,
    optimizer: (args.options.optim ?? "adam") as OptimName,
  });
  if (out.diagnostics.length) io.err(renderAll(out.diagnostics, out.sources) + "\n");
  if (!out.artifact) return 1;
  io.out(printNetwork(out.artifact));
  return 0;
}

/** The source of a network, with its digest. */
export function networkSource(
  file: string,
  files: Readonly<Record<string, string>>,
  choice: NetworkChoice,
  dims: Readonly<Record<string, number>>,
): NetworkSource {
  return {
    file,
    files: { ...files },
    choice: { ...choice },
    dims: { ...dims },
    sha256: sha256(sourceDigestText(files)),
  };
}

export function sha256(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}
