import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { cellLexer } from "../../grammar/tokens.js";
import { buildCellIR, checkProgram, selectCell } from "../../compiler/driver.js";
import { hasErrors, renderAll } from "../../compiler/diag/diagnostic.js";
import { compileIR } from "../../compiler/compile.js";
import { nodeHost } from "../../cli/node-host.js";
import { builtinCellFiles } from "../helpers.js";

/** A small seeded generator (mulberry32), so that every run tries the same inputs. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}
type Rng = ReturnType<typeof prng>;

const WORDS = [
  "valueOf",
  "toString",
  "__proto__",
  "constructor",
  "hasOwnProperty",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "function",
  "return",
  "var",
  "let",
  "struct",
  "f32",
  "u32",
  "loop",
  "fn",
  "cell",
  "input",
  "state",
  "param",
  "output",
  "import",
  "extends",
  "B",
  "dims",
  "NaN",
  "Infinity",
  "uniform",
];
const NUMBERS = [
  "1e39",
  "1e999",
  "3.4028235e38",
  "4294967296",
  "1e21",
  "0",
  "00",
  "0.0",
  "1e-50",
  "5e9",
  "123456789012345678901234567890",
  ".5",
  "1.",
  "2e",
  "1e+",
  "-0",
];
const UNICODE = ["é", "λ", "😀", "\u200b", "\u202e", "\ufeff", "\u0000", "\u2028", "ｘ", "\ud800"];
const PUNCT = ["(", ")", "[", "]", "{", "}", ",", "'", "=", "~", "@", "*", "+", "-", "/", ":", ";", "#", '"'];

/** Splits a source into tokens and the text between them, so mutations can work on either. */
function pieces(src: string): string[] {
  const out: string[] = [];
  let at = 0;
  for (const t of cellLexer.tokenize(src).tokens) {
    if (t.startOffset > at) out.push(src.slice(at, t.startOffset));
    out.push(t.image);
    at = t.startOffset + t.image.length;
  }
  out.push(src.slice(at));
  return out;
}

/** The names in a source short enough to search for again (an earlier mutation may have made a long one). */
const shortNames = (s: string) => [...new Set(s.match(/\b[A-Za-z_]\w{0,99}\b/g) ?? ["x"])];

const MUTATIONS: Record<string, (src: string, r: Rng) => string> = {
  flip: (s, r) => {
    const i = r.int(s.length);
    const c = r.next() < 0.5 ? String.fromCharCode(32 + r.int(95)) : String.fromCharCode(r.int(256));
    return s.slice(0, i) + c + s.slice(i + 1);
  },
  deleteToken: (s, r) => {
    const p = pieces(s);
    p.splice(r.int(p.length), 1 + r.int(3));
    return p.join("");
  },
  duplicateToken: (s, r) => {
    const p = pieces(s);
    const i = r.int(p.length);
    p.splice(i, 0, p[i]!, " ");
    return p.join("");
  },
  swapTokens: (s, r) => {
    const p = pieces(s);
    const i = r.int(p.length - 1);
    const j = r.next() < 0.5 ? i + 1 : r.int(p.length);
    [p[i], p[j]] = [p[j]!, p[i]!];
    return p.join("");
  },
  punctuation: (s, r) => {
    const i = r.int(s.length);
    return s.slice(0, i) + r.pick(PUNCT) + s.slice(i);
  },
  nest: (s, r) => {
    // Wraps the right-hand side of an equation in deep nesting of one kind.
    const n = r.pick([5, 50, 99, 101, 300, 3000]);
    const [open, close] = r.pick([
      ["(", ")"],
      ["[", "]"],
      ["tanh(", ")"],
      ["-", ""],
      ["f(", ")"],
      ["(x + ", ")"],
    ]);
    return s.replace(
      /(=\s*)([^\n]*)/,
      (_, eq: string, rhs: string) => eq + open!.repeat(n) + rhs + close!.repeat(n),
    );
  },
  longSum: (s, r) =>
    s.replace(
      /(=\s*)([^\n]*)/,
      (_, eq: string, rhs: string) =>
        eq + `${rhs} + `.repeat(Math.min(r.pick([10, 500, 3000]), 2_000_000 / (rhs.length + 3))) + rhs,
    ),
  longName: (s, r) => {
    const names = shortNames(s);
    const n = r.pick(names);
    return s.replace(new RegExp(`\\b${n}\\b`, "g"), n + "x".repeat(r.pick([100, 5000, 60000])));
  },
  reservedWord: (s, r) => {
    const names = shortNames(s);
    const n = r.pick(names);
    const w = r.pick(WORDS);
    return r.next() < 0.5
      ? s.replace(new RegExp(`\\b${n}\\b`, "g"), w)
      : s.replace(new RegExp(`\\b${n}\\b`), w);
  },
  hugeNumber: (s, r) => {
    const nums = [...s.matchAll(/\b\d+(\.\d+)?\b/g)];
    if (nums.length === 0) return s + r.pick(NUMBERS);
    const m = r.pick(nums);
    return s.slice(0, m.index) + r.pick(NUMBERS) + s.slice(m.index! + m[0].length);
  },
  numberInShape: (s, r) => s.replace(/\[(\w+)\]/, `[${r.pick(NUMBERS)}]`),
  nul: (s, r) => {
    const i = r.int(s.length);
    return s.slice(0, i) + "\0" + s.slice(i);
  },
  lineEndings: (s, r) => s.replace(/\n/g, r.pick(["\r\n", "\r", "\n\r", "\u2028"])),
  unicode: (s, r) => {
    const i = r.int(s.length);
    return s.slice(0, i) + r.pick(UNICODE) + s.slice(i);
  },
  truncate: (s, r) => s.slice(0, r.int(s.length)),
  selfReference: (s, r) =>
    s.replace(/\n(\s*)(\w+) = /, (m, _sp: string, n: string) => `${m}${r.next() < 0.5 ? n : `${n}'`} + `),
  functions: (s, r) => {
    const k = r.pick([2, 20, 40]);
    let fns = "fn f0(v) = v * 2\n";
    for (let i = 1; i <= k; i++)
      fns += `fn f${i}(v) = f${i - 1}(v) ${r.pick(["+", "*", "-"])} f${i - 1}(v)\n`;
    return fns + s.replace(/(=\s*)([^\n]*)/, (_, eq: string, rhs: string) => `${eq}f${k}(${rhs})`);
  },
  chain: (s, r) => {
    const k = r.pick([5, 30, 60]);
    let eqs = "";
    for (let i = 1; i <= k; i++) eqs += `  q${i} = q${i - 1} * q${i - 1}\n`;
    return s.replace(
      /(\n\s*)(\w+'?) = ([^\n]*)/,
      (_, sp: string, t: string, rhs: string) => `${sp}q0 = ${rhs}\n${eqs}  ${t} = q${k}`,
    );
  },
  imports: (s, r) =>
    `import "${r.pick(["/dev/zero", "/etc/passwd", "/", "lstm.cell", "nope.cell", "../cells", "/dev/null.cell"])}"\n${s}`,
};

const FILE_LEVEL = new Set(["E003", "E051"]);

interface Outcome {
  readonly ms: number;
  readonly problems: string[];
}

/** The front end on one input: check, lower and optimise every clean cell; optionally the gradients too. */
function tryInput(file: string, text: string, withGradients: boolean): Outcome {
  const problems: string[] = [];
  const t0 = performance.now();
  try {
    const r = checkProgram(file, nodeHost, text);
    for (const d of r.diagnostics)
      // Errors about a whole file (cannot read it, no such cell in it) name the file instead.
      if (d.severity === "error" && !d.span && !(FILE_LEVEL.has(d.code) && d.message.includes("'")))
        problems.push(`error without a location: ${d.code} ${d.message.slice(0, 200)}`);
    renderAll(r.diagnostics, r.program.sources);
    if (!hasErrors(r.diagnostics))
      for (const name of r.cellNames) {
        const sel = selectCell(r, name);
        if (!sel.cell) continue;
        const ir = buildCellIR(sel.cell);
        if (withGradients) compileIR(ir);
      }
  } catch (e) {
    problems.push(
      `internal error: ${e instanceof Error ? `${e.name}: ${e.message.slice(0, 300)}` : String(e)}`,
    );
  }
  return { ms: performance.now() - t0, problems };
}

/** Per input: slower than this is a hang (the real cost is a few milliseconds). */
const TIME_LIMIT_MS = 3000;
const SEEDS = Number(process.env.CELLC_FUZZ_INPUTS ?? 8000);

describe("fuzzing the front end with mutated built-in cells", () => {
  const bases = builtinCellFiles().map((f) => ({ file: f, text: readFileSync(f, "utf8") }));
  it(`${SEEDS} mutated inputs: only located diagnostics, no internal error, no hang`, () => {
    const r = prng(Number(process.env.CELLC_FUZZ_SEED ?? 20261130));
    const names = Object.keys(MUTATIONS);
    const failures: string[] = [];
    const t0 = performance.now();
    let slowest = 0;
    let slowestWhat = "";
    for (let i = 0; i < SEEDS; i++) {
      const base = r.pick(bases);
      let text = base.text;
      const applied: string[] = [];
      for (let k = 1 + r.int(3); k > 0; k--) {
        const m = r.pick(names);
        applied.push(m);
        // Growing mutations stop at a few megabytes (the front end refuses more than 1 MiB anyway).
        if (text.length < 4_000_000) text = MUTATIONS[m]!(text.slice(0, 400_000), r);
      }
      // Gradients and code generation too for a sample (they are slower than the front end).
      const o = tryInput(base.file, text, i % 10 === 0);
      if (o.ms > slowest) [slowest, slowestWhat] = [o.ms, `#${i} ${base.file} [${applied.join(", ")}]`];
      if (o.ms > TIME_LIMIT_MS) o.problems.push(`took ${o.ms.toFixed(0)} ms`);
      for (const p of o.problems) failures.push(`#${i} ${base.file} [${applied.join(", ")}]: ${p}`);
      // CELLC_FUZZ_DUMP=dir keeps the failing inputs, to add to the corpus once fixed.
      if (o.problems.length && process.env.CELLC_FUZZ_DUMP)
        writeFileSync(`${process.env.CELLC_FUZZ_DUMP}/fuzz-${i}.cell`, text);
    }
    const total = performance.now() - t0;
    console.log(
      `fuzz: ${SEEDS} inputs in ${(total / 1000).toFixed(1)} s, slowest ${slowest.toFixed(0)} ms (${slowestWhat})`,
    );
    expect(failures.slice(0, 20)).toEqual([]);
  });
});

describe("regression corpus: inputs that crashed, hung or misreported before", () => {
  const dir = "test/fuzz/corpus";
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".cell"))
    .sort();
  it("has the crashers", () => expect(files.length).toBeGreaterThanOrEqual(20));
  for (const f of files)
    it(f, () => {
      const path = `${dir}/${f}`;
      const text = readFileSync(path, "utf8");
      const o = tryInput(path, text, false);
      expect(o.problems).toEqual([]);
      expect(o.ms).toBeLessThan(TIME_LIMIT_MS);
      // The first line says what must be reported: `# expect: E004 W001` or `# expect: ok`.
      const want = /^# expect: (.*)$/m.exec(text)?.[1]?.trim().split(/\s+/);
      const codes = checkProgram(path, nodeHost, text).diagnostics.map((d) => d.code);
      if (want?.[0] === "ok") expect(codes.filter((c) => c.startsWith("E"))).toEqual([]);
      else for (const c of want ?? []) expect(codes).toContain(c);
    });
});
