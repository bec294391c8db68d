// The runtime alone: runs compiled artifacts, and imports nothing of the compiler's front end (no parser,
// no checker), so that a page that only runs kernels stays small. `cellc` (index.ts) adds compileCell.
export { loadArtifact, type CompiledCell, type KernelFactory, type KernelFns } from "./cell.js";
export type { Artifact } from "../compiler/schedule/artifact.js";
export {
  Model,
  Stream,
  jsBackend,
  defaultBackend,
  type Backend,
  type Upstream,
  type Inputs,
  type ModelOptions,
  type ForwardOptions,
  type ForwardResult,
  type Gradients,
} from "./model.js";
export { readSafetensors, writeSafetensors } from "./safetensors.js";
export { createWasmBackend, createThreadedWasmBackend } from "./cpu/wasm.js";
export { tensor, CellcError, type Tensor, type DType } from "./tensor.js";
