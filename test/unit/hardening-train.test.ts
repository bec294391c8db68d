// Hardening, second round: training data, checkpoints, run folders and the files cellc reads refuse bad
// input with exit 1 and a message that says what and where; never an internal error, a stack trace,
// unbounded time or memory, or a silently wrong result.
import { execFileSync } from "node:child_process";
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { main } from "../../cli/main.js";
import { compileCell, Model, tensor } from "../../api/index.js";
import { Rng } from "../../runtime/init.js";
import { readSafetensors, writeSafetensors } from "../../runtime/safetensors.js";
import type { Tensor } from "../../runtime/tensor.js";
import { dataFromSafetensors, makeTask } from "../../workbench/tasks/index.js";
import { decodeCheckpoint, encodeCheckpoint } from "../../workbench/train/checkpoint.js";
import { Trainer } from "../../workbench/train/trainer.js";
import { Network } from "../../workbench/train/network.js";
import type { Metric } from "../../workbench/train/types.js";
import { jsonl, networkArtifact } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "cellc-hard-train-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => {
  delete process.env.CELLC_MEMORY_LIMIT;
});
const RNN = "examples/cells/rnn.cell";

async function cellc(...argv: string[]) {
  let out = "";
  let err = "";
  const t0 = performance.now();
  const code = await main(argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err, ms: performance.now() - t0 };
}
/** Exit 1 with a message that matches, no stack trace, no internal error. */
function refused(r: { code: number; err: string }, message: RegExp | string) {
  expect(r.err).toMatch(message);
  expect(r.err).not.toMatch(/internal error|\n\s+at /);
  expect(r.code).toBe(1);
}

const small = ["--task", "adding", "--T", "4", "--dims", "H=3", "--batch", "4", "--quiet"];
let run: string;
beforeAll(async () => {
  run = join(tmp, "run");
  const r = await cellc("train", RNN, ...small, "--steps", "4", "--eval-every", "2", "--out", run);
  expect(r.code, r.err).toBe(0);
});

/** A copy of the run folder with its checkpoint's state and tensors edited. */
function editCheckpoint(name: string, edit: (s: Record<string, any>, ts: Map<string, Tensor>) => void) {
  const dir = join(tmp, name);
  rmSync(dir, { recursive: true, force: true });
  cpSync(run, dir, { recursive: true });
  const path = join(dir, "checkpoint.safetensors");
  const ck = decodeCheckpoint(readFileSync(path), path);
  const state = ck.state as Record<string, any>;
  edit(state, ck.tensors);
  writeFileSync(path, encodeCheckpoint({ tensors: ck.tensors, state }).weights);
  return dir;
}
/** The same with the state as raw JSON text (numbers JSON itself cannot write, such as 1e400). */
function rawState(name: string, edit: (json: string) => string) {
  const dir = join(tmp, name);
  rmSync(dir, { recursive: true, force: true });
  cpSync(run, dir, { recursive: true });
  const path = join(dir, "checkpoint.safetensors");
  const ck = decodeCheckpoint(readFileSync(path), path);
  const json = edit(JSON.stringify(ck.state));
  writeFileSync(path, writeSafetensors(ck.tensors, new Map([["cellc.checkpoint", json]])));
  return dir;
}

describe("--resume checks the whole checkpoint state and names the bad field", () => {
  const cases: [string, (s: Record<string, any>, ts: Map<string, Tensor>) => void, RegExp][] = [
    ["config: null", (s) => (s.config = null), /'config' must be an object, got null/],
    ["no optimiser", (s) => delete s.optimizer, /'optimizer' must be an object, got nothing/],
    ["metrics: {}", (s) => (s.metrics = {}), /'metrics' must be an array/],
    ["origin.data: 'x'", (s) => (s.origin.data = "x"), /'origin\.data' must be an object, got "x"/],
    ["a batch of 2^53", (s) => (s.config.batch = 2 ** 53), /'config\.batch' must be a whole number from 1 to 2147483647, got 9007199254740992/], // prettier-ignore
    ["step: 'x'", (s) => (s.step = "x"), /'step' must be a whole number from 0 to \d+, got "x"/],
    ["lr: -1", (s) => (s.config.lr = -1), /'config\.lr' must be a number above 0, got -1/],
    ["an optimiser that is not the config's", (s) => (s.optimizer.name = "sgd"), /'optimizer\.name' must be config\.optim 'adam', got "sgd"/], // prettier-ignore
    ["origin: null", (s) => (s.origin = null), /was not written by cellc train \(it has no origin\)/],
    ["origin.dims.H: -1", (s) => (s.origin.dims.H = -1), /'origin\.dims\.H' must be a whole number from 1 to 16777216, got -1/], // prettier-ignore
    [
      "origin.data.task unknown",
      (s) => (s.origin.data.task = "nope"),
      /'origin\.data\.task' must be one of "adding"/,
    ],
    ["a moment of the wrong length", (_, ts) => ts.set("m/W", tensor("f32", [1])), /optimiser state 'm\/W' has 1 values; its parameter has \d+/], // prettier-ignore
    ["a missing moment", (_, ts) => ts.delete("v/U"), /it has no optimiser state 'v\/U' after 4 updates/],
    ["a moment of another optimiser", (_, ts) => ts.set("buf/W", ts.get("m/W")!), /optimiser state 'buf\/W' does not belong to adam/], // prettier-ignore
    ["a parameter of the wrong shape", (_, ts) => ts.set("U", tensor("f32", [2, 2])), /it has no parameter 'U' of shape \[3, 3\]/], // prettier-ignore
    ["a tensor the network does not have", (_, ts) => ts.set("Q", tensor("f32", [1])), /tensor 'Q' is not a parameter of the network/], // prettier-ignore
  ];
  for (const [what, edit, message] of cases)
    test(what, async () => {
      const dir = editCheckpoint(`ck-${what.replace(/\W/g, "")}`, edit);
      const r = await cellc("train", "--resume", dir, "--steps", "6", "--quiet");
      refused(r, message);
      expect(r.err).toContain(`the checkpoint in '${dir}'`);
    });

  test("layers: 1e400 (JSON's infinity)", async () => {
    const dir = rawState("ck-layers", (j) => j.replace(/"layers":1/, '"layers":1e400'));
    refused(
      await cellc("train", "--resume", dir, "--quiet"),
      /'origin\.layers' must be a whole number from 1 to 10000, got Infinity/,
    );
  });
  test("state that is not JSON", async () => {
    const dir = rawState("ck-json", (j) => j.slice(0, 20));
    refused(await cellc("train", "--resume", dir, "--quiet"), /the state in checkpoint .* is not valid JSON/);
  });
  test("the untouched copy resumes (the control)", async () => {
    const dir = editCheckpoint("ck-control", () => {});
    const r = await cellc("train", "--resume", dir, "--steps", "6", "--quiet");
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/after 6 steps, \d+\.\d ms\/step/);
  });
});

describe("metrics stay out of the checkpoint header", () => {
  test("a checkpoint holds its step's lines and the count, however long the run", async () => {
    const data = makeTask("adding", { T: 4 });
    const art = networkArtifact(RNN, data, { dims: { H: 2 } });
    const t = new Trainer(new Network(art), data, { steps: 10, batch: 2, lr: 0.01, optim: "adam", seed: 0 });
    const lines: Metric[] = Array.from({ length: 300_000 }, (_, i) => ({ step: i, split: "train", loss: 1 }));
    for (const m of lines) t.metrics.push(m);
    t.steps = 299_999;
    const ck = await t.checkpoint();
    const s = ck.state as { metrics: Metric[]; metricCount: number };
    expect(s.metrics).toEqual([lines.at(-1)]);
    expect(s.metricCount).toBe(300_000);
    expect(encodeCheckpoint(ck).json.length).toBeLessThan(10_000);
  });

  test("a checkpoint of an earlier cellc with 200,000 metric lines resumes (no spread)", async () => {
    const data = makeTask("adding", { T: 4 });
    const art = networkArtifact(RNN, data, { dims: { H: 2 } });
    const t = new Trainer(new Network(art), data, { steps: 3, batch: 2, lr: 0.01, optim: "adam", seed: 0 });
    await t.run({});
    const ck = await t.checkpoint();
    const old = { ...(ck.state as object), metricCount: undefined, stepsToSolve: undefined } as Record<string, unknown>; // prettier-ignore
    old.metrics = Array.from({ length: 200_000 }, (_, i) => ({
      step: 3,
      split: i % 2 ? "eval" : "train",
      loss: 2,
    }));
    const back = await Trainer.resume({ tensors: ck.tensors, state: old }, { net: new Network(art), data });
    expect(back.metrics.length).toBe(200_000);
    expect(back.steps).toBe(3);
  });

  test("resume cuts metrics.jsonl back to the checkpoint's lines", async () => {
    const dir = editCheckpoint("metrics-cut", () => {});
    const before = jsonl(join(dir, "metrics.jsonl"));
    // A run killed after its last checkpoint wrote more lines; resume drops them.
    appendFileSync(join(dir, "metrics.jsonl"), '{"step":5,"split":"train","loss":9}\n');
    const r = await cellc("train", "--resume", dir, "--steps", "6", "--quiet");
    expect(r.code, r.err).toBe(0);
    const after = jsonl(join(dir, "metrics.jsonl"));
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.filter((m) => m.split === "train").map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(after.some((m) => m.loss === 9)).toBe(false);
  });
});

describe("--data with many class and token ids", () => {
  test("250,000 class ids and token ids: no stack overflow, the sizes from the largest", () => {
    const N = 250_000;
    const x: Tensor = {
      dtype: "i32",
      shape: [1, N],
      data: Int32Array.from({ length: N }, (_, i) => i % 1000),
    };
    const target: Tensor = {
      dtype: "i32",
      shape: [N],
      data: Int32Array.from({ length: N }, (_, i) => i % 7),
    };
    const d = dataFromSafetensors(
      new Map([
        ["x", x],
        ["target", target],
      ]),
      undefined,
      { inputs: ["x"] },
    );
    expect(d.inputSize).toBe(1000);
    expect(d.outputSize).toBe(7);
  });
});

describe("sizes from the user are checked before any allocation or loop", () => {
  test("--batch 50000000 on a built-in task: refused before the run folder is made", async () => {
    const out = join(tmp, "big-batch");
    const r = await cellc("train", RNN, "--task", "adding", "--batch", "50000000", "--steps", "1", "--quiet", "--out", out); // prettier-ignore
    refused(r, /the inputs of a training batch of B = 50000000 \(T = 50\) needs 5000000000 values, more than a typed array holds/); // prettier-ignore
    expect(existsSync(out)).toBe(false);
  });
  test("--batch over the memory limit", async () => {
    process.env.CELLC_MEMORY_LIMIT = "1M";
    const r = await cellc(
      "train",
      RNN,
      "--task",
      "adding",
      "--batch",
      "100000",
      "--out",
      join(tmp, "mem-batch"),
    );
    refused(r, /the inputs of a training batch of B = 100000 .* over the memory limit of 1\.0 MiB/);
  });
  test("--layers 100000000: at once, with or without --init", async () => {
    const init = join(tmp, "rnn.init.safetensors");
    expect((await cellc("init", RNN, "--dims", "D=2,H=3", "--out", init)).code).toBe(0);
    for (const extra of [[], ["--init", init]]) {
      const r = await cellc(
        "train",
        RNN,
        "--task",
        "adding",
        "--layers",
        "100000000",
        ...extra,
        "--out",
        join(tmp, "l"),
      );
      refused(r, "--layers must be at most 10000, got 100000000");
      expect(r.ms).toBeLessThan(5000);
    }
    refused(
      await cellc("init", RNN, "--dims", "D=2,H=3", "--layers", "100000000", "--out", init),
      /at most 10000/,
    );
  });
  test("a task's batch of 5e7 rows in the library", () => {
    expect(() => makeTask("adding").batch("train", 5e7, new Rng(0))).toThrow(/more than a typed array holds/);
  });
  test("stream(1e9) is refused at once", () => {
    const m = new Model(compileCell(readFileSync(RNN, "utf8")), { dims: { D: 2, H: 3 } });
    const t0 = performance.now();
    expect(() => m.stream(1e9)).toThrow(/state 'h' of layer 0 for B = 1000000000 .* over the memory limit/);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

describe("every path cellc reads is a regular file of bounded size", () => {
  let fifo: string;
  let folder: string;
  let data: string;
  let params: string;
  beforeAll(() => {
    fifo = join(tmp, "fifo.safetensors");
    execFileSync("mkfifo", [fifo]);
    folder = join(tmp, "folder.safetensors");
    mkdirSync(folder);
    const b = makeTask("adding", { T: 4 }).batch("train", 8, new Rng(1));
    data = join(tmp, "data.safetensors");
    writeFileSync(data, writeSafetensors({ x: b.inputs.get("x")!, target: b.target }));
    params = join(tmp, "p.safetensors");
    writeFileSync(params, readFileSync(join(run, "params.safetensors")));
  });
  const inputs = () => {
    const p = join(tmp, "inputs.safetensors");
    writeFileSync(p, writeSafetensors({ x: tensor("f32", [2, 1, 2]) }));
    return p;
  };
  const cases: [string, (bad: string) => string[], string][] = [
    ["--params", (bad) => ["run", RNN, "--params", bad, "--inputs", inputs(), "--out", join(tmp, "o.safetensors")], "parameters"], // prettier-ignore
    ["--inputs", (bad) => ["run", RNN, "--params", params, "--inputs", bad, "--out", join(tmp, "o.safetensors")], "inputs"], // prettier-ignore
    ["--data", (bad) => ["train", RNN, "--data", bad, "--out", join(tmp, "never")], "training data"],
    [
      "--eval",
      (bad) => ["train", RNN, "--data", data, "--eval", bad, "--out", join(tmp, "never")],
      "eval data",
    ],
    ["--init", (bad) => ["train", RNN, "--task", "adding", "--init", bad, "--out", join(tmp, "never")], "initial parameters"], // prettier-ignore
    ["import torch", (bad) => ["import", "torch", bad, "--cell", RNN, "--out", join(tmp, "o.safetensors")], "state dict"], // prettier-ignore
  ];
  for (const [what, argv, name] of cases)
    test(what, async () => {
      for (const [bad, why] of [
        ["/dev/zero", "not a regular file"],
        [fifo, "not a regular file"],
        [folder, "not a regular file"],
        [join(tmp, "none.safetensors"), "no such file"],
      ] as const) {
        const r = await cellc(...argv(bad));
        refused(r, `cannot read ${name} '${bad}': ${why}`);
        expect(r.ms).toBeLessThan(5000);
      }
      process.env.CELLC_MEMORY_LIMIT = "100";
      refused(await cellc(...argv(data)), /larger than the limit of 100 bytes/);
    });

  test(".cell files", async () => {
    refused(await cellc("check", "/dev/zero"), /not a regular file/);
    refused(await cellc("train", fifo, "--task", "adding"), `cannot read '${fifo}': not a regular file`);
    refused(await cellc("compile", folder), /not a regular file/);
  });

  test("checkpoints and run folders", async () => {
    for (const [file, message] of [
      ["checkpoint.safetensors", /cannot read checkpoint '.*checkpoint\.safetensors': not a regular file/],
      ["network.json", /cannot read the network '.*network\.json': not a regular file/],
      ["params.safetensors", /cannot read parameters '.*params\.safetensors': not a regular file/],
    ] as const) {
      const dir = join(tmp, `zero-${file}`);
      cpSync(run, dir, { recursive: true });
      rmSync(join(dir, file));
      symlinkSync("/dev/zero", join(dir, file));
      const r =
        file === "params.safetensors" ? await cellc("sample", dir) : await cellc("train", "--resume", dir);
      refused(r, message);
      expect(r.ms).toBeLessThan(5000);
    }
  });
});

describe("a run folder's network.json is checked before use", () => {
  const edits: [string, (n: Record<string, any>) => void, RegExp][] = [
    ["layers: 'x'", (n) => (n.layers = "x"), /'layers' must be a whole number from 1 to 10000, got "x"/],
    [
      "features that are not the cell's",
      (n) => (n.features = 5),
      /'features' must be the cell's output size 3, got 5/,
    ],
    ["no sizes", (n) => (n.sizes = []), /'sizes' must be one entry per layer \(1\), got an array of 0/],
    ["a cell that is a number", (n) => (n.cell = 5), /'cell' must be an object, got 5/],
    ["an unknown dimension", (n) => (n.cell.signature.params[0].type.dims[0].terms = { Q: 1 }), /'cell\.signature\.params\[0\]\.type\.dims\[0\]\.terms' must be over the signature's dimensions, got "Q"/], // prettier-ignore
    ["a buffer of no input", (n) => (n.cell.buffers[0].index = 99), /'cell\.buffers\[0\]\.index' must be below 1 \(the inputs\), got 99/], // prettier-ignore
    ["an output size the readout does not make", (n) => (n.outputSize = 7), /'outputSize' must be the readout's output size 1, got 7/], // prettier-ignore
    ["edited loss JS", (n) => (n.loss.js = n.loss.js.replace("let sum = 0;", "let sum = 0; process.exit(3);")), /the loss kernels are not the JS cellc generates \(line 2: the name 'process'\)/], // prettier-ignore
    ["edited cell JS", (n) => (n.cell.js = n.cell.js.replace("export function step(", "globalThis.x = 1;\nexport function step(")), /the cell's kernels are not the JS cellc generates/], // prettier-ignore
    ["not a network", (n) => (n.format = "x"), /is not a cellc network/],
  ];
  for (const [what, edit, message] of edits)
    test(what, async () => {
      const dir = join(tmp, `net-${what.replace(/\W/g, "")}`);
      cpSync(run, dir, { recursive: true });
      const n = JSON.parse(readFileSync(join(dir, "network.json"), "utf8")) as Record<string, any>;
      edit(n);
      writeFileSync(join(dir, "network.json"), JSON.stringify(n));
      for (const r of [await cellc("train", "--resume", dir), await cellc("sample", dir)]) {
        refused(r, message);
        expect(r.err).toContain(`the network '${join(dir, "network.json")}'`);
      }
    });
});

describe("non-finite data and weights", () => {
  test("NaN in --eval data ends the run naming the file and the tensor", async () => {
    const task = makeTask("sine", { T: 5 });
    const tr = task.batch("train", 8, new Rng(1));
    const ev = task.batch("eval", 4, new Rng(2));
    (ev.target.data as Float32Array)[3] = NaN;
    const trFile = join(tmp, "sine-train.safetensors");
    const evFile = join(tmp, "sine-eval.safetensors");
    writeFileSync(trFile, writeSafetensors({ x: tr.inputs.get("x")!, target: tr.target }));
    writeFileSync(evFile, writeSafetensors({ x: ev.inputs.get("x")!, target: ev.target }));
    const out = join(tmp, "nan-eval");
    const r = await cellc(
      "train",
      RNN,
      "--data",
      trFile,
      "--eval",
      evFile,
      "--steps",
      "2",
      "--quiet",
      "--out",
      out,
    );
    refused(r, `tensor 'target' in the eval data '${evFile}' holds NaN at index 3`);
    expect(existsSync(out)).toBe(false);
    (tr.inputs.get("x")!.data as Float32Array)[0] = Infinity;
    writeFileSync(trFile, writeSafetensors({ x: tr.inputs.get("x")!, target: tr.target }));
    refused(
      await cellc("train", RNN, "--data", trFile, "--quiet", "--out", out),
      `tensor 'x' in the training data '${trFile}' holds Infinity at index 0`,
    );
  });

  test("import torch warns about non-finite weights, as run does", async () => {
    const H = 2;
    const D = 2;
    const nan = (shape: number[]) => {
      const t = tensor("f32", shape);
      (t.data as Float32Array)[0] = NaN;
      return t;
    };
    const state = join(tmp, "torch.safetensors");
    writeFileSync(
      state,
      writeSafetensors({
        weight_ih_l0: nan([H, D]),
        weight_hh_l0: tensor("f32", [H, H]),
        bias_ih_l0: tensor("f32", [H]),
        bias_hh_l0: tensor("f32", [H]),
      }),
    );
    const out = join(tmp, "imported.safetensors");
    const r = await cellc("import", "torch", state, "--cell", RNN, "--out", out);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/cellc: warning: non-finite values \(NaN or Inf\) in the imported weights: W\b/);
    expect(Number.isNaN(readSafetensors(readFileSync(out)).get("W")!.data[0])).toBe(true);
  });
});
