import { readFileSync } from "node:fs";
import { nodeHost } from "./node-host.js";
import {
  checkProgram,
  selectCell,
  selectModel,
  buildCellIR,
  type CompileResult,
} from "../compiler/driver.js";
import { renderAll, hasErrors, type Diagnostic } from "../compiler/diag/diagnostic.js";
import type { SourceMap } from "../compiler/diag/span.js";
import type { Stage } from "../compiler/stage.js";
import { CliError, isDirectory, type Io } from "./io.js";
export { CliError, type Io };
import { COMMANDS, UsageError, parseArgs, type Parsed } from "./args.js";
import { CellcError } from "../runtime/tensor.js";
import { choiceOf, parseCellRef, reportPicked } from "./cellref.js";
import { readCellFile } from "./network.js";

function report(io: Io, ds: readonly Diagnostic[], sources: SourceMap): void {
  if (ds.length) io.err(renderAll(ds, sources) + "\n");
}

export async function main(argv: readonly string[], io: Io): Promise<number> {
  let args: Parsed;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`cellc: ${e.message}\n\n${usage()}`);
      return 1;
    }
    throw e;
  }
  if (args.command === "help") {
    io.out(usage(args.files[0]));
    return 0;
  }
  if (args.command === "version") {
    io.out(`cellc ${version()}\n`);
    return 0;
  }
  try {
    switch (args.command) {
      case "check":
        return check(args, io);
      case "compile":
        return await compile(withPick(args), io);
      case "run": {
        const { runCommand } = await import("./run.js");
        return await runCommand(withPick(args), io);
      }
      case "predict": {
        const { predictCommand } = await import("./predict.js");
        return await predictCommand(args, io);
      }
      case "import": {
        const { importCommand } = await import("./export.js");
        return importCommand(withPick(args), io);
      }
      case "init":
      case "train":
      case "sample": {
        const train = await import("./train.js");
        return await train.trainCommands[args.command](withPick(args), io);
      }
      case "lsp": {
        const { lspCommand } = await import("./lsp.js");
        return await lspCommand();
      }
      case "fmt": {
        const { fmtCommand } = await import("./fmt.js");
        return fmtCommand(args.files, args.flags.has("check"), io);
      }
      case "compare":
      case "gradflow": {
        const compare = await import("./compare.js");
        return await compare.compareCommands[args.command](args, io);
      }
    }
  } catch (e) {
    if (e instanceof CliError || e instanceof CellcError) {
      io.err(`cellc: error: ${e.message}\n`);
      return 1;
    }
    if (e instanceof UsageError) {
      io.err(`cellc: ${e.message}\n\n${usage()}`);
      return 1;
    }
    throw e;
  }
}

/**
 * `FILE.cell:NAME` where a command takes one cell file (compile, run, init, train; import's `--cell`): the
 * file, and the name as `--cell` or `--model` (`--name` for import), whichever the file defines it as.
 */
function withPick(args: Parsed): Parsed {
  const cmd = args.command;
  const importing = cmd === "import";
  if (cmd === "sample") return args;
  const given = importing ? args.options.cell : args.files[0];
  if (given === undefined) return args;
  const ref = parseCellRef(given);
  if (ref.name === undefined) return args;
  const taken = importing ? ["name"] : ["cell", "model"];
  const twice = taken.find((o) => args.options[o] !== undefined);
  if (twice)
    throw new UsageError(
      `'${given}' names the ${twice === "model" ? "model" : "cell"}: leave out --${twice}`,
    );
  const r = checkProgram(ref.file, nodeHost, readCellFile(ref.file));
  const choice = choiceOf(r, ref.file, ref.name);
  if ("model" in choice && cmd !== "compile" && cmd !== "train")
    throw new CliError(`'${ref.name}' is a model of '${ref.file}': ${cmd} takes a cell`);
  if (importing) return { ...args, options: { ...args.options, cell: ref.file, name: ref.name } };
  return { ...args, files: [ref.file, ...args.files.slice(1)], options: { ...args.options, ...choice } };
}

function check(args: Parsed, io: Io): number {
  let failed = false;
  for (const arg of args.files) {
    const { file, name } = parseCellRef(arg);
    const r = checkProgram(file, nodeHost);
    if (name !== undefined && r.program.sources.get(file) !== undefined) {
      const choice = choiceOf(r, file, name);
      reportPicked(io, r, file, choice);
      if (hasErrors(r.diagnostics)) failed = true;
      else io.out(`${file}: ${"cell" in choice ? "cell" : "model"} ${name} ok\n`);
      continue;
    }
    report(io, r.diagnostics, r.program.sources);
    if (hasErrors(r.diagnostics)) failed = true;
    else if (r.modelNames.length === 0)
      io.out(`${file}: ${r.cellNames.length} cell(s) ok: ${r.cellNames.join(", ")}\n`);
    else {
      const names = [...r.cellNames, ...r.modelNames].join(", ");
      io.out(`${file}: ${r.cellNames.length} cell(s), ${r.modelNames.length} model(s) ok: ${names}\n`);
    }
  }
  return failed ? 1 : 0;
}

async function compile(args: Parsed, io: Io): Promise<number> {
  const file = args.files[0]!;
  // A run folder (cellc train --out DIR): its trained network, exported whole.
  if (isDirectory(file)) return (await import("./export.js")).exportRun(file, args, io);
  const r = checkProgram(file, nodeHost);
  // The warnings of the cell compiled, not of every cell of the file (a count of those).
  reportPicked(io, r, file, args.options);
  if (hasErrors(r.diagnostics)) return 1;
  const emit = args.options.emit ?? (args.options.target ? undefined : "ir");
  if (emit === "network") {
    const { emitNetwork } = await import("./network.js");
    return emitNetwork(file, args, io);
  }
  if (emit !== undefined) {
    const { stageOutput, watOutput } = await import("../compiler/stage.js");
    const out =
      emit === "wat"
        ? await watOutput(r, args.options.cell, args.options.model)
        : stageOutput(r, emit as Stage, args.options.cell, args.options.model);
    report(io, out.diagnostics, r.program.sources);
    if (out.text === undefined) return 1;
    io.out(out.text);
    return 0;
  }
  const sel =
    args.options.model !== undefined || (r.cellNames.length === 0 && r.modelNames.length > 0)
      ? modelReadout(r, args.options.model)
      : selectCell(r, args.options.cell);
  report(io, sel.diagnostics, r.program.sources);
  if (!sel.cell) return 1;
  const { emitCompiled } = await import("./emit.js");
  await emitCompiled(buildCellIR(sel.cell), args, io);
  return 0;
}

/** A model's compiled part for `--target`: its readout, a stateless cell (its cell compiles on its own). */
function modelReadout(r: CompileResult, name: string | undefined) {
  const sel = selectModel(r, name);
  return { cell: sel.model?.readout, diagnostics: sel.diagnostics };
}

/** From package.json: two folders up from dist/compiler/, one from compiler/ when run from source. */
export function version(): string {
  for (const rel of ["../../package.json", "../package.json"])
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "cellc" && pkg.version) return pkg.version;
    } catch {
      // not there: try the next folder
    }
  return "(unknown version)";
}

/** Every command's synopsis, or one command's (`cellc CMD --help`) with where its options are described. */
export function usage(command?: string): string {
  const lines = ["usage:"];
  if (command !== undefined && Object.hasOwn(COMMANDS, command)) {
    lines.push(`  cellc ${COMMANDS[command as keyof typeof COMMANDS].synopsis}`);
    lines.push("", "each option is described in docs/cli.md");
    return lines.join("\n") + "\n";
  }
  for (const c of Object.values(COMMANDS)) lines.push(`  cellc ${c.synopsis}`);
  lines.push("  cellc --version");
  return lines.join("\n") + "\n";
}
