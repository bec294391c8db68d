// Messages between the page and the training worker (train.worker.ts).

export const TASKS = ["adding", "copy", "sine", "chars"] as const;

/**
 * Where the networks run: `auto` is WebGPU with a hardware adapter, else WebAssembly when cross-origin
 * isolated, else JS.
 */
export const BACKENDS = ["auto", "webgpu", "wasm", "js"] as const;
export type BackendChoice = (typeof BACKENDS)[number];
export type BackendKind = Exclude<BackendChoice, "auto">;

export interface CellSource {
  /** The file name it is checked as (imports resolve among the built-in cells). */
  readonly file: string;
  readonly source: string;
  readonly cell?: string;
}

export interface StartRequest {
  readonly type: "start";
  readonly cell: CellSource;
  /** Trained alongside (step for step, interleaved) on the same task, for comparison: the built-in LSTM. */
  readonly reference?: CellSource;
  readonly backend: BackendChoice;
  readonly task: string;
  /** Sequence length; the task's default when absent. */
  readonly T?: number;
  readonly hidden: number;
  /** The step budget: a resumed run continues to it, or for another budget once it is reached. */
  readonly steps: number;
  readonly batch: number;
  readonly lr: number;
  readonly seed: number;
  /** Continue the stopped run (weights, optimiser state, data stream) when nothing else changed. */
  readonly resume: boolean;
}

export type ToWorker = StartRequest | { readonly type: "stop" };

/** The edited cell's series, and the reference's. */
export const SERIES = { cell: "this cell", ref: "lstm" } as const;

export type FromWorker =
  | {
      readonly type: "started";
      readonly backend: BackendKind;
      /** The backend in words, with the adapter's name for WebGPU. */
      readonly label: string;
      readonly params: number;
      readonly from: number;
      readonly to: number;
      /** Why a resume started afresh, when it did. */
      readonly note?: string;
    }
  | {
      readonly type: "metric";
      readonly series: string;
      readonly step: number;
      readonly split: "train" | "eval";
      readonly loss: number;
    }
  /** The edited cell's updates so far, and its updates per second (the time in its own steps). */
  | { readonly type: "progress"; readonly step: number; readonly to: number; readonly stepsPerSec: number }
  /** ‖∂L/∂h_t‖ for t = 0..T-1 on a held-out batch, at initialisation or after `step` updates. */
  | {
      readonly type: "gradflow";
      readonly series: string;
      readonly step: number;
      readonly state: string;
      readonly norms: number[];
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
