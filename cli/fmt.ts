import {
  chmodSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { nodeHost } from "./node-host.js";
import { diag, renderAll, type Diagnostic } from "../compiler/diag/diagnostic.js";
import { SourceMap } from "../compiler/diag/span.js";
import { formatSource } from "../compiler/format/format.js";

export interface Io {
  out(s: string): void;
  err(s: string): void;
}

/**
 * `cellc fmt [--check] FILE...`: lays each file out the canonical way (compiler/format), in place; a
 * folder stands for the .cell files under it, and `-` for standard input, formatted to standard output
 * (for editors that format through a command). A file with a syntax error is left as it is and its
 * diagnostics are printed. With --check nothing is written: the files that would change are listed.
 * Exit status 1 when a file could not be read or formatted, or (--check) when one would change.
 */
export function fmtCommand(files: string[], check: boolean, io: Io): number {
  let status = 0;
  for (const file of expand(files)) {
    let text: string;
    try {
      text = file === "-" ? readFileSync(0, "utf8") : nodeHost.read(file);
    } catch (e) {
      report(io, [diag("E003", undefined, { path: file, reason: reason(e) })], new SourceMap());
      status = 1;
      continue;
    }
    let r: ReturnType<typeof formatSource>;
    try {
      r = formatSource(file, text);
    } catch (e) {
      io.err(
        `cellc: internal error: ${e instanceof Error ? e.message : String(e)}; ${file} is left as it was\n`,
      );
      status = 1;
      continue;
    }
    if (!r.ok) {
      const sources = new SourceMap();
      sources.add(file, text);
      report(io, r.diagnostics, sources);
      io.err(`${file}: not formatted: it does not parse\n`);
      // As a filter (`:%!cellc fmt -`), give the text back as it came.
      if (file === "-" && !check) io.out(text);
      status = 1;
    } else if (file === "-") {
      if (!check) io.out(r.text);
      else if (r.changed) status = 1;
    } else if (r.changed && check) {
      io.out(`${file}\n`);
      status = 1;
    } else if (r.changed)
      try {
        writeAtomically(file, r.text);
      } catch (e) {
        io.err(`cellc: error: cannot write '${file}': ${reason(e)}\n`);
        status = 1;
      }
  }
  return status;
}

function report(io: Io, ds: readonly Diagnostic[], sources: SourceMap): void {
  if (ds.length) io.err(renderAll(ds, sources) + "\n");
}

/** Files as given; a folder: the .cell files under it, sorted (hidden folders and node_modules skipped). */
function expand(paths: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      if (e.isDirectory() && !e.name.startsWith(".") && e.name !== "node_modules") walk(p);
      else if (e.isFile() && e.name.endsWith(".cell")) out.push(p);
    }
  };
  for (const p of paths) {
    let dir = false;
    try {
      dir = statSync(p).isDirectory();
    } catch {
      // not there: reading it says so
    }
    if (dir && p !== "-") walk(p);
    else out.push(p);
  }
  return out;
}

/** A temporary file beside the target, renamed over it: a failed write leaves the old file whole. */
function writeAtomically(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, text);
    chmodSync(tmp, statSync(file).mode & 0o7777);
    renameSync(tmp, file);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // never written
    }
    throw e;
  }
}

function reason(e: unknown): string {
  const code = (e as { code?: string }).code;
  if (code === "ENOENT") return "no such file";
  if (code === "EISDIR") return "it is a directory";
  if (code === "EACCES") return "permission denied";
  return e instanceof Error ? e.message : String(e);
}
