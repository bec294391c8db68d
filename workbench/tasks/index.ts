// Built-in tasks (generated, or from the text shipped in ./data) and data from safetensors files.
// Every batch is time-major, as `cellc run` takes it, and depends only on the generator given.
import { Rng } from "../../runtime/init.js";
import { CellcError, checkAllocation, showShape, type Tensor } from "../../runtime/tensor.js";
import type { Batch, DataSource, LossKind } from "../train/types.js";
import { TEXT } from "./data/text.js";

/**
 * What copy and selective-copy share: one-hot inputs over 10 classes (blank, 8 symbols, delimiter) and a
 * class id to predict at every step.
 */
const SYMBOLS_AT_EVERY_STEP = {
  inputSize: 10,
  inputKind: "real",
  outputSize: 10,
  on: "every",
  loss: "cross_entropy",
} as const;

export const TASK_NAMES: readonly string[] = ["adding", "copy", "selective-copy", "sine", "chars"];

/** A batch's tensor, its size checked first: B comes from the caller. */
function zeros(dtype: "f32" | "i32", shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new CellcError(`a batch of shape ${showShape(shape)}: sizes must be whole numbers`);
  checkAllocation(n, 4, `a batch's tensor of shape ${showShape(shape)}`);
  return { dtype, shape, data: dtype === "f32" ? new Float32Array(n) : new Int32Array(n) };
}
const f32 = (shape: number[]): Tensor => zeros("f32", shape);
const i32 = (shape: number[]): Tensor => zeros("i32", shape);
const int = (rng: Rng, n: number) => Math.floor(rng.next() * n);

/** A built-in task by name; `T` is its sequence length (for `copy`, the delay). */
export function makeTask(name: string, opts: { T?: number } = {}): DataSource {
  const make = Object.hasOwn(TASKS, name) ? TASKS[name as keyof typeof TASKS] : undefined;
  if (!make) throw new CellcError(`unknown task '${name}': the tasks are ${TASK_NAMES.join(", ")}`);
  const T = opts.T;
  if (T !== undefined && (!Number.isInteger(T) || T < 2 || T > 100_000))
    throw new CellcError(`T must be an integer from 2 to 100000, got ${T}`);
  return make(T);
}

const TASKS = {
  /**
   * Hochreiter & Schmidhuber (1997), in the form of Le et al. (2015): each step a value in [0, 1] and a
   * marker; one marker in each half of the sequence; predict the sum of the two marked values.
   */
  adding(T = 50): DataSource {
    return {
      name: "adding",
      summary: `adding (T = ${T}): x [T, B, 2] (a value in [0, 1], a 0/1 marker on two steps, one in each half) -> target [B, 1], the sum of the two marked values; MSE on the last step; chance 0.167, solved at eval MSE < 0.01`,
      T,
      inputSize: 2,
      inputKind: "real",
      outputSize: 1,
      on: "last",
      loss: "mse",
      chance: 1 / 6,
      solvedBelow: 0.01,
      batch(_split, B, rng) {
        const x = f32([T, B, 2]);
        const y = f32([B, 1]);
        const half = Math.floor(T / 2);
        for (let b = 0; b < B; b++) {
          for (let t = 0; t < T; t++) x.data[(t * B + b) * 2] = rng.next();
          const i = int(rng, half);
          const j = half + int(rng, T - half);
          x.data[(i * B + b) * 2 + 1] = 1;
          x.data[(j * B + b) * 2 + 1] = 1;
          y.data[b] = x.data[(i * B + b) * 2]! + x.data[(j * B + b) * 2]!;
        }
        return { inputs: new Map([["x", x]]), target: y };
      },
    };
  },

  /**
   * The copy task (Arjovsky et al. 2016, with 5 symbols of 8): the symbols, T - 1 blanks, a delimiter,
   * then the symbols are to be reproduced. Classes: 0 blank, 1-8 symbols, 9 delimiter.
   */
  copy(delay = 20): DataSource {
    const S = 5;
    const L = delay + 2 * S;
    const chance = (S * Math.log(8)) / L;
    return {
      name: "copy",
      summary: `copy (delay T = ${delay}): x [${L}, B, 10] one-hot (${S} symbols of 8, ${delay - 1} blanks, a delimiter, ${S} blanks) -> target [${L}, B] class ids (blanks, then the ${S} symbols); cross-entropy on every step; chance ${chance.toFixed(3)}, solved at eval loss < ${(chance / 10).toFixed(4)}`,
      T: L,
      ...SYMBOLS_AT_EVERY_STEP,
      chance,
      solvedBelow: chance / 10,
      batch(_split, B, rng) {
        const x = f32([L, B, 10]);
        const y = i32([L, B]);
        for (let b = 0; b < B; b++) {
          const sym = Array.from({ length: S }, () => 1 + int(rng, 8));
          for (let t = 0; t < L; t++) {
            const c = t < S ? sym[t]! : t === S + delay - 1 ? 9 : 0;
            x.data[(t * B + b) * 10 + c] = 1;
            y.data[t * B + b] = t >= L - S ? sym[t - (L - S)]! : 0;
          }
        }
        return { inputs: new Map([["x", x]]), target: y };
      },
    };
  },

  /**
   * Selective copying (Gu & Dao 2023, "Mamba", section 3.1 and appendix E.1): K = 8 symbols of 8 at random
   * steps among T - 1 blank ones (in order: data tokens scattered through noise), then a delimiter, then the
   * K symbols are to be reproduced in order, one per step, while K blanks are read. Unlike `copy`, where
   * the symbols come first and the delay is fixed, the model must select what to keep by content. Classes:
   * 0 blank, 1-8 symbols, 9 delimiter; targets blank except at the K recall steps. Judged on those steps:
   * solved at a recall accuracy (argmax over the classes) of 99%.
   */
  "selective-copy"(T = 256): DataSource {
    const [K, S] = [8, 8];
    if (T < K + 1) throw new CellcError(`selective-copy needs T >= ${K + 1} to place ${K} symbols, got ${T}`);
    const L = T + K;
    const chance = (K * Math.log(S)) / L;
    return {
      name: "selective-copy",
      summary: `selective-copy (T = ${T}): x [${L}, B, 10] one-hot (${K} symbols of ${S} at random steps among the first ${T - 1}, the rest blank, a delimiter at step ${T - 1}, ${K} blanks) -> target [${L}, B] class ids (blanks, then the ${K} symbols in order); cross-entropy on every step; judged on the ${K} recall steps, solved at 99% recall accuracy`,
      T: L,
      ...SYMBOLS_AT_EVERY_STEP,
      chance,
      solvedWhen: (m) => typeof m.recall_accuracy === "number" && m.recall_accuracy >= 0.99,
      batch(_split, B, rng) {
        const x = f32([L, B, 10]);
        const y = i32([L, B]);
        for (let b = 0; b < B; b++) {
          // K distinct steps of the first T - 1, in order (a partial Fisher-Yates shuffle).
          const steps = Array.from({ length: T - 1 }, (_, i) => i);
          for (let i = 0; i < K; i++) {
            const j = i + int(rng, T - 1 - i);
            [steps[i], steps[j]] = [steps[j]!, steps[i]!];
          }
          const at = steps.slice(0, K).sort((p, q) => p - q);
          const sym = Array.from({ length: K }, () => 1 + int(rng, S));
          for (let t = 0; t < L; t++) x.data[(t * B + b) * 10] = 1;
          at.forEach((t, k) => {
            x.data[(t * B + b) * 10] = 0;
            x.data[(t * B + b) * 10 + sym[k]!] = 1;
          });
          x.data[((T - 1) * B + b) * 10] = 0;
          x.data[((T - 1) * B + b) * 10 + 9] = 1;
          for (let k = 0; k < K; k++) y.data[(T + k) * B + b] = sym[k]!;
        }
        return { inputs: new Map([["x", x]]), target: y };
      },
      score(out, batch) {
        // out: [L, B, 10] scores; the accuracy of the argmax on the recall steps.
        const B = out.shape[1]!;
        let right = 0;
        for (let t = T; t < L; t++)
          for (let b = 0; b < B; b++) {
            let best = 0;
            for (let c = 1; c < 10; c++)
              if (out.data[(t * B + b) * 10 + c]! > out.data[(t * B + b) * 10 + best]!) best = c;
            if (best === batch.target.data[t * B + b]) right++;
          }
        return { recall_accuracy: right / (K * B) };
      },
    };
  },

  /** Next-value prediction of sin(w t + phase), w in [0.1, 0.6], a random phase. */
  sine(T = 50): DataSource {
    return {
      name: "sine",
      summary: `sine (T = ${T}): x [T, B, 1] = sin(w t + phase), w in [0.1, 0.6] -> target [T, B, 1], the next value; MSE on every step; chance 0.5, solved at eval MSE < 0.01`,
      T,
      inputSize: 1,
      inputKind: "real",
      outputSize: 1,
      on: "every",
      loss: "mse",
      chance: 0.5,
      solvedBelow: 0.01,
      batch(_split, B, rng) {
        const x = f32([T, B, 1]);
        const y = f32([T, B, 1]);
        for (let b = 0; b < B; b++) {
          const w = 0.1 + 0.5 * rng.next();
          const phase = 2 * Math.PI * rng.next();
          for (let t = 0; t < T; t++) {
            x.data[t * B + b] = Math.sin(w * t + phase);
            y.data[t * B + b] = Math.sin(w * (t + 1) + phase);
          }
        }
        return { inputs: new Map([["x", x]]), target: y };
      },
    };
  },

  /**
   * A character language model on the shipped text: train on the first 90%, evaluate on the rest;
   * windows at random offsets. Inputs are one-hot reals, so any cell with a vector input trains on it.
   */
  chars(T = 64): DataSource {
    const vocab = [...new Set(TEXT)].sort().join("");
    const V = vocab.length;
    const ids = Int32Array.from(TEXT, (c) => vocab.indexOf(c));
    const cut = Math.floor(ids.length * 0.9);
    const spans = { train: [0, cut], eval: [cut, ids.length] } as const;
    if (T + 1 > ids.length - cut)
      throw new CellcError(
        `T = ${T} is longer than the chars task's eval text (${ids.length - cut - 1} steps)`,
      );
    return {
      name: "chars",
      summary: `chars (T = ${T}): x [T, B, ${V}] one-hot characters of the Declaration of Independence and the US Constitution (${ids.length} characters) -> target [T, B] the next character's id; cross-entropy on every step, reported in bits per character; chance ${Math.log2(V).toFixed(2)} bits, solved at eval < 2.5 bits per character`,
      T,
      inputSize: V,
      inputKind: "real",
      outputSize: V,
      on: "every",
      loss: "cross_entropy",
      chance: Math.log(V),
      solvedBelow: 2.5 * Math.LN2,
      vocab,
      batch(split, B, rng) {
        const [lo, hi] = spans[split];
        const x = f32([T, B, V]);
        const y = i32([T, B]);
        for (let b = 0; b < B; b++) {
          const at = lo + int(rng, hi - lo - T);
          for (let t = 0; t < T; t++) {
            x.data[(t * B + b) * V + ids[at + t]!] = 1;
            y.data[t * B + b] = ids[at + t + 1]!;
          }
        }
        return { inputs: new Map([["x", x]]), target: y };
      },
    };
  },
};

export interface FileDataOptions {
  /** The model's input names (the cell's inputs). */
  readonly inputs: readonly string[];
  /** Take training rows in a seeded random order, a new one each epoch (default), or in file order. */
  readonly shuffle?: boolean;
  readonly name?: string;
  /** The number of classes of integer targets (default: the largest id + 1). */
  readonly classes?: number;
  /** The files the tensors came from, to name in errors (`the eval data 'e.safetensors'`). */
  readonly files?: { readonly train?: string; readonly eval?: string };
}

/** The largest value of an array, -1 for none: a loop, since a spread of millions overflows the stack. */
function largest(data: ArrayLike<number>): number {
  let m = -1;
  for (let i = 0; i < data.length; i++) if (data[i]! > m) m = data[i]!;
  return m;
}

/**
 * Data from safetensors files: the inputs by name (`[T, N, D]` reals, or `[T, N]` token ids), `target`
 * (`[N, O]` / `[T, N, O]` reals, MSE; `[N]` / `[T, N]` class ids, cross-entropy) and optional `seq_lens`
 * `[N]`. Without an eval file the last tenth of the rows is held out. The eval split is given whole.
 */
export function dataFromSafetensors(
  train: ReadonlyMap<string, Tensor>,
  evalSet?: ReadonlyMap<string, Tensor>,
  opts: FileDataOptions = { inputs: ["x"] },
): DataSource {
  const named = (what: string, file?: string) => (file === undefined ? what : `${what} '${file}'`);
  const tr = checkFile(train, opts.inputs, named("training data", opts.files?.train));
  const ev = evalSet ? checkFile(evalSet, opts.inputs, named("eval data", opts.files?.eval)) : undefined;
  if (ev) {
    if (ev.T !== tr.T)
      throw new CellcError(`eval data has T = ${ev.T} steps, the training data ${tr.T}: they must match`);
    for (const n of [...opts.inputs, "target"]) {
      const a = train.get(n)!.shape;
      const b = evalSet!.get(n)!.shape;
      const feat = (s: readonly number[]) => s.slice(n === "target" && tr.on === "last" ? 1 : 2).join(",");
      if (feat(a) !== feat(b) || train.get(n)!.dtype !== evalSet!.get(n)!.dtype)
        throw new CellcError(
          `tensor '${n}' has shape ${showShape(b)} in the eval data but ${showShape(a)} in the training data: the features must match`,
        );
    }
  }
  const target = train.get("target")!;
  const classesOf = (t: Tensor) => largest(t.data) + 1;
  const O =
    target.dtype === "i32"
      ? (opts.classes ?? Math.max(classesOf(target), ev ? classesOf(evalSet!.get("target")!) : 0))
      : target.shape[target.shape.length - 1]!;
  const first = train.get(opts.inputs[0]!)!;
  let trainRows = Array.from({ length: tr.N }, (_, i) => i);
  let evalRows: number[];
  let evalFile = evalSet;
  if (ev) evalRows = Array.from({ length: ev.N }, (_, i) => i);
  else {
    const held = tr.N >= 2 ? Math.max(1, Math.floor(tr.N / 10)) : 0;
    evalRows = held ? trainRows.slice(tr.N - held) : trainRows;
    trainRows = trainRows.slice(0, tr.N - held);
    evalFile = train;
  }
  const loss: LossKind = target.dtype === "i32" ? "cross_entropy" : "mse";
  let pos = 0;
  let order = trainRows;
  let epochSeed = 0;
  const shuffle = opts.shuffle ?? true;
  const permute = (seed: number) => {
    const r = new Rng(seed);
    const o = trainRows.slice();
    for (let i = o.length - 1; i > 0; i--) {
      const j = Math.floor(r.next() * (i + 1));
      [o[i], o[j]] = [o[j]!, o[i]!];
    }
    return o;
  };
  const chance = constantGuessLoss(evalFile!, evalRows, tr.T, tr.on, loss);
  return {
    name: opts.name ?? "data",
    summary: `data: ${opts.inputs.map((n) => `${n} ${showShape(train.get(n)!.shape)}`).join(", ")} -> target ${showShape(target.shape)} (${loss}, ${tr.on === "last" ? "on the last step" : "every step"}); ${trainRows.length} training rows, ${evalRows.length} eval rows; chance ${chance.toPrecision(3)} (the best constant guess on the eval rows)`,
    T: tr.T,
    inputSize: first.dtype === "i32" ? largest(first.data) + 1 : first.shape[2]!,
    inputKind: first.dtype === "i32" ? "tokens" : "real",
    outputSize: O,
    on: tr.on,
    loss,
    chance,
    batch(split, B, rng): Batch {
      if (split === "eval") return gather(evalFile!, opts.inputs, evalRows, tr.on);
      const rows: number[] = [];
      for (let i = 0; i < B; i++) {
        if (pos % order.length === 0 && shuffle) {
          epochSeed = Math.floor(rng.next() * 2 ** 32);
          order = permute(epochSeed);
        }
        rows.push(order[pos % order.length]!);
        pos++;
      }
      return gather(train, opts.inputs, rows, tr.on);
    },
    saveState: () => [pos, epochSeed],
    restoreState(s) {
      [pos, epochSeed] = [s[0] ?? 0, s[1] ?? 0];
      order = shuffle && pos > 0 ? permute(epochSeed) : trainRows;
    },
  };
}

/**
 * The eval loss of the best constant prediction, over the steps the loss counts: for MSE each output's
 * mean over the rows (the loss is then the mean of the outputs' variances), for class ids the classes'
 * frequencies (the loss is then their entropy). What a network that ignores its input can reach.
 */
function constantGuessLoss(
  ts: ReadonlyMap<string, Tensor>,
  rows: readonly number[],
  T: number,
  on: "last" | "every",
  loss: LossKind,
): number {
  const target = ts.get("target")!;
  const lens = ts.get("seq_lens")?.data;
  const N = target.shape[on === "every" ? 1 : 0]!;
  const O = loss === "cross_entropy" ? 1 : target.shape[target.shape.length - 1]!;
  // The target rows (each O wide) that count.
  const counted: number[] = [];
  for (const n of rows) {
    const len = lens ? lens[n]! : T;
    if (on === "last") {
      if (len > 0) counted.push(n);
    } else for (let t = 0; t < Math.min(len, T); t++) counted.push(t * N + n);
  }
  if (!counted.length) return NaN;
  if (loss === "cross_entropy") {
    const freq = new Map<number, number>();
    for (const r of counted) freq.set(target.data[r]!, (freq.get(target.data[r]!) ?? 0) + 1);
    let h = 0;
    for (const c of freq.values()) h -= (c / counted.length) * Math.log(c / counted.length);
    return h;
  }
  let sum = 0;
  for (let o = 0; o < O; o++) {
    let mean = 0;
    for (const r of counted) mean += target.data[r * O + o]!;
    mean /= counted.length;
    for (const r of counted) sum += (target.data[r * O + o]! - mean) ** 2;
  }
  return sum / (counted.length * O);
}

function checkFile(
  ts: ReadonlyMap<string, Tensor>,
  inputs: readonly string[],
  what: string,
): { T: number; N: number; on: "last" | "every" } {
  const allowed = new Set([...inputs, "target", "seq_lens"]);
  for (const n of ts.keys())
    if (!allowed.has(n))
      throw new CellcError(
        `unexpected tensor '${n}' in the ${what}: expected ${inputs.map((i) => `'${i}'`).join(", ")}, 'target' and optionally 'seq_lens'`,
      );
  let T = -1;
  let N = -1;
  for (const n of inputs) {
    const t = ts.get(n);
    if (!t) throw new CellcError(`the ${what} has no tensor '${n}' (an input of the model, [T, N, D])`);
    const ok = t.dtype === "i32" ? t.shape.length === 2 : t.shape.length === 3;
    if (!ok)
      throw new CellcError(
        `tensor '${n}' in the ${what} has shape ${showShape(t.shape)}; expected [T, N, D] reals or [T, N] token ids`,
      );
    if (T >= 0 && (t.shape[0] !== T || t.shape[1] !== N))
      throw new CellcError(
        `tensor '${n}' in the ${what} has shape ${showShape(t.shape)}; expected [${T}, ${N}, ...]`,
      );
    [T, N] = [t.shape[0]!, t.shape[1]!];
  }
  if (N < 1 || T < 1) throw new CellcError(`the ${what} has no rows or no steps`);
  for (const n of inputs) {
    const t = ts.get(n)!;
    if (t.dtype === "i32") {
      const at = t.data.findIndex((v) => v < 0);
      if (at >= 0)
        throw new CellcError(`tensor '${n}' in the ${what} holds a negative token id at index ${at}`);
    } else checkFinite(t, n, what);
  }
  const target = ts.get("target");
  if (!target) throw new CellcError(`the ${what} has no tensor 'target'`);
  const cls = target.dtype === "i32";
  const last = cls ? [N] : [N, target.shape[1] ?? 0];
  const every = cls ? [T, N] : [T, N, target.shape[2] ?? 0];
  const same = (a: readonly number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
  const on = same(target.shape, last) ? "last" : same(target.shape, every) ? "every" : undefined;
  if (!on)
    throw new CellcError(
      `tensor 'target' in the ${what} has shape ${showShape(target.shape)}; expected ${cls ? `[N] = [${N}] or [T, N] = [${T}, ${N}] class ids` : `[N, O] with N = ${N} or [T, N, O] with T = ${T}`}`,
    );
  if (cls && target.data.some((v) => v < 0))
    throw new CellcError(`tensor 'target' in the ${what} holds a negative class id`);
  if (!cls) checkFinite(target, "target", what);
  const lens = ts.get("seq_lens");
  if (lens) {
    if (lens.dtype !== "i32" || lens.shape.length !== 1 || lens.shape[0] !== N)
      throw new CellcError(
        `tensor 'seq_lens' in the ${what} has shape ${showShape(lens.shape)} (${lens.stored ?? lens.dtype.toUpperCase()}); expected [N] = [${N}] integers`,
      );
    const bad = lens.data.findIndex((v) => v < 0 || v > T);
    if (bad >= 0)
      throw new CellcError(`seq_lens[${bad}] = ${lens.data[bad]} in the ${what} is outside 0 to T = ${T}`);
  }
  return { T, N, on };
}

/** Data with NaN or an infinity would train or evaluate to a NaN loss: refused where it is. */
function checkFinite(t: Tensor, name: string, what: string): void {
  const at = t.data.findIndex((v) => !Number.isFinite(v));
  if (at >= 0)
    throw new CellcError(
      `tensor '${name}' in the ${what} holds ${t.data[at]} at index ${at}: data must be finite (use seq_lens for padding)`,
    );
}

/** The given rows (batch columns) of every tensor of a file. */
function gather(
  ts: ReadonlyMap<string, Tensor>,
  inputs: readonly string[],
  rows: readonly number[],
  on: "last" | "every",
): Batch {
  const B = rows.length;
  const pick = (t: Tensor, lead: number): Tensor => {
    // lead: the number of leading axes before the row axis (1 for [T, N, ...], 0 for [N, ...]).
    const N = t.shape[lead]!;
    const outer = lead ? t.shape[0]! : 1;
    const inner = t.data.length / (outer * N);
    const Ctor = t.data.constructor as Float32ArrayConstructor;
    checkAllocation(outer * B * inner, 4, `a batch of ${B} rows of a tensor of shape ${showShape(t.shape)}`);
    const data = new Ctor(outer * B * inner);
    for (let o = 0; o < outer; o++)
      rows.forEach((r, b) =>
        data.set(t.data.subarray((o * N + r) * inner, (o * N + r + 1) * inner), (o * B + b) * inner),
      );
    const shape = [...t.shape];
    shape[lead] = B;
    return { dtype: t.dtype, shape, data };
  };
  const lens = ts.get("seq_lens");
  return {
    inputs: new Map(inputs.map((n) => [n, pick(ts.get(n)!, 1)])),
    target: pick(ts.get("target")!, on === "every" ? 1 : 0),
    ...(lens ? { seqLens: pick(lens, 0).data as Int32Array } : {}),
  };
}
