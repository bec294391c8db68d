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
  /**
   * The task's criterion on the eval loss (adding: MSE < 0.01), or on the eval metric line, which holds
   * what `score` adds (selective-copy: recall accuracy >= 99%).
   */
  solved(evalLoss: number, metric?: Readonly<Record<string, number | string>>): boolean;
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
  readonly seed?: number;
  /** Parameters by name (cell ones as Model names them, readout `Wy`, `by`, the embedding by its name). */
  readonly params?: ReadonlyMap<string, Tensor>;
}

export interface LossResult {
  readonly loss: number;
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
  readonly solved: boolean;
  /** The first eval step whose loss met the task's criterion, or null. */
  readonly stepsToSolve: number | null;
  readonly msPerStep: number;
  /** Number of trainable values. */
  readonly paramCount: number;
  readonly params: Map<string, Tensor>;
}
