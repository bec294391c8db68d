export {
  compileCell,
  compileIR,
  CellCompileError,
  type CompiledCell,
  type CompileOptions,
  type KernelFactory,
  type StepFn,
} from "./cell.js";
export {
  Model,
  Stream,
  jsBackend,
  type Backend,
  type Upstream,
  type Inputs,
  type ModelOptions,
  type ForwardOptions,
  type ForwardResult,
  type Gradients,
} from "./model.js";
export { readSafetensors, writeSafetensors } from "./safetensors.js";
export { tensor, CellcError, type Tensor, type DType } from "./tensor.js";
