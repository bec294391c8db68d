// The commands of issue 9 end to end with the real trainer: compare on the adding problem (the README's
// main job, smaller), gradflow at initialisation, and declared models trained and sampled.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { main } from "../../cli/main.js";
import { jsonl } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "cellc-e2e-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const cells = (...names: string[]) => names.map((n) => `examples/cells/${n}.cell`);

async function cellc(...argv: string[]) {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

interface Row {
  cell: string;
  seed: number;
  final_eval_loss: number;
  solved: boolean;
  steps_to_solve: number | null;
  ms_per_step: number;
  params: number;
}

describe("cellc compare on the adding problem", () => {
  test("at T = 50 the LSTM and the GRU solve it and the plain RNN stays at chance", async () => {
    const out = join(tmp, "compare");
    const r = await cellc(
      "compare",
      ...cells("rnn", "lstm", "gru"),
      ...["--task", "adding", "--T", "50", "--steps", "600", "--seeds", "1", "--out", out, "--quiet"],
    );
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const rows = JSON.parse(readFileSync(join(out, "summary.json"), "utf8")) as Row[];
    const by = new Map(rows.map((x) => [x.cell, x]));
    expect([...by.keys()]).toEqual(["rnn", "lstm", "gru"]);
    // Adding's criterion: eval MSE < 0.01; chance (predicting the mean, 1) is 1/6.
    for (const name of ["lstm", "gru"]) {
      const x = by.get(name)!;
      expect(x.solved, name).toBe(true);
      expect(x.final_eval_loss, name).toBeLessThan(0.01);
      expect(x.steps_to_solve, name).toBeLessThanOrEqual(600);
    }
    const rnn = by.get("rnn")!;
    expect(rnn.solved).toBe(false);
    expect(rnn.steps_to_solve).toBeNull();
    expect(rnn.final_eval_loss).toBeGreaterThan(0.12);
    // Parameter counts from the cells' shapes (D = 2, H = 32) plus the readout (32 + 1).
    expect(by.get("rnn")!.params).toBe(32 * 2 + 32 * 32 + 32 + 33);
    expect(by.get("lstm")!.params).toBe(4 * (32 * 2 + 32 * 32 + 32) + 33);
    // The table on stdout lists the three cells; the curves and report are written.
    for (const name of ["rnn", "lstm", "gru"]) expect(r.out).toMatch(new RegExp(`^${name}\\s`, "m"));
    const png = readFileSync(join(out, "curves.png"));
    expect(png.subarray(1, 4).toString()).toBe("PNG");
    expect(readFileSync(join(out, "report.html"), "utf8")).toContain("<svg");
    // Each run's eval lines are its curve: the last eval loss is the summary's final loss.
    const evals = jsonl(join(out, "metrics", "gru-0.jsonl")).filter((m) => m.split === "eval");
    expect(evals.at(-1)!.loss).toBeCloseTo(by.get("gru")!.final_eval_loss, 12);
  }, 300_000);
});

describe("cellc gradflow", () => {
  test("at initialisation a plain RNN's state gradient vanishes over 50 steps and an LSTM's does not", async () => {
    const out = join(tmp, "gradflow");
    const r = await cellc(
      "gradflow",
      ...cells("rnn", "lstm"),
      "--T",
      "50",
      "--steps",
      "0",
      "--out",
      out,
      "--quiet",
    );
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const entries = JSON.parse(readFileSync(join(out, "gradflow.json"), "utf8")) as {
      cell: string;
      t: number[];
      norm_init: number[];
    }[];
    const ratio = (name: string) => {
      const n = entries.find((e) => e.cell === name)!.norm_init;
      expect(n).toHaveLength(50);
      return n[0]! / n[49]!;
    };
    expect(ratio("rnn")).toBeLessThan(1e-6);
    expect(ratio("lstm")).toBeGreaterThan(1e-3);
  }, 120_000);
});

describe("declared models", () => {
  test("a model block trains on its task, and a character model samples text", async () => {
    const adder = join(tmp, "adder");
    const a = await cellc(
      "train",
      "examples/models/adding.cell",
      ...["--task", "adding", "--T", "8", "--dims", "H=16", "--steps", "200", "--lr", "0.01", "--clip", "1"],
      ...["--eval-every", "50", "--out", adder, "--quiet"],
    );
    expect(a.err).toBe("");
    expect(a.code).toBe(0);
    const evals = jsonl(join(adder, "metrics.jsonl")).filter((m) => m.split === "eval");
    expect(evals.at(-1)!.loss).toBeLessThan(0.05);

    const chars = join(tmp, "tagger");
    const t = await cellc(
      "train",
      "examples/models/tagger.cell",
      ...[
        "--task",
        "chars",
        "--T",
        "12",
        "--dims",
        "D=8,H=16",
        "--steps",
        "4",
        "--batch",
        "4",
        "--out",
        chars,
      ],
      "--quiet",
    );
    expect(t.err).toBe("");
    expect(t.code).toBe(0);
    const s = await cellc("sample", chars, "--length", "30", "--prime", "We ");
    expect(s.code).toBe(0);
    expect(s.out.trimEnd()).toHaveLength(33);
    expect(s.out.startsWith("We ")).toBe(true);

    // A model that reads out at every step does not fit a task with one target per sequence.
    const bad = await cellc(
      "train",
      "examples/models/bigru.cell",
      "--task",
      "adding",
      "--out",
      join(tmp, "b"),
    );
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/reads out at every step, but 'adding' has its target on the last step/);
  }, 120_000);
});
