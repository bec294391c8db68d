// `cellc init`, `cellc train` and `cellc sample`: see the README's "Training" section.
import {
  appendFileSync,
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { MAX_SOURCE_BYTES, nodeHost } from "./node-host.js";
import { COMMANDS, parseDims, UsageError, type Parsed } from "./args.js";
import { cliBackend, cliPrecision, compileCellFile, readTensors } from "./run.js";
import { writeFileAtomic } from "./atomic.js";
import { fmtScores } from "../workbench/report/summary.js";
import { chooseNetwork, fileNetwork, readCellFile } from "./network.js";
import { checkProgram } from "../compiler/driver.js";
import { CliError, type Io } from "./io.js";
import { CellCompileError } from "../compiler/compile.js";
import { compileCell } from "../api/compile-cell.js";
import { Rng } from "../runtime/init.js";
import { Model, type Backend } from "../runtime/model.js";
import { writeSafetensors } from "../runtime/safetensors.js";
import { dataFromSafetensors, makeTask, TASK_NAMES } from "../workbench/tasks/index.js";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.js";
import { Network } from "../workbench/train/network.js";
import { loadRun, PARAMS_FILE, readRunNetwork, writeRunNetwork } from "./rundir.js";
import { layerParamName, MAX_LAYERS, type NetworkArtifact } from "../artifact/network.js";
import { bool, int, isObject, obj, oneOf, opt, record, str, within } from "../artifact/validate.js";
import { Trainer } from "../workbench/train/trainer.js";
import { checkState, MAX_BATCH, type CheckpointState } from "../workbench/train/state.js";
import type { DataSource, Metric, OptimName, TrainConfig } from "../workbench/train/types.js";
import type { Tensor } from "../runtime/tensor.js";

type CommandFn = (args: Parsed, io: Io) => Promise<number> | number;

/** What `--resume` and `cellc sample` rebuild a run from (saved in the checkpoint). */
interface Origin {
  readonly cell: { readonly file: string; readonly source: string; readonly name: string };
  /** Set when the file's declared model is trained (then cell.name is the model's name too). */
  readonly model?: string;
  readonly data: (
    | { readonly task: string; readonly T?: number }
    | { readonly train: string; readonly eval?: string; readonly shuffle: boolean }
  ) & { readonly solvedBelow?: number };
  readonly dims: Record<string, number>;
  readonly layers: number;
  readonly bidirectional: boolean;
}

/** Upper bounds of integer options whose size is allocated or looped over before anything else checks it. */
const MAX_INT: Readonly<Record<string, number>> = { layers: MAX_LAYERS, batch: MAX_BATCH };

/** A number option: `int` (>= 1 unless `min` says, at most its MAX_INT), or a positive real. */
function num(
  args: Parsed,
  name: string,
  kind: "int" | "real",
  min = kind === "int" ? 1 : 0,
): number | undefined {
  const text = args.options[name];
  if (text === undefined) return undefined;
  const v = Number(text);
  const ok = kind === "int" ? Number.isSafeInteger(v) && v >= min : Number.isFinite(v) && v > min;
  if (!ok || text.trim() === "")
    throw new CliError(
      `--${name} must be ${kind === "int" ? (min === 0 ? "a non-negative integer" : min < 0 ? "an integer" : "a positive integer") : "a positive number"}, got '${text}'`,
    );
  const max = MAX_INT[name];
  if (max !== undefined && v > max) throw new CliError(`--${name} must be at most ${max}, got ${text}`);
  return v;
}

/** `cellc init`: the cell's declared initialisers, from a seed, for the given sizes. */
const init: CommandFn = (args, io) => {
  if (!args.options.out) throw new UsageError("init needs --out P.safetensors");
  if (!args.options.dims) throw new UsageError("init needs --dims (D=16,H=32): the sizes of the parameters");
  const dims = parseDims(args.options.dims);
  const seed = num(args, "seed", "int", 0) ?? 0;
  const layers = num(args, "layers", "int");
  const cell = compileCellFile(args.files[0]!, args.options.cell, io);
  if (!cell) return 1;
  const model = new Model(cell, {
    dims,
    seed,
    layers,
    bidirectional: args.flags.has("bidirectional"),
    prefixed: layers !== undefined || args.flags.has("bidirectional"),
  });
  writeFileAtomic(args.options.out, writeSafetensors(model.params));
  const listed = [...model.params].map(([n, t]) => `${n} [${t.shape.join(", ")}]`);
  io.out(`wrote ${args.options.out} (seed ${seed}): ${listed.join(", ")}\n`);
  return 0;
};

/** Options that a resumed run takes from its checkpoint: all but how long, where and how fast it runs. */
const MAY_CHANGE_ON_RESUME = new Set(["steps", "backend", "precision", "threads", "out", "resume"]);
const FIXED_ON_RESUME = COMMANDS.train.values.filter((n) => !MAY_CHANGE_ON_RESUME.has(n));

function dataOf(o: Origin["data"], inputs: readonly string[]): DataSource {
  const data = fileOrTask(o, inputs);
  return o.solvedBelow === undefined ? data : { ...data, solvedBelow: o.solvedBelow };
}

function fileOrTask(o: Origin["data"], inputs: readonly string[]): DataSource {
  if ("task" in o) return makeTask(o.task, { T: o.T });
  const train = readTensors(o.train, "training data");
  const evalSet = o.eval === undefined ? undefined : readTensors(o.eval, "eval data");
  return dataFromSafetensors(train, evalSet, {
    inputs,
    shuffle: o.shuffle,
    name: o.train,
    files: { train: o.train, eval: o.eval },
  });
}

function compileSaved(o: Origin, io: Io) {
  try {
    return compileCell(o.cell.source, { file: o.cell.file, cell: o.cell.name, host: nodeHost });
  } catch (e) {
    if (e instanceof CellCompileError) io.err(e.message + "\n");
    throw new CliError(`the cell saved with the run no longer compiles`);
  }
}

/**
 * The network of a run: compiled from the origin's source (a new run), or the run folder's (resume).
 * `resuming` says which, for the message when it does not compile.
 */
function artifactOf(
  o: Origin,
  data: DataSource,
  io: Io,
  optim: OptimName,
  resuming: boolean,
): NetworkArtifact {
  const choice = o.model
    ? { model: o.model }
    : { cell: o.cell.name, layers: o.layers, bidirectional: o.bidirectional };
  const net = fileNetwork(o.cell.file, o.cell.source, choice, data, o.dims, io, optim);
  const what = o.model ? `model '${o.model}'` : `cell '${o.cell.name}'`;
  if (!net)
    throw new CliError(
      resuming
        ? `the ${what} saved with the run no longer compiles`
        : `the ${what} does not compile for this data`,
    );
  return net.artifact;
}

/** The inputs a data file must hold: the declared model's input, or the cell's inputs. */
function inputNamesOf(o: Origin, io: Io): string[] {
  if (!o.model) return compileSaved(o, io).signature.inputs.map((i) => i.name);
  const m = checkProgram(o.cell.file, nodeHost, o.cell.source).models.get(o.model);
  if (!m) throw new CliError(`the model saved with the run no longer compiles`);
  return [m.input.name];
}

const originSchema = obj<Origin>({
  cell: obj({ file: str(4096), source: str(MAX_SOURCE_BYTES), name: str(1000) }),
  model: opt(str(1000)),
  data: (v, p) =>
    isObject(v) && Object.hasOwn(v, "task")
      ? obj({ task: oneOf(...TASK_NAMES), T: opt(int(2, 100_000)) })(v, p)
      : obj({ train: str(4096), eval: opt(str(4096)), shuffle: bool })(v, p),
  dims: record(int(1, 1 << 24)),
  layers: int(1, MAX_LAYERS),
  bidirectional: bool,
});

/** The checkpoint of a run folder, its state and origin checked field by field before any is used. */
function savedOrigin(dir: string): { state: CheckpointState; origin: Origin; tensors: Map<string, Tensor> } {
  const { state, tensors } = loadCheckpoint(dir);
  const where = `the checkpoint in '${dir}'`;
  const s = checkState(state, where);
  if (!isObject(s.origin)) throw new CliError(`${where} was not written by cellc train (it has no origin)`);
  const origin = within(where, () => originSchema(s.origin, "origin"));
  return { state: s, origin, tensors };
}

/**
 * Cuts metrics.jsonl back to its first `lines` lines (what the run had written at its checkpoint), reading
 * it in blocks: a long run's file need not fit in memory.
 */
function truncateLines(path: string, lines: number): void {
  let fd: number;
  try {
    fd = openSync(path, "r+");
  } catch {
    writeFileSync(path, "");
    return;
  }
  try {
    const buf = Buffer.alloc(1 << 20);
    let at = 0;
    let seen = 0;
    for (let n; seen < lines && (n = readSync(fd, buf, 0, buf.length, at)) > 0;) {
      let i = 0;
      for (; i < n && seen < lines; i++) if (buf[i] === 10) seen++;
      at += i;
    }
    if (seen === lines) ftruncateSync(fd, at);
  } finally {
    closeSync(fd);
  }
}

const train: CommandFn = async (args, io) => {
  const resumeDir = args.options.resume;
  if (resumeDir) {
    for (const n of FIXED_ON_RESUME)
      if (args.options[n] !== undefined)
        throw new CliError(
          `--${n} cannot change on --resume: the run continues with its saved configuration`,
        );
    if (args.flags.has("no-shuffle") || args.flags.has("bidirectional"))
      throw new CliError("--no-shuffle and --bidirectional cannot change on --resume");
    if (args.options.out !== undefined && resolve(args.options.out) !== resolve(resumeDir))
      throw new CliError("--resume DIR continues in DIR: leave out --out or give the same folder");
    return runTraining(args, io, resumeDir);
  }
  if (args.files.length !== 1) throw new UsageError("'train' needs a .cell file (or --resume DIR)");
  if (!args.options.task === !args.options.data)
    throw new UsageError(`train needs --task NAME (${TASK_NAMES.join(", ")}) or --data TRAIN.safetensors`);
  if (args.options.eval && !args.options.data) throw new UsageError("--eval goes with --data");
  if (args.options.T && !args.options.task) throw new UsageError("--T goes with --task");
  return runTraining(args, io);
};

async function runTraining(args: Parsed, io: Io, resumeDir?: string): Promise<number> {
  const steps = num(args, "steps", "int");
  const quiet = args.flags.has("quiet");
  let trainer: Trainer;
  let out: string;
  let backend: Backend | undefined;
  const precision = cliPrecision(args);
  if (resumeDir) {
    const { state, origin, tensors } = savedOrigin(resumeDir);
    if (args.files[0] !== undefined && readCellFile(args.files[0]) !== origin.cell.source)
      throw new CliError(`'${args.files[0]}' is not the cell the run in '${resumeDir}' was trained with`);
    backend = await cliBackend(args);
    const saved = readRunNetwork(resumeDir);
    trainer = await Trainer.resume(
      { tensors, state },
      {
        steps,
        where: `the checkpoint in '${resumeDir}'`,
        rebuild: (s) => {
          const data = dataOf(origin.data, inputNamesOf(origin, io));
          const artifact = saved ?? artifactOf(origin, data, io, s.config.optim, true);
          return { net: new Network(artifact, { backend, precision, seed: s.config.seed }), data };
        },
      },
    );
    out = resumeDir;
    // The metrics up to the checkpoint, as they were; lines after it (a run killed later) are dropped.
    // A checkpoint of an earlier cellc holds them all (and no count).
    const metricsFile = join(out, "metrics.jsonl");
    if (state.metricCount === undefined)
      writeFileSync(metricsFile, state.metrics.map((m) => JSON.stringify(m) + "\n").join(""));
    else truncateLines(metricsFile, state.metricCount);
    // The final weights of the run before are older than what it goes on from: until this run ends, the
    // folder's network is the checkpoint's (cli/rundir.ts).
    rmSync(join(out, PARAMS_FILE), { force: true });
  } else {
    const optim = (args.options.optim ?? "adam") as OptimName;
    const cfg: TrainConfig = {
      steps: steps ?? 1000,
      batch: num(args, "batch", "int") ?? 32,
      lr: num(args, "lr", "real") ?? (optim === "adam" || optim === "adamw" ? 1e-3 : 1e-2),
      optim,
      momentum: num(args, "momentum", "real"),
      weightDecay: args.options["weight-decay"] === "0" ? 0 : num(args, "weight-decay", "real"),
      clip: num(args, "clip", "real"),
      warmup: num(args, "warmup", "int", 0),
      decay: args.options.decay as TrainConfig["decay"],
      seed: num(args, "seed", "int", 0) ?? 0,
      tbptt: num(args, "tbptt", "int"),
      evalEvery: num(args, "eval-every", "int"),
      shuffle: !args.flags.has("no-shuffle"),
    };
    const T = num(args, "T", "int", 2);
    const layers = num(args, "layers", "int") ?? 1;
    const dims = parseDims(args.options.dims);
    const file = args.files[0]!;
    const source = readCellFile(file);
    const chosen = chooseNetwork(file, source, args.options, io);
    if (!chosen) return 1;
    const m = chosen.model;
    const model = m?.name;
    const bidirectional = args.flags.has("bidirectional");
    let name: string;
    let inputs: string[];
    let params: Map<string, Tensor> | undefined;
    if (m) {
      if (args.options.layers !== undefined || bidirectional)
        throw new CliError("--layers and --bidirectional belong to the cell line of a declared model");
      if (args.options.init)
        throw new CliError("--init needs a cell file: a declared model starts from its initialisers");
      name = m.name;
      inputs = [m.input.name];
    } else {
      const cell = compileCellFile(file, args.options.cell, io);
      if (!cell) return 1;
      params = args.options.init ? readTensors(args.options.init, "initial parameters") : undefined;
      if (params) {
        // Sizes from the given weights first, so that --init needs no --dims.
        const prefixed = layers > 1 || bidirectional;
        const names = new Set<string>();
        for (let l = 0; l < layers; l++)
          for (let d = 0; d < (bidirectional ? 2 : 1); d++)
            for (const p of cell.signature.params) names.add(layerParamName(prefixed, l, d, p.name));
        const probe = new Model(cell, {
          params: new Map([...params].filter(([n]) => names.has(n))),
          layers,
          bidirectional,
          dims,
        });
        Object.assign(dims, probe.sizes[0], dims);
      }
      name = cell.signature.name;
      inputs = cell.signature.inputs.map((i) => i.name);
    }
    const solvedBelow = num(args, "solved-below", "real");
    const criterion = solvedBelow === undefined ? {} : { solvedBelow };
    const originData: Origin["data"] = args.options.task
      ? { task: args.options.task, ...(T === undefined ? {} : { T }), ...criterion }
      : {
          train: resolve(args.options.data!),
          ...(args.options.eval ? { eval: resolve(args.options.eval) } : {}),
          shuffle: cfg.shuffle ?? true,
          ...criterion,
        };
    // Read by the paths as given (for the messages); the checkpoint keeps them absolute.
    const given =
      "task" in originData
        ? originData
        : { ...originData, train: args.options.data!, eval: args.options.eval };
    const data = dataOf(given, inputs);
    const origin: Origin = {
      cell: { file: resolve(file), source, name },
      ...(model !== undefined ? { model } : {}),
      data: originData,
      dims: { ...dims },
      layers,
      bidirectional,
    };
    out = args.options.out ?? join("runs", `${name}-${data.name === "data" ? "data" : data.name}`);
    if (existsSync(join(out, "metrics.jsonl")) || existsSync(join(out, "checkpoint.json")))
      throw new CliError(
        `'${out}' already holds a training run: continue it with --resume ${out}, or give another --out`,
      );
    const artifact = artifactOf(origin, data, io, cfg.optim, false);
    backend = await cliBackend(args);
    const net = new Network(artifact, { backend, precision, seed: cfg.seed, params });
    trainer = new Trainer(net, data, cfg, { origin });
    try {
      mkdirSync(out, { recursive: true });
      writeFileSync(join(out, "metrics.jsonl"), "");
    } catch (e) {
      throw new CliError(`cannot write to '${out}': ${(e as Error).message}`);
    }
    writeRunNetwork(out, artifact);
    if (!quiet)
      io.out(
        `training '${name}' (${net.paramCount} parameters) on ${data.summary}\n` +
          `  ${cfg.optim}, lr ${cfg.lr}, batch ${cfg.batch}, ${cfg.steps} steps, seed ${cfg.seed}; writing ${out}\n`,
      );
  }
  const progress = quiet ? undefined : new Progress(io, trainer.cfg.steps);
  const metricsFile = join(out, "metrics.jsonl");
  let lastEval: Metric | undefined;
  const onMetric = (m: Metric) => {
    appendFileSync(metricsFile, JSON.stringify(m) + "\n");
    if (m.split === "eval") lastEval = m;
    progress?.metric(m);
  };
  trainer.onMetric = onMetric;
  const r = await trainer
    .run({ onCheckpoint: (ck) => saveCheckpoint(out, ck) })
    .finally(() => progress?.done());
  writeFileAtomic(join(out, "params.safetensors"), writeSafetensors(r.params));
  // "solved" only where the data has a criterion (a task's, or --solved-below).
  const verdict = r.solved === undefined ? "" : r.solved ? "solved: " : "not solved: ";
  const acc =
    r.finalEvalAccuracy === undefined ? "" : `, accuracy ${(100 * r.finalEvalAccuracy).toFixed(1)}%`;
  io.out(
    `${verdict}eval loss ${r.finalEvalLoss.toPrecision(4)}${acc}${fmtScores(lastEval, ", ")} after ${trainer.steps} steps` +
      `${r.stepsToSolve !== null ? ` (first solved at step ${r.stepsToSolve})` : ""}, ${r.msPerStep.toFixed(1)} ms/step; wrote ${join(out, "params.safetensors")} and ${metricsFile}\n`,
  );
  return 0;
}

/** A one-line progress bar on a terminal; otherwise a plain line at each evaluation. */
class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private readonly start = performance.now();
  private lastTrain?: Metric;
  private drawn = 0;
  constructor(
    private readonly io: Io,
    private readonly steps: number,
  ) {}

  metric(m: Metric): void {
    if (m.split === "train") {
      this.lastTrain = m;
      const now = performance.now();
      if (this.tty && now - this.drawn > 100) {
        this.drawn = now;
        const eta = ((now - this.start) / m.step) * (this.steps - m.step);
        const width = 24;
        const filled = Math.round((width * m.step) / this.steps);
        this.io.err(
          `\r[${"#".repeat(filled)}${".".repeat(width - filled)}] step ${m.step}/${this.steps}  loss ${m.loss.toFixed(4)}  ${m.examples_per_s} ex/s  ETA ${clock(eta)}\x1b[K`,
        );
      }
      return;
    }
    const t = this.lastTrain;
    const bpc = typeof m.bits_per_char === "number" ? `  ${m.bits_per_char.toFixed(3)} bits/char` : "";
    const acc = typeof m.accuracy === "number" ? `  accuracy ${(100 * m.accuracy).toFixed(1)}%` : "";
    const line = `step ${m.step}/${this.steps}  train loss ${t ? t.loss.toFixed(4) : "-"}  eval loss ${m.loss.toFixed(4)}${acc}${fmtScores(m, "  ")}${bpc}${t ? `  ${t.examples_per_s} ex/s` : ""}`;
    if (this.tty) this.io.err(`\r${line}\x1b[K\n`);
    else this.io.out(line + "\n");
  }

  done(): void {
    if (this.tty) this.io.err("\r\x1b[K");
  }
}

function clock(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 3600
    ? `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`
    : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

/** `cellc sample DIR`: text from a trained network that predicts its next input symbol (`chars`). */
const sample: CommandFn = (args, io) => {
  const dir = args.files[0]!;
  const length = num(args, "length", "int") ?? 200;
  const temperature = num(args, "temperature", "real") ?? 1;
  const seed = num(args, "seed", "int", 0) ?? 0;
  if (length > 1_000_000) throw new CliError(`--length must be at most 1000000, got ${length}`);
  const { artifact, params } = loadRun(dir);
  const classes = artifact.classes;
  if (
    !classes ||
    artifact.on !== "every" ||
    artifact.input.size !== classes.length ||
    artifact.outputSize !== classes.length
  )
    throw new CliError(
      `'${dir}' holds '${artifact.name}', which does not predict its next input symbol from named classes; sample needs a character model (trained on the chars task)`,
    );
  const vocab = classes.join("");
  const net = new Network(artifact, { seed: 0, params });
  const prime = args.options.prime ?? "We ";
  const unknown = [...new Set(prime)].filter((c) => !vocab.includes(c));
  if (unknown.length)
    throw new CliError(
      `--prime has characters the model never saw: ${unknown.map((c) => JSON.stringify(c)).join(", ")}`,
    );
  const step = net.stepper(1);
  const V = vocab.length;
  const oneHot = (c: number): Tensor => {
    if (artifact.input.kind === "tokens") return { dtype: "i32", shape: [1], data: Int32Array.of(c) };
    const x = new Float32Array(V);
    x[c] = 1;
    return { dtype: "f32", shape: [1, V], data: x };
  };
  let logits: ArrayLike<number> = new Float64Array(V);
  for (const c of prime) logits = step(oneHot(vocab.indexOf(c)));
  const rng = new Rng(seed);
  let text = prime;
  for (let i = 0; i < length; i++) {
    let m = -Infinity;
    for (let k = 0; k < V; k++) m = Math.max(m, logits[k]!);
    const p = Array.from(logits, (l) => Math.exp((l - m) / temperature));
    let u = rng.next() * p.reduce((a, b) => a + b, 0);
    let c = 0;
    while (c < V - 1 && (u -= p[c]!) > 0) c++;
    text += vocab[c];
    logits = step(oneHot(c));
  }
  io.out(text + "\n");
  return 0;
};

export const trainCommands: Record<"init" | "train" | "sample", CommandFn> = { init, train, sample };
