export * from "./core.js";
export {
  compile,
  compileCell,
  compileIR,
  CellCompileError,
  type CompileOptions,
  type CompileOutput,
} from "./compile.js";
