// Compiling a cell and loading it in one call: the compiler (compiler/compile.ts) then the runtime's
// loader (runtime/cell.ts). Nothing here touches files, so a page may use it.
import { compileOrThrow, type CompileOptions } from "../compiler/compile.js";
import type { Diagnostic } from "../compiler/diag/diagnostic.js";
import type { CellIR } from "../compiler/ir/cell.js";
import { loadArtifact, type CompiledCell } from "../runtime/cell.js";

/** A compiled and loaded cell, with the compiler's view of it for tools that read it (exporters, printers). */
export type CompiledIR = CompiledCell & { readonly ir: CellIR };

/** Compiles a cell from source text and loads it (in Node or a browser). Throws CellCompileError on errors. */
export function compileCell(
  source: string,
  opts: CompileOptions = {},
): CompiledIR & { diagnostics: readonly Diagnostic[] } {
  const out = compileOrThrow(source, opts);
  return { ...loadArtifact(out.artifact), diagnostics: out.diagnostics, ir: out.ir };
}
