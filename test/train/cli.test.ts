// cellc init / train / sample, run in-process through the CLI's main() as the command runs them.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { main } from "../../cli/main.js";
import { compileCell } from "../../api/compile-cell.js";
import { Rng } from "../../runtime/init.js";
import { Model } from "../../runtime/model.js";
import { readSafetensors, writeSafetensors } from "../../runtime/safetensors.js";
import { makeTask } from "../../workbench/tasks/index.js";
import { jsonl } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "cellc-train-cli-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const GRU = "examples/cells/gru.cell";
const LSTM = "examples/cells/lstm.cell";

async function cellc(...argv: string[]) {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}
const small = ["--task", "adding", "--T", "6", "--dims", "H=8", "--batch", "8", "--lr", "0.01", "--quiet"];

describe("cellc init", () => {
  test("writes the declared initialisers; cellc run's Model loads them", async () => {
    const p = join(tmp, "lstm.p.safetensors");
    const r = await cellc("init", LSTM, "--dims", "D=3,H=5", "--seed", "4", "--out", p);
    expect(r.code).toBe(0);
    expect(r.out).toContain("Wi [5, 3]");
    const ts = readSafetensors(readFileSync(p));
    expect([...ts.get("bf")!.data]).toEqual([1, 1, 1, 1, 1]); // bf : [H] = 1
    expect([...ts.get("bi")!.data]).toEqual([0, 0, 0, 0, 0]);
    // Ui ~ orthogonal: U U^T = I.
    const U = ts.get("Ui")!.data;
    for (let i = 0; i < 5; i++)
      for (let j = 0; j < 5; j++) {
        let s = 0;
        for (let k = 0; k < 5; k++) s += U[i * 5 + k]! * U[j * 5 + k]!;
        expect(s).toBeCloseTo(i === j ? 1 : 0, 5);
      }
    const m = new Model(compileCell(readFileSync(LSTM, "utf8")), { params: ts });
    expect(m.sizes[0]).toMatchObject({ D: 3, H: 5 });
    const again = join(tmp, "lstm.q.safetensors");
    await cellc("init", LSTM, "--dims", "D=3,H=5", "--seed", "4", "--out", again);
    expect(readFileSync(again).equals(readFileSync(p))).toBe(true);
    const two = await cellc(
      "init",
      LSTM,
      "--dims",
      "D=3,H=5",
      "--layers",
      "2",
      "--out",
      join(tmp, "l2.safetensors"),
    );
    expect(two.out).toContain("l1.Wi [5, 5]");
  });

  test("a missing size is named; nothing is written", async () => {
    const p = join(tmp, "none.safetensors");
    const r = await cellc("init", LSTM, "--dims", "H=5", "--out", p);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/dimension D .* is not known/);
    expect(existsSync(p)).toBe(false);
  });
});

describe("cellc train", () => {
  test("metrics.jsonl, params.safetensors and the checkpoint; resume continues bit for bit", async () => {
    const a = join(tmp, "a");
    const b = join(tmp, "b");
    const r = await cellc(
      "train",
      GRU,
      ...small,
      "--steps",
      "8",
      "--eval-every",
      "4",
      "--clip",
      "1",
      "--out",
      a,
    );
    expect(r.code, r.err).toBe(0);
    expect(readdirSync(a).sort()).toEqual([
      "checkpoint.json",
      "checkpoint.safetensors",
      "metrics.jsonl",
      "network.json",
      "params.safetensors",
    ]);
    const ms = jsonl(join(a, "metrics.jsonl"));
    expect(ms.filter((m) => m.split === "train").map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(ms.filter((m) => m.split === "eval").map((m) => m.step)).toEqual([4, 8]);
    for (const m of ms) expect(typeof m.loss).toBe("number");
    expect(Object.keys(ms[0]!)).toEqual(expect.arrayContaining(["lr", "grad_norm", "examples_per_s"]));
    const params = readSafetensors(readFileSync(join(a, "params.safetensors")));
    expect([...params.keys()].sort()).toEqual(
      ["Ur", "Un", "Uz", "Wn", "Wr", "Wz", "Wy", "bhn", "bin", "br", "by", "bz"].sort(),
    );
    expect(params.get("Wy")!.shape).toEqual([1, 8]);

    expect(
      (await cellc("train", GRU, ...small, "--steps", "8", "--eval-every", "4", "--clip", "1", "--out", b))
        .code,
    ).toBe(0);
    // Pretend the run was cut at step 4: resume from a checkpoint made by a 4-step run of the same config.
    rmSync(b, { recursive: true });
    const half = await cellc(
      "train",
      GRU,
      ...small,
      "--steps",
      "4",
      "--eval-every",
      "4",
      "--clip",
      "1",
      "--out",
      b,
    );
    expect(half.code).toBe(0);
    const res = await cellc("train", "--resume", b, "--steps", "8", "--quiet");
    expect(res.code, res.err).toBe(0);
    expect(
      readFileSync(join(b, "params.safetensors")).equals(readFileSync(join(a, "params.safetensors"))),
    ).toBe(true);
    const strip = (xs: Record<string, number | string>[]) => xs.map(({ examples_per_s: _, ...m }) => m);
    expect(strip(jsonl(join(b, "metrics.jsonl")))).toEqual(strip(ms));
  });

  test("--data / --eval files, --no-shuffle, --init", async () => {
    const task = makeTask("sine", { T: 5 });
    const tr = task.batch("train", 12, new Rng(1));
    const ev = task.batch("eval", 4, new Rng(2));
    const file = (name: string, b: typeof tr) => {
      const p = join(tmp, name);
      writeFileSync(p, writeSafetensors({ x: b.inputs.get("x")!, target: b.target }));
      return p;
    };
    const init = join(tmp, "gru.init.safetensors");
    expect((await cellc("init", GRU, "--dims", "D=1,H=4", "--out", init)).code).toBe(0);
    const out = join(tmp, "data-run");
    const r = await cellc(
      "train",
      GRU,
      "--data",
      file("tr.safetensors", tr),
      "--eval",
      file("ev.safetensors", ev),
      "--no-shuffle",
      "--init",
      init,
      "--steps",
      "3",
      "--batch",
      "4",
      "--quiet",
      "--out",
      out,
    );
    expect(r.code, r.err).toBe(0);
    const got = readSafetensors(readFileSync(join(out, "params.safetensors")));
    const given = readSafetensors(readFileSync(init));
    expect(got.get("Ur")!.shape).toEqual([4, 4]);
    expect(got.get("Ur")!.data).not.toEqual(given.get("Ur")!.data); // trained from there
    const bad = join(tmp, "bad.safetensors");
    writeFileSync(bad, writeSafetensors({ x: tr.inputs.get("x")!, y: tr.target }));
    const e = await cellc("train", GRU, "--data", bad, "--out", join(tmp, "never"));
    expect(e.code).toBe(1);
    expect(e.err).toContain("unexpected tensor 'y' in the training data");
    expect(existsSync(join(tmp, "never"))).toBe(false);
  });

  test("data without a criterion: no verdict; --solved-below gives one; class targets report accuracy", async () => {
    const task = makeTask("sine", { T: 5 });
    const tr = task.batch("train", 12, new Rng(1));
    const p = join(tmp, "plain.safetensors");
    writeFileSync(p, writeSafetensors({ x: tr.inputs.get("x")!, target: tr.target }));
    const args = ["train", GRU, "--data", p, "--steps", "2", "--dims", "H=4", "--quiet"];
    const plain = await cellc(...args, "--out", join(tmp, "plain"));
    expect(plain.code, plain.err).toBe(0);
    expect(plain.out).toMatch(/^eval loss \S+ after 2 steps/);
    expect(plain.out).not.toMatch(/solved/);
    const judged = await cellc(...args, "--solved-below", "1e9", "--out", join(tmp, "judged"));
    expect(judged.out).toMatch(/^solved: eval loss \S+ after 2 steps \(first solved at step 1\)/);
    // Class targets: the accuracy in every eval line of metrics.jsonl and in the closing line.
    const cls = join(tmp, "classes.safetensors");
    const ids = Int32Array.from(tr.target.data, (v) => (v > 0 ? 1 : 0));
    writeFileSync(
      cls,
      writeSafetensors({ x: tr.inputs.get("x")!, target: { dtype: "i32", shape: [5, 12], data: ids } }),
    );
    const c = await cellc(
      "train",
      GRU,
      "--data",
      cls,
      "--steps",
      "2",
      "--dims",
      "H=4",
      "--quiet",
      "--out",
      join(tmp, "cls"),
    );
    expect(c.code, c.err).toBe(0);
    const evals = jsonl(join(tmp, "cls", "metrics.jsonl")).filter((m) => m.split === "eval");
    for (const m of evals) expect(typeof m.accuracy).toBe("number");
    expect(c.out).toContain(`accuracy ${(100 * (evals.at(-1)!.accuracy as number)).toFixed(1)}%`);
    expect(jsonl(join(tmp, "plain", "metrics.jsonl")).some((m) => "accuracy" in m)).toBe(false);
  });

  test("token ids given to a plain cell: it needs an embedding (a model), not a dimension", async () => {
    const p = join(tmp, "tokens.safetensors");
    const x = {
      dtype: "i32" as const,
      shape: [4, 6],
      data: Int32Array.from({ length: 24 }, (_, i) => i % 5),
    };
    writeFileSync(p, writeSafetensors({ x, target: x }));
    const r = await cellc("train", LSTM, "--data", p, "--out", join(tmp, "tok"));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/gives token ids, and cell 'lstm' reads feature vectors: it needs an embedding/);
    expect(r.err).toMatch(/declare a model with `input tokens : int\[V\]`/);
    expect(r.err).not.toMatch(/is not known/);
  });

  test("selective-copy: its recall accuracy, what its criterion judges, in each eval line and the verdict", async () => {
    const out = join(tmp, "selective");
    const r = await cellc("train", GRU, "--task", "selective-copy", "--T", "12", "--dims", "H=8", "--steps", "2", "--batch", "4", "--eval-every", "1", "--out", out); // prettier-ignore
    expect(r.code, r.err).toBe(0);
    const evals = jsonl(join(out, "metrics.jsonl")).filter((m) => m.split === "eval");
    const pct = (m: Record<string, unknown>) =>
      `recall accuracy ${(100 * (m.recall_accuracy as number)).toFixed(1)}%`;
    const lines = r.out.split("\n").filter((l) => l.startsWith("step "));
    expect(lines.length).toBe(evals.length);
    lines.forEach((l, i) => expect(l).toContain(pct(evals[i]!)));
    expect(r.out).toMatch(new RegExp(`not solved: .*, ${pct(evals.at(-1)!)} after 2 steps`));
  });

  test("chars: bits per character, then cellc sample", async () => {
    const out = join(tmp, "chars");
    const r = await cellc(
      "train",
      GRU,
      "--task",
      "chars",
      "--T",
      "8",
      "--dims",
      "H=8",
      "--steps",
      "2",
      "--batch",
      "4",
      "--quiet",
      "--out",
      out,
    );
    expect(r.code, r.err).toBe(0);
    const ms = jsonl(join(out, "metrics.jsonl"));
    for (const m of ms) expect(m.bits_per_char).toBeCloseTo((m.loss as number) / Math.LN2, 12);
    const s = await cellc("sample", out, "--length", "40", "--seed", "3", "--prime", "The ");
    expect(s.code, s.err).toBe(0);
    const text = s.out.replace(/\n$/, "");
    expect(text.startsWith("The ")).toBe(true);
    expect(text).toHaveLength(44);
    const s2 = await cellc("sample", out, "--length", "40", "--seed", "3", "--prime", "The ");
    expect(s2.out).toBe(s.out);
    const bad = await cellc("sample", out, "--prime", "~");
    expect(bad.err).toContain('--prime has characters the model never saw: "~"');
    const notChars = await cellc("sample", join(tmp, "a"));
    expect(notChars.err).toMatch(
      /does not predict its next input symbol from named classes; sample needs a character model/,
    );
  });

  const errors: [string, string[], RegExp][] = [
    [
      "an unknown task",
      ["--task", "nope"],
      /unknown task 'nope': the tasks are adding, copy, selective-copy, sine, chars/,
    ],
    ["a bad --lr", ["--task", "adding", "--lr", "fast"], /--lr must be a positive number, got 'fast'/],
    ["a negative --lr", ["--task", "adding", "--lr", "-1"], /--lr must be a positive number, got '-1'/],
    [
      "a bad --steps",
      ["--task", "adding", "--steps", "1.5"],
      /--steps must be a positive integer, got '1.5'/,
    ],
    ["bad --dims", ["--task", "adding", "--dims", "H"], /--dims takes NAME=SIZE pairs/],
    [
      "a missing --data file",
      ["--data", "nowhere.safetensors"],
      /cannot read training data 'nowhere.safetensors': no such file/,
    ],
    ["no task or data", [], /train needs --task NAME/],
    ["both task and data", ["--task", "adding", "--data", "x"], /train needs --task NAME/],
    ["a declared model", ["--task", "adding", "--model", "m"], /E089\]: file defines no model named 'm'/],
    [
      "a bad --optim",
      ["--task", "adding", "--optim", "lbfgs"],
      /--optim must be one of sgd, momentum, adam, adamw/,
    ],
  ];
  for (const [what, args, message] of errors)
    test(`${what}: exit 1, a message, nothing written`, async () => {
      const out = join(tmp, `err-${what.replace(/\W/g, "")}`);
      const r = await cellc("train", GRU, ...args, "--out", out);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(message);
      expect(r.err).not.toMatch(/\n\s+at /);
      expect(existsSync(out)).toBe(false);
    });

  test("a missing cell file, an existing run, a changed option on --resume", async () => {
    expect((await cellc("train", "missing.cell", "--task", "adding")).err).toContain(
      "cannot read 'missing.cell': no such file",
    );
    const again = await cellc("train", GRU, ...small, "--out", join(tmp, "a"));
    expect(again.err).toContain("already holds a training run: continue it with --resume");
    const res = await cellc("train", "--resume", join(tmp, "a"), "--lr", "0.1");
    expect(res.code).toBe(1);
    expect(res.err).toContain("--lr cannot change on --resume");
    const none = await cellc("train", "--resume", join(tmp, "nothing"));
    expect(none.err).toMatch(/cannot read checkpoint .*no such file/);
  });
});
