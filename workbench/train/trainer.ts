// The training loop: seeded, deterministic and resumable bit for bit. One update per batch; with
// truncated BPTT (`tbptt: K`) the batch runs in chunks of K steps, each chunk starting from the previous
// chunk's final states (carried, without a gradient through them), and the update uses the gradients
// summed over the chunks (the loss is still the mean over the whole batch).
import { Rng } from "../../runtime/init.js";
import { CellcError, type Tensor } from "../../runtime/tensor.js";
import type { Checkpoint } from "./checkpoint.js";
import type { Network } from "./network.js";
import { learningRate, makeOptimizer, type Optimizer } from "./optim.js";
import type { Batch, DataSource, Metric, TrainConfig, TrainResult } from "./types.js";

export interface TrainHooks {
  onMetric?(m: Metric): void;
  /** Stops after the current update (then evaluates, and returns what was trained). */
  signal?: AbortSignal;
  /** Called with a checkpoint at every evaluation and at the end (cli/checkpoint.ts writes it to a folder). */
  onCheckpoint?(ck: Checkpoint): void | Promise<void>;
}

export interface TrainerOptions {
  onMetric?(m: Metric): void;
  /** Recorded in the checkpoint (JSON): what a caller needs to rebuild the network and data on resume. */
  origin?: unknown;
}

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
  readonly metrics: Metric[];
  readonly origin?: unknown;
}

/** The eval set depends on the task alone, so that runs with different seeds are judged on the same data. */
const EVAL_SEED = 0x5eed_e7a1;
const DATA_SALT = 0x9e37_79b9;

export function checkConfig(cfg: TrainConfig): void {
  const posInt = (v: number | undefined, what: string) => {
    if (v !== undefined && (!Number.isInteger(v) || v < 1))
      throw new CellcError(`${what} must be a positive integer, got ${v}`);
  };
  posInt(cfg.steps, "steps");
  posInt(cfg.batch, "batch");
  posInt(cfg.tbptt, "tbptt");
  posInt(cfg.evalEvery, "evalEvery");
  posInt(cfg.evalBatch, "evalBatch");
  if (!(cfg.lr > 0 && Number.isFinite(cfg.lr)))
    throw new CellcError(`the learning rate must be a positive number, got ${cfg.lr}`);
  if (cfg.clip !== undefined && !(cfg.clip > 0))
    throw new CellcError(`clip must be a positive number, got ${cfg.clip}`);
  if (cfg.warmup !== undefined && (!Number.isInteger(cfg.warmup) || cfg.warmup < 0))
    throw new CellcError(`warmup must be a non-negative integer, got ${cfg.warmup}`);
  if (!Number.isSafeInteger(cfg.seed)) throw new CellcError(`the seed must be an integer, got ${cfg.seed}`);
}

export class Trainer {
  /** Updates done so far. */
  steps = 0;
  readonly metrics: Metric[] = [];
  private readonly rng: Rng;
  private readonly optimizer: Optimizer;
  private evalSet?: Batch;
  private totalMs = 0;
  private stepsToSolve: number | null = null;
  private readonly origin: unknown;
  /** Called with every metric line as it is made. */
  onMetric?: (m: Metric) => void;

  constructor(
    readonly net: Network,
    readonly data: DataSource,
    readonly cfg: TrainConfig,
    opts: TrainerOptions = {},
  ) {
    this.onMetric = opts.onMetric;
    checkConfig(cfg);
    this.rng = new Rng((cfg.seed ^ DATA_SALT) >>> 0);
    this.optimizer = makeOptimizer(cfg, net.artifact.optimizer);
    this.origin = opts.origin;
  }

  get evalEvery(): number {
    return this.cfg.evalEvery ?? Math.max(1, Math.round(this.cfg.steps / 20));
  }

  /** One update on the next batch; the metric's loss is that batch's, before the update. */
  async step(): Promise<Metric> {
    const s = this.steps + 1;
    const lr = learningRate(this.cfg, s);
    const batch = this.data.batch("train", this.cfg.batch, this.rng);
    const t0 = performance.now();
    const r = await this.net.loss(batch, { grads: true, tbptt: this.cfg.tbptt });
    const grads = r.grads!;
    const bad = [...grads].find(([, g]) => !g.data.every(Number.isFinite));
    if (!Number.isFinite(r.loss) || bad)
      throw new CellcError(
        `training stopped at step ${s}: ${Number.isFinite(r.loss) ? "" : `the loss is ${r.loss}${bad ? "; " : ""}`}${bad ? `the gradient of '${bad[0]}' holds ${nonFinite(bad[1])}` : ""} (try a smaller --lr or --clip)`,
      );
    const norm = this.optimizer.gradNorm(grads);
    if (this.cfg.clip !== undefined) this.optimizer.clip(grads, this.cfg.clip, norm);
    this.optimizer.step(this.net.params, grads, lr);
    this.net.paramsChanged();
    const ms = performance.now() - t0;
    this.totalMs += ms;
    this.steps = s;
    return this.record({
      step: s,
      split: "train",
      loss: r.loss,
      lr,
      grad_norm: norm,
      examples_per_s: Math.round((this.cfg.batch * 1000) / Math.max(ms, 1e-3)),
      ...this.bpc(r.loss),
    });
  }

  /** The loss on the fixed eval set, at the current step. */
  async evaluate(): Promise<Metric> {
    this.evalSet ??= this.data.batch("eval", this.cfg.evalBatch ?? 256, new Rng(EVAL_SEED));
    const set = this.evalSet;
    const r = await this.net.loss(set, { tbptt: this.cfg.tbptt });
    const scores = this.data.score?.(await this.net.predict(set.inputs, set.seqLens), set) ?? {};
    const m = { step: this.steps, split: "eval" as const, loss: r.loss, ...this.bpc(r.loss), ...scores };
    if (this.stepsToSolve === null && this.data.solved(r.loss, m)) this.stepsToSolve = this.steps;
    return this.record(m);
  }

  /**
   * Trains to `cfg.steps` (or pauses after update `until`, to resume later), evaluating every
   * `evalEvery` updates and at the end, and checkpointing at every evaluation and on pausing.
   */
  async run(hooks: Omit<TrainHooks, "onMetric"> & { until?: number } = {}): Promise<TrainResult> {
    const end = Math.min(this.cfg.steps, hooks.until ?? Infinity);
    let saved = -1;
    while (this.steps < end && !hooks.signal?.aborted) {
      await this.step();
      if (this.steps % this.evalEvery === 0 || this.steps === this.cfg.steps) {
        await this.evaluate();
        if (hooks.onCheckpoint) await hooks.onCheckpoint(this.checkpoint());
        saved = this.steps;
      }
    }
    const last = this.metrics.at(-1);
    if (hooks.signal?.aborted && !(last?.split === "eval" && last.step === this.steps)) await this.evaluate();
    if (hooks.onCheckpoint && saved !== this.steps) await hooks.onCheckpoint(this.checkpoint());
    return this.result();
  }

  result(): TrainResult {
    const evals = this.metrics.filter((m) => m.split === "eval");
    const finalEvalLoss = evals.at(-1)?.loss ?? NaN;
    return {
      metrics: this.metrics,
      finalEvalLoss,
      solved: this.data.solved(finalEvalLoss, evals.at(-1)),
      stepsToSolve: this.stepsToSolve,
      msPerStep: this.steps ? this.totalMs / this.steps : 0,
      paramCount: this.net.paramCount,
      params: this.net.params,
    };
  }

  /** The parameters, the optimiser's moments and the state: what resume() continues from. */
  checkpoint(): Checkpoint {
    const opt = this.optimizer.state();
    const tensors = new Map<string, Tensor>(this.net.params);
    for (const [k, t] of opt.tensors) tensors.set(k, t);
    const state: CheckpointState = {
      format: "cellc-checkpoint",
      version: 1,
      step: this.steps,
      config: this.cfg,
      rng: this.rng.state,
      dataState: this.data.saveState?.(),
      optimizer: { name: this.optimizer.name, count: opt.count },
      params: [...this.net.params.keys()],
      dtype: this.net.dtype,
      totalMs: this.totalMs,
      metrics: this.metrics,
      origin: this.origin,
    };
    return { tensors, state };
  }

  /**
   * Continues from a checkpoint. The network and data are the caller's (`net`, `data`) or rebuilt by
   * `rebuild` from the saved state (its `origin`); `steps` may extend the run.
   */
  static async resume(
    ck: { readonly tensors: ReadonlyMap<string, Tensor>; readonly state: unknown },
    opts: {
      net?: Network;
      data?: DataSource;
      rebuild?: (
        state: CheckpointState,
      ) => Promise<{ net: Network; data: DataSource }> | { net: Network; data: DataSource };
      steps?: number;
      onMetric?(m: Metric): void;
    } = {},
  ): Promise<Trainer> {
    const { tensors } = ck;
    const state = ck.state as CheckpointState;
    if (state?.format !== "cellc-checkpoint" || state.version !== 1)
      throw new CellcError(`the checkpoint is of an unknown format`);
    let { net, data } = opts;
    if (!net || !data) {
      if (!opts.rebuild) throw new CellcError("resume needs the network and data, or a way to rebuild them");
      ({ net, data } = await opts.rebuild(state));
    }
    const cfg = opts.steps === undefined ? state.config : { ...state.config, steps: opts.steps };
    const t = new Trainer(net, data, cfg, { onMetric: opts.onMetric, origin: state.origin });
    for (const [n, p] of net.params) {
      const s = tensors.get(n);
      if (!s || s.shape.length !== p.shape.length || s.shape.some((d, i) => d !== p.shape[i]))
        throw new CellcError(`the checkpoint has no parameter '${n}' of shape [${p.shape.join(", ")}]`);
      (p.data as Float32Array).set(s.data);
    }
    net.paramsChanged();
    const moments = new Map([...tensors].filter(([n]) => n.includes("/")));
    t.optimizer.restore(state.optimizer.count, moments);
    t.rng.state = state.rng;
    if (state.dataState) data.restoreState?.(state.dataState);
    t.steps = state.step;
    t.totalMs = state.totalMs;
    t.metrics.push(...state.metrics);
    t.stepsToSolve = state.metrics.find((m) => m.split === "eval" && data.solved(m.loss, m))?.step ?? null;
    return t;
  }

  private record(m: Metric): Metric {
    this.metrics.push(m);
    this.onMetric?.(m);
    return m;
  }

  private bpc(loss: number): { bits_per_char?: number } {
    return this.data.vocab !== undefined ? { bits_per_char: loss / Math.LN2 } : {};
  }
}

/** Trains `net` on `data` as `cfg` says; see Trainer. */
export async function train(
  net: Network,
  data: DataSource,
  cfg: TrainConfig,
  hooks: TrainHooks = {},
): Promise<TrainResult> {
  const t = new Trainer(net, data, cfg, { onMetric: hooks.onMetric });
  return t.run(hooks);
}

function nonFinite(t: Tensor): string {
  const i = t.data.findIndex((v) => !Number.isFinite(v));
  return `${t.data[i]} at index ${i}`;
}
