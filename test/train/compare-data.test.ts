// `cellc compare` on a user's own data, end to end with the real trainer: the files examples/data/
// make-sine.mjs writes (sine forecasting, and frequency bands as classes), three cells, no criterion.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { main } from "../../cli/main.js";
import { jsonl } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "cellc-compare-data-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(() => {
  const r = spawnSync(process.execPath, ["examples/data/make-sine.mjs", tmp], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
});

async function cellc(...argv: string[]) {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}
const CELLS = ["examples/cells/rnn.cell", "examples/cells/lstm.cell", "examples/cells/gru.cell"];
const small = [
  "--steps",
  "6",
  "--seeds",
  "1",
  "--dims",
  "H=4",
  "--batch",
  "16",
  "--eval-every",
  "3",
  "--quiet",
];
const data = (name: string) => [
  "--data",
  join(tmp, `${name}.train.safetensors`),
  "--eval",
  join(tmp, `${name}.eval.safetensors`),
];

describe("cellc compare --data", () => {
  test("sine forecasting: the table, summary.json and the pictures, with no solved column", async () => {
    const out = join(tmp, "sine");
    const r = await cellc("compare", ...CELLS, ...data("sine"), ...small, "--out", out);
    expect(r.code, r.err).toBe(0);
    expect(readdirSync(out).sort()).toEqual([
      "curves.png",
      "curves.svg",
      "metrics",
      "report.html",
      "summary.json",
    ]);
    const table = r.out.trimEnd().split("\n");
    expect(table[0]).toMatch(/^cell\s+final eval loss\s+ms\/step\s+params$/);
    expect(table.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(["rnn", "lstm", "gru"]);
    const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8")) as Record<string, unknown>[];
    for (const row of summary) {
      expect(Object.keys(row).sort()).toEqual(
        [
          "cell",
          "file",
          "final_eval_loss",
          "ms_per_step",
          "ms_per_step_max",
          "ms_per_step_min",
          "params",
          "seed",
        ].sort(),
      );
      const last = jsonl(join(out, "metrics", `${row.cell}-0.jsonl`))
        .filter((m) => m.split === "eval")
        .at(-1)!;
      expect(row.final_eval_loss).toBe(last.loss);
    }
    expect(readFileSync(join(out, "report.html"), "utf8")).not.toMatch(/<th>solved/);
  }, 120_000);

  test("class targets: the accuracy in the table, summary.json and metrics", async () => {
    const out = join(tmp, "waves");
    const r = await cellc("compare", CELLS[2]!, ...data("waves"), ...small, "--out", out);
    expect(r.code, r.err).toBe(0);
    expect(r.out.split("\n")[0]).toMatch(/^cell\s+final eval loss\s+accuracy\s+ms\/step\s+params$/);
    const [row] = JSON.parse(readFileSync(join(out, "summary.json"), "utf8")) as Record<string, number>[];
    const evals = jsonl(join(out, "metrics", "gru-0.jsonl")).filter((m) => m.split === "eval");
    expect(row!.final_eval_accuracy).toBe(evals.at(-1)!.accuracy);
    expect(r.out).toContain(`${(100 * row!.final_eval_accuracy!).toFixed(1)}%`);
  }, 120_000);
});
