import type { CellAst } from "../ast/ast.js";
import { checkCell } from "../check/check.js";
import { dirname, joinPath, loadProgram, type Program, type SourceHost } from "../check/program.js";
import { DiagnosticBag, type Diagnostic, type Severity } from "../diag/diagnostic.js";
import { lineCol, type Span } from "../diag/span.js";
import { checkProgram, type CompileResult } from "../driver.js";
import type { Type } from "../../artifact/shape.js";
import { SymbolIndex } from "./symbols.js";

/**
 * One program as an editor sees it: an entry file, what it imports, its diagnostics (exactly the CLI's),
 * and, built when first asked for, the symbol index and the types of each cell's equations.
 */
export class Analysis {
  readonly program: Program;
  /** The checker's result; absent for an analysis made for navigation only (`check: false`). */
  readonly result?: CompileResult;
  private symbols?: SymbolIndex;
  private readonly types = new Map<CellAst, Map<string, Type>>();

  constructor(
    readonly entry: string,
    host: SourceHost,
    opts: { readonly check?: boolean } = {},
  ) {
    if (opts.check ?? true) {
      this.result = checkProgram(entry, host);
      this.program = this.result.program;
    } else this.program = loadProgram(entry, host);
  }

  get diagnostics(): readonly Diagnostic[] {
    return this.result?.diagnostics ?? this.program.diagnostics;
  }

  get index(): SymbolIndex {
    return (this.symbols ??= new SymbolIndex(this.program));
  }

  /** Whether the program holds this file (the entry or one it imports). */
  has(file: string): boolean {
    return this.program.sources.get(file) !== undefined;
  }

  text(file: string): string | undefined {
    return this.program.sources.get(file);
  }

  /** The type of each equation of a cell (`i`, `h'`) that the checker could type, errors elsewhere or not. */
  equationTypes(cell: CellAst): ReadonlyMap<string, Type> {
    let t = this.types.get(cell);
    if (!t) {
      t = new Map();
      if (this.program.cells.get(cell.name) === cell)
        checkCell(this.program, cell.name, new DiagnosticBag(), t);
      this.types.set(cell, t);
    }
    return t;
  }
}

/** A diagnostic placed in one file: where the CLI puts it, or on the import that brings in the file it is in. */
export interface FileDiagnostic {
  readonly start: number;
  readonly end: number;
  readonly severity: Severity;
  readonly code: string;
  readonly message: string;
  /** The notes that point somewhere, and for a diagnostic in an imported file, where it is. */
  readonly related: readonly { readonly span: Span; readonly message: string }[];
  readonly diagnostic: Diagnostic;
}

export function fileDiagnostics(a: Analysis, file: string): FileDiagnostic[] {
  const out: FileDiagnostic[] = [];
  for (const d of a.diagnostics) {
    const related = d.notes.flatMap((n) => (n.span ? [{ span: n.span, message: n.message }] : []));
    const notes = d.notes.filter((n) => !n.span).map((n) => `\nnote: ${n.message}`);
    const base = { severity: d.severity, code: d.code, diagnostic: d };
    if (!d.span) out.push({ ...base, start: 0, end: 0, message: d.message + notes.join(""), related });
    else if (d.span.file === file)
      out.push({
        ...base,
        start: d.span.start,
        end: d.span.end,
        message: d.message + notes.join(""),
        related,
      });
    else {
      const via = importOf(a.program, file, d.span.file);
      if (!via) continue; // a file that imports this one: its own diagnostics are shown there
      const { line, col } = lineCol(a.text(d.span.file) ?? "", d.span.start);
      out.push({
        ...base,
        start: via.start,
        end: via.end,
        message: `${d.span.file}:${line}:${col}: ${d.message}${notes.join("")}`,
        related: [{ span: d.span, message: d.message }, ...related],
      });
    }
  }
  return out;
}

/** The import in `file` through which `target` is loaded, directly or through the files it imports. */
function importOf(p: Program, file: string, target: string): Span | undefined {
  const ast = new Map(p.files.map((f) => [f.file, f]));
  const reaches = (from: string, seen: Set<string>): boolean => {
    if (from === target) return true;
    if (seen.has(from)) return false;
    seen.add(from);
    return (ast.get(from)?.imports ?? []).some((i) => reaches(joinPath(dirname(from), i.path), seen));
  };
  for (const imp of ast.get(file)?.imports ?? [])
    if (reaches(joinPath(dirname(file), imp.path), new Set())) return imp.span;
  return undefined;
}
