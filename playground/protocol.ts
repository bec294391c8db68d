// Messages between the page and the training worker (train.worker.ts).

/** The trainer's modules (issue 9), which the worker loads. */
export const TRAINER_FILES = [
  "runtime/train/network.ts",
  "runtime/train/trainer.ts",
  "runtime/tasks/index.ts",
];

/** Whether this build has them (vite.config.ts looks); without them the Train panel says so. */
export const trainingAvailable = () => __CELLC_TRAINER__;

export const TASKS = ["adding", "copy", "sine", "chars"] as const;

export interface CellSource {
  /** The file name it is checked as (imports resolve among the built-in cells). */
  readonly file: string;
  readonly source: string;
  readonly cell?: string;
}

export interface StartRequest {
  readonly type: "start";
  readonly cell: CellSource;
  /** Trained alongside on the same batches' task, for comparison (the built-in LSTM). */
  readonly reference?: CellSource;
  readonly task: string;
  /** Sequence length; the task's default when absent. */
  readonly T?: number;
  readonly hidden: number;
  readonly steps: number;
  readonly batch: number;
  readonly lr: number;
  readonly seed: number;
  /** Continue from the weights and step where the last run of the same cell and task stopped. */
  readonly resume: boolean;
}

export type ToWorker = StartRequest | { readonly type: "stop" };

export type FromWorker =
  | { readonly type: "started"; readonly backend: string; readonly params: number; readonly from: number }
  | {
      readonly type: "metric";
      readonly series: string;
      readonly step: number;
      readonly split: "train" | "eval";
      readonly loss: number;
    }
  | {
      readonly type: "done";
      readonly stopped: boolean;
      readonly step: number;
      readonly summary: string;
      /** The edited cell's network's weights, as a safetensors file. */
      readonly weights: Uint8Array;
    }
  | { readonly type: "error"; readonly message: string };
