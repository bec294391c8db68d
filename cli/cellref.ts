// Picking a cell (or a model) out of a file: `FILE.cell:NAME`, wherever a command takes a cell file, and
// showing the diagnostics of what was picked rather than of every cell of the file.
import { existsSync } from "node:fs";
import type { CompileResult } from "../compiler/driver.js";
import { didYouMean, renderAll, type Diagnostic } from "../compiler/diag/diagnostic.js";
import { CliError, type Io } from "./io.js";

export interface CellRef {
  readonly file: string;
  /** The cell or model named after the colon, when one was. */
  readonly name?: string;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * `FILE.cell:NAME` as the file and the name. A path that exists is a path, colons and all; otherwise the
 * text after the last colon is a name when it is an identifier (`dir:1/a.cell` stays a path).
 */
export function parseCellRef(arg: string, exists: (path: string) => boolean = existsSync): CellRef {
  const i = arg.lastIndexOf(":");
  if (i <= 0 || exists(arg)) return { file: arg };
  const name = arg.slice(i + 1);
  return IDENT.test(name) ? { file: arg.slice(0, i), name } : { file: arg };
}

/** What a name picks in a checked file: a cell (checked first) or a model; a CliError that lists them when neither. */
export function choiceOf(
  r: CompileResult,
  file: string,
  name: string,
): { readonly cell: string } | { readonly model: string } {
  if (r.cellNames.includes(name)) return { cell: name };
  if (r.modelNames.includes(name)) return { model: name };
  const all = [...r.cellNames, ...r.modelNames];
  const what = [
    r.cellNames.length ? `cell${r.cellNames.length > 1 ? "s" : ""} ${r.cellNames.join(", ")}` : "",
    r.modelNames.length ? `model${r.modelNames.length > 1 ? "s" : ""} ${r.modelNames.join(", ")}` : "",
  ].filter((s) => s);
  const hint = didYouMean(name, all) || (what.length ? `; it defines ${what.join(" and ")}` : "");
  throw new CliError(`'${file}' defines no cell or model named '${name}'${hint}`);
}

/**
 * The diagnostics about what was picked: errors wherever they are (they stop the command), and warnings
 * and notes of the picked cell, the cells it extends, the picked model and its cell, and of what lies
 * outside every cell and model (functions, imports). With nothing picked and several cells or models,
 * every one. `hidden` counts the warnings and notes left out.
 */
export function pickedDiagnostics(
  r: CompileResult,
  pick: { readonly cell?: string; readonly model?: string },
  diagnostics: readonly Diagnostic[] = r.diagnostics,
): { shown: Diagnostic[]; hidden: number } {
  const p = r.program;
  let cell = pick.cell;
  let model = pick.model;
  if (cell === undefined && model === undefined) {
    if (r.cellNames.length === 1 && r.modelNames.length === 0) cell = r.cellNames[0];
    else if (r.cellNames.length === 0 && r.modelNames.length === 1) model = r.modelNames[0];
    else return { shown: [...diagnostics], hidden: 0 };
  }
  type Spanned = { readonly span: { readonly file: string; readonly start: number; readonly end: number } };
  const picked: Spanned[] = [];
  const m = model === undefined ? undefined : p.models.get(model);
  if (m) {
    picked.push(m);
    cell ??= m.cells[0]?.name;
  }
  for (let c = cell === undefined ? undefined : p.cells.get(cell); c && !picked.includes(c);) {
    picked.push(c);
    c = c.parent ? p.cells.get(c.parent.name) : undefined;
  }
  const all: Spanned[] = p.files.flatMap((f) => [...f.cells, ...f.models]);
  const within = (d: Diagnostic, c: Spanned) =>
    d.span !== undefined &&
    d.span.file === c.span.file &&
    d.span.start >= c.span.start &&
    d.span.start <= c.span.end;
  const shown: Diagnostic[] = [];
  let hidden = 0;
  for (const d of diagnostics) {
    const elsewhere = all.some((c) => within(d, c)) && !picked.some((c) => within(d, c));
    if (d.severity !== "error" && elsewhere) hidden++;
    else shown.push(d);
  }
  return { shown, hidden };
}

/** Prints pickedDiagnostics: the picked ones rendered, and one line counting the others. */
export function reportPicked(
  io: Io,
  r: CompileResult,
  file: string,
  pick: { readonly cell?: string; readonly model?: string },
): void {
  const { shown, hidden } = pickedDiagnostics(r, pick);
  if (shown.length) io.err(renderAll(shown, r.program.sources) + "\n");
  if (hidden) io.err(hiddenLine(hidden, file));
}

/** The line that counts the diagnostics left out. */
export const hiddenLine = (hidden: number, file: string): string =>
  `cellc: ${hidden} more warning${hidden > 1 ? "s" : ""} or note${hidden > 1 ? "s" : ""} about other cells of '${file}' (cellc check ${file} shows them)\n`;
