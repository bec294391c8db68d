import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { main } from "../../cli/main.js";
import { checkProgram, selectModel } from "../../compiler/driver.js";
import { hasErrors, renderAll } from "../../compiler/diag/diagnostic.js";
import { compileNetwork } from "../../compiler/network/compile.js";
import { checkSource, expectGolden, nodeHost } from "../helpers.js";

const examples = readdirSync("examples/models")
  .filter((f) => f.endsWith(".cell"))
  .sort()
  .map((f) => `examples/models/${f}`);

async function cli(args: string[]) {
  let out = "";
  let err = "";
  const status = await main(args, { out: (s) => (out += s), err: (s) => (err += s) });
  return { status, out, err };
}

const LSTM = `import "examples/cells/lstm.cell"\n`;
const model = (body: string, head = "model m") => `${LSTM}${head} {\n${body}\n}\n`;
const BASIC =
  "input x[D]\ncell lstm\nparam Wy : [O, H]\nparam by : [O] = 0\nreadout y = Wy @ h + by\nloss mse(y, target)";

describe("the example models", () => {
  it("there are three", () => expect(examples).toHaveLength(3));
  for (const file of examples)
    it(`${file}: checks, and prints its readout's IR`, async () => {
      const r = checkProgram(file, nodeHost);
      expect(renderAll(r.diagnostics, r.program.sources)).toBe("");
      expect(r.models.size).toBe(1);
      const c = await cli(["compile", file]);
      expect(c.status).toBe(0);
      expectGolden(`test/model/golden/${file.replace(/^.*\//, "").replace(/\.cell$/, "")}.ir.txt`, c.out);
    });
  it("cellc check counts cells and models", async () => {
    const c = await cli(["check", "examples/models/adding.cell", "examples/cells/lstm.cell"]);
    expect(c.out).toBe(
      "examples/models/adding.cell: 0 cell(s), 1 model(s) ok: adder\nexamples/cells/lstm.cell: 1 cell(s) ok: lstm\n",
    );
  });
  it("cellc compile --emit ast prints the model", async () => {
    const c = await cli(["compile", "examples/models/tagger.cell", "--emit", "ast"]);
    expectGolden("test/model/golden/tagger.ast.txt", c.out);
  });
  it("the tagger's network: tokens through an embedding into 2 stacked LSTM layers", () => {
    const file = "examples/models/tagger.cell";
    const s = compileNetwork(undefined, { file, host: nodeHost, dims: { V: 65, D: 16, H: 32 } }).artifact!;
    expect(s.embed).toEqual({ param: "E", V: 65, D: 16 });
    expect(s.params[0]).toMatchObject({ name: "E", part: "embed", shape: [65, 16] });
    expect(s.params[0]!.init).toEqual({ kind: "normal", mean: 0, std: 0.1 });
    expect([s.model, s.input, s.layers, s.bidirectional, s.on, s.loss.kind]).toEqual([
      "tagger",
      { name: "tokens", kind: "tokens", size: 65 },
      2,
      false,
      "every",
      "cross_entropy",
    ]);
    expect(s.cell.signature.name).toBe("lstm");
    expect(s.readout.signature.params.map((p) => [p.name, p.init])).toEqual([
      ["Wy", { kind: "xavier", gain: 1 }],
      ["by", { kind: "const", value: 0 }],
    ]);
    expect(s.readout.wgsl).toBeDefined();
    expect(s.params.filter((p) => p.part === "cell").map((p) => p.name)).toContain("l1.Wi");
    expect(s.sizes.map((z) => z.D)).toEqual([16, 32]);
  });
  it("the adder reads out on the last step; the GRU tagger over both directions", () => {
    const net = (file: string, dims: Record<string, number>) =>
      compileNetwork(undefined, { file, host: nodeHost, dims }).artifact!;
    const a = net("examples/models/adding.cell", { D: 2, H: 8, O: 1 });
    expect([a.on, a.loss.kind, a.embed, a.input]).toEqual([
      "last",
      "mse",
      undefined,
      { name: "x", kind: "real", size: 2 },
    ]);
    const g = net("examples/models/bigru.cell", { D: 3, H: 4, K: 5, O: 2 });
    expect(g.bidirectional).toBe(true);
    expect(g.readout.signature.inputs[0]!.type.dims.map((d) => d.terms)).toEqual([{ H: 2 }]);
    expect([g.features, g.readoutSizes.H, g.outputSize]).toEqual([8, 4, 2]);
  });
});

describe("checking models", () => {
  it("several models in a file: picked by name", async () => {
    const src = model(BASIC, "model first") + `model second {\n${BASIC.replace("mse", "cross_entropy")}\n}\n`;
    const r = checkSource(src);
    expect(r.modelNames).toEqual(["first", "second"]);
    expect(selectModel(r, "second").model!.loss).toBe("cross_entropy");
    expect(selectModel(r, "secnd").diagnostics[0]!.message).toMatch(
      /no model named 'secnd'; did you mean 'second'/,
    );
    expect(selectModel(r, undefined).diagnostics[0]!.code).toBe("E089");
    const spec = compileNetwork(src, {
      choice: { model: "first" },
      host: nodeHost,
      dims: { D: 2, H: 3, O: 1 },
    });
    expect(spec.artifact!.model).toBe("first");
  });
  it("compile --model NAME prints one model", async () => {
    const c = await cli([
      "compile",
      "examples/models/bigru.cell",
      "--model",
      "bigru_tagger",
      "--emit",
      "schedule",
    ]);
    expect(c.status).toBe(0);
    expect(c.out).toMatch(/^schedule bigru_tagger\.readout/);
    expect(c.out).toMatch(/kernel step: .*; 0 launches/);
    const bad = await cli(["compile", "examples/models/bigru.cell", "--model", "bigru"]);
    expect([bad.status, bad.err]).toEqual([
      1,
      expect.stringMatching(/E089.*no model named 'bigru'; it defines bigru_tagger/),
    ]);
  });
  it("a file with cells and models: check counts both, compile prints the cells' IR then the models'", async () => {
    const c = await cli(["check", "test/model/both.cell"]);
    expect(c.out).toBe("test/model/both.cell: 1 cell(s), 1 model(s) ok: r, m\n");
    const ir = await cli(["compile", "test/model/both.cell"]);
    expect(ir.out.split("\n").filter((l) => /^(cell|model) /.test(l))).toEqual([
      "cell r",
      "model m: input x (real), cell r, readout on every, loss mse",
      "cell m.readout",
    ]);
  });
  it("a readout that does not fit a bidirectional cell says why", () => {
    const r = checkSource(model(BASIC.replace("cell lstm", "cell lstm, bidirectional")));
    const d = r.diagnostics.find((x) => x.code === "E041")!;
    expect(d.message).toBe("matrix-vector product does not fit: Wy [O, H] @ [2*H]");
    expect(d.notes.map((n) => n.message)).toContain(
      "bidirectional: 'h' is both directions concatenated, [2*H]",
    );
  });
  it("an unknown name in the readout lists what a readout reads", () => {
    const r = checkSource(model(BASIC.replace("Wy @ h + by", "Wy @ x + by")));
    const d = r.diagnostics.find((x) => x.code === "E010")!;
    expect(d.message).toMatch(/unknown name 'x'/);
    expect(d.notes.map((n) => n.message)).toContain(
      "a readout reads the output 'h' [H] of cell 'lstm' and the model's parameters",
    );
  });
  it("readout parameters get the cell checker's diagnostics: initialisers, shapes, unused, duplicates", () => {
    const codes = (body: string) => checkSource(model(body)).diagnostics.map((d) => d.code);
    expect(codes(BASIC.replace("param by : [O] = 0", "param by : [O] ~ unifrom"))).toContain("E025");
    expect(codes(BASIC.replace("param by : [O] = 0", "param by : [O, O, O]"))).toContain("E048");
    expect(codes(BASIC + "\nparam Wz : [O, H]")).toContain("W001");
    expect(codes(BASIC + "\nparam Wy : [O, H]")).toContain("E013");
    expect(codes(BASIC.replace("cell lstm", "cell lstm, layers 2, layers 3"))).toContain("E077");
    expect(codes(BASIC.replace("cell lstm", "cell lstm, bidirectional 2"))).toContain("E077");
    expect(codes(BASIC.replace("mse(y, target)", "mse(y)"))).toContain("E085");
    expect(codes(BASIC.replace("input x[D]", "input x[D] = 1"))).toContain("E071");
    expect(codes(BASIC.replace("cell lstm", "state s[H]\ncell lstm"))).toContain("E071");
    expect(codes(BASIC.replace("readout y =", "readout h ="))).toContain("E087");
  });
  it("a user function can be used in a readout", () => {
    const r = checkSource(
      `fn affine2(W, v, b) = W @ v + b\n` + model(BASIC.replace("Wy @ h + by", "affine2(Wy, h, by)")),
    );
    expect(hasErrors(r.diagnostics)).toBe(false);
    expect(r.models.get("m")).toBeDefined();
  });
  it("a syntax error in a cell does not stop a model on another cell, nor make errors up", () => {
    const src = `cell broken {\n  input x[D]\n  h' = (x\n}\n` + model(BASIC);
    const r = checkSource(src);
    expect(r.diagnostics.filter((d) => d.severity === "error").map((d) => d.code)).toEqual(["E002"]);
    expect(r.models.has("m")).toBe(true);
  });
  it("a model on a cell with errors reports only the cell's", () => {
    const src = `cell bad {\n  input x[D]\n  state h[H]\n  h' = tanh(q)\n  output h'\n}\nmodel m {\n${BASIC.replace("lstm", "bad")}\n}\n`;
    expect(
      checkSource(src)
        .diagnostics.filter((d) => d.severity === "error")
        .map((d) => d.code),
    ).toEqual(["E010"]);
  });
});

describe("the model words stay names in cells", () => {
  it("model, embed, readout, loss, on, last, layers, int as cell, parameter, input and equation names", () => {
    const src = `fn readout(v) = tanh(v)
cell model {
  input embed[D], on[D]
  state loss[H]
  param readout_w, layers : [H, D]
  param int, last : [H] = 0
  readout = layers @ embed + readout_w @ on
  loss' = readout(readout + int * last + loss)
  output loss'
}
cell loss extends model {
  embed2 = tanh(loss)
  output embed2
}
`;
    const r = checkSource(src);
    expect(renderAll(r.diagnostics, r.program.sources)).toBe("");
    expect(r.cellNames).toEqual(["model", "loss"]);
    expect(r.modelNames).toEqual([]);
  });
  it("every built-in cell checks as before, with no models", () => {
    for (const f of readdirSync("examples/cells").filter((x) => x.endsWith(".cell"))) {
      const r = checkProgram(`examples/cells/${f}`, nodeHost);
      expect(hasErrors(r.diagnostics)).toBe(false);
      expect(r.modelNames).toEqual([]);
    }
  });
});
