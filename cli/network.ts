// The network a command trains from a .cell file: the file's declared model when it has one, otherwise
// its cell in the data's default model, compiled whole by compiler/network/compile.ts. One place for
// `train`, `compare` and `gradflow`, so that a file trains the same way under each.
import type { NetworkArtifact, OptimName } from "../artifact/network.js";
import { checkProgram, selectModel } from "../compiler/driver.js";
import { renderAll, hasErrors } from "../compiler/diag/diagnostic.js";
import type { CheckedModel } from "../compiler/model/check.js";
import { compileNetwork, type DataShape, type NetworkChoice } from "../compiler/network/compile.js";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { nodeHost } from "./node-host.js";
import { CliError, type Io } from "./io.js";

export type { NetworkChoice };

export interface FileNetwork {
  readonly artifact: NetworkArtifact;
  /** The cell's or the model's name, for tables and file names. */
  readonly name: string;
  /** Set when the network is a declared model. */
  readonly model?: string;
}

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
  const ds = [...r.diagnostics, ...(sel?.diagnostics ?? [])];
  if (ds.length) io.err(renderAll(ds, r.program.sources) + "\n");
  return sel?.model ? { model: sel.model } : undefined;
}

/**
 * The network of `file` (its text `source`) for `data`, compiled whole: diagnostics go to io.err and give
 * undefined; a network that does not fit its data is an error that says why.
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
  const out = compileNetwork(source, { file, host: nodeHost, choice, data, dims, optimizer });
  if (out.diagnostics.length) io.err(renderAll(out.diagnostics, out.sources) + "\n");
  if (!out.artifact) return undefined;
  const a = out.artifact;
  return { artifact: a, name: a.name, ...(a.model !== undefined ? { model: a.model } : {}) };
}
