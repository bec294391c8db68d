import type * as A from "../ast/ast.js";
import { BUILTINS } from "../check/builtins.js";
import type { Span } from "../diag/span.js";
import type { Analysis } from "./analysis.js";
import { sourceText } from "./hover.js";
import type { DeclKind, Occurrence } from "./symbols.js";
import { KEYWORDS } from "./tokens.js";

/**
 * Go to definition, find references, rename and the outline. References and renames look through every
 * analysis given: the file's own program and those of the files that import it (a parent's parameter
 * used in a child cell in another file), which the host knows.
 */
export function definition(a: Analysis, file: string, offset: number): Span[] {
  const o = a.index.at(file, offset);
  if (!o) return [];
  if (o.role === "free") {
    // A function reads the name from whichever cell calls it: every candidate.
    const out: Span[] = [];
    for (const cell of a.index.cellsCalling(o.scope?.name ?? "")) {
      const d = a.index.scopes.get(cell)?.names.get(o.name);
      if (d && !out.some((s) => same(s, d.span))) out.push(d.span);
    }
    return out;
  }
  return o.decl ? [o.decl.span] : [];
}

const same = (a: Span, b: Span) => a.file === b.file && a.start === b.start && a.end === b.end;

/** The symbol under the cursor, as an id shared by every analysis that holds its file. */
function symbolAt(a: Analysis, file: string, offset: number): Occurrence | undefined {
  const o = a.index.at(file, offset);
  return o?.sym ? o : undefined;
}

export function references(
  analyses: readonly Analysis[],
  file: string,
  offset: number,
  includeDeclaration = true,
): Span[] {
  const first = analyses.find((a) => a.has(file));
  const o = first && symbolAt(first, file, offset);
  if (!o) return [];
  const out = new Map<string, Span>();
  for (const a of analyses) {
    if (!a.has(o.sym!.decls[0]!.span.file)) continue;
    for (const r of a.index.occurrencesOf(o.sym!.id))
      if (includeDeclaration || r.role !== "decl") out.set(`${r.span.file}:${r.span.start}`, r.span);
  }
  return [...out.values()].sort((x, y) => (x.file < y.file ? -1 : x.file > y.file ? 1 : x.start - y.start));
}

const RENAMEABLE: ReadonlySet<DeclKind> = new Set<DeclKind>([
  "cell",
  "model",
  "fn",
  "fnParam",
  "input",
  "state",
  "param",
  "equation",
  "next",
  "dim",
  "modelInput",
  "embed",
  "readout",
]);

export type PrepareRename =
  { readonly start: number; readonly end: number; readonly name: string } | { readonly error: string };

export function prepareRename(a: Analysis, file: string, offset: number): PrepareRename {
  const o = a.index.at(file, offset);
  if (!o) return { error: "nothing to rename here" };
  if (o.role === "builtin" || o.role === "initialiser") return { error: `'${o.name}' is built in` };
  if (o.role === "free") return { error: `'${o.name}' is read from the calling cell: rename it in the cell` };
  if (!o.sym || !RENAMEABLE.has(o.sym.kind)) return { error: `'${o.name}' is not declared anywhere` };
  return { start: o.span.start, end: o.span.end, name: o.name };
}

export type RenameResult = { readonly edits: readonly Span[] } | { readonly error: string };

/** Every span to replace by `newName`, or why the rename would change what the program means. */
export function rename(
  analyses: readonly Analysis[],
  file: string,
  offset: number,
  newName: string,
): RenameResult {
  const first = analyses.find((a) => a.has(file));
  if (!first) return { error: "the file is not loaded" };
  const ok = prepareRename(first, file, offset);
  if ("error" in ok) return ok;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(newName)) return { error: `'${newName}' is not a name` };
  if (KEYWORDS.has(newName)) return { error: `'${newName}' is a keyword` };
  const o = first.index.at(file, offset)!;
  const sym = o.sym!;
  if (newName === sym.name) return { edits: [] };
  const edits = new Map<string, Span>();
  for (const a of analyses) {
    if (!a.has(sym.decls[0]!.span.file)) continue;
    const occ = a.index.occurrencesOf(sym.id);
    const clash = conflict(a, sym.kind, sym.name, newName, occ);
    if (clash) return { error: clash };
    for (const r of occ) edits.set(`${r.span.file}:${r.span.start}`, r.span);
  }
  return { edits: [...edits.values()] };
}

/** Why renaming would change the program's meaning, if it would. */
function conflict(
  a: Analysis,
  kind: DeclKind,
  old: string,
  name: string,
  occ: readonly Occurrence[],
): string | undefined {
  const p = a.program;
  switch (kind) {
    case "cell":
      return p.cells.has(name) ? `a cell '${name}' exists already` : undefined;
    case "model":
      return p.models.has(name) ? `a model '${name}' exists already` : undefined;
    case "fn":
      if (p.fns.has(name)) return `a function '${name}' exists already`;
      return Object.hasOwn(BUILTINS, name) ? `'${name}' would hide the built-in function` : undefined;
    case "fnParam": {
      const fn = p.fns.get(occ[0]?.scope?.name ?? "");
      if (fn?.params.some((q) => q.name === name)) return `'${fn.name}' has a parameter '${name}' already`;
      const captured = a.index
        .occurrences(fn?.span.file ?? "")
        .some((x) => x.role === "free" && x.name === name && x.scope?.name === fn?.name);
      return captured
        ? `'${fn?.name}' reads '${name}' from the calling cell: the parameter would hide it`
        : undefined;
    }
    case "dim": {
      const cells = cellsOf(a, occ);
      for (const c of cells)
        if (a.index.scopes.get(c)?.dims.has(name))
          return `cell '${c.name}' has a dimension '${name}' already`;
      return undefined;
    }
    default: {
      for (const c of cellsOf(a, occ)) {
        const scope = a.index.scopes.get(c);
        if (scope?.names.has(name)) return `'${name}' is a name in cell '${c.name}' already`;
        for (const fn of a.index.fnsCalledBy(c)) {
          const f = p.fns.get(fn);
          const reads = a.index
            .occurrences(f?.span.file ?? "")
            .some((x) => x.role === "free" && x.scope?.name === fn && x.name === old);
          if (reads)
            return `function '${fn}' reads '${old}' from cell '${c.name}': rename it there as well first`;
        }
      }
      for (const m of modelsOf(occ)) {
        const ast = p.models.get(m);
        const taken = ast && [...ast.inputs, ...ast.embeds, ...ast.params].some((d) => d.name === name);
        if (taken || ast?.readouts.some((r) => r.target === name))
          return `'${name}' is a name in model '${m}' already`;
      }
      return undefined;
    }
  }
}

function cellsOf(a: Analysis, occ: readonly Occurrence[]): A.CellAst[] {
  const out = new Set<A.CellAst>();
  for (const o of occ)
    if (o.scope?.kind === "cell") {
      const c = a.program.cells.get(o.scope.name);
      if (c) out.add(c);
    }
  return [...out];
}

function modelsOf(occ: readonly Occurrence[]): string[] {
  return [...new Set(occ.flatMap((o) => (o.scope?.kind === "model" ? [o.scope.name] : [])))];
}

export interface OutlineSymbol {
  readonly name: string;
  readonly kind: DeclKind;
  readonly detail?: string;
  /** The whole declaration, and the name in it. */
  readonly span: Span;
  readonly selection: Span;
  readonly children: readonly OutlineSymbol[];
}

/** The file's cells, models and functions, each with its declarations. */
export function documentSymbols(a: Analysis, file: string): OutlineSymbol[] {
  const ast = a.program.files.find((f) => f.file === file);
  if (!ast) return [];
  const to = (s: Span, e: Span): Span => ({ file: s.file, start: s.start, end: Math.max(s.end, e.end) });
  const leaf = (
    name: string,
    kind: DeclKind,
    selection: Span,
    end: Span,
    detail?: string,
  ): OutlineSymbol => ({
    name,
    kind,
    detail,
    span: to(selection, end),
    selection,
    children: [],
  });
  const tensor = (kind: DeclKind, d: A.TensorDeclAst) =>
    leaf(d.name, kind, d.nameSpan, d.shape.span, sourceText(a, d.shape.span));
  const param = (kind: DeclKind, d: A.ParamDeclAst) =>
    leaf(d.name, kind, d.nameSpan, d.init?.span ?? d.shape.span, sourceText(a, d.shape.span));
  const out: OutlineSymbol[] = [];
  for (const c of ast.cells)
    out.push({
      name: c.name,
      kind: "cell",
      detail: c.parent ? `extends ${c.parent.name}` : undefined,
      span: c.span,
      selection: c.nameSpan,
      children: [
        ...c.inputs.map((d) => tensor("input", d)),
        ...c.states.map((d) => tensor("state", d)),
        ...c.params.map((d) => param("param", d)),
        ...c.equations.map((e) =>
          leaf(
            e.target + (e.prime ? "'" : ""),
            e.prime ? "next" : "equation",
            e.targetSpan,
            e.span,
            sourceText(a, e.value.span),
          ),
        ),
      ],
    });
  for (const f of ast.fns)
    out.push({
      name: f.name,
      kind: "fn",
      detail: `(${f.params.map((p) => p.name).join(", ")})`,
      span: f.span,
      selection: f.nameSpan,
      children: f.params.map((p) => leaf(p.name, "fnParam", p.span, p.span)),
    });
  for (const m of ast.models)
    out.push({
      name: m.name,
      kind: "model",
      detail: m.cells[0] ? `cell ${m.cells[0].name}` : undefined,
      span: m.span,
      selection: m.nameSpan,
      children: [
        ...m.inputs.map((d) =>
          leaf(d.name, "modelInput", d.nameSpan, d.shape.span, sourceText(a, d.shape.span)),
        ),
        ...m.embeds.map((d) => param("embed", d)),
        ...m.params.map((d) => param("param", d)),
        ...m.readouts.map((r) =>
          leaf(r.target, "readout", r.targetSpan, r.span, sourceText(a, r.value.span)),
        ),
      ],
    });
  return out.sort((x, y) => x.span.start - y.span.start);
}
