// `cellc compare` (train several cells alike, then the table, the curves and report.html) and `cellc
// gradflow` (‖∂L/∂h_t‖ against t, at initialisation and after training). The training itself is the
// trainer's (runtime/train, runtime/tasks), passed in as `deps`, so that these can be tested without it.
import type { Parsed } from "./args.js";
import { CliError, type Io } from "./io.js";
import { builtinCellFile, fileNetwork, readCellFile, type FileNetwork } from "./network.js";
import { cliBackend } from "./run.js";
import type { Artifact } from "../artifact/artifact.js";
import type { NetworkArtifact } from "../artifact/network.js";
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
import { makeTask } from "../workbench/tasks/index.js";
import { Network } from "../workbench/train/network.js";
import { train } from "../workbench/train/trainer.js";
import {
  formatTable,
  summarise,
  TABLE_HEADER,
  tableRows,
  type RunSummary,
} from "../workbench/report/summary.js";

/** What compare and gradflow need of a network (runtime/train/network.ts's Network). */
export interface NetworkLike {
  readonly paramCount: number;
  readonly params: Map<string, Tensor>;
  loss(batch: Batch, want?: { grads?: boolean; stateGrads?: boolean }): Promise<LossResult>;
}

/** The trainer's pieces: runtime/tasks (makeTask), runtime/train/network.ts, runtime/train/trainer.ts. */
export interface TrainerDeps {
  makeTask(name: string, opts?: { T?: number }): DataSource;
  /** The network a file trains on the task (its declared model, or its cell in the default model). */
  networkSpec(
    file: string,
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
  return {
    makeTask: (name, opts) => makeTask(name, opts),
    networkSpec: (file, task, dims, io, optim, layers) =>
      fileNetwork(file, readCellFile(file), layers ? { layers } : {}, task, dims, io, optim),
    network: (spec, opts) => new Network(spec, opts),
    train: (net, data, cfg, hooks) => train(net as Network, data, cfg, hooks),
  };
}

export interface CompareOptions {
  readonly task: string;
  readonly T?: number;
  readonly steps: number;
  readonly seeds: number;
  readonly batch: number;
  readonly lr: number;
  readonly optim: OptimName;
  readonly clip?: number;
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
  /** How tables and plots name it: the cell's name, with its file when two cells share a name. */
  readonly label: string;
  /** The same for file names: the cell's name, numbered when two share it. */
  readonly key: string;
}

/** Every file's network for the task (all diagnostics first); undefined when any has errors. */
function loadCells(
  files: readonly string[],
  task: TaskInfo,
  dims: Readonly<Record<string, number>>,
  deps: TrainerDeps,
  io: Io,
  optim: OptimName,
  layers?: number,
): LoadedCell[] | undefined {
  const compiled = files.map((file) => ({
    file,
    net: deps.networkSpec(file, task, { ...dims }, io, optim, layers),
  }));
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
    label: labels.filter((l) => l === labels[i]).length > 1 ? `${labels[i]} #${i + 1}` : labels[i]!,
    key: keys[i]!,
  }));
}

const progress = (io: Io, quiet: boolean | undefined) => (line: string) => {
  if (!quiet) io.err(line + "\n");
};

/** Trains each cell `seeds` times with the same budget, data and seeds; writes everything under `out`. */
export async function compareCells(
  files: readonly string[],
  o: CompareOptions,
  deps: TrainerDeps,
  io: Io,
): Promise<number> {
  const task = deps.makeTask(o.task, o.T === undefined ? {} : { T: o.T });
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
        say(`${tag}: training ${o.steps} steps on ${task.name} (T = ${task.T})`);
        const net = deps.network(specs[i]!, { seed, ...(o.backend ? { backend: o.backend } : {}) });
        const cfg: TrainConfig = {
          steps: o.steps,
          batch: o.batch,
          lr: o.lr,
          optim: o.optim,
          seed,
          evalEvery: o.evalEvery,
          ...(o.clip !== undefined ? { clip: o.clip } : {}),
        };
        const r = await deps.train(net, task, cfg, {
          onMetric: (m) => {
            if (m.split === "eval")
              say(`${tag}: step ${m.step}/${o.steps} eval loss ${m.loss.toPrecision(4)}`);
          },
        });
        for (const m of r.metrics)
          if (m.split === "eval") points.push({ cell: c.label, seed, step: m.step, loss: m.loss });
        stage.write(
          `metrics/${c.key}-${seed}.jsonl`,
          r.metrics.map((m) => JSON.stringify(m) + "\n").join(""),
        );
        runs.push({
          cell: c.label,
          file: c.file,
          seed,
          final_eval_loss: r.finalEvalLoss,
          solved: r.solved,
          steps_to_solve: r.stepsToSolve,
          ms_per_step: r.msPerStep,
          params: r.paramCount,
        });
        say(
          `${tag}: final eval loss ${r.finalEvalLoss.toPrecision(4)}, ${r.solved ? `solved at step ${r.stepsToSolve}` : "not solved"}, ${r.msPerStep.toFixed(2)} ms/step`,
        );
      }
    const table = tableRows(summarise(runs));
    const title = `${task.name} (T = ${task.T}): eval loss over ${o.seeds} seed${o.seeds > 1 ? "s" : ""}, mean and min-max`;
    const spec = curvesSpec(curveRows(points), {
      title,
      logY: o.logY ?? true,
      cells: cells.map((c) => c.label),
      ...(task.chance !== undefined ? { chance: task.chance } : {}),
    });
    const svg = await renderSvg(spec);
    stage.write("summary.json", JSON.stringify(runs, null, 2) + "\n");
    stage.write("curves.svg", svg);
    stage.write("curves.png", await svgToPng(svg));
    stage.write(
      "report.html",
      reportHtml({
        title: `cellc compare: ${cells.map((c) => c.label).join(", ")} on ${task.name}`,
        command: o.command,
        header: TABLE_HEADER,
        rows: table,
        notes: [
          task.summary,
          `${o.steps} steps, batch ${o.batch}, ${o.optim} lr ${o.lr}${o.clip !== undefined ? `, clip ${o.clip}` : ""}, eval every ${o.evalEvery} steps; seeds 0..${o.seeds - 1}; sizes ${dimsText(o.dims)}.`,
          "final eval loss: mean ± sample sd over seeds; solved: runs meeting the task's criterion; steps to solve: median over those runs.",
        ],
        figures: [{ caption: title, svg }],
      }),
    );
    stage.commit();
    io.out(formatTable(TABLE_HEADER, table));
    say(`wrote ${o.out}: summary.json, metrics/, curves.svg, curves.png, report.html`);
    return 0;
  } catch (e) {
    stage.abort();
    throw e;
  }
}

export interface GradflowOptions {
  readonly task: string;
  readonly T: number;
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
  const task = deps.makeTask(o.task, { T: o.T });
  if (task.on !== "last")
    throw new CliError(
      `gradflow needs a task with one target per sequence (on the last step); '${task.name}' has one at every step`,
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
        const r = await deps.train(net, task, {
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
      say(`${c.label}: loss ${before.loss.toPrecision(4)} -> ${after.loss.toPrecision(4)}`);
    }
    const phases = ["at initialisation", `after ${o.steps} steps`] as const;
    const state = [...new Set(entries.map((e) => e.state.replace(/^.*\./, "")))].join(", ");
    const title = `gradient flow on ${task.name} (T = ${task.T}): loss at the last step`;
    const series = entries.map((e) => ({ cell: e.cell, init: e.norm_init, trained: e.norm_trained }));
    const spec = gradflowSpec(gradflowRows(series, phases), {
      title,
      cells: cells.map((c) => c.label),
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
        `${e.cell} (${e.state}): ‖∂L/∂s_0‖ / ‖∂L/∂s_T-1‖ = ${fmtRatio(ratio(e.norm_init))} at initialisation, ${fmtRatio(ratio(e.norm_trained))} after ${o.steps} steps\n`,
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

/** `--dims H=32,D=4`, with H = 32 unless given. */
function dimsOf(args: Parsed): Record<string, number> {
  const dims = Object.assign(Object.create(null) as Record<string, number>, { H: 32 });
  for (const part of (args.options.dims ?? "").split(",").filter((p) => p.trim() !== "")) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\d+)\s*$/.exec(part);
    if (!m || Number(m[2]) < 1)
      throw new CliError(`--dims takes NAME=SIZE pairs separated by commas (H=32,D=4), got '${part}'`);
    dims[m[1]!] = Number(m[2]);
  }
  return dims;
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

export function compareOptions(args: Parsed): Omit<CompareOptions, "backend"> {
  const out = needOut(args);
  if (!args.options.task)
    throw new CliError("compare needs --task NAME (adding, copy, selective-copy, sine, chars)");
  const steps = int(args, "steps", 2000);
  const T = args.options.T === undefined ? undefined : int(args, "T", 0);
  const layers = args.options.layers === undefined ? undefined : int(args, "layers", 1);
  return {
    task: args.options.task,
    ...(T !== undefined ? { T } : {}),
    ...(layers !== undefined ? { layers } : {}),
    steps,
    seeds: int(args, "seeds", 3),
    batch: int(args, "batch", 32),
    lr: positive(args, "lr", 0.01)!,
    optim: (args.options.optim ?? "adam") as OptimName,
    clip: positive(args, "clip", 1),
    evalEvery: int(args, "eval-every", Math.max(1, Math.round(steps / 40))),
    dims: dimsOf(args),
    out,
    quiet: args.flags.has("quiet"),
    command: commandLine(args),
  };
}

export function gradflowOptions(args: Parsed): GradflowOptions {
  return {
    task: args.options.task ?? "adding",
    T: int(args, "T", 200),
    steps: int(args, "steps", 300, 0),
    batch: int(args, "batch", 32),
    lr: positive(args, "lr", 0.01)!,
    optim: (args.options.optim ?? "adam") as OptimName,
    clip: 1,
    dims: dimsOf(args),
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
