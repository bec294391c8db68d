// The library: the compiler, the runtime, training and the built-in tasks; nothing here touches files, so
// a page may use it ("cellc/web"). In Node, "cellc" (cli/library.ts) adds run folders and checkpoints;
// "cellc/runtime" is the runtime alone.
export * from "../runtime/index.js";
export { compileCell, type CompiledIR } from "./compile-cell.js";
export {
  compile,
  compileIR,
  CellCompileError,
  type CompileOptions,
  type CompileOutput,
} from "../compiler/compile.js";
export {
  compileNetwork,
  type DataShape,
  type NetworkChoice,
  type NetworkOptions as CompileNetworkOptions,
  type NetworkOutput,
} from "../compiler/network/compile.js";
export { networkFor, type NetworkForOptions } from "./network-for.js";
export { Network, checkNetworkArtifact, type LossWant } from "../workbench/train/network.js";
export {
  Trainer,
  train,
  solvedBy,
  type TrainHooks,
  type TrainerOptions,
  type CheckpointState,
} from "../workbench/train/trainer.js";
export { encodeCheckpoint, decodeCheckpoint, type Checkpoint } from "../workbench/train/checkpoint.js";
export { makeOptimizer, learningRate, type Optimizer } from "../workbench/train/optim.js";
export { makeTask, dataFromSafetensors, TASK_NAMES, type FileDataOptions } from "../workbench/tasks/index.js";
export type {
  Batch,
  DataSource,
  LossKind,
  LossResult,
  Metric,
  NetworkOptions,
  OptimName,
  TaskInfo,
  TrainConfig,
  TrainResult,
} from "../workbench/train/types.js";
