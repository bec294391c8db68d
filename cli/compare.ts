// `cellc compare` (train several cells alike, then the table, the curves and report.html) and `cellc
// gradflow` (‖∂L/∂h_t‖ against t, at initialisation and after training). The training itself is the
// trainer's (runtime/train, runtime/tasks), passed in as `deps`, so that these can be tested without it.
import { cpus, platform, release, totalmem } from "node:os";
import { basename } from "node:path";
import { parseDims, type Parsed } from "./args.js";
import { choiceOf, parseCellRef, type CellRef } from "./cellref.js";
import { CliError, type Io } from "./io.js";
import { builtinCellFile, fileNetwork, readCellFile, type FileNetwork } from "./network.js";
import { nodeHost } from "./node-host.js";
import { cliBackend, readTensors } from "./run.js";
import type { Artifact } from "../artifact/artifact.js";
import type { NetworkArtifact } from "../artifact/network.js";
import { checkProgram } from "../compiler/driver.js";
import { Rng } from "../runtime/init.js";
import type { Backend } from "../runtime/model.js";
import type { Tensor } from "../runtime/tensor.js";
import type {
  Batch,
  DataSource,
  LossResult,
  Metric,
  NetworkOptions,
  OptimName,
  TaskInfo,
  TrainConfig,
  TrainResult,
} from "../workbench/train/types.js";
import { reportHtml } from "../workbench/report/html.js";
import {
  curveRows,
  curvesSpec,
  gradflowRows,
  gradflowSpec,
  renderSvg,
  svgToPng,
  type CurvePoint,
} from "../workbench/report/plots.js";
import { Staging } from "./staging.js";
import { dataFromSafetensors, makeTask, TASK_NAMES } from "../workbench/tasks/index.js";
import { Network } from "../workbench/train/network.js";
import { train } from "../workbench/train/trainer.js";
import {
  cellTable,
  fmtLoss,
  fmtPercent,
  fmtScores,
  finalScores,
  formatTable,
  legendText,
  runTable,
  summarise,
  type RunSummary,
} from "../workbench/report/summary.js";

/** What compare and gradflow need of a network (runtime/train/network.ts's Network). */
export interface NetworkLike {
  readonly paramCount: number;
  readonly params: Map<string, Tensor>;
  loss(batch: Batch, want?: { grads?: boolean; stateGrads?: boolean }): Promise<LossResult>;
}

/** What the cells are trained on: a built-in task, or the user's safetensors files. */
export type DataSpec =
  { readonly task: string; readonly T?: number } | { readonly train: string; readonly eval?: string };

/** The trainer's pieces: runtime/tasks (makeTask), runtime/train/network.ts, runtime/train/trainer.ts. */
export interface TrainerDeps {
  makeTask(name: string, opts?: { T?: number }): DataSource;
  /** The data of safetensors files (the training set, and the eval set when given), read once. */
  readData(train: string, evalFile?: string): DataSource;
  /** The network a file trains on the data (the cell or model `ref` names, else its declared model, or its cell in the default model). */
  networkSpec(
    ref: CellRef,
    task: TaskInfo,
    dims: Record<string, number>,
    io: Io,
    optim: OptimName,
    layers?: number,
  ): FileNetwork | undefined;
  network(spec: NetworkArtifact, opts?: NetworkOptions): NetworkLike;
  train(
    net: NetworkLike,
    data: DataSource,
    cfg: TrainConfig,
    hooks?: { onMetric?(m: Metric): void },
  ): Promise<TrainResult>;
}

/** The real trainer (runtime/train, runtime/tasks) and the file-to-network rule of compiler/cli-network.ts. */
export function loadTrainer(): TrainerDeps {
  const files = new Map<string, Map<string, Tensor>>();
  const read = (path: string, what: string) => {
    let t = files.get(path);
    if (!t) files.set(path, (t = readTensors(path, what)));
    return t;
  };
  return {
    makeTask: (name, opts) => makeTask(name, opts),
    readData: (trainFile, evalFile) => {
      const tr = read(trainFile, "training data");
      const inputs = [...tr.keys()].filter((n) => n !== "target" && n !== "seq_lens");
      if (inputs.length !== 1)
        throw new CliError(
          `the training data '${trainFile}' holds ${inputs.length ? `the tensors ${inputs.map((n) => `'${n}'`).join(", ")}` : "no input"} besides 'target' and 'seq_lens'; compare and gradflow feed one input (any name)`,
        );
      const ev = evalFile === undefined ? undefined : read(evalFile, "eval data");
      return dataFromSafetensors(tr, ev, { inputs, name: basename(trainFile) });
    },
    networkSpec: (ref, task, dims, io, optim, layers) => {
      // A bare built-in name (`mingru`) is its file in examples/cells.
      const file = builtinCellFile(ref.file);
      const source = readCellFile(file);
      const choice = {
        ...(ref.name === undefined ? {} : choiceOf(checkProgram(file, nodeHost, source), file, ref.name)),
        ...(layers ? { layers } : {}),
      };
      return fileNetwork(file, source, choice, task, dims, io, optim);
    },
    network: (spec, opts) => new Network(spec, opts),
    train: (net, data, cfg, hooks) => train(net as Network, data, cfg, hooks),
  };
}

/** A fresh source of the data (a file's keeps its place in an epoch: each run starts at the beginning). */
function dataOf(spec: DataSpec, deps: TrainerDeps, solvedBelow: number | undefined): DataSource {
  const d =
    "task" in spec
      ? deps.makeTask(spec.task, spec.T === undefined ? {} : { T: spec.T })
      : deps.readData(spec.train, spec.eval);
  return solvedBelow === undefined ? d : { ...d, solvedBelow };
}

/** The data's name with its length, for titles: `adding (T = 50)`. */
const dataTitle = (d: TaskInfo) => `${d.name} (T = ${d.T})`;

export interface CompareOptions {
  readonly data: DataSpec;
  /** The criterion, when the task's is not wanted or the data has none. */
  readonly solvedBelow?: number;
  readonly steps: number;
  readonly seeds: number;
  readonly batch: number;
  readonly lr: number;
  readonly optim: OptimName;
  readonly clip?: number;
  /** The learning rate's schedule after warm-up, as `cellc train --decay` (none by default). */
  readonly decay?: TrainConfig["decay"];
  readonly evalEvery: number;
  /** Sizes the task does not give (H), by dimension name. */
  readonly dims: Readonly<Record<string, number>>;
  /** Stacked layers of each cell in its default model (a declared model says its own). Default 1. */
  readonly layers?: number;
  readonly backend?: Backend;
  readonly out: string;
  readonly quiet?: boolean;
  /** The command line, for the report. */
  readonly command: string;
  /** Log scale for the loss axis. Default true. */
  readonly logY?: boolean;
}

interface LoadedCell {
  readonly file: string;
  readonly cell: Artifact;
  readonly spec: NetworkArtifact;
  /** The cell's or model's name (its colour in pictures). */
  readonly name: string;
  /** How tables and plots name it: the name, with its file when two cells share a name. */
  readonly label: string;
  /** The same for file names: the cell's name, numbered when two share it. */
  readonly key: string;
}

/** Every file's network for the data (all diagnostics first); undefined when any has errors. */
function loadCells(
  args: readonly string[],
  task: TaskInfo,
  dims: Readonly<Record<string, number>>,
  deps: TrainerDeps,
  io: Io,
  optim: OptimName,
  layers?: number,
): LoadedCell[] | undefined {
  const compiled = args.map((arg) => {
    const ref = parseCellRef(arg);
    return { file: ref.file, net: deps.networkSpec(ref, task, { ...dims }, io, optim, layers) };
  });
  if (compiled.some((c) => !c.net)) return undefined;
  const names = compiled.map((c) => c.net!.name);
  const labels = compiled.map((c, i) =>
    names.filter((n) => n === names[i]).length > 1 ? `${names[i]} (${c.file})` : names[i]!,
  );
  const keys: string[] = [];
  for (const n of names) {
    let key = n;
    for (let k = 1; names.filter((m) => m === n).length > 1 && (key === n || keys.includes(key)); k++)
      while (names.includes((key = `${n}_${k}`)) || keys.includes(key)) k++;
    keys.push(key);
  }
  return compiled.map((c, i) => ({
    file: c.file,
    cell: c.net!.artifact.cell,
    spec: c.net!.artifact,
    name: names[i]!,
    label: labels.filter((l) => l === labels[i]).length > 1 ? `${labels[i]} #${i + 1}` : labels[i]!,
    key: keys[i]!,
  }));
}

const progress = (io: Io, quiet: boolean | undefined) => (line: string) => {
  if (!quiet) io.err(line + "\n");
};

/** One run's closing words: its final eval loss, the accuracy for class targets, solved where judged. */
function runWords(r: TrainResult): string {
  const parts = [`final eval loss ${fmtLoss(r.finalEvalLoss)}`];
  if (r.finalEvalAccuracy !== undefined) parts.push(`accuracy ${fmtPercent(r.finalEvalAccuracy)}`);
  if (r.solved !== undefined) parts.push(r.solved ? `solved at step ${r.stepsToSolve}` : "not solved");
  parts.push(`${r.msPerStep.toFixed(2)} ms/step`);
  return parts.join(", ");
}

/** Trains each cell `seeds` times with the same budget, data and seeds; writes everything under `out`. */
export async function compareCells(
  files: readonly string[],
  o: CompareOptions,
  deps: TrainerDeps,
  io: Io,
): Promise<number> {
  const task = dataOf(o.data, deps, o.solvedBelow);
  const cells = loadCells(files, task, o.dims, deps, io, o.optim, o.layers);
  if (!cells) return 1;
  const specs = cells.map((c) => c.spec);
  const say = progress(io, o.quiet);
  const stage = new Staging(o.out);
  try {
    const runs: RunSummary[] = [];
    const points: CurvePoint[] = [];
    const total = cells.length * o.seeds;
    for (const [i, c] of cells.entries())
      for (let seed = 0; seed < o.seeds; seed++) {
        const tag = `[${i * o.seeds + seed + 1}/${total}] ${c.label} seed ${seed}`;
        say(`${tag}: training ${o.steps} steps on ${dataTitle(task)}`);
        const net = deps.network(specs[i]!, { seed, ...(o.backend ? { backend: o.backend } : {}) });
        const cfg: TrainConfig = {
          steps: o.steps,
          batch: o.batch,
          lr: o.lr,
          optim: o.optim,
          seed,
          evalEvery: o.evalEvery,
          ...(o.clip !== undefined ? { clip: o.clip } : {}),
          ...(o.decay !== undefined ? { decay: o.decay } : {}),
        };
        const r = await deps.train(net, dataOf(o.data, deps, o.solvedBelow), cfg, {
          onMetric: (m) => {
            if (m.split === "eval")
              say(
                `${tag}: step ${m.step}/${o.steps} eval loss ${fmtLoss(m.loss)}${typeof m.accuracy === "number" ? `, accuracy ${fmtPercent(m.accuracy)}` : ""}${fmtScores(m, ", ")}`,
              );
          },
        });
        for (const m of r.metrics)
          if (m.split === "eval") points.push({ cell: c.label, seed, step: m.step, loss: m.loss });
        stage.write(
          `metrics/${c.key}-${seed}.jsonl`,
          r.metrics.map((m) => JSON.stringify(m) + "\n").join(""),
        );
        const scores = finalScores(r.metrics);
        runs.push({
          cell: c.label,
          file: c.file,
          seed,
          final_eval_loss: r.finalEvalLoss,
          ...(r.finalEvalAccuracy !== undefined ? { final_eval_accuracy: r.finalEvalAccuracy } : {}),
          ...(scores ? { final_eval_scores: scores } : {}),
          ...(r.solved !== undefined ? { solved: r.solved, steps_to_solve: r.stepsToSolve } : {}),
          ms_per_step: r.msPerStep,
          ...(r.msPerStepMin !== undefined && r.msPerStepMax !== undefined
            ? { ms_per_step_min: r.msPerStepMin, ms_per_step_max: r.msPerStepMax }
            : {}),
          params: r.paramCount,
        });
        say(`${tag}: ${runWords(r)}`);
      }
    const table = cellTable(runs);
    const perCell = summarise(runs);
    const title = `${dataTitle(task)}: eval loss over ${o.seeds} seed${o.seeds > 1 ? "s" : ""}, mean and min-max`;
    const spec = curvesSpec(curveRows(points), {
      title,
      logY: o.logY ?? true,
      cells: cells.map((c, i) => ({ label: c.label, name: c.name, legend: legendText(perCell[i]!) })),
      legendTitle: `cell: final eval loss${perCell[0]?.accuracyMean !== undefined ? ", accuracy" : ""}${task.solvedBelow !== undefined ? ", solved" : ""}`,
      ...(task.chance !== undefined ? { chance: task.chance } : {}),
      ...(task.solvedBelow !== undefined ? { solvedBelow: task.solvedBelow } : {}),
    });
    const svg = await renderSvg(spec);
    stage.write("summary.json", JSON.stringify(runs, null, 2) + "\n");
    stage.write("curves.svg", svg);
    stage.write("curves.png", await svgToPng(svg));
    const criterion =
      task.solvedBelow === undefined
        ? "the data has no criterion (--solved-below X gives one), so nothing is reported as solved."
        : `solved: runs whose final eval loss is below ${fmtLoss(task.solvedBelow)} (${o.solvedBelow !== undefined ? "--solved-below" : "the task's criterion"}); steps to solve: the median, over those runs, of the first evaluation below it.`;
    stage.write(
      "report.html",
      reportHtml({
        machine: machineInfo(),
        title: `cellc compare: ${cells.map((c) => c.label).join(", ")} on ${task.name}`,
        command: o.command,
        header: table.header,
        rows: table.rows,
        notes: [
          task.summary,
          `${o.steps} steps, batch ${o.batch}, ${o.optim} lr ${o.lr}${o.decay && o.decay !== "none" ? ` (${o.decay} decay)` : ""}${o.clip !== undefined ? `, clip ${o.clip}` : ""}, eval every ${o.evalEvery} steps; seeds 0..${o.seeds - 1}; sizes ${cells.map((c) => `${c.label}: ${dimsText(c.spec.sizes[0] ?? {})}`).join("; ")}.`,
          `final eval loss: mean ± sample sd over seeds${table.header.includes("accuracy") ? "; accuracy: the fraction of eval targets whose largest output is the target class" : ""}; ${criterion}`,
          "ms/step: the mean wall time of an update (forward, backward, optimiser step), measured on a machine shared with other work, so it varies from run to run; the per-seed table gives each run's fastest and slowest update (min-max over steps).",
        ],
        figures: [{ caption: title, svg }],
        tables: [{ caption: "per seed", ...runTable(runs) }],
      }),
    );
    stage.commit();
    io.out(formatTable(table.header, table.rows));
    say(`wrote ${o.out}: summary.json, metrics/, curves.svg, curves.png, report.html`);
    return 0;
  } catch (e) {
    stage.abort();
    throw e;
  }
}

export interface GradflowOptions {
  /** A task (its T given) or the user's files. */
  readonly data: DataSpec;
  readonly steps: number;
  readonly batch: number;
  readonly lr: number;
  readonly optim: OptimName;
  readonly clip?: number;
  readonly dims: Readonly<Record<string, number>>;
  readonly seed: number;
  readonly backend?: Backend;
  readonly out: string;
  readonly quiet?: boolean;
  readonly command: string;
}

/** One cell's entry of gradflow.json. */
export interface GradflowEntry {
  readonly cell: string;
  readonly file: string;
  /** The state measured (the cell's first output's, else its first) and its name in the network. */
  readonly state: string;
  readonly t: number[];
  readonly norm_init: number[];
  readonly norm_trained: number[];
  readonly loss_init: number;
  readonly loss_trained: number;
  readonly steps: number;
}

/** Per cell, ‖∂L/∂s_t‖ on one held-out batch, at initialisation and after `steps` of training. */
export async function gradflowCells(
  files: readonly string[],
  o: GradflowOptions,
  deps: TrainerDeps,
  io: Io,
): Promise<number> {
  const task = dataOf(o.data, deps, undefined);
  if (task.on !== "last")
    throw new CliError(
      "task" in o.data
        ? `gradflow needs a task with one target per sequence (on the last step); '${task.name}' has one at every step`
        : `gradflow needs one target per sequence (on the last step): 'target' [N, O] or [N]; '${o.data.train}' has one at every step`,
    );
  const cells = loadCells(files, task, o.dims, deps, io, o.optim);
  if (!cells) return 1;
  for (const c of cells)
    if (!c.cell.signature.states.length)
      throw new CliError(`'${c.label}' has no state: there is no gradient through time to show`);
  const specs = cells.map((c) => c.spec);
  const say = progress(io, o.quiet);
  const stage = new Staging(o.out);
  try {
    const batch = task.batch("eval", o.batch, new Rng(o.seed));
    const entries: GradflowEntry[] = [];
    for (const [i, c] of cells.entries()) {
      const measure = async (net: NetworkLike) => {
        const r = await net.loss(batch, { stateGrads: true });
        const state = stateOf(c.cell, r.stateGradNorms);
        return { loss: r.loss, state, norms: [...r.stateGradNorms!.get(state)!] };
      };
      say(`${c.label}: gradient norms at initialisation (T = ${task.T})`);
      const net = deps.network(specs[i]!, { seed: o.seed, ...(o.backend ? { backend: o.backend } : {}) });
      const before = await measure(net);
      let after = before;
      if (o.steps > 0) {
        say(`${c.label}: training ${o.steps} steps`);
        const r = await deps.train(net, dataOf(o.data, deps, undefined), {
          steps: o.steps,
          batch: o.batch,
          lr: o.lr,
          optim: o.optim,
          seed: o.seed,
          ...(o.clip !== undefined ? { clip: o.clip } : {}),
        });
        // A fresh network from the trained weights: whatever train() does with `net` itself.
        after = await measure(
          deps.network(specs[i]!, {
            seed: o.seed,
            params: r.params,
            ...(o.backend ? { backend: o.backend } : {}),
          }),
        );
      }
      entries.push({
        cell: c.label,
        file: c.file,
        state: before.state,
        t: before.norms.map((_, t) => t),
        norm_init: before.norms,
        norm_trained: after.norms,
        loss_init: before.loss,
        loss_trained: after.loss,
        steps: o.steps,
      });
      say(`${c.label}: loss ${fmtLoss(before.loss)} -> ${fmtLoss(after.loss)}`);
    }
    const phases = ["at initialisation", `after ${o.steps} steps`] as const;
    const state = [...new Set(entries.map((e) => e.state.replace(/^.*\./, "")))].join(", ");
    const title = `gradient flow on ${dataTitle(task)}: loss at the last step`;
    const series = entries.map((e) => ({ cell: e.cell, init: e.norm_init, trained: e.norm_trained }));
    const spec = gradflowSpec(gradflowRows(series, phases), {
      title,
      cells: cells.map((c, i) => ({
        label: c.label,
        name: c.name,
        legend: `${fmtLoss(entries[i]!.loss_init)} → ${fmtLoss(entries[i]!.loss_trained)}`,
      })),
      phases,
      state,
    });
    const svg = await renderSvg(spec);
    stage.write("gradflow.json", JSON.stringify(entries, null, 2) + "\n");
    stage.write("gradflow.svg", svg);
    stage.write("gradflow.png", await svgToPng(svg));
    stage.commit();
    for (const e of entries) {
      const ratio = (n: number[]) => (n[n.length - 1]! > 0 ? n[0]! / n[n.length - 1]! : NaN);
      io.out(
        `${e.cell} (${e.state}): ‖∂L/∂s_0‖ / ‖∂L/∂s_T-1‖ = ${fmtRatio(ratio(e.norm_init))} at initialisation, ${fmtRatio(ratio(e.norm_trained))} after ${o.steps} steps; eval loss ${fmtLoss(e.loss_init)} -> ${fmtLoss(e.loss_trained)}\n`,
      );
    }
    say(`wrote ${o.out}: gradflow.json, gradflow.svg, gradflow.png`);
    return 0;
  } catch (e) {
    stage.abort();
    throw e;
  }
}

const fmtRatio = (x: number) => (Number.isFinite(x) ? x.toExponential(2) : "n/a");

/** The measured state's key in the norms: the first output's state (else the first state), last layer. */
function stateOf(cell: Artifact, norms: ReadonlyMap<string, Float64Array> | undefined): string {
  if (!norms) throw new CliError("the network returned no state-gradient norms (stateGrads)");
  const sig = cell.signature;
  const name = sig.states[sig.outputs[0]?.state ?? 0]!.name;
  if (norms.has(name)) return name;
  const prefixed = [...norms.keys()].filter((k) => k.endsWith(`.${name}`) && !k.includes("reverse."));
  if (!prefixed.length) throw new CliError(`no state-gradient norms for state '${name}' of '${sig.name}'`);
  return prefixed[prefixed.length - 1]!;
}

function dimsText(dims: Readonly<Record<string, number>>): string {
  const e = Object.entries(dims);
  return e.length ? e.map(([k, v]) => `${k} = ${v}`).join(", ") : "from the task";
}

// ---- The command line.

function int(args: Parsed, name: string, dflt: number, min = 1): number {
  const text = args.options[name];
  if (text === undefined) return dflt;
  const v = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(v) || v < min)
    throw new CliError(`--${name} must be an integer of at least ${min}, got '${text}'`);
  return v;
}

function positive(args: Parsed, name: string, dflt: number | undefined): number | undefined {
  const text = args.options[name];
  if (text === undefined) return dflt;
  const v = Number(text);
  if (text.trim() === "" || !Number.isFinite(v) || v <= 0)
    throw new CliError(`--${name} must be a positive number, got '${text}'`);
  return v;
}

function needOut(args: Parsed): string {
  const out = args.options.out;
  if (!out) throw new CliError(`${args.command} needs --out DIR`);
  return out;
}

function commandLine(args: Parsed): string {
  const q = (s: string) => (/^[\w./=,:+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  const parts = ["cellc", args.command, ...args.files.map(q)];
  for (const [k, v] of Object.entries(args.options)) if (v !== undefined) parts.push(`--${k}`, q(v));
  for (const f of args.flags) parts.push(`--${f}`);
  return parts.join(" ");
}

/** `--task NAME [--T N]` or `--data TRAIN [--eval EVAL]`, one of them; `dflt` when neither is given. */
function dataSpecOf(args: Parsed, dflt?: DataSpec): DataSpec {
  const { task, data } = args.options;
  if (task !== undefined && data !== undefined)
    throw new CliError(`${args.command} takes --task NAME or --data TRAIN.safetensors, not both`);
  if (args.options.eval !== undefined && data === undefined)
    throw new CliError("--eval EVAL.safetensors goes with --data TRAIN.safetensors");
  if (data !== undefined) {
    if (args.options.T !== undefined) throw new CliError("--T goes with --task: the data gives its length");
    return { train: data, ...(args.options.eval !== undefined ? { eval: args.options.eval } : {}) };
  }
  const T = args.options.T === undefined ? undefined : int(args, "T", 0);
  if (task !== undefined) return { task, ...(T !== undefined ? { T } : {}) };
  if (!dflt)
    throw new CliError(
      `${args.command} needs --task NAME (${TASK_NAMES.join(", ")}) or --data TRAIN.safetensors [--eval EVAL.safetensors]`,
    );
  return "task" in dflt && T !== undefined ? { ...dflt, T } : dflt;
}

export function compareOptions(args: Parsed): Omit<CompareOptions, "backend"> {
  const out = needOut(args);
  const data = dataSpecOf(args);
  const steps = int(args, "steps", 2000);
  const solvedBelow = positive(args, "solved-below", undefined);
  const layers = args.options.layers === undefined ? undefined : int(args, "layers", 1);
  return {
    data,
    ...(layers !== undefined ? { layers } : {}),
    ...(solvedBelow !== undefined ? { solvedBelow } : {}),
    steps,
    seeds: int(args, "seeds", 3),
    batch: int(args, "batch", 32),
    lr: positive(args, "lr", 0.01)!,
    optim: (args.options.optim ?? "adam") as OptimName,
    clip: positive(args, "clip", 1),
    ...(args.options.decay !== undefined ? { decay: args.options.decay as TrainConfig["decay"] } : {}),
    evalEvery: int(args, "eval-every", Math.max(1, Math.round(steps / 40))),
    dims: parseDims(args.options.dims),
    out,
    quiet: args.flags.has("quiet"),
    command: commandLine(args),
  };
}

export function gradflowOptions(args: Parsed): GradflowOptions {
  return {
    data: dataSpecOf(args, { task: "adding", T: 200 }),
    steps: int(args, "steps", 300, 0),
    batch: int(args, "batch", 32),
    lr: positive(args, "lr", 0.01)!,
    optim: (args.options.optim ?? "adam") as OptimName,
    clip: 1,
    dims: parseDims(args.options.dims),
    seed: int(args, "seed", 0, 0),
    out: needOut(args),
    quiet: args.flags.has("quiet"),
    command: commandLine(args),
  };
}

type CommandFn = (args: Parsed, io: Io) => Promise<number>;
export const compareCommands: Record<"compare" | "gradflow", CommandFn> = {
  compare: async (args, io) => {
    const o = compareOptions(args);
    const backend = await cliBackend(args, ["js", "wasm"]);
    const files = args.files.map(builtinCellFile);
    return compareCells(files, { ...o, ...(backend ? { backend } : {}) }, loadTrainer(), io);
  },
  gradflow: async (args, io) => {
    const backend = await cliBackend(args, ["js", "wasm"]);
    return gradflowCells(
      args.files.map(builtinCellFile),
      { ...gradflowOptions(args), ...(backend ? { backend } : {}) },
      loadTrainer(),
      io,
    );
  },
};

/** CPU, cores, memory, OS and Node: enough to read a ms/step column against. */
function machineInfo(): string {
  const c = cpus();
  const gib = (totalmem() / 2 ** 30).toFixed(1);
  return `${c[0]?.model.trim() ?? "unknown CPU"} (${c.length} cores), ${gib} GiB, ${platform()} ${release()}, Node ${process.version}`;
}
