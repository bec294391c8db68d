import { emitScheduleJs } from "./codegen/js.js";
import { emitScheduleWgsl } from "./codegen/wgsl.js";
import { emitScheduleWasm } from "./wasm/elementwise.js";
import type { SourceHost } from "./check/program.js";
import { checkProgram, selectCell, buildCellIR } from "./driver.js";
import { hasErrors, renderAll, type Diagnostic } from "./diag/diagnostic.js";
import type { SourceMap } from "./diag/span.js";
import type { CellIR } from "./ir/cell.js";
import { artifactOf, type Artifact } from "./schedule/artifact.js";
import { buildSchedule, type ScheduleOptions } from "./schedule/build.js";
import type { Schedule } from "./schedule/types.js";
import { CellcError } from "../artifact/tensor.js";
import { shown } from "../artifact/validate.js";

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
  /** How the caller names a cell, for the error when several and none is named (the `cell` option). */
  readonly howToChoose?: string;
  /** Where imported files are read from; by default imports fail. */
  readonly host?: SourceHost;
  /** Which kernels to generate: JS (the CPU runtime's), WGSL, WebAssembly. Default all three. */
  readonly targets?: readonly Target[];
  /** false: scan states run in the step loop like any other (see schedule/scan.ts). Default true. */
  readonly scan?: boolean;
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
  checkCompileArgs(source, opts, "compile");
  const file = opts.file ?? "input.cell";
  const host = opts.host ?? {
    read: (p: string) => {
      throw new Error(`no source host to read '${p}'`);
    },
  };
  const r = checkProgram(file, host, source);
  const sel = hasErrors(r.diagnostics)
    ? { diagnostics: [] }
    : selectCell(r, opts.cell, opts.howToChoose ?? "pass the `cell` option to choose one");
  const diagnostics = [...r.diagnostics, ...sel.diagnostics];
  const sources = r.program.sources;
  if (hasErrors(diagnostics) || !("cell" in sel) || !sel.cell) return { diagnostics, sources };
  const ir = buildCellIR(sel.cell);
  return { diagnostics, sources, ir, ...compileIR(ir, opts.targets, { scan: opts.scan }) };
}

/** The library's arguments, checked: a wrong type is a CellcError that names it, not a crash deep inside. */
export function checkCompileArgs(source: unknown, opts: unknown, fn: string): void {
  if (typeof source !== "string")
    throw new CellcError(`${fn}() takes the source text of a .cell file (a string), got ${shown(source)}`);
  if (typeof opts !== "object" || opts === null || Array.isArray(opts))
    throw new CellcError(`${fn}()'s options must be an object, got ${shown(opts)}`);
  const o = opts as Record<string, unknown>;
  for (const k of ["file", "cell", "model"])
    if (o[k] !== undefined && typeof o[k] !== "string")
      throw new CellcError(`${fn}()'s option '${k}' must be a string, got ${shown(o[k])}`);
  const host = o.host as { read?: unknown } | undefined;
  if (host !== undefined && (typeof host !== "object" || host === null || typeof host.read !== "function"))
    throw new CellcError(`${fn}()'s option 'host' must be an object with a read(path) function`);
  const targets = o.targets;
  if (
    targets !== undefined &&
    !(Array.isArray(targets) && targets.every((t) => typeof t === "string" && Object.hasOwn(TARGETS, t)))
  )
    throw new CellcError(
      `${fn}()'s option 'targets' must list targets of ${Object.keys(TARGETS).join(", ")}`,
    );
}

/** The code generators of the kernels, one per target (a backend's emitter). */
export const TARGETS = {
  js: emitScheduleJs,
  wgsl: emitScheduleWgsl,
  wasm: emitScheduleWasm,
} as const;
export type Target = keyof typeof TARGETS;
const ALL_TARGETS = Object.keys(TARGETS) as Target[];

/** The schedule and artifact of a cell's IR. */
export function compileIR(
  ir: CellIR,
  targets: readonly Target[] = ALL_TARGETS,
  opts: ScheduleOptions = {},
): { schedule: Schedule; artifact: Artifact } {
  const schedule = buildSchedule(ir, opts);
  const artifact = artifactOf(schedule, {
    js: targets.includes("js") ? TARGETS.js(schedule) : undefined,
    wgsl: targets.includes("wgsl") ? TARGETS.wgsl(schedule) : undefined,
    wasm: targets.includes("wasm") ? TARGETS.wasm(schedule) : undefined,
  });
  return { schedule, artifact };
}

/** compile(), or a CellCompileError whose message is the rendered diagnostics. */
export function compileOrThrow(
  source: string,
  opts: CompileOptions = {},
): { artifact: Artifact; ir: CellIR; diagnostics: readonly Diagnostic[] } {
  const out = compile(source, opts);
  if (!out.artifact || !out.ir)
    throw new CellCompileError(renderAll(out.diagnostics, out.sources), out.diagnostics);
  return { artifact: out.artifact, ir: out.ir, diagnostics: out.diagnostics };
}
