// Optimisers as torch.optim defines them (SGD with momentum, Adam, AdamW), global gradient-norm clipping
// as torch.nn.utils.clip_grad_norm_, and the learning-rate schedule. Arithmetic in f64; parameters and
// moments are stored in the parameters' precision, as PyTorch stores them.
import { CellcError, floatArray, type FloatArray, type Tensor } from "../tensor.js";
import type { OptimName, TrainConfig } from "./types.js";

export interface Optimizer {
  readonly name: OptimName;
  /** One update of every parameter from its gradient, with the given learning rate. */
  step(params: ReadonlyMap<string, Tensor>, grads: ReadonlyMap<string, Tensor>, lr: number): void;
  /** The moments by `<kind>/<parameter name>` (`m/Wi`, `v/Wi`, `buf/Wi`) and the update count: for checkpoints. */
  state(): { count: number; tensors: Map<string, Tensor> };
  restore(count: number, tensors: ReadonlyMap<string, Tensor>): void;
}

export function makeOptimizer(
  cfg: Pick<TrainConfig, "optim" | "momentum" | "betas" | "eps" | "weightDecay">,
): Optimizer {
  const adam = cfg.optim === "adam" || cfg.optim === "adamw";
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
  const kinds = adam ? ["m", "v"] : mom ? ["buf"] : [];
  const moments = new Map<string, FloatArray>();
  let count = 0;
  const moment = (kind: string, name: string, p: Tensor) => {
    const key = `${kind}/${name}`;
    let m = moments.get(key);
    if (!m) moments.set(key, (m = floatArray(p.dtype === "f64" ? "f64" : "f32", p.data.length)));
    return m;
  };
  return {
    name: cfg.optim,
    step(params, grads, lr) {
      count++;
      const bc1 = 1 - b1 ** count;
      const bc2 = 1 - b2 ** count;
      for (const [name, p] of params) {
        const g = grads.get(name);
        if (!g) continue;
        const w = p.data as FloatArray;
        const gd = g.data;
        if (adam) {
          const m = moment("m", name, p);
          const v = moment("v", name, p);
          const stepSize = lr / bc1;
          const sbc2 = Math.sqrt(bc2);
          for (let i = 0; i < w.length; i++) {
            // AdamW decays the weight itself, before the step; Adam adds the decay to the gradient.
            if (cfg.optim === "adamw") w[i] = w[i]! * (1 - lr * wd);
            const gi = cfg.optim === "adam" ? gd[i]! + wd * w[i]! : gd[i]!;
            m[i] = m[i]! + (gi - m[i]!) * (1 - b1);
            v[i] = v[i]! * b2 + (1 - b2) * gi * gi;
            w[i] = w[i]! - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / sbc2 + eps);
          }
        } else {
          const buf = mom ? moment("buf", name, p) : undefined;
          for (let i = 0; i < w.length; i++) {
            let d = gd[i]! + wd * w[i]!;
            if (buf) d = buf[i] = count === 1 ? d : mom * buf[i]! + d;
            w[i] = w[i]! - lr * d;
          }
        }
      }
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

/** The 2-norm of all gradients together (before clipping). */
export function gradNorm(grads: ReadonlyMap<string, Tensor>): number {
  let s = 0;
  for (const g of grads.values()) for (let i = 0; i < g.data.length; i++) s += g.data[i]! * g.data[i]!;
  return Math.sqrt(s);
}

/** torch.nn.utils.clip_grad_norm_: scales every gradient by max / (norm + 1e-6) when that is below 1. */
export function clipGradNorm(
  grads: ReadonlyMap<string, Tensor>,
  max: number,
  norm = gradNorm(grads),
): number {
  const coef = max / (norm + 1e-6);
  if (coef < 1)
    for (const g of grads.values()) {
      const d = g.data as FloatArray;
      for (let i = 0; i < d.length; i++) d[i] = d[i]! * coef;
    }
  return norm;
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
