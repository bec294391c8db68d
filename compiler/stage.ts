// The text of each compiler stage, as `cellc compile --emit STAGE` prints it. Pure (no Node APIs), so that
// the command line and the playground page print with the same code.
import { emitScheduleJs } from "./codegen/js.js";
import { emitScheduleWgsl } from "./codegen/wgsl.js";
import type { SourceHost } from "./check/program.js";
import { buildCellIR, checkProgram, selectCell, selectModel, type CompileResult } from "./driver.js";
import { hasErrors, renderAll, type Diagnostic } from "./diag/diagnostic.js";
import { lineCol, type SourceMap } from "./diag/span.js";
import type { CellIR } from "./ir/cell.js";
import { printCell } from "./ir/print.js";
import { buildSchedule } from "./schedule/build.js";
import { printSchedule } from "./schedule/print.js";
import { KERNEL_NAMES } from "./schedule/types.js";

export const STAGES = ["ast", "ir", "grad-ir", "schedule", "js", "wgsl"] as const;
export type Stage = (typeof STAGES)[number];

/** The entry file's syntax tree as JSON, each span shown as `line:col`. */
export function printAst(r: CompileResult): string {
  const ast = r.program.files.find((f) => f.file === r.program.entry);
  const replacer = (k: string, v: unknown) =>
    k === "span" || k.endsWith("Span") ? spanText(v, r.program.sources) : v;
  return JSON.stringify(ast, replacer, 2) + "\n";
}

function spanText(v: unknown, sources: SourceMap): unknown {
  const s = v as { file?: string; start?: number } | undefined;
  if (!s || typeof s.start !== "number") return v;
  const { line, col } = lineCol(sources.get(s.file ?? "") ?? "", s.start);
  return `${line}:${col}`;
}

/** One cell's text at a stage after parsing. */
export function printCellStage(ir: CellIR, stage: Exclude<Stage, "ast">, sources: SourceMap): string {
  if (stage === "ir") return printCell(ir, sources);
  const schedule = buildSchedule(ir);
  if (stage === "schedule") return printSchedule(schedule, { sources });
  if (stage === "grad-ir") return printSchedule(schedule, { graphs: true, sources });
  if (stage === "js") return emitScheduleJs(schedule);
  const w = emitScheduleWgsl(schedule);
  return KERNEL_NAMES.map((k) => `// kernel ${k}\n${w[k].code}`).join("\n");
}

/** What a stage prints, in order: a header line (for models) and the IR of a cell. */
type Part = { readonly header?: string; readonly ir: CellIR };

/**
 * The cells a stage prints: the cell named (the only one when none is named; for `ir`, every cell of the
 * file, then its models), or the models (a model's compiled part is its readout, a stateless cell).
 */
function stageParts(
  r: CompileResult,
  stage: Exclude<Stage, "ast"> | "wat",
  cellName?: string,
  modelName?: string,
): { parts?: Part[]; diagnostics: Diagnostic[] } {
  const parts: Part[] = [];
  const models = modelName !== undefined || (r.cellNames.length === 0 && r.modelNames.length > 0);
  const cells = models
    ? []
    : cellName !== undefined
      ? [cellName]
      : stage === "ir"
        ? r.cellNames
        : [undefined];
  for (const name of cells) {
    const sel = selectCell(r, name);
    if (!sel.cell) return { diagnostics: sel.diagnostics };
    parts.push({ ir: buildCellIR(sel.cell) });
  }
  const wholeFile = stage === "ir" && cellName === undefined && modelName === undefined;
  const modelNames = models && !wholeFile ? [modelName] : wholeFile ? r.modelNames : [];
  for (const name of modelNames) {
    const sel = selectModel(r, name);
    if (!sel.model) return { diagnostics: sel.diagnostics };
    const m = sel.model;
    const options = [m.layers > 1 ? `layers ${m.layers}` : "", m.bidirectional ? "bidirectional" : ""];
    const embed = m.embed ? `, embed ${m.embed.name}` : "";
    const cell = [m.cell.name, ...options.filter((o) => o)].join(", ");
    const header = `model ${m.name}: input ${m.input.name} (${m.input.kind})${embed}, cell ${cell}, readout on ${m.on}, loss ${m.loss}\n`;
    parts.push({ header: stage === "ir" ? header : undefined, ir: buildCellIR(m.readout) });
  }
  return { parts, diagnostics: [] };
}

/**
 * A checked program's text at a stage: the AST of the entry file, or the stage of the cells stageParts
 * chooses. `text` is absent when no cell can be chosen or the program has errors; `diagnostics` are those
 * of choosing the cell (the caller has the checker's own in `r.diagnostics`).
 */
export function stageOutput(
  r: CompileResult,
  stage: Stage,
  cellName?: string,
  modelName?: string,
): { text?: string; diagnostics: Diagnostic[] } {
  if (hasErrors(r.diagnostics)) return { diagnostics: [] };
  if (stage === "ast") return { text: printAst(r), diagnostics: [] };
  const { parts, diagnostics } = stageParts(r, stage, cellName, modelName);
  if (!parts) return { diagnostics };
  const text = parts.map((p) => (p.header ?? "") + printCellStage(p.ir, stage, r.program.sources)).join("");
  return { text, diagnostics: [] };
}

/**
 * The WebAssembly text of the chosen cell's kernels (`--emit wat`): asynchronous, since the printer
 * (wabt) loads on first use. `withGemms` adds the GEMM module every cell shares.
 */
export async function watOutput(
  r: CompileResult,
  cellName?: string,
  modelName?: string,
  withGemms = false,
): Promise<{ text?: string; diagnostics: Diagnostic[] }> {
  if (hasErrors(r.diagnostics)) return { diagnostics: [] };
  const { parts, diagnostics } = stageParts(r, "wat", cellName, modelName);
  if (!parts) return { diagnostics };
  const { emitScheduleWasm } = await import("./wasm/elementwise.js");
  const { printWat } = await import("./wasm/wat.js");
  let text = "";
  for (const p of parts) text += await printWat(emitScheduleWasm(buildSchedule(p.ir)), withGemms);
  return { text, diagnostics: [] };
}

/** Thrown by emitStage for a source with errors; the message is the rendered diagnostics. */
export class StageError extends Error {
  constructor(
    message: string,
    readonly diagnostics: readonly Diagnostic[],
  ) {
    super(message);
  }
}

/** What `cellc compile FILE --emit STAGE [--cell NAME]` prints for `source`. Throws StageError on errors. */
export function emitStage(
  source: string,
  stage: Stage,
  cellName?: string,
  opts: { file?: string; host?: SourceHost } = {},
): string {
  const host = opts.host ?? {
    read: (p: string) => {
      throw new Error(`no source host to read '${p}'`);
    },
  };
  const r = checkProgram(opts.file ?? "input.cell", host, source);
  const out = stageOutput(r, stage, cellName);
  if (out.text === undefined) {
    const ds = [...r.diagnostics, ...out.diagnostics];
    throw new StageError(renderAll(ds, r.program.sources), ds);
  }
  return out.text;
}
