import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildCellIR, checkProgram } from "../../compiler/driver.js";
import { renderAll } from "../../compiler/diag/diagnostic.js";
import { NESTING_LIMIT } from "../../compiler/ast/build.js";
import { nodeHost as cliHost, MAX_SOURCE_BYTES } from "../../cli/node-host.js";
import { wgslNumber } from "../../compiler/codegen/wgsl.js";
import { main } from "../../cli/main.js";
import { compileCell } from "../../api/index.js";
import { checkSource } from "../helpers.js";

const cell = (body: string, before = "") =>
  `${before}\ncell c {\n  input x[H]\n  state h[H]\n${body}\n  output h'\n}\n`;

/** Checks, lowers and optimises every cell; returns the diagnostics' codes, the IR sizes and the time. */
function build(src: string) {
  const t0 = performance.now();
  const r = checkSource(src);
  const nodes = [...r.checked.values()].map((c) => buildCellIR(c).graph.nodes.length);
  return { r, codes: r.diagnostics.map((d) => d.code), nodes, ms: performance.now() - t0 };
}

const rendered = (src: string) => {
  const r = checkSource(src);
  return renderAll(r.diagnostics, r.program.sources);
};

describe("deep nesting: a located error past the limit, never a stack overflow", () => {
  const nests: Record<string, (n: number) => string> = {
    parentheses: (n) => `${"(".repeat(n)}x${")".repeat(n)}`,
    "unary minus": (n) => `${"-".repeat(n)}x`,
    concatenations: (n) => `${"[".repeat(n)}x${"]".repeat(n)}`,
    calls: (n) => `${"tanh(".repeat(n)}x${")".repeat(n)}`,
    "parenthesised sums": (n) => `${"(x + ".repeat(n)}x${")".repeat(n)}`,
  };
  for (const [what, nest] of Object.entries(nests)) {
    it(`${what}: ${NESTING_LIMIT - 5} levels are accepted`, () => {
      const e = nest(NESTING_LIMIT - 5);
      // A concatenation of one vector is that vector; nesting keeps the width H.
      const { codes, nodes } = build(cell(`  h' = ${e} + h`));
      expect(codes).toEqual([]);
      expect(nodes[0]).toBeGreaterThan(2);
    });
    for (const n of [500, 2000, 10_000])
      it(`${what}: ${n} levels give E004 at the first token past the limit`, () => {
        const src = cell(`  # ${"a long comment ".repeat(200)}\n  h' = ${nest(n)} + h`);
        const r = checkSource(src);
        expect(r.diagnostics.map((d) => d.code)).toEqual(["E004"]);
        const text = renderAll(r.diagnostics, r.program.sources);
        expect(text).toContain(`expression nested too deeply (limit ${NESTING_LIMIT})`);
        expect(text).toMatch(/test\.cell:6:\d+/);
      });
  }
  it("a sum of 3,000 terms checks and lowers", () => {
    const terms = Array.from({ length: 3000 }, (_, i) => (i % 2 ? "x" : "h")).join(" + ");
    const { codes, nodes } = build(cell(`  h' = ${terms}`));
    expect(codes).toEqual([]);
    // h + x + h + ... is a left-deep chain of 2,999 distinct additions.
    expect(nodes[0]).toBeGreaterThanOrEqual(3001);
  });
  it("a constant argument that is a sum of 3,000 ones folds", () => {
    const ones = Array(3000).fill("1").join(" + ");
    const { codes } = build(cell(`  h' = hard_sigmoid(x, ${ones}, 0) + h`));
    expect(codes).toEqual([]);
  });
  it("a chain of 300 user functions, each calling the next, gives E004 instead of overflowing", () => {
    let fns = "fn f0(v) = v * 2\n";
    for (let i = 1; i <= 300; i++) fns += `fn f${i}(v) = f${i - 1}(v) + 1\n`;
    const { codes } = build(cell("  h' = f300(x) + h", fns));
    expect(codes).toContain("E004");
  });
  it("300 equations written in reverse dependency order are fine", () => {
    let eqs = "";
    for (let i = 300; i >= 1; i--) eqs += `  a${i} = a${i - 1} * 2\n`;
    const { codes } = build(cell(`  a0 = x\n${eqs}  h' = a300 + h`));
    expect(codes).toEqual([]);
  });
});

describe("work linear in the DAG, not in the expanded tree", () => {
  it("a chain of 40 squarings (2^40 leaves as a tree)", () => {
    let eqs = "  a0 = x\n";
    for (let i = 1; i <= 40; i++) eqs += `  a${i} = a${i - 1} * a${i - 1}\n`;
    const { codes, nodes, ms } = build(cell(`${eqs}  h' = a40 + h`));
    expect(codes).toEqual([]);
    expect(nodes[0]).toBeLessThan(100);
    expect(ms).toBeLessThan(2000);
  });
  it("30 user functions each calling the previous one twice", () => {
    let fns = "fn f0(v) = v * 2\n";
    for (let i = 1; i <= 30; i++) fns += `fn f${i}(v) = f${i - 1}(v) + f${i - 1}(v)\n`;
    const { codes, nodes, ms } = build(cell("  h' = f30(x) + h", fns));
    expect(codes).toEqual([]);
    expect(nodes[0]).toBeLessThan(100);
    expect(ms).toBeLessThan(2000);
  });
  it("a 12-line cell with three layer norms", () => {
    const src = `fn ln(v, g, b) = g * (v - mean(v)) / sqrt(mean((v - mean(v)) * (v - mean(v))) + 0.00001) + b
cell c {
  input x[D]
  state h[H]
  param W : [H, D]
  param U : [H, H]
  param g1, g2, g3, b1, b2, b3 : [H]
  a = ln(W @ x, g1, b1)
  b = ln(U @ h + a, g2, b2)
  h' = tanh(ln(a * b + ln(b, g1, b1), g3, b3))
  output h'
}`;
    const { codes, nodes, ms } = build(src);
    expect(codes).toEqual([]);
    expect(nodes[0]).toBeLessThan(200);
    expect(ms).toBeLessThan(2000);
  });
  it("cellc check on the chain of 40 is quick", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cellc-"));
    let eqs = "  a0 = x\n";
    for (let i = 1; i <= 40; i++) eqs += `  a${i} = a${i - 1} * a${i - 1}\n`;
    writeFileSync(join(dir, "chain.cell"), cell(`${eqs}  h' = a40 + h`));
    const out: string[] = [];
    const t0 = performance.now();
    const code = await main(["check", join(dir, "chain.cell")], {
      out: (s) => out.push(s),
      err: (s) => out.push(s),
    });
    expect(code).toBe(0);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

describe("constants outside float32 and u32", () => {
  for (const lit of ["1e39", "1e999", "-3.5e38"])
    it(`${lit} is E053 where it is written`, () => {
      const r = checkSource(cell(`  h' = h * ${lit}`));
      expect(r.diagnostics.map((d) => d.code)).toEqual(["E053"]);
      expect(renderAll(r.diagnostics, r.program.sources)).toContain(
        `test.cell:5:${lit.startsWith("-") ? 13 : 12}`,
      );
    });
  it("3.4028235e38 rounds to float32's largest value and is accepted", () => {
    expect(checkSource(cell("  h' = x * 3.4028235e38 + h")).diagnostics).toEqual([]);
  });
  it("a state initialiser and an initialiser argument out of range are E053 too", () => {
    const r = checkSource(
      "cell c {\n  input x[H]\n  state h[H] = 1e40\n  param p : [H] ~ normal(0, 1e300)\n  h' = x * p + h\n  output h'\n}\n",
    );
    expect(r.diagnostics.map((d) => d.code)).toEqual(["E053", "E053"]);
  });
  it("dimensions of 2^32 and more are E054", () => {
    const r = checkSource(
      "cell c {\n  input x[4294967296]\n  state h[2147483648 + 2147483648]\n  h' = x + h\n  output h'\n}\n",
    );
    expect(r.diagnostics.map((d) => d.code)).toEqual(["E054", "E054"]);
    expect(checkSource("cell c {\n  input x[4294967295]\n  output x\n}\n").diagnostics).toEqual([]);
  });
  it("WGSL literals are valid f32 for every float64, folded NaN and infinities included", () => {
    const f32max = 3.4028234663852886e38;
    for (const v of [
      3.4028235e38,
      -3.4028235e38,
      f32max,
      1e39,
      1e300,
      -1e300,
      1e-50,
      0.1,
      2,
      -0,
      NaN,
      Infinity,
      -Infinity,
    ]) {
      const s = wgslNumber(v);
      const f = Math.fround(v);
      if (!Number.isFinite(f)) {
        expect(s).toMatch(/^bitcast<f32>\(0x[0-9a-f]{8}u \+ min\(ctl\.t, 0u\)\)$/);
        continue;
      }
      const text = s.replace(/^\((.*)\)$/, "$1");
      expect(text).toMatch(/^-?\d+(\.\d*)?(e[+-]?\d+)?$|^-?\d+e[+-]?\d+$/);
      const value = Number(text);
      // The literal must be within f32's range and round to the same f32.
      expect(Math.abs(value)).toBeLessThanOrEqual(f32max);
      expect(Math.fround(value)).toBe(f === 0 ? 0 : f);
    }
  });
});

describe("imports and source files", () => {
  const dir = mkdtempSync(join(tmpdir(), "cellc-imp-"));
  const imp = (path: string) => `import "${path}"\ncell c {\n  input x[H]\n  output x\n}\n`;
  const e020 = (path: string) => {
    const r = checkProgram(join(dir, "main.cell"), cliHost, imp(path));
    expect(r.diagnostics.map((d) => d.code)).toEqual(["E020"]);
    return renderAll(r.diagnostics, r.program.sources);
  };
  it("/dev/zero is refused as not a regular file", () => {
    expect(e020("/dev/zero.cell".replace(".cell", ""))).toContain("only .cell files");
    expect(() => cliHost.read("/dev/zero")).toThrow("not a regular file");
  });
  it("a FIFO and a directory named .cell are refused without blocking", () => {
    execFileSync("mkfifo", [join(dir, "fifo.cell")]);
    mkdirSync(join(dir, "dir.cell"));
    expect(e020("fifo.cell")).toContain("not a regular file");
    expect(e020("dir.cell")).toContain("not a regular file");
  });
  it("a file over the size limit is refused", () => {
    writeFileSync(join(dir, "big.cell"), "#".repeat(MAX_SOURCE_BYTES + 10));
    expect(e020("big.cell")).toContain(`larger than the limit of ${MAX_SOURCE_BYTES} bytes`);
  });
  it("an error about /etc/passwd does not print its content", () => {
    const first = readFileSync("/etc/passwd", "utf8").split("\n")[0]!;
    const text = e020("/etc/passwd");
    expect(text).toContain("only .cell files can be imported");
    expect(text).not.toContain(first);
  });
  it("a source text over the size limit is refused before it is parsed", () => {
    const r = checkSource(cell(`  # ${"x".repeat(MAX_SOURCE_BYTES)}\n  h' = x + h`));
    expect(r.diagnostics.map((d) => d.message)).toEqual([
      `cannot read file 'test.cell': larger than the limit of ${MAX_SOURCE_BYTES} bytes`,
    ]);
  });
  it("cellc check on /dev/zero exits 1 with a message", async () => {
    const err: string[] = [];
    const code = await main(["check", "/dev/zero"], { out: () => {}, err: (s) => err.push(s) });
    expect(code).toBe(1);
    expect(err.join("")).toContain("not a regular file");
  });
});

describe("diagnostics", () => {
  it("'did you mean' on a 60,000-character name is quick", () => {
    const long = "a".repeat(60_000);
    const t0 = performance.now();
    const r = checkSource(cell(`  h' = ${long} + h`));
    expect(r.diagnostics.map((d) => d.code)).toEqual(["E010"]);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
  it("'did you mean' prefers a lookalike character: bo for b0", () => {
    const r = checkSource(cell("  param bi, bo : [H]\n  h' = h + bi * b0"));
    expect(r.diagnostics[0]!.message).toBe("unknown name 'b0'; did you mean 'bo'?");
  });
  it("CR-only line endings give the right line numbers", () => {
    const src = "cell c {\r  input x[H]\r  # comment\r  y = x + q\r  output y\r}\r";
    expect(rendered(src)).toContain("test.cell:4:11");
  });
  it("CRLF line endings give the right line numbers", () => {
    const src = "cell c {\r\n  input x[H]\r\n  # comment\r\n  y = x + q\r\n  output y\r\n}\r\n";
    expect(rendered(src)).toContain("test.cell:4:11");
  });
  it("errors are sorted by position even when checking reaches a later line first", () => {
    const r = checkSource("cell c {\n  input x[H]\n  a = b + q1\n  b = x + q2\n  output a\n}\n");
    expect(r.diagnostics.map((d) => d.message)).toEqual(["unknown name 'q1'", "unknown name 'q2'"]);
  });
  it("an unclosed '(' is reported at the '(' with a note where the parser stopped", () => {
    const text = rendered(cell("  h' = tanh(x + h\n"));
    expect(text).toMatch(/syntax error: '\(' is never closed\n --> test\.cell:5:12/);
    expect(text).toMatch(/note: the parser gave up here: expected '\)', found 'output'\n --> test\.cell:7:3/);
  });
  it("W004: `output h` of a state is its previous value", () => {
    const r = checkSource("cell c {\n  input x[H]\n  state h[H]\n  h' = x + h\n  output h\n}\n");
    expect(r.diagnostics.map((d) => d.code)).toEqual(["W004"]);
    expect(r.diagnostics[0]!.notes[0]!.message).toContain("output h'");
  });
  it("W005: `Un @ r * h` warns that '@' binds tighter, unless parenthesised", () => {
    const body = (e: string) =>
      `cell c {\n  input x[H]\n  state h[H]\n  param Un : [H, H]\n  r = sigmoid(x)\n  h' = ${e}\n  output h'\n}\n`;
    const r = checkSource(body("Un @ r * h"));
    expect(r.diagnostics.map((d) => d.code)).toEqual(["W005"]);
    expect(r.diagnostics[0]!.notes.map((n) => n.message)).toEqual([
      "write (Un @ r) * h if this is what you mean",
      "write Un @ (r * h) to multiply before the product",
    ]);
    expect(checkSource(body("(Un @ r) * h")).diagnostics).toEqual([]);
    expect(checkSource(body("Un @ (r * h)")).diagnostics).toEqual([]);
    expect(checkSource(body("r * Un @ h")).diagnostics).toEqual([]);
  });
  it("compileCell on a file with several cells names the option, not the CLI flag", () => {
    const two = "cell a {\n  input x[H]\n  output x\n}\ncell b {\n  input x[H]\n  output x\n}\n";
    expect(() => compileCell(two)).toThrow("pass the `cell` option");
    expect(() => compileCell(two)).not.toThrow("--cell");
  });
});
