import { buildStepKernels, type StepKernels } from "../compiler/autodiff/grad.js";
import { emitModuleJs } from "../compiler/codegen/js.js";
import type { SourceHost } from "../compiler/check/program.js";
import { checkProgram, selectCell, buildCellIR } from "../compiler/driver.js";
import { hasErrors, renderAll, type Diagnostic } from "../compiler/diag/diagnostic.js";
import type { CellIR } from "../compiler/ir/cell.js";
import { CellcError, type FloatArray, type TensorData } from "./tensor.js";

export type StepFn = (bufs: readonly (TensorData | undefined)[]) => void;
export type KernelFactory = (B: number, dims: readonly number[]) => StepFn;

/** A cell compiled for the CPU: its IR, its step kernels as IR and as JS, and the loaded JS factories. */
export interface CompiledCell {
  readonly ir: CellIR;
  readonly kernels: StepKernels;
  readonly js: string;
  readonly forward: KernelFactory;
  readonly backward: KernelFactory;
  readonly diagnostics: readonly Diagnostic[];
}

/** Thrown for a .cell file with errors; the message is the rendered diagnostics. */
export class CellCompileError extends CellcError {
  constructor(
    message: string,
    readonly diagnostics: readonly Diagnostic[],
  ) {
    super(message);
  }
}

export interface CompileOptions {
  /** The file name used in diagnostics and to resolve imports. */
  readonly file?: string;
  /** Which cell, when the source defines several. */
  readonly cell?: string;
  /** Where imported files are read from; by default imports fail. */
  readonly host?: SourceHost;
}

/** Compiles a cell from source text (in Node or a browser). Throws CellCompileError on errors. */
export function compileCell(source: string, opts: CompileOptions = {}): CompiledCell {
  const file = opts.file ?? "input.cell";
  const host = opts.host ?? {
    read: (p: string) => {
      throw new Error(`no source host to read '${p}'`);
    },
  };
  const r = checkProgram(file, host, source);
  const sel = hasErrors(r.diagnostics)
    ? { diagnostics: [] }
    : selectCell(r, opts.cell, "pass the `cell` option to choose one");
  const all = [...r.diagnostics, ...sel.diagnostics];
  if (hasErrors(all) || !("cell" in sel) || !sel.cell)
    throw new CellCompileError(renderAll(all, r.program.sources), all);
  return compileIR(buildCellIR(sel.cell), all);
}

export function compileIR(ir: CellIR, diagnostics: readonly Diagnostic[] = []): CompiledCell {
  const kernels = buildStepKernels(ir);
  const js = emitModuleJs([kernels.forward, kernels.backward], ir.dims);
  const body = js.replace(/^export function /gm, "function ") + "\nreturn { forward, backward };";
  // The generated code holds no user text (see codegen/js.ts), so evaluating it is safe.
  const mod = new Function(body)() as { forward: KernelFactory; backward: KernelFactory };
  return { ir, kernels, js, forward: mod.forward, backward: mod.backward, diagnostics };
}

export type { FloatArray };
