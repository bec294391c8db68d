import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cellLexer } from "../../grammar/tokens.js";
import { fmtCommand } from "../../cli/fmt.js";
import type { SourceHost } from "../../compiler/check/program.js";
import { buildCellIR, checkProgram } from "../../compiler/driver.js";
import { formatSource } from "../../compiler/format/format.js";
import { printCell } from "../../compiler/ir/print.js";

const disk: SourceHost = { read: (p) => readFileSync(p, "utf8") };

/** Every .cell file of the repository's examples and tests, fuzz corpus included. */
function cellFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...cellFiles(p));
    else if (e.name.endsWith(".cell")) out.push(p);
  }
  return out.sort();
}
const ALL = [...cellFiles("examples"), ...cellFiles("test")];
const CORPUS = cellFiles("test/fuzz/corpus");

/** What a file means: its diagnostics (without positions) and the IR of each cell that checks. */
function meaning(file: string, text: string): string {
  const r = checkProgram(file, disk, text);
  const out = r.diagnostics.map((d) => `${d.severity}[${d.code}] ${d.message}`);
  for (const name of r.cellNames) {
    const c = r.checked.get(name);
    out.push(c ? printCell(buildCellIR(c)) : `${name}: does not check`);
  }
  return out.join("\n");
}

const fmt = (text: string, file = "t.cell") => {
  const r = formatSource(file, text);
  if (!r.ok) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
  return r.text;
};

describe("cellc fmt over every .cell file of the repository", () => {
  it.each(ALL)("%s: idempotent, same diagnostics and IR, or untouched if it does not parse", (file) => {
    const text = readFileSync(file, "utf8");
    const r = formatSource(file, text);
    if (!r.ok) {
      expect(r.diagnostics.some((d) => ["E001", "E002", "E004"].includes(d.code))).toBe(true);
      return;
    }
    const again = formatSource(file, r.text);
    expect(again.ok && again.text).toBe(r.text);
    expect(again.ok && again.changed).toBe(false);
    expect(meaning(file, r.text)).toBe(meaning(file, text));
  });

  it("formats the built-in cells and models (the IR of each is checked above)", () => {
    const formatted = ALL.filter((f) => f.startsWith("examples/")).filter(
      (f) => formatSource(f, readFileSync(f, "utf8")).ok,
    );
    expect(formatted.length).toBe(ALL.filter((f) => f.startsWith("examples/")).length);
  });
});

describe("cellc fmt on the fuzz corpus", () => {
  it("never crashes, and leaves a file that does not parse untouched with its diagnostics", () => {
    const dir = mkdtempSync(join(tmpdir(), "cellc-fmt-corpus-"));
    let broken = 0;
    for (const f of CORPUS) {
      const copy = join(dir, f.split("/").pop()!);
      copyFileSync(f, copy);
      const before = readFileSync(copy);
      const err: string[] = [];
      const status = fmtCommand([copy], false, { out: () => {}, err: (s) => err.push(s) });
      const r = formatSource(copy, before.toString("utf8"));
      if (!r.ok) {
        broken++;
        expect(status, f).toBe(1);
        expect(readFileSync(copy).equals(before), f).toBe(true);
        expect(err.join(""), f).toMatch(/error\[E00[124]\]/);
        expect(err.join(""), f).toContain("not formatted: it does not parse");
      } else expect(status, f).toBe(0);
    }
    expect(broken).toBeGreaterThan(5);
  });
});

describe("the layout", () => {
  it("spaces operators, aligns a run of declarations, indents members, drops semicolons", () => {
    const messy = [
      "# header",
      'import   "lstm.cell"',
      "fn gate(W,U ,b)=sigmoid( W@x+U@h+b )",
      "cell  c  extends lstm{ input x[ D ] ; output y",
      "state h [H]=0.5,c[ H ]",
      "",
      "",
      "param   W2:[2*H ,D+H]~uniform( -0.1,0.1 )",
      "y = - x*( a-b )/[ h,x ]; z=W2@[h, x]",
      "h'=tanh(h') }",
    ].join("\n");
    expect(fmt(messy)).toBe(
      [
        "# header",
        'import "lstm.cell"',
        "fn gate(W, U, b) = sigmoid(W @ x + U @ h + b)",
        "cell c extends lstm {",
        "  input  x[D]",
        "  output y",
        "  state  h[H] = 0.5, c[H]",
        "",
        "  param W2 : [2*H, D + H] ~ uniform(-0.1, 0.1)",
        "  y = -x * (a - b) / [h, x]",
        "  z = W2 @ [h, x]",
        "  h' = tanh(h')",
        "}",
        "",
      ].join("\n"),
    );
  });

  it("keeps comments where they were, and line breaks inside a statement", () => {
    const text = [
      "cell c {   # the cell",
      "    # inputs",
      "input x[D]    # a trailing comment   ",
      "",
      "  h' = tanh(x +",
      "   # a note in an expression",
      "             h)",
      "# last",
      "}  # end",
      "# after",
    ].join("\n");
    expect(fmt(text)).toBe(
      [
        "cell c {  # the cell",
        "  # inputs",
        "  input x[D]  # a trailing comment",
        "",
        "  h' = tanh(x +",
        "      # a note in an expression",
        "      h)",
        "  # last",
        "}  # end",
        "# after",
        "",
      ].join("\n"),
    );
  });

  it("aligns a model's clauses", () => {
    const text =
      "model m {\ninput x[D]\ncell lstm, layers 2\nreadout on last y = Wy @ h\nloss mse(y, target)\n}\n";
    expect(fmt(text)).toBe(
      "model m {\n  input   x[D]\n  cell    lstm, layers 2\n  readout on last y = Wy @ h\n  loss    mse(y, target)\n}\n",
    );
  });

  it("keeps the file's line breaks", () => {
    expect(fmt("cell c {\r\n input x[D]\r\n}\r\n")).toBe("cell c {\r\n  input x[D]\r\n}\r\n");
    expect(fmt("cell c {\r input x[D]\r}")).toBe("cell c {\r  input x[D]\r}\r");
  });

  it("refuses a file that does not parse, with its diagnostics", () => {
    const r = formatSource("bad.cell", "cell c {\n  h' = tanh(x +\n}\n");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.diagnostics.map((d) => d.code)).toContain("E002");
  });

  it("is idempotent and keeps the tokens under any horizontal spacing (property)", () => {
    const sources = ALL.filter((f) => f.startsWith("examples/")).map((f) => readFileSync(f, "utf8"));
    const canonical = sources.map((s) => fmt(s));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: sources.length - 1 }),
        fc.array(fc.constantFrom("", " ", "  ", "\t"), { minLength: 400, maxLength: 400 }),
        (i, spaces) => {
          // Re-space the file: every gap between two tokens on a line gets a random run of blanks.
          const src = sources[i]!;
          const toks = cellLexer.tokenize(src).tokens;
          let out = "";
          let at = 0;
          toks.forEach((t, k) => {
            const gap = src.slice(at, t.startOffset);
            out += /[\r\n#]/.test(gap)
              ? gap
              : spaces[k % spaces.length]! || (needsBlank(src, at, t.startOffset) ? " " : "");
            out += t.image;
            at = t.endOffset! + 1;
          });
          out += src.slice(at);
          expect(fmt(out)).toBe(canonical[i]);
        },
      ),
      { numRuns: 40 },
    );
  });
});

/** Two words that touch would lex as one: keep a blank between them. */
function needsBlank(src: string, from: number, to: number): boolean {
  return to > from && /[A-Za-z0-9_.]/.test(src[from - 1] ?? "") && /[A-Za-z0-9_.]/.test(src[to] ?? "");
}

describe("cellc fmt FILE... (the command)", () => {
  const setup = () => {
    const dir = mkdtempSync(join(tmpdir(), "cellc-fmt-"));
    writeFileSync(join(dir, "ok.cell"), "cell a {\n  input  x[D]\n  output x\n}\n");
    writeFileSync(join(dir, "messy.cell"), "cell b {\ninput x[D]\noutput x }\n");
    writeFileSync(join(dir, "bad.cell"), "cell c {\n  h' = (\n}\n");
    return dir;
  };
  const run = (args: string[], check: boolean) => {
    const out: string[] = [];
    const err: string[] = [];
    const status = fmtCommand(args, check, { out: (s) => out.push(s), err: (s) => err.push(s) });
    return { status, out: out.join(""), err: err.join("") };
  };

  it("--check lists the files that would change and exits 1, writing nothing", () => {
    const dir = setup();
    const before = readFileSync(join(dir, "messy.cell"), "utf8");
    const r = run([join(dir, "ok.cell"), join(dir, "messy.cell")], true);
    expect(r).toMatchObject({ status: 1, out: `${join(dir, "messy.cell")}\n`, err: "" });
    expect(readFileSync(join(dir, "messy.cell"), "utf8")).toBe(before);
    expect(run([join(dir, "ok.cell")], true)).toMatchObject({ status: 0, out: "" });
  });

  it("rewrites files in place (a folder: the .cell files in it), keeping their mode", () => {
    const dir = setup();
    const r = run([dir], false);
    expect(r.status).toBe(1); // bad.cell does not parse
    expect(r.err).toContain("error[E002]");
    expect(readFileSync(join(dir, "messy.cell"), "utf8")).toBe("cell b {\n  input  x[D]\n  output x\n}\n");
    expect(readFileSync(join(dir, "bad.cell"), "utf8")).toBe("cell c {\n  h' = (\n}\n");
    expect(readdirSync(dir).sort()).toEqual(["bad.cell", "messy.cell", "ok.cell"]);
    expect(statSync(join(dir, "messy.cell")).mode & 0o777).toBe(statSync(join(dir, "ok.cell")).mode & 0o777);
    expect(run([join(dir, "messy.cell")], true).status).toBe(0);
  });

  it("says which file it cannot read", () => {
    const r = run(["/nonexistent/x.cell"], false);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/error\[E003\]: cannot read file '\/nonexistent\/x\.cell': no such file/);
  });

  it("formats standard input to standard output with `-` (the built command)", () => {
    const cellc = (args: string[], input: string) =>
      spawnSync(process.execPath, ["bin/cellc.js", "fmt", ...args], { input, encoding: "utf8" });
    const messy = "cell b {\ninput x[D]\noutput x }\n";
    expect(cellc(["-"], messy)).toMatchObject({ status: 0, stdout: fmt(messy), stderr: "" });
    expect(cellc(["--check", "-"], messy)).toMatchObject({ status: 1, stdout: "" });
    expect(cellc(["--check", "-"], fmt(messy))).toMatchObject({ status: 0, stdout: "" });
    const bad = cellc(["-"], "cell c {\n  h' = (\n}\n");
    expect(bad).toMatchObject({ status: 1, stdout: "cell c {\n  h' = (\n}\n" });
    expect(bad.stderr).toContain("error[E002]");
  });
});
