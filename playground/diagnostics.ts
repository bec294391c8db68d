// The checker's diagnostics, shown two ways: as editor underlines (with the notes in the tooltip) and as
// a list under the editor, `severity[code] line:col message`, the same codes and positions as the CLI.
import type { Diagnostic as EditorDiagnostic } from "@codemirror/lint";
import type { Diagnostic } from "../compiler/diag/diagnostic.js";
import { lineCol, type SourceMap, type Span } from "../compiler/diag/span.js";

function where(span: Span | undefined, sources: SourceMap): string {
  if (!span) return "";
  const { line, col } = lineCol(sources.get(span.file) ?? "", span.start);
  return `${span.file}:${line}:${col}`;
}

const noteLines = (d: Diagnostic, sources: SourceMap) =>
  d.notes.map((n) => `note: ${n.message}${n.span ? ` (${where(n.span, sources)})` : ""}`);

/** Underlines in the entry file; a diagnostic in an imported file is put on the file's first character. */
export function toEditor(ds: readonly Diagnostic[], file: string, sources: SourceMap): EditorDiagnostic[] {
  const length = sources.get(file)?.length ?? 0;
  return ds.map((d) => {
    const here = d.span?.file === file;
    const from = here ? Math.min(d.span!.start, length) : 0;
    const to = here ? Math.min(Math.max(d.span!.end, from), length) : 0;
    const elsewhere = d.span && !here ? `${where(d.span, sources)}: ` : "";
    return {
      from,
      to,
      severity: d.severity === "note" ? "info" : d.severity,
      source: `${d.severity}[${d.code}]`,
      message: [elsewhere + d.message, ...noteLines(d, sources)].join("\n"),
    };
  });
}

/** The list under the editor; each item carries its code and position as data attributes. */
export function renderList(list: HTMLElement, ds: readonly Diagnostic[], sources: SourceMap): void {
  list.replaceChildren(
    ...ds.map((d) => {
      const li = document.createElement("li");
      li.className = `diag ${d.severity}`;
      li.dataset.code = d.code;
      if (d.span) {
        const { line, col } = lineCol(sources.get(d.span.file) ?? "", d.span.start);
        Object.assign(li.dataset, { file: d.span.file, line: String(line), col: String(col) });
      }
      const head = document.createElement("div");
      head.textContent = `${d.severity}[${d.code}] ${where(d.span, sources)} ${d.message}`;
      li.append(head);
      for (const n of noteLines(d, sources)) {
        const note = document.createElement("div");
        note.className = "note";
        note.textContent = n;
        li.append(note);
      }
      return li;
    }),
  );
}
