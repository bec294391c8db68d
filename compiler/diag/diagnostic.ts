import { CATALOGUE, type DiagCode } from "./catalogue.js";
import { lineBounds, lineCol, type SourceMap, type Span } from "./span.js";

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

/** Names longer than this get no suggestion: nobody mistypes one, and the distance is quadratic. */
const SUGGEST_MAX_LENGTH = 64;

/** "Did you mean" from the closest candidate by edit distance. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  if (name.length > SUGGEST_MAX_LENGTH) return "";
  const limit = Math.max(1, Math.floor(name.length / 3));
  let best = "";
  let bestD = Infinity;
  for (const c of candidates) {
    if (Math.abs(c.length - name.length) > limit) continue;
    const d = editDistance(name, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best && bestD <= limit ? `; did you mean '${best}'?` : "";
}

/** Characters that look alike in most fonts; swapping one for the other costs half an edit. */
const LOOKALIKE = new Set([
  "0o",
  "o0",
  "0O",
  "O0",
  "1l",
  "l1",
  "1I",
  "I1",
  "lI",
  "Il",
  "5s",
  "s5",
  "2z",
  "z2",
]);

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      const x = a[i - 1]!;
      const y = b[j - 1]!;
      const sub = x === y ? 0 : x.toLowerCase() === y.toLowerCase() || LOOKALIKE.has(x + y) ? 0.5 : 1;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diagonal + sub);
      diagonal = up;
    }
  }
  return prev[b.length]!;
}

/** More than this many diagnostics of one severity are not shown: the first ones say what is wrong. */
export const MAX_DIAGNOSTICS = 100;

/** Keeps the first MAX_DIAGNOSTICS of each severity, with a note saying how many more there were. */
export function capDiagnostics(ds: readonly Diagnostic[]): Diagnostic[] {
  const seen = new Map<Severity, number>();
  const kept: Diagnostic[] = [];
  const dropped: Diagnostic[] = [];
  for (const d of ds) {
    const n = (seen.get(d.severity) ?? 0) + 1;
    seen.set(d.severity, n);
    if (n <= MAX_DIAGNOSTICS) kept.push(d);
    else dropped.push(d);
  }
  if (dropped.length) kept.push(diag("N003", dropped[0]!.span, { count: dropped.length }));
  return kept;
}

/** Orders diagnostics by file (in order of first appearance) and position; those without a span first. */
export function sortDiagnostics(ds: readonly Diagnostic[]): Diagnostic[] {
  const files = new Map<string, number>();
  for (const d of ds) if (d.span && !files.has(d.span.file)) files.set(d.span.file, files.size);
  const rank = (d: Diagnostic) => (d.span ? [files.get(d.span.file)!, d.span.start] : [-1, 0]);
  return ds
    .map((d, i) => ({ d, i, r: rank(d) }))
    .sort((x, y) => x.r[0]! - y.r[0]! || x.r[1]! - y.r[1]! || x.i - y.i)
    .map((x) => x.d);
}

const MAX_SHOWN = 120;

function frame(sources: SourceMap, span: Span, label: string): string[] {
  const text = sources.get(span.file);
  if (text === undefined) return [`  --> ${span.file}`];
  const { line, col } = lineCol(text, span.start);
  let { start: lineStart, end: lineEnd } = lineBounds(text, span.start);
  // A very long line is shown as a window around the span.
  let before = "";
  let after = "";
  if (lineEnd - lineStart > MAX_SHOWN) {
    const from = Math.max(lineStart, span.start - 40);
    if (from > lineStart) [lineStart, before] = [from, "..."];
    if (lineEnd - lineStart > MAX_SHOWN) [lineEnd, after] = [lineStart + MAX_SHOWN, "..."];
  }
  const source = before + text.slice(lineStart, lineEnd) + after;
  const caretEnd = Math.max(span.start + 1, Math.min(span.end, lineEnd));
  const gutter = String(line).length;
  const pad = " ".repeat(gutter);
  const carets =
    " ".repeat(before.length + span.start - lineStart) + "^".repeat(Math.max(1, caretEnd - span.start));
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
