import { CATALOGUE, type DiagCode } from "./catalogue.js";
import { lineCol, type SourceMap, type Span } from "./span.js";

export type Severity = "error" | "warning" | "note";

export interface RelatedNote {
  readonly message: string;
  readonly span?: Span;
}

export interface Diagnostic {
  readonly code: DiagCode;
  readonly severity: Severity;
  readonly message: string;
  readonly span?: Span;
  readonly notes: readonly RelatedNote[];
}

export function diag(
  code: DiagCode,
  span: Span | undefined,
  args: Record<string, string | number> = {},
  notes: RelatedNote[] = [],
): Diagnostic {
  const entry = CATALOGUE[code];
  const message = entry.template.replace(/\{(\w+)\}/g, (_, k: string) => String(args[k] ?? ""));
  return { code, severity: entry.severity, message, span, notes };
}

/** Collects diagnostics instead of throwing on the first one. */
export class DiagnosticBag {
  readonly items: Diagnostic[] = [];
  add(d: Diagnostic): void {
    this.items.push(d);
  }
  report(
    code: DiagCode,
    span: Span | undefined,
    args?: Record<string, string | number>,
    notes?: RelatedNote[],
  ) {
    this.add(diag(code, span, args, notes));
  }
  get hasErrors(): boolean {
    return this.items.some((d) => d.severity === "error");
  }
}

export function hasErrors(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.severity === "error");
}

/** "Did you mean" from the closest candidate by edit distance. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  let best = "";
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  const limit = Math.max(1, Math.floor(name.length / 3));
  return best && bestD <= limit ? `; did you mean '${best}'?` : "";
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = up;
    }
  }
  return prev[b.length]!;
}

function frame(sources: SourceMap, span: Span, label: string): string[] {
  const text = sources.get(span.file);
  if (text === undefined) return [`  --> ${span.file}`];
  const { line, col } = lineCol(text, span.start);
  const lineStart = text.lastIndexOf("\n", span.start - 1) + 1;
  let lineEnd = text.indexOf("\n", lineStart);
  if (lineEnd < 0) lineEnd = text.length;
  const source = text.slice(lineStart, lineEnd).replace(/\r$/, "");
  const caretEnd = Math.max(span.start + 1, Math.min(span.end, lineEnd));
  const gutter = String(line).length;
  const pad = " ".repeat(gutter);
  const carets = " ".repeat(col - 1) + "^".repeat(Math.max(1, caretEnd - span.start));
  return [
    `${pad}--> ${span.file}:${line}:${col}`,
    `${pad} |`,
    `${line} | ${source}`,
    `${pad} | ${carets}${label ? " " + label : ""}`,
  ];
}

/** Renders `severity[code]: message`, `file:line:col`, the source line with carets, then the notes. */
export function renderDiagnostic(d: Diagnostic, sources: SourceMap): string {
  const out = [`${d.severity}[${d.code}]: ${d.message}`];
  if (d.span) out.push(...frame(sources, d.span, ""));
  for (const n of d.notes) {
    if (n.span) {
      out.push(`note: ${n.message}`);
      out.push(...frame(sources, n.span, ""));
    } else out.push(`  = note: ${n.message}`);
  }
  return out.join("\n");
}

export function renderAll(ds: readonly Diagnostic[], sources: SourceMap): string {
  return ds.map((d) => renderDiagnostic(d, sources)).join("\n\n");
}
