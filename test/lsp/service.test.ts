import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { SourceHost } from "../../compiler/check/program.js";
import { checkProgram } from "../../compiler/driver.js";
import {
  Analysis,
  classifyLine,
  classifyText,
  codeFixes,
  complete,
  definition,
  documentSymbols,
  fileDiagnostics,
  hover,
  LineIndex,
  prepareRename,
  references,
  rename,
  semanticTokens,
  type CodeFix,
} from "../../compiler/service/index.js";
import { builtinDoc, initialiserDoc } from "../../compiler/service/docs.js";
import { BUILTINS, INITIALISERS } from "../../compiler/check/builtins.js";

// The language service in-process, on texts held in memory: what the server (test/lsp/server.test.ts)
// answers over the protocol, without it.

/** A host over a map of texts; a `$` in a text marks the cursor and is removed. */
function workspace(files: Record<string, string>) {
  const texts = new Map<string, string>();
  const cursors = new Map<string, number>();
  for (const [name, t] of Object.entries(files)) {
    const at = t.indexOf("$");
    if (at >= 0) cursors.set(name, at);
    texts.set(name, t.replace("$", ""));
  }
  const host: SourceHost = {
    read(path) {
      const t = texts.get(path);
      if (t === undefined) throw Object.assign(new Error("no such file"), { code: "ENOENT" });
      return t;
    },
  };
  const analyse = (entry: string) => new Analysis(entry, host);
  const cursor = (file: string) => cursors.get(file)!;
  const text = (file: string) => texts.get(file)!;
  const offsetOf = (file: string, needle: string, nth = 0) => {
    let at = -1;
    for (let i = 0; i <= nth; i++) at = text(file).indexOf(needle, at + 1);
    if (at < 0) throw new Error(`'${needle}' not in ${file}`);
    return at;
  };
  return { host, analyse, cursor, text, offsetOf };
}

/** The built-in LSTM without its header comment (which repeats its equations). */
const LSTM = readFileSync("examples/cells/lstm.cell", "utf8").replace(/^#.*\n/gm, "");

const lstmFiles = {
  "w/lstm.cell": LSTM,
  "w/cifg.cell": 'import "lstm.cell"\n\ncell cifg extends lstm {\n  i = 1 - f\n}\n',
  "w/peep.cell":
    'import "lstm.cell"\n\ncell peep extends lstm {\n  param pf : [H] ~ uniform(-0.1, 0.1)\n  f = sigmoid(Wf @ x + Uf @ h + pf * c + bf)\n}\n',
};

const spanText = (w: ReturnType<typeof workspace>, s: { file: string; start: number; end: number }) =>
  w.text(s.file).slice(s.start, s.end);

describe("positions", () => {
  it("agree with the CLI's lines for \\n, \\r\\n and a lone \\r, in UTF-16 columns", () => {
    const text = "ab\r\ncd\ref\nλ😀x";
    const li = new LineIndex(text);
    expect(li.lineCount).toBe(4);
    expect(li.position(text.indexOf("d"))).toEqual({ line: 1, character: 1 });
    expect(li.position(text.indexOf("f"))).toEqual({ line: 2, character: 1 });
    expect(li.position(text.indexOf("x"))).toEqual({ line: 3, character: 3 });
    for (let i = 0; i <= text.length; i++) {
      if (text[i - 1] === "\r" && text[i] === "\n") continue; // between \r and \n: no position of its own
      expect(li.offset(li.position(i))).toBe(i);
    }
    expect(li.offset({ line: 0, character: 99 })).toBe(2); // past the end of a line: its end
  });
});

describe("token classes (shared with the playground)", () => {
  it("classify keywords, built-ins, next values, numbers, strings and comments", () => {
    const line = `  h' = tanh(W @ x + 1.5e-3) # "note"`;
    const got = classifyLine(line).map((t) => [line.slice(t.start, t.end), t.cls]);
    expect(got).toEqual([
      ["h", "next"],
      ["'", "next"],
      ["=", "operator"],
      ["tanh", "builtin"],
      ["(", "bracket"],
      ["W", "name"],
      ["@", "operator"],
      ["x", "name"],
      ["+", "operator"],
      ["1.5e-3", "number"],
      [")", "bracket"],
      [`# "note"`, "comment"],
    ]);
    expect(classifyLine(`import "lstm.cell"`).map((t) => t.cls)).toEqual(["keyword", "string"]);
  });
  it("know the model words by where they stand, and leave them names elsewhere", () => {
    const cls = (line: string) => classifyLine(line).map((t) => `${line.slice(t.start, t.end)}:${t.cls}`);
    expect(cls("model m {")).toContain("model:keyword");
    expect(cls("  readout on last y = W @ h")).toEqual(
      expect.arrayContaining(["readout:keyword", "on:keyword", "last:name"]),
    );
    expect(cls("  loss = model + 1")).toEqual(expect.arrayContaining(["loss:name", "model:name"]));
  });
  it("never span a line break", () => {
    const text = "cell a {\r\n  input x[D]\r  state h[H]\n}";
    for (const t of classifyText(text)) expect(text.slice(t.start, t.end)).not.toMatch(/[\r\n]/);
  });
});

describe("diagnostics", () => {
  it("are the CLI's, with an error in an imported file put on the import", () => {
    const w = workspace({
      "d/a.cell": 'import "b.cell"\ncell a extends b {\n  h\' = tanh(x)\n}\n',
      "d/b.cell": "cell b {\n  input x[D]\n  state h[H]\n  h' = tanh(x +)\n  output h'\n}\n",
    });
    const a = w.analyse("d/a.cell");
    const cli = checkProgram("d/a.cell", w.host);
    expect(a.diagnostics.map((d) => d.code)).toEqual(cli.diagnostics.map((d) => d.code));
    const [d] = fileDiagnostics(a, "d/a.cell");
    expect(d!.code).toBe("E002");
    expect(spanText(w, { file: "d/a.cell", start: d!.start, end: d!.end })).toBe('"b.cell"');
    expect(d!.message).toMatch(/^d\/b\.cell:4:16: syntax error/);
    expect(d!.related[0]!.span.file).toBe("d/b.cell");
  });
  it("carry notes: with a place as related locations, without one in the message", () => {
    const w = workspace({ "n.cell": "cell c {\n  input x[D]\n  input x[D]\n  state h[H]\n  output h\n}\n" });
    const ds = fileDiagnostics(w.analyse("n.cell"), "n.cell");
    const e013 = ds.find((d) => d.code === "E013")!;
    expect(e013.related.map((r) => r.message)).toEqual(["first declared here"]);
  });
});

describe("hover", () => {
  const w = workspace(lstmFiles);
  const a = w.analyse("w/peep.cell");
  const lstm = w.analyse("w/lstm.cell");
  it("shows a parameter's shape and declaration", () => {
    const h = hover(lstm, "w/lstm.cell", w.offsetOf("w/lstm.cell", "Wf @"))!;
    expect(h.markdown).toContain("Wf : [H, D]");
    expect(h.markdown).toContain("param Wf : [H, D] ~ xavier");
    expect(spanText(w, { file: "w/lstm.cell", start: h.start, end: h.end })).toBe("Wf");
  });
  it("shows an equation's inferred shape, per row", () => {
    const h = hover(lstm, "w/lstm.cell", w.offsetOf("w/lstm.cell", "f * c"))!;
    expect(h.markdown).toContain("f : [H]   (per row)");
    expect(h.markdown).toContain("f = sigmoid(Wf @ x + Uf @ h + bf)");
  });
  it("shows a state's next-state equation, the child's where a child replaces it", () => {
    const h = hover(lstm, "w/lstm.cell", w.offsetOf("w/lstm.cell", "c + i"))!;
    expect(h.markdown).toContain("state c[H]");
    expect(h.markdown).toContain("c' = f * c + i * g");
    const inPeep = hover(a, "w/peep.cell", w.offsetOf("w/peep.cell", "f = sigmoid"))!;
    expect(inPeep.markdown).toContain("f = sigmoid(Wf @ x + Uf @ h + pf * c + bf)");
  });
  it("says where an inherited name is declared", () => {
    const h = hover(a, "w/peep.cell", w.offsetOf("w/peep.cell", "Wf @"))!;
    expect(h.markdown).toContain("Declared in `lstm`");
  });
  it("documents built-in functions and initialisers with their parameters", () => {
    const w2 = workspace({
      "b.cell":
        "cell c {\n  input x[D]\n  param W : [D, D] ~ orthogonal\n  y = hard_sigmoid(W @ x)\n  output y\n}\n",
    });
    const b = w2.analyse("b.cell");
    expect(hover(b, "b.cell", w2.offsetOf("b.cell", "hard_sigmoid"))!.markdown).toContain(
      "hard_sigmoid(x, alpha=0.2, beta=0.5)",
    );
    expect(hover(b, "b.cell", w2.offsetOf("b.cell", "orthogonal"))!.markdown).toContain("~ orthogonal(gain)");
  });
  it("shows a function's signature at its call, and a free name's cells", () => {
    const w2 = workspace({
      "f.cell":
        "fn gate(W, b) = sigmoid(W @ x + b)\ncell c {\n  input x[D]\n  param U : [D, D]\n  param u : [D]\n  y = gate(U, u)\n  output y\n}\n",
    });
    const f = w2.analyse("f.cell");
    expect(hover(f, "f.cell", w2.offsetOf("f.cell", "gate(U"))!.markdown).toContain(
      "fn gate(W, b) = sigmoid(W @ x + b)",
    );
    expect(hover(f, "f.cell", w2.offsetOf("f.cell", "x + b"))!.markdown).toContain("input x[D]   # in c");
  });
  it("has a doc for every built-in function and initialiser", () => {
    for (const n of Object.keys(BUILTINS)) expect(builtinDoc(n)!.doc, n).not.toBe("");
    for (const n of Object.keys(INITIALISERS)) expect(initialiserDoc(n)!.doc, n).not.toBe("");
  });
});

describe("definition and references", () => {
  const w = workspace(lstmFiles);
  const all = ["w/lstm.cell", "w/cifg.cell", "w/peep.cell"].map((f) => w.analyse(f));
  const [lstm, cifg, peep] = all as [Analysis, Analysis, Analysis];
  it("go from a child cell to its parent's declaration in the imported file", () => {
    const [d] = definition(cifg, "w/cifg.cell", w.offsetOf("w/cifg.cell", "f\n"));
    expect(d!.file).toBe("w/lstm.cell");
    expect(spanText(w, d!)).toBe("f");
    expect(d!.start).toBe(w.offsetOf("w/lstm.cell", "f = sigmoid"));
    const [p] = definition(cifg, "w/cifg.cell", w.offsetOf("w/cifg.cell", "lstm {"));
    expect(p!.start).toBe(w.offsetOf("w/lstm.cell", "lstm {"));
  });
  it("go from h' to the next-state equation, and from h to the state", () => {
    const [next] = definition(lstm, "w/lstm.cell", w.offsetOf("w/lstm.cell", "c')"));
    expect(next!.start).toBe(w.offsetOf("w/lstm.cell", "c' ="));
    const [state] = definition(lstm, "w/lstm.cell", w.offsetOf("w/lstm.cell", "c + i"));
    expect(state!.start).toBe(w.offsetOf("w/lstm.cell", "c[H]"));
  });
  it("find a parent's parameter in the children that read it, across files", () => {
    const refs = references(all, "w/lstm.cell", w.offsetOf("w/lstm.cell", "Wf @"));
    expect(refs.map((r) => `${r.file}:${spanText(w, r)}`)).toEqual([
      "w/lstm.cell:Wf",
      "w/lstm.cell:Wf",
      "w/peep.cell:Wf",
    ]);
    // A child's equation that replaces the parent's is the same symbol.
    const f = references(all, "w/lstm.cell", w.offsetOf("w/lstm.cell", "f = sigmoid"), false);
    expect(f.map((r) => r.file)).toEqual(["w/cifg.cell", "w/lstm.cell"]);
    const withDecls = references(all, "w/lstm.cell", w.offsetOf("w/lstm.cell", "f = sigmoid"));
    expect(withDecls.map((r) => r.file)).toEqual([
      "w/cifg.cell",
      "w/lstm.cell",
      "w/lstm.cell",
      "w/peep.cell",
    ]);
    expect(references([peep, lstm], "w/peep.cell", w.offsetOf("w/peep.cell", "pf *"))).toHaveLength(2);
  });
  it("go from a call to its function in another file", () => {
    const w2 = workspace({
      "g/fns.cell": "fn gate(W, U, b) = sigmoid(W @ x + U @ h + b)\n",
      "g/c.cell":
        "import \"fns.cell\"\ncell c {\n  input x[D]\n  state h[H]\n  param W : [H, D]\n  param U : [H, H]\n  param b : [H]\n  h' = gate(W, U, b)\n  output h'\n}\n",
    });
    const c = w2.analyse("g/c.cell");
    const [d] = definition(c, "g/c.cell", w2.offsetOf("g/c.cell", "gate"));
    expect(d).toEqual({ file: "g/fns.cell", start: 3, end: 7 });
    // A name the function reads from its caller: the caller's declaration.
    const [x] = definition(c, "g/fns.cell", w2.offsetOf("g/fns.cell", "x +"));
    expect(x!.file).toBe("g/c.cell");
    expect(spanText(w2, x!)).toBe("x");
  });
});

describe("rename", () => {
  const w = workspace(lstmFiles);
  const all = ["w/lstm.cell", "w/cifg.cell", "w/peep.cell"].map((f) => w.analyse(f));
  it("renames a name cell-wide and in the cells that extend it", () => {
    const r = rename(all, "w/cifg.cell", w.offsetOf("w/cifg.cell", "f\n"), "forget");
    if ("error" in r) throw new Error(r.error);
    const byFile = new Map<string, number>();
    for (const s of r.edits) byFile.set(s.file, (byFile.get(s.file) ?? 0) + 1);
    expect(Object.fromEntries(byFile)).toEqual({ "w/lstm.cell": 2, "w/cifg.cell": 1, "w/peep.cell": 1 });
    // The renamed program means the same: every cell checks as before.
    const edited = applyEdits(w, r.edits, "forget");
    for (const f of ["w/lstm.cell", "w/cifg.cell", "w/peep.cell"])
      expect(codes(edited, f)).toEqual(codes(w.host, f));
  });
  it("renames a state with its primes", () => {
    const r = rename(all, "w/lstm.cell", w.offsetOf("w/lstm.cell", "c + i"), "cell_state");
    if ("error" in r) throw new Error(r.error);
    const edited = applyEdits(w, r.edits, "cell_state");
    expect(edited.read("w/lstm.cell")).toContain("cell_state' = f * cell_state + i * g");
    expect(codes(edited, "w/peep.cell")).toEqual(codes(w.host, "w/peep.cell"));
  });
  it("refuses a name that is taken, a keyword, a built-in, and a name a function reads", () => {
    const at = w.offsetOf("w/lstm.cell", "f = sigmoid");
    expect(rename(all, "w/lstm.cell", at, "g")).toEqual({ error: "'g' is a name in cell 'lstm' already" });
    expect(rename(all, "w/lstm.cell", at, "state")).toEqual({ error: "'state' is a keyword" });
    expect(rename(all, "w/lstm.cell", at, "2f")).toEqual({ error: "'2f' is not a name" });
    expect(prepareRename(all[0]!, "w/lstm.cell", w.offsetOf("w/lstm.cell", "tanh"))).toEqual({
      error: "'tanh' is built in",
    });
    const w2 = workspace({
      "r.cell":
        "fn gate(W) = sigmoid(W @ x)\ncell c {\n  input x[D]\n  param U : [D, D]\n  y = gate(U)\n  output y\n}\n",
    });
    const r = rename([w2.analyse("r.cell")], "r.cell", w2.offsetOf("r.cell", "x[D]"), "z");
    expect(r).toEqual({ error: "function 'gate' reads 'x' from cell 'c': rename it there as well first" });
  });
});

describe("completion", () => {
  const labels = (files: Record<string, string>, file = Object.keys(files)[0]!) => {
    const w = workspace(files);
    return complete(w.analyse(file), file, w.cursor(file)).items.map((i) => i.label);
  };
  it("offers the names in scope, functions and built-ins inside an expression", () => {
    const got = labels({ "c.cell": LSTM.replace("f = sigmoid(Wf @ x", "f = sigmoid(W$f @ x") });
    expect(got).toEqual(
      expect.arrayContaining(["Wf", "Ui", "bf", "x", "h", "h'", "c'", "i", "sigmoid", "hard_sigmoid"]),
    );
    expect(got).not.toContain("input");
  });
  it("offers a parent's names in a child, with the functions of imported files", () => {
    const got = labels({
      "w/k.cell": 'import "lstm.cell"\nimport "f.cell"\ncell k extends lstm {\n  i = 1 - $\n}\n',
      "w/lstm.cell": LSTM,
      "w/f.cell": "fn gate(a) = sigmoid(a)\n",
    });
    expect(got).toEqual(expect.arrayContaining(["f", "Wi", "gate", "tanh"]));
  });
  it("gives built-ins a snippet of their required parameters", () => {
    const w = workspace({ "s.cell": "cell c {\n  input x[D]\n  y = le$\n  output y\n}\n" });
    const r = complete(w.analyse("s.cell"), "s.cell", w.cursor("s.cell"));
    expect(r.items.find((i) => i.label === "leaky_relu")).toMatchObject({
      snippet: "leaky_relu(${1:x})",
      detail: "leaky_relu(x, alpha=0.01)",
    });
    expect(w.text("s.cell").slice(r.start, r.end)).toBe("le");
  });
  it("offers initialisers after ~, dimensions in a shape, cells after extends", () => {
    expect(labels({ "i.cell": "cell c {\n  input x[D]\n  param W : [H, D] ~ $\n}\n" })).toEqual(
      expect.arrayContaining(["uniform", "normal", "xavier", "glorot", "orthogonal"]),
    );
    expect(labels({ "d.cell": "cell c {\n  input x[D]\n  state h[H]\n  param W : [H, $\n}\n" })).toEqual([
      "D",
      "H",
    ]);
    expect(labels({ "e.cell": "cell a {\n}\ncell b extends $" })).toContain("a");
  });
  it("offers keywords and equation targets where a statement starts", () => {
    const got = labels({ "k.cell": "cell c {\n  input x[D]\n  state h[H]\n  h' = tanh(x)\n  $\n}\n" });
    expect(got).toEqual(expect.arrayContaining(["input", "state", "param", "output", "h'"]));
    expect(labels({ "t.cell": "$" })).toEqual(["cell", "fn", "import", "model"]);
    expect(
      labels({ "o.cell": "cell c {\n  input x[D]\n  state h[H]\n  h' = tanh(x)\n  output $\n}\n" }),
    ).toEqual(expect.arrayContaining(["h'", "x"]));
  });
  it("offers a model's clauses and what a readout reads", () => {
    const files = {
      "m/m.cell":
        'import "lstm.cell"\nmodel m {\n  input x[D]\n  cell lstm\n  param Wy : [O, H]\n  readout y = Wy @ $\n}\n',
      "m/lstm.cell": LSTM,
    };
    expect(labels(files)).toEqual(expect.arrayContaining(["Wy", "h", "tanh"]));
    expect(labels({ ...files, "m/m.cell": files["m/m.cell"].replace("cell lstm", "cell $") })).toContain(
      "lstm",
    );
  });
  it("offers nothing in a comment or a string", () => {
    expect(labels({ "c.cell": "# a comment $\ncell c {\n}\n" })).toEqual([]);
    expect(labels({ "s.cell": 'import "ls$' })).toEqual([]);
  });
});

describe("outline and semantic tokens", () => {
  const w = workspace(lstmFiles);
  it("lists cells with their declarations", () => {
    const [cell] = documentSymbols(w.analyse("w/lstm.cell"), "w/lstm.cell");
    expect(cell!.name).toBe("lstm");
    expect(cell!.children.map((c) => `${c.kind} ${c.name}`)).toEqual(
      expect.arrayContaining(["input x", "state h", "state c", "param Wf", "equation i", "next h'"]),
    );
  });
  it("refine names by what they are", () => {
    const a = w.analyse("w/peep.cell");
    const text = w.text("w/peep.cell");
    const tok = (needle: string) =>
      semanticTokens(text, a, "w/peep.cell").find((t) => t.start === text.indexOf(needle))!;
    expect(tok("lstm {")).toMatchObject({ type: "class" });
    expect(tok("Wf @")).toMatchObject({ type: "property" });
    expect(tok("pf :")).toMatchObject({ type: "property", modifiers: ["declaration"] });
    expect(tok("sigmoid")).toMatchObject({ type: "function", modifiers: ["defaultLibrary"] });
    expect(tok("H]")).toMatchObject({ type: "typeParameter" });
    expect(tok("import")).toMatchObject({ type: "keyword" });
  });
});

describe("code actions", () => {
  const fixed = (file: string, pick = (fs: CodeFix[]) => fs[0]!, source = readFileSync(file, "utf8")) => {
    const w = workspace({ [file]: source });
    const a = w.analyse(file);
    const fixes = codeFixes(a, file, 0, w.text(file).length);
    const fix = pick(fixes);
    let text = w.text(file);
    for (const e of [...fix.edits].sort((x, y) => y.span.start - x.span.start))
      text = text.slice(0, e.span.start) + e.text + text.slice(e.span.end);
    return { fixes, text, codes: checkProgram(file, w.host, text).diagnostics.map((d) => d.code) };
  };
  it("W004: output h -> output h'", () => {
    const r = fixed("test/errors/W004.cell");
    expect(r.text).toContain("output h'");
    expect(r.codes).not.toContain("W004");
  });
  it("W005: both ways to parenthesise", () => {
    const first = fixed("test/errors/W005.cell");
    expect(first.fixes.map((f) => f.title)).toEqual([
      "Parenthesise as (Un @ r) * h",
      "Parenthesise as Un @ (r * h)",
    ]);
    expect(first.text).toContain("tanh((Un @ r) * h)");
    expect(first.codes).not.toContain("W005");
    const second = fixed("test/errors/W005.cell", (fs) => fs[1]!);
    expect(second.text).toContain("tanh(Un @ (r * h))");
    expect(second.codes).not.toContain("W005");
  });
  it("E010 and the other 'did you mean's: the suggestion", () => {
    const typo = readFileSync("test/errors/E010.cell", "utf8").replace("bais", "bas");
    const r = fixed("e010.cell", undefined, typo);
    expect(r.fixes[0]!.title).toBe("Change 'bas' to 'bias'");
    expect(r.codes).toEqual([]);
    for (const file of ["test/errors/E011.cell", "test/errors/E018.cell", "test/errors/E025.cell"]) {
      const code = file.slice(-9, -5);
      const f = fixed(file);
      expect(f.fixes.length, file).toBeGreaterThan(0);
      expect(f.codes, file).not.toContain(code);
    }
  });
});

function applyEdits(
  w: ReturnType<typeof workspace>,
  edits: readonly { file: string; start: number; end: number }[],
  text: string,
): SourceHost {
  const out = new Map<string, string>();
  const files = new Set(edits.map((e) => e.file));
  for (const f of files) {
    let t = w.text(f);
    for (const e of edits.filter((x) => x.file === f).sort((x, y) => y.start - x.start))
      t = t.slice(0, e.start) + text + t.slice(e.end);
    out.set(f, t);
  }
  return { read: (p) => out.get(p) ?? w.host.read(p) };
}

function codes(host: SourceHost, file: string): string[] {
  return checkProgram(file, host).diagnostics.map((d) => `${d.code} ${d.message.replace(/'[^']*'/g, "''")}`);
}

describe("robustness", () => {
  const files = [
    "examples/cells",
    "examples/models",
    "test/errors",
    "test/model/errors",
    "test/fuzz/corpus",
  ].flatMap((dir) =>
    readdirSync(dir)
      .filter((f) => f.endsWith(".cell"))
      .map((f) => `${dir}/${f}`),
  );
  it("answers at every place of every .cell file of the repository without throwing", () => {
    const disk: SourceHost = { read: (p) => readFileSync(p, "utf8") };
    let asked = 0;
    for (const file of files) {
      const a = new Analysis(file, disk);
      const text = a.text(file) ?? "";
      fileDiagnostics(a, file);
      documentSymbols(a, file);
      semanticTokens(text, a, file);
      codeFixes(a, file, 0, text.length);
      // At most 150 places a file, spread over it (the long files of the corpus are long).
      const step = Math.max(1, Math.floor(text.length / 150));
      for (let at = 0; at <= text.length; at += step) {
        hover(a, file, at);
        definition(a, file, at);
        complete(a, file, at);
        const r = prepareRename(a, file, at);
        if (!("error" in r)) rename([a], file, at, "renamed_name");
        references([a], file, at);
        asked++;
      }
    }
    expect(asked).toBeGreaterThan(5000);
  });
});
