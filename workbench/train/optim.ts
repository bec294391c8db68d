// The optimiser of a training run: its state (moments, update count) around the update kernels that the
// network artifact holds (compiler/network/optim.ts: torch.optim's SGD with momentum, Adam, AdamW, and
// clipping as torch.nn.utils.clip_grad_norm_), and the learning-rate schedule.
import { loadJsModule } from "../../runtime/kernels.js";
import {
  CellcError,
  floatArray,
  type FloatArray,
  type Tensor,
  type TensorData,
} from "../../runtime/tensor.js";
import { MOMENTS } from "../../artifact/network.js";
import type { OptimName, TrainConfig } from "./types.js";

export interface Optimizer {
  readonly name: OptimName;
  /** One update of every parameter from its gradient, with the given learning rate. */
  step(params: ReadonlyMap<string, Tensor>, grads: ReadonlyMap<string, Tensor>, lr: number): void;
  /** The 2-norm of all gradients together. */
  gradNorm(grads: ReadonlyMap<string, Tensor>): number;
  /** torch.nn.utils.clip_grad_norm_: scales every gradient by max / (norm + 1e-6) when that is below 1. */
  clip(grads: ReadonlyMap<string, Tensor>, max: number, norm: number): void;
  /** Counts an update made elsewhere (on a device) and returns its number, from 1. */
  advance(): number;
  /** The settings an update uses (PyTorch's defaults where not given). */
  readonly settings: {
    readonly beta1: number;
    readonly beta2: number;
    readonly eps: number;
    readonly weightDecay: number;
    readonly momentum: number;
  };
  /** The kinds of moments it keeps, in the order of a device's two moment buffers: `m`, `v` or `buf`. */
  readonly kinds: readonly string[];
  /** The moments by `<kind>/<parameter name>` (`m/Wi`, `v/Wi`, `buf/Wi`) and the update count: for checkpoints. */
  state(): { count: number; tensors: Map<string, Tensor> };
  restore(count: number, tensors: ReadonlyMap<string, Tensor>): void;
}

type Update = (
  w: FloatArray,
  g: TensorData,
  m: FloatArray,
  v: FloatArray,
  n: number,
  lr: number,
  hp: Float64Array,
) => void;

/** The optimiser `cfg` asks for, running the kernels a network artifact holds for it (its `optimizer`). */
export function makeOptimizer(
  cfg: Pick<TrainConfig, "optim" | "momentum" | "betas" | "eps" | "weightDecay">,
  kernels: { readonly kind: OptimName; readonly js: string },
): Optimizer {
  if (kernels.kind !== cfg.optim)
    throw new CellcError(
      `the network was compiled for ${kernels.kind}, not ${cfg.optim}: compile it for ${cfg.optim}`,
    );
  const k = loadJsModule(kernels.js, ["update", "sumsq", "scale"], "optimiser");
  const update = k.update as Update;
  const sumsq = k.sumsq as (g: TensorData, n: number) => number;
  const scale = k.scale as (g: FloatArray, n: number, coef: number) => void;
  const wd = cfg.weightDecay ?? (cfg.optim === "adamw" ? 0.01 : 0);
  const mom = cfg.optim === "momentum" ? (cfg.momentum ?? 0.9) : 0;
  const [b1, b2] = cfg.betas ?? [0.9, 0.999];
  const eps = cfg.eps ?? 1e-8;
  for (const [what, v, lo, hi] of [
    ["momentum", mom, 0, 1],
    ["beta1", b1, 0, 1],
    ["beta2", b2, 0, 1],
  ] as const)
    if (!(v >= lo && v < hi)) throw new CellcError(`${what} must be in [${lo}, ${hi}), got ${v}`);
  if (!(eps >= 0)) throw new CellcError(`eps must be non-negative, got ${eps}`);
  if (!(wd >= 0)) throw new CellcError(`weight decay must be non-negative, got ${wd}`);
  const kinds = MOMENTS[cfg.optim];
  const moments = new Map<string, FloatArray>();
  const none = new Float32Array(0);
  const hp = Float64Array.of(b1, b2, eps, wd, mom, 0);
  let count = 0;
  const moment = (kind: string, name: string, p: Tensor) => {
    const key = `${kind}/${name}`;
    let m = moments.get(key);
    if (!m) moments.set(key, (m = floatArray(p.dtype === "f64" ? "f64" : "f32", p.data.length)));
    return m;
  };
  return {
    name: cfg.optim,
    kinds,
    settings: { beta1: b1, beta2: b2, eps, weightDecay: wd, momentum: mom },
    advance: () => ++count,
    step(params, grads, lr) {
      hp[5] = ++count;
      for (const [name, p] of params) {
        const g = grads.get(name);
        if (!g) continue;
        const w = p.data as FloatArray;
        // Momentum keeps its buffer whatever the coefficient (with 0 the update is plain SGD).
        const m = kinds[0] ? moment(kinds[0], name, p) : none;
        const v = kinds[1] ? moment(kinds[1], name, p) : none;
        update(w, g.data, m, v, w.length, lr, hp);
      }
    },
    gradNorm(grads) {
      let s = 0;
      for (const g of grads.values()) s += sumsq(g.data, g.data.length);
      return Math.sqrt(s);
    },
    clip(grads, max, norm) {
      const coef = max / (norm + 1e-6);
      if (coef < 1) for (const g of grads.values()) scale(g.data as FloatArray, g.data.length, coef);
    },
    state() {
      const tensors = new Map<string, Tensor>();
      for (const [k, m] of moments)
        tensors.set(k, {
          dtype: m instanceof Float64Array ? "f64" : "f32",
          shape: [m.length],
          data: m.slice(),
        });
      return { count, tensors };
    },
    restore(n, tensors) {
      count = n;
      moments.clear();
      for (const [k, t] of tensors) {
        if (!kinds.includes(k.slice(0, k.indexOf("/"))))
          throw new CellcError(`optimiser state '${k}' does not belong to ${cfg.optim}`);
        moments.set(k, (t.dtype === "f64" ? Float64Array : Float32Array).from(t.data));
      }
    },
  };
}

/**
 * The learning rate of update `step` (from 1): linear warm-up from lr/warmup to lr over the first `warmup`
 * updates, then constant, or a linear or cosine decay that starts at lr on the first update after the
 * warm-up and would reach 0 one update after the last.
 */
export function learningRate(
  cfg: Pick<TrainConfig, "lr" | "warmup" | "decay" | "steps">,
  step: number,
): number {
  const warmup = cfg.warmup ?? 0;
  if (step <= warmup) return (cfg.lr * step) / warmup;
  const p = (step - warmup - 1) / Math.max(1, cfg.steps - warmup);
  switch (cfg.decay ?? "none") {
    case "none":
      return cfg.lr;
    case "linear":
      return cfg.lr * (1 - p);
    case "cosine":
      return cfg.lr * 0.5 * (1 + Math.cos(Math.PI * p));
  }
}
