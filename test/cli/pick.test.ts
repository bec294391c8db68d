// `FILE.cell:NAME` wherever a command takes a cell file, the diagnostics of the cell picked (not of every
// cell of its file), and what a file without the cell asked for says. Run in-process through main().
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { choiceOf, parseCellRef, pickedDiagnostics } from "../../cli/cellref.js";
import { main } from "../../cli/main.js";
import { checkProgram } from "../../compiler/driver.js";
import { readSafetensors, writeSafetensors } from "../../runtime/safetensors.js";
import { nodeHost } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "cellc-pick-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function cellc(...argv: string[]) {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

// Two cells, each with a parameter it never uses (W001), a third extending the first, and a model.
const TWO = join(tmp, "two.cell");
writeFileSync(
  TWO,
  `cell a {
  input x[D]
  state h[H]
  param W : [H, D]
  param U : [H, H]
  param V : [H, H]
  h' = tanh(W @ x + U @ h)
  output h'
}
cell b {
  input x[D]
  state h[H]
  param W : [H, D]
  param U : [H, H]
  param Z : [H]
  h' = tanh(W @ x + U @ h)
  output h'
}
cell c extends a {
  param Q : [H]
}
model m {
  input x[D]
  cell b
  param Wy : [O, H]
  param by : [O] = 0
  readout on last y = Wy @ h + by
  loss mse(y, target)
}
`,
);
const warned = (err: string) => [...err.matchAll(/parameter '(\w+)' is never used/g)].map((m) => m[1]).sort();

describe("FILE.cell:NAME", () => {
  test("parses as a file and a name unless the whole is a path or the tail is no identifier", () => {
    const none = () => false;
    expect(parseCellRef("a.cell:lstm", none)).toEqual({ file: "a.cell", name: "lstm" });
    expect(parseCellRef("dir:x/a.cell:lstm", none)).toEqual({ file: "dir:x/a.cell", name: "lstm" });
    expect(parseCellRef("dir:1/a.cell", none)).toEqual({ file: "dir:1/a.cell" });
    expect(parseCellRef("a.cell:", none)).toEqual({ file: "a.cell:" });
    expect(parseCellRef("a.cell:1x", none)).toEqual({ file: "a.cell:1x" });
    expect(parseCellRef(":x", none)).toEqual({ file: ":x" });
    expect(parseCellRef("odd:name", (p) => p === "odd:name")).toEqual({ file: "odd:name" });
    // On disk: a file whose name has a colon is read as that file.
    const odd = join(tmp, "odd:rnn");
    writeFileSync(odd, readFileSync("examples/cells/rnn.cell"));
    expect(parseCellRef(odd)).toEqual({ file: odd });
  });

  test("a name is a cell or a model of the file; another is an error that lists them", () => {
    const r = checkProgram(TWO, nodeHost);
    expect(choiceOf(r, TWO, "b")).toEqual({ cell: "b" });
    expect(choiceOf(r, TWO, "m")).toEqual({ model: "m" });
    expect(() => choiceOf(r, TWO, "bb")).toThrow(/defines no cell or model named 'bb'; did you mean 'b'\?/);
    expect(() => choiceOf(r, TWO, "zzzz")).toThrow(/it defines cells a, b, c and model m/);
  });

  test("check, compile, init, run and import take it", async () => {
    const check = await cellc("check", `${TWO}:b`, "examples/cells/gru.cell:gru");
    expect(check.code, check.err).toBe(0);
    expect(check.out).toBe(`${TWO}: cell b ok\nexamples/cells/gru.cell: cell gru ok\n`);
    expect((await cellc("check", `${TWO}:m`)).out).toBe(`${TWO}: model m ok\n`);
    const bad = await cellc("check", `${TWO}:nope`);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("defines no cell or model named 'nope'");

    const ir = await cellc("compile", `${TWO}:b`, "--emit", "ir");
    expect(ir.code, ir.err).toBe(0);
    expect(ir.out).toBe((await cellc("compile", TWO, "--cell", "b", "--emit", "ir")).out);
    expect(ir.out).toMatch(/^cell b/m);
    const model = await cellc("compile", `${TWO}:m`, "--emit", "ir");
    expect(model.out).toBe((await cellc("compile", TWO, "--model", "m", "--emit", "ir")).out);

    const p = join(tmp, "b.safetensors");
    const init = await cellc("init", `${TWO}:b`, "--dims", "D=2,H=3", "--out", p);
    expect(init.code, init.err).toBe(0);
    expect([...readSafetensors(readFileSync(p)).keys()].sort()).toEqual(["U", "W"]); // Z is never used
    const x = { dtype: "f32" as const, shape: [2, 1, 2], data: Float32Array.of(1, 2, 3, 4) };
    const inputs = join(tmp, "x.safetensors");
    writeFileSync(inputs, writeSafetensors({ x }));
    const run = await cellc("run", `${TWO}:b`, "--params", p, "--inputs", inputs, "--out", join(tmp, "y"));
    expect(run.code, run.err).toBe(0);
    expect((await cellc("run", `${TWO}:m`, "--params", p, "--inputs", inputs, "--out", "y")).err).toContain(
      "'m' is a model of",
    );
    // import torch: --cell F.cell:NAME names the cell; nn.RNN's state dict into `b` (the tanh RNN).
    const H = 3;
    const t = (shape: number[]) => ({
      dtype: "f32" as const,
      shape,
      data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i / 10),
    });
    const state = join(tmp, "rnn.torch.safetensors");
    writeFileSync(state, writeSafetensors({ weight_ih_l0: t([H, 2]), weight_hh_l0: t([H, H]) }));
    const imp = await cellc("import", "torch", state, "--cell", `${TWO}:a`, "--out", join(tmp, "a.p"));
    expect(imp.code, imp.err).toBe(0);
    expect(imp.out).toMatch(/wrote .*: W, U/);
  });

  test("naming the cell twice is refused", async () => {
    const r = await cellc("compile", `${TWO}:b`, "--cell", "a", "--emit", "ir");
    expect(r.code).toBe(1);
    expect(r.err).toContain(`'${TWO}:b' names the cell: leave out --cell`);
  });

  test("train takes a model by name", async () => {
    const r = await cellc(
      "train",
      `${TWO}:m`,
      "--task",
      "adding",
      "--T",
      "4",
      "--dims",
      "H=3",
      "--steps",
      "1",
      "--quiet",
      "--out",
      join(tmp, "run-m"),
    );
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(readFileSync(join(tmp, "run-m", "network.json"), "utf8"))).toMatchObject({
      model: "m",
    });
  });
});

describe("the diagnostics of the cell picked", () => {
  test("compile shows the compiled cell's warnings and counts the others'", async () => {
    const r = await cellc("compile", TWO, "--cell", "b", "--emit", "schedule");
    expect(r.code).toBe(0);
    expect(warned(r.err)).toEqual(["Z"]);
    // V of a; Q of c, and c's note that it drops V.
    expect(r.err).toContain(`cellc: 3 more warnings or notes about other cells of '${TWO}'`);
    // A cell that extends another: the parent's warnings are its own too.
    expect(warned((await cellc("compile", `${TWO}:c`, "--emit", "ir")).err)).toEqual(["Q", "V"]);
    // The whole file's IR (no cell named): every warning.
    expect(warned((await cellc("compile", TWO, "--emit", "ir")).err)).toEqual(["Q", "V", "Z"]);
    expect(warned((await cellc("check", TWO)).err)).toEqual(["Q", "V", "Z"]);
  });

  test("train shows the trained cell's or model's warnings", async () => {
    const args = ["--task", "adding", "--T", "4", "--dims", "H=3", "--steps", "1", "--quiet"];
    const r = await cellc("train", TWO, "--cell", "a", ...args, "--out", join(tmp, "run-a"));
    expect(r.code, r.err).toBe(0);
    expect(warned(r.err)).toEqual(["V"]);
    // The model's cell is b: its warning once (not once per compile step).
    const m = await cellc("train", TWO, ...args, "--out", join(tmp, "run-m2"));
    expect(warned(m.err)).toEqual(["Z"]);
  });

  test("errors are shown wherever they are", () => {
    const r = checkProgram(TWO, nodeHost, readFileSync(TWO, "utf8").replace("tanh(W @ x + U @ h)", "nope"));
    const { shown } = pickedDiagnostics(r, { cell: "b" });
    expect(shown.some((d) => d.severity === "error")).toBe(true);
  });
});

describe("a file without the cell asked for", () => {
  test("a file with only a model says so, and where the model's cell is", async () => {
    const r = await cellc(
      "init",
      "examples/models/adding.cell",
      "--dims",
      "D=2,H=4",
      "--out",
      join(tmp, "p"),
    );
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      "error[E092]: file defines no cell, only model 'adder' (its cell 'lstm' is defined in 'examples/cells/lstm.cell')",
    );
    expect(r.err).not.toContain("(none given)");
  });

  test("a file with several cells and none named lists them", async () => {
    const r = await cellc("init", TWO, "--dims", "D=2,H=4", "--out", join(tmp, "p"));
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      "error[E093]: file defines 3 cells (a, b, c): choose one with --cell NAME (or FILE.cell:NAME)",
    );
  });
});
