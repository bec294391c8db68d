import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseArgs } from "../../cli/args.js";
import {
  compareCells,
  compareOptions,
  gradflowCells,
  gradflowOptions,
  loadTrainer,
  type CompareOptions,
  type NetworkLike,
  type TrainerDeps,
} from "../../cli/compare.js";
import { main, type Io } from "../../cli/main.js";
import { Rng } from "../../runtime/init.js";
import type { CompiledCell } from "../../runtime/cell.js";
import { compileCell } from "../../api/compile-cell.js";
import type { NetworkArtifact } from "../../artifact/network.js";
import { CellcError, tensor, type Tensor } from "../../runtime/tensor.js";
import { solvedBy } from "../../workbench/train/trainer.js";
import { readSafetensors, writeSafetensors } from "../../runtime/safetensors.js";
import { dataFromSafetensors } from "../../workbench/tasks/index.js";
import type {
  Batch,
  DataSource,
  LossResult,
  Metric,
  NetworkOptions,
  TaskInfo,
  TrainConfig,
  TrainResult,
} from "../../workbench/train/types.js";
import { markPaths, pngSize, svgSize } from "./plot-helpers.js";

// A trainer small enough to read, doing real arithmetic: the task is a discounted sum of the inputs,
// the "network" h_t = rho h_{t-1} + a_t x_t, y = h_{T-1} + c (rho 0.5 for a cell with one state, 0.9 for
// more), trained by SGD on the exact gradient. Orchestration is what is tested, not this model.
function sumTask(name: string, opts: { T?: number } = {}): DataSource {
  if (name !== "sum") throw new CellcError(`unknown task '${name}'`);
  const T = opts.T ?? 6;
  return {
    name,
    summary: `sum: x [T, B, 1] -> sum_t 0.8^(T-1-t) x_t [B, 1]`,
    T,
    inputSize: 1,
    inputKind: "real",
    outputSize: 1,
    on: "last",
    loss: "mse",
    chance: 1,
    solvedBelow: 0.05,
    batch(_split, B, rng) {
      const x = new Float32Array(T * B).map(() => rng.normal());
      const y = new Float32Array(B);
      for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) y[b] += 0.8 ** (T - 1 - t) * x[t * B + b]!;
      return { inputs: new Map([["x", tensor("f32", [T, B, 1], x)]]), target: tensor("f32", [B, 1], y) };
    },
  };
}

class SumNet implements NetworkLike {
  readonly params: Map<string, Tensor>;
  readonly rho: number;
  constructor(
    readonly spec: NetworkArtifact,
    T: number,
    opts: NetworkOptions = {},
  ) {
    this.rho = spec.cell.signature.states.length === 1 ? 0.5 : 0.9;
    const rng = new Rng(opts.seed ?? 0);
    const given = opts.params;
    this.params = new Map([
      [
        "a",
        given?.get("a") ??
          tensor(
            "f64",
            [T],
            new Float64Array(T).map(() => 0.1 * rng.normal()),
          ),
      ],
      ["c", given?.get("c") ?? tensor("f64", [1], new Float64Array(1))],
    ]);
  }
  get paramCount() {
    return this.params.get("a")!.data.length + 1;
  }
  async loss(batch: Batch, want: { grads?: boolean; stateGrads?: boolean } = {}): Promise<LossResult> {
    const x = batch.inputs.get("x")!;
    const [T, B] = x.shape as [number, number];
    const a = this.params.get("a")!.data;
    const c = this.params.get("c")!.data[0]!;
    const dy = new Float64Array(B);
    let loss = 0;
    for (let b = 0; b < B; b++) {
      let h = 0;
      for (let t = 0; t < T; t++) h = this.rho * h + a[t]! * x.data[t * B + b]!;
      const e = h + c - batch.target.data[b]!;
      loss += (e * e) / B;
      dy[b] = (2 * e) / B;
    }
    const ga = new Float64Array(T);
    for (let t = 0; t < T; t++)
      for (let b = 0; b < B; b++) ga[t] += dy[b]! * this.rho ** (T - 1 - t) * x.data[t * B + b]!;
    const gc = dy.reduce((s, v) => s + v, 0);
    const norm = Math.hypot(...dy);
    return {
      loss,
      ...(want.grads
        ? {
            grads: new Map([
              ["a", tensor("f64", [T], ga)],
              ["c", tensor("f64", [1], Float64Array.of(gc))],
            ]),
          }
        : {}),
      ...(want.stateGrads
        ? {
            stateGradNorms: new Map([
              ["h", Float64Array.from({ length: T }, (_, t) => norm * this.rho ** (T - 1 - t))],
            ]),
          }
        : {}),
    };
  }
}

async function sgd(
  net: NetworkLike,
  data: DataSource,
  cfg: TrainConfig,
  hooks: { onMetric?(m: Metric): void } = {},
) {
  const rng = new Rng(cfg.seed);
  const evalBatch = data.batch("eval", 64, new Rng(cfg.seed + 1000));
  const metrics: Metric[] = [];
  const emit = (m: Metric) => (metrics.push(m), hooks.onMetric?.(m));
  let stepsToSolve: number | null = null;
  let evalLoss = NaN;
  const t0 = performance.now();
  for (let step = 1; step <= cfg.steps; step++) {
    const r = await net.loss(data.batch("train", cfg.batch, rng), { grads: true });
    emit({ step, split: "train", loss: r.loss });
    for (const [n, g] of r.grads!) {
      const p = net.params.get(n)!.data;
      for (let i = 0; i < p.length; i++) p[i] -= cfg.lr * g.data[i]!;
    }
    if (step % (cfg.evalEvery ?? 10) === 0 || step === cfg.steps) {
      evalLoss = (await net.loss(evalBatch)).loss;
      emit({ step, split: "eval", loss: evalLoss });
      if (stepsToSolve === null && solvedBy(data, evalLoss)) stepsToSolve = step;
    }
  }
  const result: TrainResult = {
    metrics,
    finalEvalLoss: evalLoss,
    ...(data.solvedBelow !== undefined ? { solved: solvedBy(data, evalLoss) } : {}),
    stepsToSolve,
    msPerStep: (performance.now() - t0) / cfg.steps,
    paramCount: net.paramCount,
    params: new Map([...net.params].map(([n, t]) => [n, { ...t, data: t.data.slice() }])),
  };
  return result;
}

/** SumNet's network: the cell (for its name and states) and T, the sequence length it sums over. */
const fakeSpec = (cell: CompiledCell, task: TaskInfo, dims: Record<string, number>) =>
  ({
    name: cell.signature.name,
    cell: cell.artifact,
    on: task.on,
    sizes: [{ ...dims, T: task.T }],
  }) as unknown as NetworkArtifact;

const deps: TrainerDeps = {
  makeTask: sumTask,
  readData: loadTrainer().readData,
  networkSpec: (ref, task, dims, io) => {
    let cell: CompiledCell;
    try {
      cell = compileCell(readFileSync(ref.file, "utf8"), { file: ref.file, cell: ref.name });
    } catch (e) {
      io.err(String((e as Error).message) + "\n");
      return undefined;
    }
    return { artifact: fakeSpec(cell, task, dims), name: cell.signature.name };
  },
  network: (spec, opts) => new SumNet(spec, spec.sizes[0]!.T!, opts),
  train: sgd,
};

function capture(): Io & { stdout: string; stderr: string } {
  const io = {
    stdout: "",
    stderr: "",
    out: (s: string) => void (io.stdout += s),
    err: (s: string) => void (io.stderr += s),
  };
  return io;
}

const tmp = () => mkdtempSync(join(tmpdir(), "cellc-compare-"));
const options = (out: string, over: Partial<CompareOptions> = {}): CompareOptions => ({
  data: { task: "sum" },
  steps: 40,
  seeds: 2,
  batch: 16,
  lr: 0.05,
  optim: "sgd",
  evalEvery: 10,
  dims: { H: 4 },
  out,
  command: "cellc compare ...",
  ...over,
});

describe("cellc compare (with a small trainer)", () => {
  it("trains every cell with every seed and writes the summary, metrics, curves and report", async () => {
    const dir = tmp();
    const other = join(dir, "rnn.cell"); // a second cell named rnn
    copyFileSync("examples/cells/rnn.cell", other);
    const out = join(dir, "out");
    const files = ["examples/cells/rnn.cell", "examples/cells/lstm.cell", other];
    const io = capture();
    expect(await compareCells(files, options(out), deps, io)).toBe(0);

    const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8")) as Record<string, unknown>[];
    const labels = ["rnn (examples/cells/rnn.cell)", "lstm", `rnn (${other})`];
    expect(summary.map((r) => `${r.cell}/${r.seed}`)).toEqual(labels.flatMap((l) => [`${l}/0`, `${l}/1`]));
    // Every number is the trainer's: the same runs again, by hand.
    for (const [i, row] of summary.entries()) {
      const spec = fakeSpec(
        (await import("../../api/index.js")).compileCell(readFileSync(files[i >> 1]!, "utf8")),
        sumTask("sum"),
        { H: 4 },
      );
      const again = await sgd(new SumNet(spec, 6, { seed: i & 1 }), sumTask("sum"), {
        steps: 40,
        batch: 16,
        lr: 0.05,
        optim: "sgd",
        seed: i & 1,
        evalEvery: 10,
      });
      expect(row).toMatchObject({
        final_eval_loss: again.finalEvalLoss,
        solved: again.solved,
        steps_to_solve: again.stepsToSolve,
        params: 7,
      });
      expect(typeof row.ms_per_step).toBe("number");
      const key = ["rnn_1", "lstm", "rnn_2"][i >> 1];
      const lines = readFileSync(join(out, "metrics", `${key}-${i & 1}.jsonl`), "utf8")
        .trimEnd()
        .split("\n");
      expect(lines.map((l) => JSON.parse(l) as Metric)).toEqual(again.metrics);
    }
    // The rnn learns slower here (rho 0.5): the task's criterion tells them apart.
    expect(summary.filter((r) => r.cell === "lstm").every((r) => r.solved)).toBe(true);

    const svg = readFileSync(join(out, "curves.svg"), "utf8");
    expect(markPaths(svg, "line mark")).toEqual([4, 4, 4]); // eval at steps 10, 20, 30, 40
    const [w, h] = svgSize(svg);
    expect(pngSize(readFileSync(join(out, "curves.png")))).toEqual([2 * w, 2 * h]);
    const html = readFileSync(join(out, "report.html"), "utf8");
    expect(html).toContain("<code>cellc compare ...</code>");
    expect(html).toContain("<svg");
    for (const l of labels) expect(html).toContain(`<td>${l.replace(/&/g, "&amp;")}</td>`);

    const table = io.stdout.trimEnd().split("\n");
    expect(table).toHaveLength(4);
    expect(table[0]).toMatch(/^cell\s+final eval loss\s+solved\s+steps to solve\s+ms\/step\s+params$/);
    expect(table[2]).toMatch(/^lstm\s+\S+ ± \S+\s+2\/2\s+\d+\s+[\d.]+\s+7$/);
    expect(io.stderr).toContain("[1/6] rnn (examples/cells/rnn.cell) seed 0: training 40 steps");
    expect(readdirSync(out).sort()).toEqual([
      "curves.png",
      "curves.svg",
      "metrics",
      "report.html",
      "summary.json",
    ]);
  });

  it("--quiet prints the table only", async () => {
    const io = capture();
    await compareCells(
      ["examples/cells/gru.cell"],
      options(join(tmp(), "o"), { quiet: true, seeds: 1 }),
      deps,
      io,
    );
    expect(io.stderr).toBe("");
    expect(io.stdout.split("\n")[1]).toMatch(/^gru\s/);
  });

  it("a failure part-way leaves nothing behind; bad input is reported before anything is written", async () => {
    const dir = tmp();
    const out = join(dir, "out");
    let runs = 0;
    const failing: TrainerDeps = {
      ...deps,
      train: async (...a) => {
        if (++runs === 2) throw new CellcError("loss is NaN at step 3");
        return sgd(...a);
      },
    };
    await expect(compareCells(["examples/cells/rnn.cell"], options(out), failing, capture())).rejects.toThrow(
      /NaN/,
    );
    expect(readdirSync(out)).toEqual([]);
    const bad = join(dir, "bad.cell");
    writeFileSync(bad, "cell bad { state h[H]; h' = nope }");
    const io = capture();
    expect(await compareCells([bad], options(join(dir, "b")), deps, io)).toBe(1);
    expect(io.stderr).toMatch(/bad\.cell:1:/);
    expect(existsSync(join(dir, "b"))).toBe(false);
    await expect(
      compareCells(
        ["examples/cells/rnn.cell"],
        options(join(dir, "c"), { data: { task: "nope" } }),
        deps,
        capture(),
      ),
    ).rejects.toThrow(/unknown task 'nope'/);
    expect(existsSync(join(dir, "c"))).toBe(false);
    writeFileSync(join(dir, "file"), "");
    await expect(
      compareCells(["examples/cells/rnn.cell"], options(join(dir, "file")), deps, capture()),
    ).rejects.toThrow(/cannot write to '.*file': not a folder/);
  });

  it("--decay reaches every run's training configuration, and the report says it", async () => {
    const dir = tmp();
    const seen: (string | undefined)[] = [];
    const spy: TrainerDeps = { ...deps, train: async (net, data, cfg, ev) => (seen.push(cfg.decay), sgd(net, data, cfg, ev)) }; // prettier-ignore
    expect(await compareCells(["examples/cells/rnn.cell"], options(join(dir, "o"), { decay: "cosine" }), spy, capture())).toBe(0); // prettier-ignore
    expect(seen).toEqual(["cosine", "cosine"]);
    expect(readFileSync(join(dir, "o", "report.html"), "utf8")).toContain("lr 0.05 (cosine decay)");
    const o = compareOptions(
      parseArgs(["compare", "a.cell", "--task", "adding", "--decay", "linear", "--out", "d"]),
    );
    expect(o.decay).toBe("linear");
    expect(() =>
      parseArgs(["compare", "a.cell", "--task", "adding", "--decay", "step", "--out", "d"]),
    ).toThrow(/--decay must be one of none, linear, cosine/);
  });

  it("options from the command line", () => {
    const o = compareOptions(
      parseArgs([
        "compare",
        "a.cell",
        "b.cell",
        "--task",
        "adding",
        "--T",
        "50",
        "--steps",
        "400",
        "--out",
        "d",
      ]),
    );
    expect(o).toMatchObject({
      data: { task: "adding", T: 50 },
      steps: 400,
      seeds: 3,
      evalEvery: 10,
      dims: {},
    });
    expect(o.solvedBelow).toBeUndefined();
    expect(o.command).toBe("cellc compare a.cell b.cell --task adding --T 50 --steps 400 --out d");
    const bad = (argv: string[], msg: RegExp) => expect(() => compareOptions(parseArgs(argv))).toThrow(msg);
    bad(["compare", "a.cell", "--task", "adding"], /needs --out DIR/);
    bad(["compare", "a.cell", "--out", "d"], /needs --task NAME .* or --data TRAIN\.safetensors/);
    bad(["compare", "a.cell", "--out", "d", "--task", "adding", "--data", "x"], /--task NAME or --data/);
    bad(["compare", "a.cell", "--out", "d", "--eval", "e"], /--eval EVAL\.safetensors goes with --data/);
    bad(["compare", "a.cell", "--out", "d", "--data", "t", "--T", "5"], /--T goes with --task/);
    bad(
      ["compare", "a.cell", "--out", "d", "--data", "t", "--solved-below", "0"],
      /--solved-below must be a positive number/,
    );
    expect(
      compareOptions(
        parseArgs(["compare", "a.cell", "--data", "t", "--eval", "e", "--solved-below", "0.1", "--out", "d"]),
      ),
    ).toMatchObject({ data: { train: "t", eval: "e" }, solvedBelow: 0.1 });
    bad(
      ["compare", "a.cell", "--task", "adding", "--out", "d", "--steps", "0"],
      /--steps must be an integer of at least 1, got '0'/,
    );
    bad(
      ["compare", "a.cell", "--task", "adding", "--out", "d", "--seeds", "1.5"],
      /--seeds must be an integer/,
    );
    bad(
      ["compare", "a.cell", "--task", "adding", "--out", "d", "--lr", "-1"],
      /--lr must be a positive number/,
    );
    bad(["compare", "a.cell", "--task", "adding", "--out", "d", "--dims", "H"], /--dims takes NAME=SIZE/);
    expect(gradflowOptions(parseArgs(["gradflow", "a.cell", "--out", "d"]))).toMatchObject({
      data: { task: "adding", T: 200 },
      steps: 300,
    });
    expect(gradflowOptions(parseArgs(["gradflow", "a.cell", "--T", "9", "--out", "d"])).data).toEqual({
      task: "adding",
      T: 9,
    });
    expect(gradflowOptions(parseArgs(["gradflow", "a.cell", "--data", "t", "--out", "d"])).data).toEqual({
      train: "t",
    });
  });

  it("through main: a usage error exits 1 with a message, no stack trace", async () => {
    const io = capture();
    expect(await main(["compare", "examples/cells/rnn.cell", "--out", join(tmp(), "o")], io)).toBe(1);
    expect(io.stderr).toBe(
      "cellc: error: compare needs --task NAME (adding, copy, selective-copy, sine, chars) or --data TRAIN.safetensors [--eval EVAL.safetensors]\n",
    );
  });
});

describe("cellc gradflow (with a small trainer)", () => {
  it("norms at initialisation and after training, per cell, with the plot", async () => {
    const out = join(tmp(), "g");
    const io = capture();
    const o = {
      ...gradflowOptions(parseArgs(["gradflow", "x", "--out", out])),
      data: { task: "sum", T: 8 },
      steps: 30,
      lr: 0.05,
    };
    expect(await gradflowCells(["examples/cells/rnn.cell", "examples/cells/lstm.cell"], o, deps, io)).toBe(0);
    const g = JSON.parse(readFileSync(join(out, "gradflow.json"), "utf8")) as {
      cell: string;
      state: string;
      t: number[];
      norm_init: number[];
      norm_trained: number[];
    }[];
    expect(g.map((e) => [e.cell, e.state])).toEqual([
      ["rnn", "h"],
      ["lstm", "h"],
    ]);
    // At initialisation: the untrained network's own norms on the same held-out batch.
    const task = sumTask("sum", { T: 8 });
    const batch = task.batch("eval", 32, new Rng(0));
    const cell = (await import("../../api/index.js")).compileCell(
      readFileSync("examples/cells/rnn.cell", "utf8"),
    );
    const net = new SumNet(fakeSpec(cell, task, {}), 8, { seed: 0 });
    expect(g[0]!.norm_init).toEqual([
      ...(await net.loss(batch, { stateGrads: true })).stateGradNorms!.get("h")!,
    ]);
    expect(g[0]!.t).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(g[0]!.norm_trained).not.toEqual(g[0]!.norm_init);
    expect(g[0]!.norm_init[0]! / g[0]!.norm_init[7]!).toBeCloseTo(0.5 ** 7, 12);
    const svg = readFileSync(join(out, "gradflow.svg"), "utf8");
    expect(markPaths(svg, "line mark")).toEqual([8, 8, 8, 8]);
    const [w, h] = svgSize(svg);
    expect(pngSize(readFileSync(join(out, "gradflow.png")))).toEqual([2 * w, 2 * h]);
    expect(io.stdout).toMatch(/^rnn \(h\): ‖∂L\/∂s_0‖ \/ ‖∂L\/∂s_T-1‖ = 7\.81e-3 at initialisation/);
  });

  it("refuses a task with a target at every step", async () => {
    const every: TrainerDeps = { ...deps, makeTask: (n, o) => ({ ...sumTask(n, o), on: "every" }) };
    const out = join(tmp(), "g");
    const o = { ...gradflowOptions(parseArgs(["gradflow", "x", "--out", out])), data: { task: "sum" } };
    await expect(gradflowCells(["examples/cells/rnn.cell"], o, every, capture())).rejects.toThrow(
      /gradflow needs a task with one target per sequence/,
    );
    expect(existsSync(out)).toBe(false);
  });
});

describe("compare and gradflow on the user's data (with a small trainer)", () => {
  /** The sum task's batches as safetensors files: what a user's own data looks like. */
  function writeData(dir: string, every = false) {
    const files: string[] = [];
    for (const [name, N, seed] of [
      ["train.safetensors", 200, 1],
      ["eval.safetensors", 50, 2],
    ] as const) {
      const b = sumTask("sum").batch("eval", N, new Rng(seed));
      const x = b.inputs.get("x")!;
      // A target at every step, for the refusal below: the same value repeated.
      const target = every
        ? tensor(
            "f32",
            [6, N, 1],
            Float32Array.from({ length: 6 * N }, (_, i) => b.target.data[i % N]!),
          )
        : b.target;
      writeFileSync(
        join(dir, name),
        writeSafetensors(
          new Map([
            ["x", x],
            ["target", target],
          ]),
        ),
      );
      files.push(join(dir, name));
    }
    return { train: files[0]!, eval: files[1]! };
  }
  const cfgOf = (seed: number): TrainConfig => ({
    steps: 40,
    batch: 16,
    lr: 0.05,
    optim: "sgd",
    seed,
    evalEvery: 10,
  });

  it("no criterion: no solved column or field, the chance line drawn and no threshold", async () => {
    const dir = tmp();
    const data = writeData(dir);
    const out = join(dir, "out");
    const io = capture();
    const files = ["examples/cells/rnn.cell", "examples/cells/lstm.cell"];
    expect(await compareCells(files, options(out, { data }), deps, io)).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8")) as Record<string, unknown>[];
    expect(summary).toHaveLength(4);
    // Each run trains on the data from its beginning: the same numbers as a fresh source, by hand.
    const read = () =>
      dataFromSafetensors(
        readSafetensors(readFileSync(data.train)),
        readSafetensors(readFileSync(data.eval)),
        {
          inputs: ["x"],
        },
      );
    for (const [i, row] of summary.entries()) {
      expect(Object.keys(row)).not.toContain("solved");
      expect(Object.keys(row)).not.toContain("steps_to_solve");
      const cell = compileCell(readFileSync(files[i >> 1]!, "utf8"));
      const again = await sgd(
        new SumNet(fakeSpec(cell, read(), { H: 4 }), 6, { seed: i & 1 }),
        read(),
        cfgOf(i & 1),
      );
      expect(row.final_eval_loss).toBe(again.finalEvalLoss);
    }
    expect(io.stdout.split("\n")[0]).toMatch(/^cell\s+final eval loss\s+ms\/step\s+params$/);
    expect(io.stderr).not.toMatch(/solved/);
    // Chance: the eval targets' variance (the best constant guess), computed here from the file.
    const y = Array.from(readSafetensors(readFileSync(data.eval)).get("target")!.data);
    const m = y.reduce((a, v) => a + v, 0) / y.length;
    const variance = y.reduce((a, v) => a + (v - m) ** 2, 0) / y.length;
    const svg = readFileSync(join(out, "curves.svg"), "utf8");
    const labels = [...svg.matchAll(/aria-roledescription="text mark"[^>]*>([^<]*)</g)].map((x) => x[1]);
    expect(labels).toEqual([`chance ${variance.toExponential(2)}`]);
    const html = readFileSync(join(out, "report.html"), "utf8");
    expect(html).toContain("the data has no criterion");
    expect(html).toContain("<caption>per seed</caption>");
    expect(html).toContain("measured on a machine shared with other work");
  });

  it("--solved-below gives the criterion: the solved column, the fields and the threshold line", async () => {
    const dir = tmp();
    const data = writeData(dir);
    const out = join(dir, "out");
    const io = capture();
    const o = options(out, { data, solvedBelow: 0.05, seeds: 1 });
    expect(await compareCells(["examples/cells/lstm.cell"], o, deps, io)).toBe(0);
    const [row] = JSON.parse(readFileSync(join(out, "summary.json"), "utf8")) as Record<string, unknown>[];
    expect(row!.solved).toBe((row!.final_eval_loss as number) < 0.05);
    expect(io.stdout.split("\n")[0]).toMatch(/^cell\s+final eval loss\s+solved\s+steps to solve\s+ms/);
    expect(readFileSync(join(out, "curves.svg"), "utf8")).toContain(">solved below 5.00e-2</text>");
  });

  it("FILE.cell:NAME picks a cell out of a file with several", async () => {
    const dir = tmp();
    const file = join(dir, "two.cell");
    writeFileSync(
      file,
      readFileSync("examples/cells/rnn.cell", "utf8") +
        "\n" +
        readFileSync("examples/cells/lstm.cell", "utf8").replace(/cell lstm/, "cell second"),
    );
    const io = capture();
    const out = join(dir, "out");
    expect(await compareCells([`${file}:second`, `${file}:rnn`], options(out, { seeds: 1 }), deps, io)).toBe(
      0,
    );
    const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8")) as Record<string, unknown>[];
    expect(summary.map((r) => [r.cell, r.file])).toEqual([
      ["second", file],
      ["rnn", file],
    ]);
    // Without a name the file's two cells are an error that lists them.
    const err = capture();
    expect(await compareCells([file], options(join(dir, "o2"), { seeds: 1 }), deps, err)).toBe(1);
    expect(err.stderr).toMatch(/file defines 2 cells \(rnn, second\)/);
  });

  it("gradflow on a file with one target per sequence, and not on one with a target at every step", async () => {
    const dir = tmp();
    const io = capture();
    const out = join(dir, "g");
    const o = {
      ...gradflowOptions(parseArgs(["gradflow", "x", "--out", out])),
      data: writeData(dir),
      steps: 5,
    };
    expect(await gradflowCells(["examples/cells/rnn.cell"], o, deps, io)).toBe(0);
    const [g] = JSON.parse(readFileSync(join(out, "gradflow.json"), "utf8")) as { t: number[] }[];
    expect(g!.t).toHaveLength(6);
    expect(io.stdout).toMatch(/eval loss \S+ -> \S+\n$/);
    const every = tmp();
    const o2 = { ...o, data: writeData(every, true), out: join(every, "g") };
    await expect(gradflowCells(["examples/cells/rnn.cell"], o2, deps, capture())).rejects.toThrow(
      /gradflow needs one target per sequence .* has one at every step/,
    );
  });
});

describe("built-in cells by name", () => {
  it("a bare name that is no file is the built-in cell's file; anything else is left as given", async () => {
    const { builtinCellFile } = await import("../../cli/network.js");
    expect(builtinCellFile("mingru").replace(/\\/g, "/")).toMatch(/\/examples\/cells\/mingru\.cell$/);
    expect(readFileSync(builtinCellFile("mingru"), "utf8")).toContain("cell mingru");
    for (const arg of ["no_such_cell", "examples/cells/gru.cell", "gru.cell", "../x"])
      expect(builtinCellFile(arg)).toBe(arg);
  });
  it("compare --layers N stacks each cell in its default model", () => {
    const o = compareOptions(
      parseArgs(["compare", "a.cell", "--task", "adding", "--layers", "2", "--out", "o"]),
    );
    expect(o.layers).toBe(2);
  });
});
