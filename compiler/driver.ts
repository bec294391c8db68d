import { checkCell } from "./check/check.js";
import { entryCells, entryModels, loadProgram, type Program, type SourceHost } from "./check/program.js";
import type { CheckedCell } from "./check/types.js";
import {
  capDiagnostics,
  didYouMean,
  DiagnosticBag,
  diag,
  sortDiagnostics,
  type Diagnostic,
} from "./diag/diagnostic.js";
import type { CellIR } from "./ir/cell.js";
import { lowerCell } from "./ir/lower.js";
import { verifyGraph } from "./ir/verify.js";
import { cellRoots } from "./ir/cell.js";
import { optimiseCell } from "./passes/pipeline.js";
import { checkModel, type CheckedModel } from "./model/check.js";

export interface CompileResult {
  readonly program: Program;
  readonly diagnostics: Diagnostic[];
  /** Checked cells of the entry file, by name (only those without errors). */
  readonly checked: Map<string, CheckedCell>;
  /** Names of the cells defined in the entry file, in order. */
  readonly cellNames: string[];
  /** Checked models of the entry file, by name (only those without errors). */
  readonly models: Map<string, CheckedModel>;
  /** Names of the models defined in the entry file, in order. */
  readonly modelNames: string[];
}

/** Parses and checks every cell of the entry file (and what it imports). */
export function checkProgram(entry: string, host: SourceHost, text?: string): CompileResult {
  const program = loadProgram(entry, host, text);
  const bag = new DiagnosticBag();
  for (const d of program.diagnostics) bag.add(d);
  const checked = new Map<string, CheckedCell>();
  const cellNames = entryCells(program).map((c) => c.name);
  // All errors at once: cells untouched by syntax errors are checked too. A cell is skipped when a syntax
  // error lies in it or in a cell it extends, and every cell when one lies outside all cells (in a
  // function or an import, which any cell may use), so that no error is reported that follows from another.
  for (const name of cellNames)
    if (cleanCell(program, name, new Set())) {
      const c = checkCell(program, name, bag);
      if (c) checked.set(name, c);
    }
  const { models, modelNames } = checkModels(program, bag, checked);
  return {
    program,
    diagnostics: capDiagnostics(sortDiagnostics(bag.items)),
    checked,
    cellNames,
    models,
    modelNames,
  };
}

/** The entry file's models; a cell a model uses from an import is checked once, here. */
function checkModels(program: Program, bag: DiagnosticBag, checked: Map<string, CheckedCell>) {
  const models = new Map<string, CheckedModel>();
  const asts = entryModels(program);
  const imported = new Map<string, CheckedCell | undefined>();
  const entry = new Set(entryCells(program).map((c) => c.name));
  const cellOf = (name: string) => {
    if (entry.has(name)) return checked.get(name);
    if (!imported.has(name))
      imported.set(name, cleanCell(program, name, new Set()) ? checkCell(program, name, bag) : undefined);
    return imported.get(name);
  };
  const errors = program.diagnostics.filter((d) => d.severity === "error");
  for (const m of asts) {
    // As for cells: a syntax error in the model, or outside every cell and model, stops its check.
    const outside = errors.some((d) => !d.span || !containers(program).some((c) => inside(d, c)));
    if (outside || errors.some((d) => inside(d, m))) continue;
    const c = checkModel(program, m, bag, cellOf);
    if (c) models.set(m.name, c);
  }
  return { models, modelNames: asts.map((m) => m.name) };
}

type Spanned = { span: { file: string; start: number; end: number } };
const inside = (d: Diagnostic, c: Spanned) =>
  d.span !== undefined &&
  d.span.file === c.span.file &&
  d.span.start >= c.span.start &&
  d.span.start <= c.span.end;
const containers = (program: Program): Spanned[] => program.files.flatMap((f) => [...f.cells, ...f.models]);

function cleanCell(program: Program, name: string, seen: Set<string>): boolean {
  const errors = program.diagnostics.filter((d) => d.severity === "error");
  if (errors.length === 0) return true;
  const cells = containers(program);
  if (errors.some((d) => !d.span || !cells.some((c) => inside(d, c)))) return false;
  const cell = program.cells.get(name);
  if (!cell || seen.has(name) || errors.some((d) => inside(d, cell))) return false;
  seen.add(name);
  return !cell.parent || (program.cells.has(cell.parent.name) && cleanCell(program, cell.parent.name, seen));
}

/**
 * Picks one cell: the one named, or the only one in the file. `how` says how the caller names a cell (a
 * command-line flag, a library option).
 */
export function selectCell(
  r: CompileResult,
  name: string | undefined,
  how = "choose one with --cell NAME (or FILE.cell:NAME)",
): { cell?: CheckedCell; diagnostics: Diagnostic[] } {
  if (name === undefined) {
    if (r.cellNames.length === 1) return { cell: r.checked.get(r.cellNames[0]!), diagnostics: [] };
    if (r.cellNames.length > 1) {
      const args = { count: String(r.cellNames.length), names: r.cellNames.join(", "), how };
      return { diagnostics: [diag("E093", undefined, args)] };
    }
    return { diagnostics: [diag("E092", undefined, { hint: onlyModels(r) })] };
  }
  if (!r.cellNames.includes(name))
    return {
      diagnostics: [
        diag("E051", undefined, {
          name,
          hint:
            didYouMean(name, r.cellNames) ||
            (r.cellNames.length ? `; it defines ${r.cellNames.join(", ")}` : ""),
        }),
      ],
    };
  return { cell: r.checked.get(name), diagnostics: [] };
}

/** For a file with no cell: what it defines instead, and where a model's cell is. */
function onlyModels(r: CompileResult): string {
  const names = r.modelNames;
  if (!names.length) return "";
  const list = names.map((n) => `'${n}'`).join(", ");
  const ast = names.length === 1 ? r.program.models.get(names[0]!) : undefined;
  const cell = ast?.cells[0] && r.program.cells.get(ast.cells[0].name);
  const where = cell ? ` (its cell '${cell.name}' is defined in '${cell.span.file}')` : "";
  return `, only model${names.length > 1 ? "s" : ""} ${list}${where}`;
}

/** Picks one model: the one named, or the only one in the file. */
export function selectModel(
  r: CompileResult,
  name: string | undefined,
  how = "choose one with --model NAME (or FILE.cell:NAME)",
): { model?: CheckedModel; diagnostics: Diagnostic[] } {
  const names = r.modelNames;
  if (name === undefined) {
    if (names.length === 1) return { model: r.models.get(names[0]!), diagnostics: [] };
    const hint = names.length ? `; the file defines ${names.join(", ")}: ${how}` : "";
    return { diagnostics: [diag("E089", undefined, { name: "(none given)", hint })] };
  }
  if (!names.includes(name))
    return {
      diagnostics: [
        diag("E089", undefined, {
          name,
          hint: didYouMean(name, names) || (names.length ? `; it defines ${names.join(", ")}` : ""),
        }),
      ],
    };
  return { model: r.models.get(name), diagnostics: [] };
}

/** Lowers and optimises a checked cell, verifying the IR after each stage. */
export function buildCellIR(c: CheckedCell, opts: { optimise?: boolean; verify?: boolean } = {}): CellIR {
  const ir = lowerCell(c);
  if (opts.verify ?? true) verifyGraph(ir.graph, cellRoots(ir));
  return opts.optimise === false ? ir : optimiseCell(ir, { verify: opts.verify ?? true });
}
