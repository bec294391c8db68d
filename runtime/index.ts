export * from "./core.js";
export {
  compile,
  compileCell,
  compileIR,
  CellCompileError,
  type CompileOptions,
  type CompileOutput,
} from "./compile.js";
// Training (issue 9): networks around a cell, optimisers as PyTorch defines them, the built-in tasks.
export {
  Network,
  defaultNetworkSpec,
  readoutSource,
  cellParamNames,
  type LossWant,
} from "./train/network.js";
export {
  Trainer,
  train,
  type TrainHooks,
  type TrainerOptions,
  type CheckpointState,
} from "./train/trainer.js";
export { makeOptimizer, clipGradNorm, gradNorm, learningRate, type Optimizer } from "./train/optim.js";
export { makeTask, dataFromSafetensors, TASK_NAMES, type FileDataOptions } from "./tasks/index.js";
export type {
  Batch,
  DataSource,
  LossKind,
  LossResult,
  Metric,
  NetworkOptions,
  NetworkSpec,
  OptimName,
  TaskInfo,
  TrainConfig,
  TrainResult,
} from "./train/types.js";
