// The runtime alone: loads compiled artifacts and runs them, and imports nothing of the compiler, so that
// a page that only runs kernels stays small. The package's entry (api/index.ts) adds the compiler.
export { loadArtifact, type CompiledCell, type KernelFactory, type KernelFns } from "./cell.js";
export type { Artifact } from "../artifact/artifact.js";
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
export type { NetworkArtifact } from "../artifact/network.js";
