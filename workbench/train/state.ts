// What a training run's checkpoint holds besides its tensors, and the checks that a state read back from a
// file (or a configuration given to the library) is one: every field's type and range, named by its path
// when it is not. A checkpoint is data; nothing of it is used before it passes.
import {
  arr,
  bad,
  bool,
  finite,
  int,
  isObject,
  obj,
  oneOf,
  opt,
  str,
  within,
  type Check,
} from "../../artifact/validate.js";
import { CellcError, type Tensor } from "../../runtime/tensor.js";
import { MOMENTS, OPTIM_NAMES, isMoment, type OptimName } from "../../artifact/network.js";
import type { Metric, TrainConfig } from "./types.js";

/** What a checkpoint holds besides the tensors. */
export interface CheckpointState {
  readonly format: "cellc-checkpoint";
  readonly version: 1;
  readonly step: number;
  readonly config: TrainConfig;
  readonly rng: number;
  readonly dataState?: number[];
  readonly optimizer: { readonly name: string; readonly count: number };
  readonly params: string[];
  readonly dtype: "f32" | "f64";
  readonly totalMs: number;
  /**
   * The metric lines of the checkpoint's step (its train and eval lines): the whole history is in
   * metrics.jsonl, and a state that grew with it would outgrow the file's header. Checkpoints of an earlier
   * cellc hold every line here, and no `metricCount`.
   */
  readonly metrics: Metric[];
  /** How many metric lines the run had written at this step (metrics.jsonl is cut back to them on resume). */
  readonly metricCount?: number;
  /** The first eval step that met the data's criterion, or null. */
  readonly stepsToSolve?: number | null;
  readonly origin?: unknown;
}

const MAX = Number.MAX_SAFE_INTEGER;
/** Far past any batch that fits in memory; the batch's tensors are checked against the memory limit too. */
export const MAX_BATCH = 2 ** 31 - 1;

/** A number in [lo, hi), or (lo, hi) when `open`. */
const between =
  (lo: number, hi: number, open = false): Check<number> =>
  (v, p) =>
    typeof v === "number" && (open ? v > lo : v >= lo) && v < hi
      ? v
      : bad(p, `a number ${open ? "above" : "from"} ${lo}${hi === Infinity ? "" : ` and below ${hi}`}`, v);

const configSchema = obj<TrainConfig>({
  steps: int(1, MAX),
  batch: int(1, MAX_BATCH),
  lr: between(0, Infinity, true),
  optim: oneOf(...OPTIM_NAMES),
  momentum: opt(between(0, 1)),
  betas: opt((v, p) => {
    if (!Array.isArray(v) || v.length !== 2) bad(p, "two numbers", v);
    return [between(0, 1)(v[0], `${p}[0]`), between(0, 1)(v[1], `${p}[1]`)] as const;
  }),
  eps: opt(between(0, Infinity)),
  weightDecay: opt(between(0, Infinity)),
  clip: opt(between(0, Infinity, true)),
  warmup: opt(int(0, MAX)),
  decay: opt(oneOf("none", "linear", "cosine")),
  seed: int(-MAX, MAX),
  tbptt: opt(int(1, MAX)),
  evalEvery: opt(int(1, MAX)),
  evalBatch: opt(int(1, MAX_BATCH)),
  shuffle: opt(bool),
});

/** A training configuration, each field checked (errors name it as `config.<field>`). */
export function checkConfig(cfg: unknown): TrainConfig {
  if (!isObject(cfg)) bad("config", "an object", cfg);
  return configSchema(cfg, "config");
}

const metric: Check<Metric> = (v, p) => {
  obj({ step: int(0, MAX), split: oneOf("train", "eval"), loss: finite })(v, p);
  for (const [k, x] of Object.entries(v as object))
    if (typeof x !== "number" && typeof x !== "string" && x !== null) bad(`${p}.${k}`, "a number or text", x);
  return v as Metric;
};

const stateSchema = obj<CheckpointState>({
  format: oneOf("cellc-checkpoint"),
  version: oneOf(1),
  step: int(0, MAX),
  config: (v, p) => (isObject(v) ? configSchema(v, p) : bad(p, "an object", v)),
  rng: int(0, 2 ** 32 - 1),
  dataState: opt(arr(int(0, MAX), 16)),
  optimizer: obj({ name: oneOf(...OPTIM_NAMES), count: int(0, MAX) }),
  params: arr(str(1000), 1 << 20),
  dtype: oneOf("f32", "f64"),
  totalMs: between(0, Infinity),
  metrics: arr(metric, 1 << 21),
  metricCount: opt(int(0, MAX)),
  stepsToSolve: opt((v, p) => (v === null ? null : int(0, MAX)(v, p))),
  origin: () => undefined,
});

/** A checkpoint's state, every field checked; `where` names the checkpoint in errors. */
export function checkState(state: unknown, where = "the checkpoint"): CheckpointState {
  return within(where, () => {
    if (!isObject(state) || state.format !== "cellc-checkpoint" || state.version !== 1)
      throw new CellcError("not a cellc checkpoint (format cellc-checkpoint, version 1)");
    const s = stateSchema(state, "");
    if (s.optimizer.name !== s.config.optim)
      bad("optimizer.name", `config.optim '${s.config.optim}'`, s.optimizer.name);
    if (s.metricCount !== undefined && s.metricCount < s.metrics.length)
      bad("metricCount", `at least the ${s.metrics.length} metrics it holds`, s.metricCount);
    return s;
  });
}

/**
 * The checkpoint's tensors against the network it resumes: every parameter, of its shape and a float
 * type; and the optimiser's moments, one of each kind per parameter once it has made an update, each as
 * long as its parameter.
 */
export function checkTensors(
  tensors: ReadonlyMap<string, Tensor>,
  params: ReadonlyMap<string, Tensor>,
  optim: OptimName,
  count: number,
  where = "the checkpoint",
): void {
  const fail = (why: string): never => {
    throw new CellcError(`${where}: ${why}`);
  };
  for (const [n, p] of params) {
    const s = tensors.get(n);
    if (!s || s.shape.length !== p.shape.length || s.shape.some((d, i) => d !== p.shape[i]))
      fail(`it has no parameter '${n}' of shape [${p.shape.join(", ")}]`);
    if (s!.dtype === "i32") fail(`parameter '${n}' is not a float tensor`);
  }
  const kinds = MOMENTS[optim];
  for (const [k, t] of tensors) {
    const slash = k.indexOf("/");
    if (!isMoment(k)) {
      if (!params.has(k)) fail(`tensor '${k}' is not a parameter of the network`);
      continue;
    }
    const kind = k.slice(0, slash);
    const p = params.get(k.slice(slash + 1));
    if (!kinds.includes(kind)) fail(`optimiser state '${k}' does not belong to ${optim}`);
    if (!p) fail(`optimiser state '${k}' is for no parameter of the network`);
    if (t.dtype === "i32" || t.data.length !== p!.data.length)
      fail(`optimiser state '${k}' has ${t.data.length} values; its parameter has ${p!.data.length}`);
  }
  if (count > 0)
    for (const n of params.keys())
      for (const kind of kinds)
        if (!tensors.has(`${kind}/${n}`))
          fail(`it has no optimiser state '${kind}/${n}' after ${count} updates`);
}
