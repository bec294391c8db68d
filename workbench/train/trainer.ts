// The training loop: seeded, deterministic and resumable bit for bit. One update per batch; with
// truncated BPTT (`tbptt: K`) the batch runs in chunks of K steps, each chunk starting from the previous
// chunk's final states (carried, without a gradient through them), and the update uses the gradients
// summed over the chunks (the loss is still the mean over the whole batch).
import { Rng } from "../../runtime/init.js";
import { CellcError, checkAllocation, type Tensor } from "../../runtime/tensor.js";
import type { Checkpoint } from "./checkpoint.js";
import { isMoment } from "../../artifact/network.js";
import type { Network } from "./network.js";
import { learningRate, makeOptimizer, type Optimizer } from "./optim.js";
import { checkConfig, checkState, checkTensors, type CheckpointState } from "./state.js";
import type { Batch, DataSource, Metric, TaskInfo, TrainConfig, TrainResult } from "./types.js";
export { checkConfig, type CheckpointState };

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

/** The eval set depends on the task alone, so that runs with different seeds are judged on the same data. */
const EVAL_SEED = 0x5eed_e7a1;
const DATA_SALT = 0x9e37_79b9;

export class Trainer {
  /** Updates done so far. */
  steps = 0;
  /** The metric lines made since the start, or since the resume (with the checkpoint's own lines). */
  readonly metrics: Metric[] = [];
  /** Metric lines written before `metrics[0]` (by the run before a resume). */
  private metricsBefore = 0;
  private readonly rng: Rng;
  private readonly optimizer: Optimizer;
  private evalSet?: Batch;
  private totalMs = 0;
  /** The fastest and slowest update run by this process (a resumed run's earlier ones are not known). */
  private msMin = Infinity;
  private msMax = 0;
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
    if (typeof net !== "object" || net === null || !net.artifact || !(net.params instanceof Map))
      throw new CellcError("Trainer needs a Network to train");
    if (typeof data !== "object" || data === null || typeof data.batch !== "function")
      throw new CellcError("Trainer needs a data source: makeTask(name) or dataFromSafetensors(...)");
    checkConfig(cfg);
    checkBatchSize(data, cfg.batch, "a training batch");
    checkBatchSize(data, cfg.evalBatch ?? 256, "the eval batch");
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
    const { loss, norm } = this.onDevice
      ? await this.deviceStep(batch, lr, s)
      : await this.hostStep(batch, lr, s);
    const ms = performance.now() - t0;
    this.totalMs += ms;
    this.msMin = Math.min(this.msMin, ms);
    this.msMax = Math.max(this.msMax, ms);
    this.steps = s;
    return this.record({
      step: s,
      split: "train",
      loss,
      lr,
      grad_norm: norm,
      examples_per_s: Math.round((this.cfg.batch * 1000) / Math.max(ms, 1e-3)),
      ...this.bpc(loss),
    });
  }

  /**
   * Whether updates run on the device (a WebGPU network, whole sequences): then the device keeps the
   * optimiser's moments too. Truncated BPTT runs the host's way.
   */
  private get onDevice(): boolean {
    return !!this.net.device && this.cfg.tbptt === undefined;
  }

  /** An update on the host: the gradients come back, the optimiser updates the parameters here. */
  private async hostStep(batch: Batch, lr: number, s: number): Promise<{ loss: number; norm: number }> {
    const r = await this.net.loss(batch, { grads: true, tbptt: this.cfg.tbptt });
    const grads = r.grads!;
    const bad = [...grads].find(([, g]) => !g.data.every(Number.isFinite));
    if (!Number.isFinite(r.loss) || bad) throw stopped(s, r.loss, bad && [bad[0], bad[1].data]);
    const norm = this.optimizer.gradNorm(grads);
    if (this.cfg.clip !== undefined) this.optimizer.clip(grads, this.cfg.clip, norm);
    this.optimizer.step(this.net.params, grads, lr);
    this.net.paramsChanged();
    return { loss: r.loss, norm };
  }

  /** An update on the device: only the loss and the gradient norm come back. */
  private async deviceStep(batch: Batch, lr: number, s: number): Promise<{ loss: number; norm: number }> {
    const count = this.optimizer.advance();
    const o = this.optimizer.settings;
    const { loss, gradNorm } = await this.net.deviceStep(batch, {
      lr,
      count,
      beta1: o.beta1,
      beta2: o.beta2,
      eps: o.eps,
      weightDecay: o.weightDecay,
      momentum: o.momentum,
      clip: this.cfg.clip ?? 0,
    });
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      const bad = [...(await this.net.device!.readGrads())].find(([, g]) => !g.every(Number.isFinite));
      throw stopped(s, loss, bad);
    }
    return { loss, norm: gradNorm };
  }

  /** The loss on the fixed eval set, at the current step (and the accuracy, for class targets). */
  async evaluate(): Promise<Metric> {
    this.evalSet ??= this.data.batch("eval", this.cfg.evalBatch ?? 256, new Rng(EVAL_SEED));
    const set = this.evalSet;
    const r = await this.net.loss(set, { tbptt: this.cfg.tbptt, accuracy: true });
    // A task's own measures of the readout (selective-copy: the recall accuracy), when it has them.
    const scores = this.data.score?.(await this.net.predict(set.inputs, set.seqLens), set) ?? {};
    const m: Metric = {
      step: this.steps,
      split: "eval",
      loss: r.loss,
      ...(r.accuracy !== undefined ? { accuracy: r.accuracy } : {}),
      ...this.bpc(r.loss),
      ...scores,
    };
    if (this.stepsToSolve === null && solvedBy(this.data, r.loss, m)) this.stepsToSolve = this.steps;
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
        if (hooks.onCheckpoint) await hooks.onCheckpoint(await this.checkpoint());
        saved = this.steps;
      }
    }
    const last = this.metrics.at(-1);
    if (hooks.signal?.aborted && !(last?.split === "eval" && last.step === this.steps)) await this.evaluate();
    if (hooks.onCheckpoint && saved !== this.steps) await hooks.onCheckpoint(await this.checkpoint());
    await this.net.syncHost();
    return this.result();
  }

  result(): TrainResult {
    const last = this.metrics.filter((m) => m.split === "eval").at(-1);
    const finalEvalLoss = last?.loss ?? NaN;
    const solved = solvedBy(this.data, finalEvalLoss, last);
    return {
      metrics: this.metrics,
      finalEvalLoss,
      ...(typeof last?.accuracy === "number" ? { finalEvalAccuracy: last.accuracy } : {}),
      ...(solved !== undefined ? { solved } : {}),
      stepsToSolve: this.stepsToSolve,
      msPerStep: this.steps ? this.totalMs / this.steps : 0,
      ...(this.msMax > 0 ? { msPerStepMin: this.msMin, msPerStepMax: this.msMax } : {}),
      paramCount: this.net.paramCount,
      params: this.net.params,
    };
  }

  /** The parameters, the optimiser's moments and the state: what resume() continues from. */
  async checkpoint(): Promise<Checkpoint> {
    await this.net.syncHost();
    const opt = this.optimizer.state();
    if (this.onDevice) for (const [k, t] of await this.deviceMoments()) opt.tensors.set(k, t);
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
      metrics: this.stepMetrics(),
      metricCount: this.metricsBefore + this.metrics.length,
      stepsToSolve: this.stepsToSolve,
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
      /** Names the checkpoint in errors (`the checkpoint in 'runs/x'`). */
      where?: string;
    } = {},
  ): Promise<Trainer> {
    const { tensors } = ck;
    const where = opts.where ?? "the checkpoint";
    const state = checkState(ck.state, where);
    let { net, data } = opts;
    if (!net || !data) {
      if (!opts.rebuild) throw new CellcError("resume needs the network and data, or a way to rebuild them");
      ({ net, data } = await opts.rebuild(state));
    }
    const cfg = opts.steps === undefined ? state.config : { ...state.config, steps: opts.steps };
    const t = new Trainer(net, data, cfg, { onMetric: opts.onMetric, origin: state.origin });
    checkTensors(tensors, net.params, state.config.optim, state.optimizer.count, where);
    for (const [n, p] of net.params) (p.data as Float32Array).set(tensors.get(n)!.data);
    net.paramsChanged();
    const moments = new Map([...tensors].filter(([n]) => isMoment(n)));
    t.optimizer.restore(state.optimizer.count, moments);
    if (t.onDevice) {
      // The device keeps the moments: its two buffers hold the optimiser's kinds in order (m, v or buf).
      const [first, second] = t.optimizer.kinds;
      const of = (kind: string | undefined) =>
        new Map(
          [...moments]
            .filter(([k]) => kind && k.startsWith(`${kind}/`))
            .map(([k, v]) => [k.slice(kind!.length + 1), v.data]),
        );
      net.device!.writeMoments(of(first), of(second));
    }
    t.rng.state = state.rng;
    if (state.dataState) data.restoreState?.(state.dataState);
    t.steps = state.step;
    t.totalMs = state.totalMs;
    // No spread: a checkpoint of an earlier cellc holds every metric line of its run.
    for (const m of state.metrics) t.metrics.push(m);
    t.metricsBefore = (state.metricCount ?? state.metrics.length) - state.metrics.length;
    t.stepsToSolve =
      state.stepsToSolve !== undefined
        ? state.stepsToSolve
        : (state.metrics.find((m) => m.split === "eval" && solvedBy(data, m.loss, m))?.step ?? null);
    return t;
  }

  /** The device's moments as the host optimiser names them (`m/Wi`, `v/Wi`, `buf/Wi`). */
  private async deviceMoments(): Promise<Map<string, Tensor>> {
    const out = new Map<string, Tensor>();
    if (!this.optimizer.kinds.length || this.steps === 0) return out;
    const { m, v } = await this.net.device!.readMoments();
    this.optimizer.kinds.forEach((kind, i) => {
      for (const [name, data] of i === 0 ? m : v)
        out.set(`${kind}/${name}`, { dtype: "f32", shape: [data.length], data });
    });
    return out;
  }

  /** The metric lines of the current step (its train and eval lines), from the end. */
  private stepMetrics(): Metric[] {
    const out: Metric[] = [];
    for (let i = this.metrics.length - 1; i >= 0 && this.metrics[i]!.step === this.steps; i--)
      out.unshift(this.metrics[i]!);
    return out;
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

/** Whether an eval loss meets the data's criterion; undefined when the data has none. */
/**
 * Whether an eval line meets the data's criterion: on the eval loss (`solvedBelow`), or on the line's
 * measures (`solvedWhen`: selective-copy's recall accuracy); undefined when the data has none.
 */
export function solvedBy(
  data: Pick<TaskInfo, "solvedBelow" | "solvedWhen">,
  evalLoss: number,
  metric?: Readonly<Record<string, number | string>>,
): boolean | undefined {
  if (data.solvedWhen) return metric ? data.solvedWhen(metric) : false;
  return data.solvedBelow === undefined ? undefined : evalLoss < data.solvedBelow;
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

function stopped(step: number, loss: number, bad: [string, ArrayLike<number>] | undefined): CellcError {
  let where = "";
  if (bad) {
    const i = Array.prototype.findIndex.call(bad[1], (v: number) => !Number.isFinite(v));
    where = `the gradient of '${bad[0]}' holds ${bad[1][i]} at index ${i}`;
  }
  return new CellcError(
    `training stopped at step ${step}: ${Number.isFinite(loss) ? "" : `the loss is ${loss}${bad ? "; " : ""}`}${where} (try a smaller --lr or --clip)`,
  );
}

/** Refuses a batch size whose tensors (inputs and targets of every step) cannot be allocated. */
function checkBatchSize(data: DataSource, B: number, what: string): void {
  const steps = data.T * B;
  const features = data.inputKind === "tokens" ? 1 : data.inputSize;
  const targets = (data.on === "every" ? steps : B) * (data.loss === "cross_entropy" ? 1 : data.outputSize);
  checkAllocation(steps * features, 4, `the inputs of ${what} of B = ${B} (T = ${data.T})`);
  checkAllocation(targets, 4, `the targets of ${what} of B = ${B}`);
}
