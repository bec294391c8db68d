// The package's entry in Node (`import ... from "cellc"`): the library (api/index.ts: the compiler, the
// runtime, training and the tasks) and what touches files: run folders, checkpoints, safetensors files.
// A page imports "cellc/web" (api/index.ts), which touches nothing.
export * from "../api/index.js";
export { loadNetwork, loadRun, readRunNetwork, writeRunNetwork } from "./rundir.js";
export { loadCheckpoint, saveCheckpoint } from "./checkpoint.js";
export { predictOutputs, type Prediction } from "../workbench/train/predict.js";
