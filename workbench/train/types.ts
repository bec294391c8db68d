// The contract between training (workbench/train), the built-in tasks (workbench/tasks), the network
// artifact (artifact/network.ts), compare/gradflow and the playground. Change it only together with every user.
import type { LossKind, OptimName } from "../../artifact/network.js";
export type { LossKind, OptimName };
import type { Backend } from "../../runtime/model.js";
import type { Rng } from "../../runtime/init.js";
import type { Tensor } from "../../runtime/tensor.js";

/** One batch, time-major as `cellc run` takes it. */
export interface Batch {
  /** Model inputs by the cell's input name: f32 `[T, B, D]`, or i32 `[T, B]` token ids for an embedding. */
  readonly inputs: ReadonlyMap<string, Tensor>;
  /** f32 `[B, O]` (on the last step) or `[T, B, O]` (every step); i32 `[B]` / `[T, B]` class ids. */
  readonly target: Tensor;
  /** Valid length of each row; the loss ignores steps past it (and `on last` reads the last valid step). */
  readonly seqLens?: Int32Array;
}

/** What a model needs to know about its data: shapes and the loss it is judged by. */
export interface TaskInfo {
  readonly name: string;
  /** One line for `--help` and reports, with the shapes. */
  readonly summary: string;
  readonly T: number;
  /** Features per step (or the vocabulary size V for token inputs). */
  readonly inputSize: number;
  readonly inputKind: "real" | "tokens";
  /** Output features O (the number of classes for class targets). */
  readonly outputSize: number;
  readonly on: "last" | "every";
  readonly loss: LossKind;
  /** The loss of a constant best guess, when known (adding: about 0.167). */
  readonly chance?: number;
  /** The criterion, when there is one: solved when the eval loss is below this (adding: MSE 0.01). */
  readonly solvedBelow?: number;
  /**
   * A criterion on the eval line's measures instead of its loss (selective-copy: the recall accuracy that
   * `score` adds is at least 99%).
   */
  readonly solvedWhen?: (metric: Readonly<Record<string, number | string>>) => boolean;
}

/** A source of batches: a built-in task or a safetensors file. Deterministic given the generator's state. */
export interface DataSource extends TaskInfo {
  batch(split: "train" | "eval", B: number, rng: Rng): Batch;
  /** Where a source with a position of its own (a file read in order) is, to checkpoint and restore. */
  saveState?(): number[];
  restoreState?(state: readonly number[]): void;
  /** Characters of a character-level task, class id order (for sampling and bits per character). */
  readonly vocab?: string;
  /**
   * Metrics of the network's outputs on an eval batch (the readout's `y`, as Network.predict gives it),
   * added to the eval line: a task judged by more than its loss (selective-copy's recall accuracy).
   */
  score?(y: Tensor, batch: Batch): Record<string, number>;
}

export interface NetworkOptions {
  /** Where the cell runs (the readout too, unless the backend is a device's). Default: Model's default. */
  readonly backend?: Backend;
  readonly dtype?: "f32" | "f64";
  /** The cell's storage precision on WebGPU (ModelOptions.precision): "f16" keeps its tape and weights in float16. */
  readonly precision?: "f32" | "f16";
  readonly seed?: number;
  /** Parameters by name (cell ones as Model names them, readout `Wy`, `by`, the embedding by its name). */
  readonly params?: ReadonlyMap<string, Tensor>;
  /**
   * On a WebGPU backend, run training steps whole on the device (the default); false runs them as on the
   * host: outputs and gradients read back, the loss and the update on the host (for comparison).
   */
  readonly onDevice?: boolean;
}

export interface LossResult {
  readonly loss: number;
  /** For class targets, when asked for: the fraction of counted rows whose largest output is the target. */
  readonly accuracy?: number;
  /** Every parameter's gradient by name, when asked for. */
  readonly grads?: Map<string, Tensor>;
  /** `‖∂L/∂s_t‖` over the batch for each step t and each (prefixed) state name, when asked for (gradflow). */
  readonly stateGradNorms?: Map<string, Float64Array>;
}

export interface TrainConfig {
  readonly steps: number;
  readonly batch: number;
  readonly lr: number;
  readonly optim: OptimName;
  /** PyTorch's defaults where not given (momentum 0.9, betas 0.9/0.999, eps 1e-8, weight decay 0 / 0.01 for adamw). */
  readonly momentum?: number;
  readonly betas?: readonly [number, number];
  readonly eps?: number;
  readonly weightDecay?: number;
  /** Global gradient-norm clipping as torch.nn.utils.clip_grad_norm_. */
  readonly clip?: number;
  readonly warmup?: number;
  readonly decay?: "none" | "linear" | "cosine";
  readonly seed: number;
  readonly tbptt?: number;
  readonly evalEvery?: number;
  readonly evalBatch?: number;
  readonly shuffle?: boolean;
}

/** One line of metrics.jsonl. `step` counts optimiser updates from 1. */
export interface Metric {
  readonly step: number;
  readonly split: "train" | "eval";
  readonly loss: number;
  readonly [key: string]: number | string;
}

export interface TrainResult {
  readonly metrics: readonly Metric[];
  readonly finalEvalLoss: number;
  /** For class targets: the final eval accuracy. */
  readonly finalEvalAccuracy?: number;
  /** Whether the final eval loss meets the data's criterion; absent when the data has none. */
  readonly solved?: boolean;
  /** The first eval step whose loss met the criterion, or null (also when there is none). */
  readonly stepsToSolve: number | null;
  /** The mean time of an update, and the fastest and slowest (of those run by this process). */
  readonly msPerStep: number;
  readonly msPerStepMin?: number;
  readonly msPerStepMax?: number;
  /** Number of trainable values. */
  readonly paramCount: number;
  readonly params: Map<string, Tensor>;
}
