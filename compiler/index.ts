export { checkProgram, selectCell, selectModel, buildCellIR, type CompileResult } from "./driver.js";
export type { CheckedModel } from "./model/check.js";
export {
  compileNetwork,
  type DataShape,
  type NetworkChoice,
  type NetworkOptions,
  type NetworkOutput,
} from "./network/compile.js";
export {
  compile,
  compileIR,
  compileOrThrow,
  CellCompileError,
  TARGETS,
  type CompileOptions,
  type CompileOutput,
  type Target,
} from "./compile.js";
export { loadProgram, type SourceHost, type Program } from "./check/program.js";
export type { CheckedCell, InitSpec } from "./check/types.js";
export type { CellIR } from "./ir/cell.js";
export { printCell } from "./ir/print.js";
export { emitStage, stageOutput, printAst, printCellStage, StageError, STAGES, type Stage } from "./stage.js";
export { renderAll, renderDiagnostic, hasErrors, type Diagnostic } from "./diag/diagnostic.js";
export { SourceMap, type Span } from "./diag/span.js";
