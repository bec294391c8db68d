import type * as A from "../ast/ast.js";
import type { Diagnostic } from "../diag/diagnostic.js";
import type { Span } from "../diag/span.js";
import type { Analysis } from "./analysis.js";

/** A fix for a diagnostic: text edits in the diagnostic's file. */
export interface CodeFix {
  readonly title: string;
  readonly diagnostic: Diagnostic;
  readonly edits: readonly { readonly span: Span; readonly text: string }[];
  /** The fix an editor applies on "fix all" / auto-fix: the only one, or the first of several. */
  readonly preferred: boolean;
}

/**
 * The fixes for the diagnostics that touch [start, end] of a file: W004 `output h` -> `output h'`, W005 the
 * two ways to parenthesise `W @ x * y`, and every "did you mean" (E010 names, E011 functions, E018 cells,
 * E025 initialisers, and the model's).
 */
export function codeFixes(a: Analysis, file: string, start: number, end: number): CodeFix[] {
  const out: CodeFix[] = [];
  for (const d of a.diagnostics) {
    const s = d.span;
    if (!s || s.file !== file || s.end < start || s.start > end) continue;
    const text = a.text(file) ?? "";
    if (d.code === "W004") {
      const name = /output '([^']+)'/.exec(d.message)?.[1];
      const at = name ? text.indexOf(name, s.start) : -1;
      if (name && at >= 0 && at < s.end) {
        const after = { file, start: at + name.length, end: at + name.length };
        out.push({
          title: `Output ${name}' (the state's new value)`,
          diagnostic: d,
          edits: [{ span: after, text: "'" }],
          preferred: true,
        });
      }
    } else if (d.code === "W005") out.push(...parenthesise(a, d));
    else {
      const m = /'([^']+)'[^']*; did you mean '([^']+)'\?$/.exec(d.message);
      if (!m) continue;
      const [, wrong, right] = m as unknown as [string, string, string];
      const at = wordIn(text, s, wrong);
      if (at !== undefined)
        out.push({
          title: `Change '${wrong}' to '${right}'`,
          diagnostic: d,
          edits: [{ span: { file, start: at, end: at + wrong.length }, text: right }],
          preferred: true,
        });
    }
  }
  return out;
}

/** Where `word` stands as a whole word in the span. */
function wordIn(text: string, s: Span, word: string): number | undefined {
  const re = new RegExp(`(?<![A-Za-z0-9_])${word}(?![A-Za-z0-9_])`, "g");
  re.lastIndex = s.start;
  const m = re.exec(text);
  return m && m.index + word.length <= s.end ? m.index : undefined;
}

/** `W @ x * y`: `(W @ x) * y` (what it means now), or `W @ (x * y)` (what it may have been meant as). */
function parenthesise(a: Analysis, d: Diagnostic): CodeFix[] {
  const s = d.span!;
  const text = a.text(s.file) ?? "";
  const found = findPair(a, s);
  if (!found) return [];
  const [left, right] = found;
  if (left.kind !== "binary" || left.op !== "@") return [];
  const l = outer(text, left.span);
  const r = outer(text, right.span);
  const last = outer(text, left.right.span);
  const show = (x: { start: number; end: number }) => text.slice(x.start, x.end).replace(/\s+/g, " ");
  const at = (pos: number): Span => ({ file: s.file, start: pos, end: pos });
  return [
    {
      title: `Parenthesise as (${show(l)}) * ${show(r)}`,
      diagnostic: d,
      edits: [
        { span: at(l.start), text: "(" },
        { span: at(l.end), text: ")" },
      ],
      preferred: true,
    },
    {
      title: `Parenthesise as ${show({ start: l.start, end: last.start })}(${show({ start: last.start, end: r.end })})`,
      diagnostic: d,
      edits: [
        { span: at(last.start), text: "(" },
        { span: at(r.end), text: ")" },
      ],
      preferred: false,
    },
  ];
}

/** The two neighbouring operands of a `*` chain that the W005 span covers. */
function findPair(a: Analysis, s: Span): [A.Expr, A.Expr] | undefined {
  const ast = a.program.files.find((f) => f.file === s.file);
  if (!ast) return undefined;
  const roots: A.Expr[] = [
    ...ast.fns.map((f) => f.body),
    ...ast.cells.flatMap((c) => c.equations.map((e) => e.value)),
    ...ast.models.flatMap((m) => [...m.readouts.map((r) => r.value), ...m.losses.flatMap((l) => l.args)]),
  ];
  const stack = roots.filter((r) => r.span.start <= s.start && s.end <= r.span.end + 1);
  while (stack.length) {
    const e = stack.pop()!;
    if (e.span.end < s.start || e.span.start > s.end) continue;
    if (e.kind === "binary" && e.op === "*" && e.left.kind === "binary") {
      // The right operand ends the span; the left one is the `*` chain's last operand before it.
      const leftmost = e.left.kind === "binary" && e.left.op === "*" ? e.left.right : e.left;
      if (
        e.right.span.end <= s.end &&
        leftmost.span.start >= s.start &&
        leftmost.kind === "binary" &&
        leftmost.op === "@"
      )
        return [leftmost, e.right];
    }
    if (e.kind === "binary") stack.push(e.left, e.right);
    else if (e.kind === "neg") stack.push(e.operand);
    else if (e.kind === "call") stack.push(...e.args);
    else if (e.kind === "concat") stack.push(...e.items);
  }
  return undefined;
}

/** A span widened to the parentheses written around it (the AST keeps no parentheses). */
function outer(text: string, s: Span): { start: number; end: number } {
  let start = s.start;
  let end = s.end;
  for (;;) {
    let i = start - 1;
    while (i >= 0 && /\s/.test(text[i]!)) i--;
    let j = end;
    while (j < text.length && /\s/.test(text[j]!)) j++;
    if (text[i] !== "(" || text[j] !== ")") return { start, end };
    // `f(x)`: the parentheses of a call belong to it, not to x.
    let k = i - 1;
    while (k >= 0 && /\s/.test(text[k]!)) k--;
    if (k >= 0 && /[A-Za-z0-9_]/.test(text[k]!)) return { start, end };
    start = i;
    end = j + 1;
  }
}
