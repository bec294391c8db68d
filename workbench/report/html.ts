// report.html: one self-contained page (inline SVG, no scripts, no external files) with what was run,
// where, the table and the pictures.

export interface ReportPage {
  readonly title: string;
  /** The command line as given. */
  readonly command: string;
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
  /** Further tables after the notes (the per-seed rows), each with a caption. */
  readonly tables?: readonly {
    readonly caption: string;
    readonly header: readonly string[];
    readonly rows: readonly (readonly string[])[];
  }[];
  /** SVG text (from vega, whose text it escapes), each with a caption. */
  readonly figures: readonly { readonly caption: string; readonly svg: string }[];
  /** Further lines under the table (settings, notes). */
  readonly notes?: readonly string[];
  /** The machine it ran on (CPU, cores, memory, OS, Node): what a ms/step column is read against. */
  readonly machine: string;
}

const ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};
export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

function table(header: readonly string[], rows: readonly (readonly string[])[], caption?: string): string {
  const e = escapeHtml;
  const head = header.map((h) => `<th>${e(h)}</th>`).join("");
  const body = rows.map((r) => `<tr>${r.map((v) => `<td>${e(v)}</td>`).join("")}</tr>`).join("\n");
  return `<table>
${caption !== undefined ? `<caption>${e(caption)}</caption>\n` : ""}<thead><tr>${head}</tr></thead>
<tbody>
${body}
</tbody>
</table>`;
}

export function reportHtml(p: ReportPage): string {
  const e = escapeHtml;
  const figures = p.figures
    .map((f) => `<figure>\n${stripProlog(f.svg)}\n<figcaption>${e(f.caption)}</figcaption>\n</figure>`)
    .join("\n");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${e(p.title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.3em 0.8em; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
code { background: #f4f4f4; padding: 0.1em 0.3em; }
figure { margin: 1.5em 0; }
figcaption, .meta, caption { color: #555; font-size: 0.9em; }
caption { text-align: left; }
</style>
</head>
<body>
<h1>${e(p.title)}</h1>
<p><code>${e(p.command)}</code></p>
${table(p.header, p.rows)}
${(p.notes ?? []).map((n) => `<p class="meta">${e(n)}</p>`).join("\n")}
${figures}
${(p.tables ?? []).map((t) => table(t.header, t.rows, t.caption)).join("\n")}
<p class="meta">${e(p.machine)}; ${e(new Date().toISOString())}</p>
</body>
</html>
`;
}

/** An XML prolog is not allowed inside HTML. */
const stripProlog = (svg: string) => svg.replace(/^<\?xml[^>]*>\s*/, "");
