import type { CellAst, FileAst, FnAst, ModelAst } from "../ast/ast.js";
import { parseFile } from "../ast/build.js";
import { diag, type Diagnostic } from "../diag/diagnostic.js";
import { SourceMap } from "../diag/span.js";

/** The largest source file: a .cell file is a few kilobytes; this refuses a device or a data file. */
export const MAX_SOURCE_BYTES = 256 * 1024;

/** Where source files come from: the file system in Node, a map of texts in a browser. */
export interface SourceHost {
  read(path: string): string; // throws with a readable message when the file cannot be read
}

export interface Program {
  readonly entry: string;
  readonly sources: SourceMap;
  readonly files: readonly FileAst[];
  readonly cells: ReadonlyMap<string, CellAst>;
  readonly fns: ReadonlyMap<string, FnAst>;
  readonly models: ReadonlyMap<string, ModelAst>;
  readonly diagnostics: readonly Diagnostic[];
}

export function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i + 1);
}

export function joinPath(dir: string, rel: string): string {
  if (rel.startsWith("/")) return rel;
  const parts = (dir + rel).split("/");
  const out: string[] = [];
  for (const p of parts) {
    if (p === "." || (p === "" && out.length > 0)) continue;
    if (p === ".." && out.length > 0 && out[out.length - 1] !== "..") out.pop();
    else out.push(p);
  }
  return out.join("/");
}

/** Parses the entry file and everything it imports; all their cells and functions share one scope. */
export function loadProgram(entry: string, host: SourceHost, entryText?: string): Program {
  const sources = new SourceMap();
  const files: FileAst[] = [];
  const diagnostics: Diagnostic[] = [];
  const cells = new Map<string, CellAst>();
  const fns = new Map<string, FnAst>();
  const models = new Map<string, ModelAst>();
  const seen = new Set<string>();

  const load = (path: string, text: string) => {
    seen.add(path);
    sources.add(path, text);
    const { ast, diagnostics: ds } = parseFile(path, text);
    diagnostics.push(...ds);
    files.push(ast);
    for (const c of ast.cells) {
      const prev = cells.get(c.name);
      if (prev)
        diagnostics.push(
          diag("E022", c.nameSpan, { name: c.name }, [
            { message: "first defined here", span: prev.nameSpan },
          ]),
        );
      else cells.set(c.name, c);
    }
    for (const m of ast.models) {
      const prev = models.get(m.name);
      if (prev)
        diagnostics.push(
          diag("E072", m.nameSpan, { name: m.name }, [
            { message: "first defined here", span: prev.nameSpan },
          ]),
        );
      else models.set(m.name, m);
    }
    for (const f of ast.fns) {
      const prev = fns.get(f.name);
      if (prev)
        diagnostics.push(
          diag("E032", f.nameSpan, { name: f.name }, [
            { message: "first defined here", span: prev.nameSpan },
          ]),
        );
      else fns.set(f.name, f);
    }
    for (const imp of ast.imports) {
      const target = joinPath(dirname(path), imp.path);
      if (seen.has(target)) continue;
      // Only source files: an error in any other file would print its lines (`import "/etc/passwd"`).
      if (!target.endsWith(".cell")) {
        diagnostics.push(
          diag("E020", imp.span, { path: imp.path, reason: "only .cell files can be imported" }),
        );
        continue;
      }
      let t: string;
      try {
        t = host.read(target);
      } catch (e) {
        diagnostics.push(diag("E020", imp.span, { path: imp.path, reason: reason(e) }));
        continue;
      }
      load(target, t);
    }
  };

  let text = entryText;
  if (text !== undefined && text.length > MAX_SOURCE_BYTES) {
    const reason = `larger than the limit of ${MAX_SOURCE_BYTES} bytes`;
    diagnostics.push(diag("E003", undefined, { path: entry, reason }));
    return { entry, sources, files, cells, fns, models, diagnostics };
  }
  if (text === undefined) {
    try {
      text = host.read(entry);
    } catch (e) {
      diagnostics.push(diag("E003", undefined, { path: entry, reason: reason(e) }));
      return { entry, sources, files, cells, fns, models, diagnostics };
    }
  }
  load(entry, text);
  return { entry, sources, files, cells, fns, models, diagnostics };
}

function reason(e: unknown): string {
  const code = (e as { code?: string }).code;
  if (code === "ENOENT") return "no such file";
  if (code === "EISDIR") return "it is a directory";
  if (code === "EACCES") return "permission denied";
  if (code === "ENOTDIR") return "a part of the path is not a directory";
  return e instanceof Error ? e.message : String(e);
}

export function entryCells(p: Program): CellAst[] {
  return p.files.find((f) => f.file === p.entry)?.cells.slice() ?? [];
}

export function entryModels(p: Program): ModelAst[] {
  return p.files.find((f) => f.file === p.entry)?.models.slice() ?? [];
}
