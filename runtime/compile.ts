import { emitScheduleJs } from "../compiler/codegen/js.js";
import { emitScheduleWgsl } from "../compiler/codegen/wgsl.js";
import { emitScheduleWasm } from "../compiler/wasm/elementwise.js";
import type { SourceHost } from "../compiler/check/program.js";
import { checkProgram, selectCell, buildCellIR } from "../compiler/driver.js";
import { hasErrors, renderAll, type Diagnostic } from "../compiler/diag/diagnostic.js";
import type { SourceMap } from "../compiler/diag/span.js";
import type { CellIR } from "../compiler/ir/cell.js";
import { artifactOf, type Artifact } from "../compiler/schedule/artifact.js";
import { buildSchedule } from "../compiler/schedule/build.js";
import type { Schedule } from "../compiler/schedule/types.js";
import { loadArtifact, type CompiledCell } from "./cell.js";
import { CellcError } from "./tensor.js";

/** Thrown for a .cell file with errors; the message is the rendered diagnostics. */
export class CellCompileError extends CellcError {
  constructor(
    message: string,
    readonly diagnostics: readonly Diagnostic[],
  ) {
    super(message);
  }
}

export interface CompileOptions {
  /** The file name used in diagnostics and to resolve imports. */
  readonly file?: string;
  /** Which cell, when the source defines several. */
  readonly cell?: string;
  /** Where imported files are read from; by default imports fail. */
  readonly host?: SourceHost;
  /** Which kernels to generate: JS (the CPU runtime's), WGSL, WebAssembly. Default all three. */
  readonly targets?: readonly Target[];
}

/** What `compile` gives: the diagnostics, and the artifact when there are no errors. */
export interface CompileOutput {
  readonly diagnostics: readonly Diagnostic[];
  readonly artifact?: Artifact;
  /** The compiler's view, for printing stages: the cell's IR and its schedule. */
  readonly ir?: CellIR;
  readonly schedule?: Schedule;
  /** The source files read, for rendering the diagnostics. */
  readonly sources: SourceMap;
}

/** The compiler's one entry: source text to diagnostics and a serialisable artifact. */
export function compile(source: string, opts: CompileOptions = {}): CompileOutput {
  const file = opts.file ?? "input.cell";
  const host = opts.host ?? {
    read: (p: string) => {
      throw new Error(`no source host to read '${p}'`);
    },
  };
  const r = checkProgram(file, host, source);
  const sel = hasErrors(r.diagnostics)
    ? { diagnostics: [] }
    : selectCell(r, opts.cell, "pass the `cell` option to choose one");
  const diagnostics = [...r.diagnostics, ...sel.diagnostics];
  const sources = r.program.sources;
  if (hasErrors(diagnostics) || !("cell" in sel) || !sel.cell) return { diagnostics, sources };
  const ir = buildCellIR(sel.cell);
  return { diagnostics, sources, ir, ...compileIR(ir, opts.targets) };
}

type Target = "js" | "wgsl" | "wasm";

/** The schedule and artifact of a cell's IR. */
export function compileIR(ir: CellIR, targets: readonly Target[] = ["js", "wgsl", "wasm"]) {
  const schedule = buildSchedule(ir);
  const artifact = artifactOf(schedule, {
    js: targets.includes("js") ? emitScheduleJs(schedule) : undefined,
    wgsl: targets.includes("wgsl") ? emitScheduleWgsl(schedule) : undefined,
    wasm: targets.includes("wasm") ? emitScheduleWasm(schedule) : undefined,
  });
  return { schedule, artifact };
}

/** A cell's IR compiled and loaded, with its IR for tools that read it (exporters, printers). */
export type CompiledIR = CompiledCell & { readonly ir: CellIR };
export function loadIR(ir: CellIR): CompiledIR {
  return { ...loadArtifact(compileIR(ir, ["js"]).artifact), ir };
}

/** Compiles a cell from source text and loads it (in Node or a browser). Throws CellCompileError on errors. */
export function compileCell(
  source: string,
  opts: CompileOptions = {},
): CompiledCell & { diagnostics: readonly Diagnostic[]; ir: CellIR } {
  const out = compile(source, opts);
  if (!out.artifact) throw new CellCompileError(renderAll(out.diagnostics, out.sources), out.diagnostics);
  return { ...loadArtifact(out.artifact), diagnostics: out.diagnostics, ir: out.ir! };
}
