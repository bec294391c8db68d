import type * as A from "../ast/ast.js";
import { shapeType } from "../check/check.js";
import { DiagnosticBag } from "../diag/diagnostic.js";
import type { Span } from "../diag/span.js";
import { printType, type Type } from "../../artifact/shape.js";
import type { Analysis } from "./analysis.js";
import { builtinDoc, initialiserDoc } from "./docs.js";
import type { Decl, Occurrence } from "./symbols.js";

export interface HoverResult {
  /** The name hovered, in the file asked about. */
  readonly start: number;
  readonly end: number;
  /** Markdown: code in ```cell blocks, then prose. */
  readonly markdown: string;
}

/** What the name at `offset` is: its declaration and shape, a function's signature, a built-in's doc. */
export function hover(a: Analysis, file: string, offset: number): HoverResult | undefined {
  const o = a.index.at(file, offset);
  if (!o) return undefined;
  const text = describe(a, o);
  return text ? { start: o.span.start, end: o.span.end, markdown: text } : undefined;
}

const code = (...lines: string[]) => "```cell\n" + lines.join("\n") + "\n```";
const MAX_SHOWN = 300;

/** Source text as one line: comments dropped, blank space collapsed, long text cut. */
export function sourceText(a: Analysis, span: Span): string {
  const t = (a.text(span.file) ?? "")
    .slice(span.start, span.end)
    .replace(/#[^\r\n]*/g, "")
    .replace(/\s+/g, " ")
    .trim();
  return t.length > MAX_SHOWN ? `${t.slice(0, MAX_SHOWN)} ...` : t;
}

export function typeText(name: string, t: Type): string {
  return `${name} : ${printType(t)}${t.batched ? "   (per row)" : ""}`;
}

const declaredType = (shape: A.ShapeAst, batched: boolean, maxRank: number): Type =>
  shapeType(shape, maxRank, "", batched, new DiagnosticBag());

function describe(a: Analysis, o: Occurrence): string | undefined {
  if (o.role === "builtin") {
    const d = builtinDoc(o.name);
    return d && `${code(d.signature)}\n\nBuilt-in function. ${d.doc}`;
  }
  if (o.role === "initialiser") {
    const d = initialiserDoc(o.name);
    return d && `${code(d.signature)}\n\nInitialiser. ${d.doc}`;
  }
  if (o.role === "free") return freeName(a, o);
  const d = o.decl;
  if (!d) return undefined;
  const where = o.scope?.kind === "cell" || o.scope?.kind === "model" ? o.scope.name : undefined;
  const from = d.owner && where && d.owner !== where ? `\n\nDeclared in \`${d.owner}\`.` : "";
  switch (d.kind) {
    case "cell":
      return cellSummary(a, d.ast);
    case "model": {
      const m = d.ast;
      return code(`model ${m.name}`, ...m.cells.map((c) => `cell ${c.name}`)) + "\n\nA model.";
    }
    case "fn":
      return `${code(sourceText(a, d.ast.span))}\n\nFunction, inlined at each call.`;
    case "fnParam":
      return `${code(d.name)}\n\nParameter of function \`${d.ast.name}\`.`;
    case "input":
    case "state": {
      const lines = [
        typeText(d.name, declaredType(d.ast.shape, true, 1)),
        `${d.kind} ${d.name}${sourceText(a, d.ast.shape.span)}${d.ast.init !== undefined ? ` = ${d.ast.init}` : ""}`,
      ];
      if (d.kind === "state") {
        const next = nextEquation(a, o, d);
        lines.push(next ? `${d.name}' = ${sourceText(a, next.ast.value.span)}` : `# no next-state equation`);
      }
      return code(...lines) + from;
    }
    case "param":
    case "embed": {
      const init = d.ast.init ? ` ${sourceText(a, d.ast.init.span)}` : "";
      return (
        code(
          typeText(d.name, declaredType(d.ast.shape, false, 2)),
          `${d.kind} ${d.name} : ${sourceText(a, d.ast.shape.span)}${init}`,
        ) + from
      );
    }
    case "modelInput": {
      const ty = d.ast.type ? `${d.ast.type.name}` : "";
      return code(`input ${d.name}${ty ? ` : ${ty}` : ""}${sourceText(a, d.ast.shape.span)}`) + from;
    }
    case "equation":
    case "next": {
      const state = d.kind === "next" ? cellScope(a, o, d)?.names.get(d.name) : undefined;
      const key = d.kind === "next" ? `${d.name}'` : d.name;
      const t = typeOf(a, o, d, key);
      const lines = [
        ...(t ? [typeText(key, t)] : []),
        ...(state && (state.kind === "state" || state.kind === "input")
          ? [`${state.kind} ${state.name}${sourceText(a, state.ast.shape.span)}`]
          : []),
        `${key} = ${sourceText(a, d.ast.value.span)}`,
      ];
      return code(...lines) + from;
    }
    case "readout":
      return code(`readout ${d.name} = ${sourceText(a, d.ast.value.span)}`) + from;
    case "dim":
      return `${code(d.name)}\n\nDimension: a size bound when the cell is instantiated (from its parameters, or --dims).`;
  }
}

/** The cell whose scope the occurrence is read in (or the declaration's own cell). */
function cellScope(a: Analysis, o: Occurrence, d: Decl) {
  const name = o.scope?.kind === "cell" ? o.scope.name : d.owner;
  const cell = name ? a.program.cells.get(name) : undefined;
  return cell && a.index.scopes.get(cell);
}

function nextEquation(
  a: Analysis,
  o: Occurrence,
  d: Decl,
): Extract<Decl, { kind: "equation" | "next" }> | undefined {
  const n = cellScope(a, o, d)?.next.get(d.name);
  return n?.kind === "next" ? n : undefined;
}

function typeOf(a: Analysis, o: Occurrence, d: Decl, key: string): Type | undefined {
  const scope = cellScope(a, o, d);
  return scope && a.equationTypes(scope.cell).get(key);
}

function cellSummary(a: Analysis, c: A.CellAst): string {
  const scope = a.index.scopes.get(c);
  const lines = [`cell ${c.name}${c.parent ? ` extends ${c.parent.name}` : ""}`];
  const by = (kind: string) => [...(scope?.names.values() ?? [])].filter((d) => d.kind === kind);
  const list = (kind: "input" | "state") =>
    by(kind).map((d) => (d.kind === kind ? `${d.name}${sourceText(a, d.ast.shape.span)}` : d.name));
  const inputs = list("input");
  const states = list("state");
  if (inputs.length) lines.push(`  input  ${inputs.join(", ")}`);
  if (states.length) lines.push(`  state  ${states.join(", ")}`);
  const params = by("param").map((d) => d.name);
  if (params.length) lines.push(`  param  ${params.join(", ")}`);
  // The outputs: the cell's own list, else the nearest parent's.
  for (let s = scope; s; s = s.parent)
    if (s.cell.outputs.length) {
      lines.push(`  output ${s.cell.outputs.map((x) => x.name + (x.prime ? "'" : "")).join(", ")}`);
      break;
    }
  return code(...lines);
}

/** A name in a function's body that is not its parameter: the calling cell's, whichever calls it. */
function freeName(a: Analysis, o: Occurrence): string {
  const fn = o.scope?.name ?? "";
  const lines: string[] = [];
  for (const cell of a.index.cellsCalling(fn)) {
    const d = a.index.scopes.get(cell)?.names.get(o.name);
    if (d && (d.kind === "input" || d.kind === "state"))
      lines.push(`${d.kind} ${d.name}${sourceText(a, d.ast.shape.span)}   # in ${cell.name}`);
    else if (d && (d.kind === "param" || d.kind === "embed"))
      lines.push(`param ${d.name} : ${sourceText(a, d.ast.shape.span)}   # in ${cell.name}`);
    else if (d && d.kind === "equation") lines.push(`${d.name} = ...   # in ${cell.name}`);
  }
  const head = `\`${o.name}\` is not a parameter of \`${fn}\`: it is read from the cell that calls it.`;
  return lines.length ? `${code(...lines)}\n\n${head}` : head;
}
