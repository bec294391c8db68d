import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkProgram } from "../../compiler/driver.js";
import { renderAll } from "../../compiler/diag/diagnostic.js";
import { buildCellIR } from "../../compiler/driver.js";
import { compileNetwork } from "../../compiler/network/compile.js";
import { nodeHost } from "../helpers.js";

/**
 * Model blocks generated from their clauses, well-formed and not, shuffled, repeated, misplaced into cells
 * and cut with stray tokens: the front end must end in located diagnostics or in a compiled network,
 * never in an internal error or a hang.
 */
const NAMES = [
  "h",
  "x",
  "y",
  "Wy",
  "by",
  "Wk",
  "target",
  "tokens",
  "E",
  "lstm",
  "__proto__",
  "constructor",
  "on",
  "last",
  "loss",
];
const DIMS = ["O", "H", "D", "V", "K", "2*H", "H + D", "3", "0", "1e39", "__proto__"];

const name = fc.constantFrom(...NAMES);
const dim = fc.constantFrom(...DIMS);
const shape = fc.array(dim, { minLength: 0, maxLength: 3 }).map((ds) => `[${ds.join(", ")}]`);
const init = fc.constantFrom(
  "",
  " = 0",
  " ~ uniform",
  " ~ normal(0, 0.1)",
  " ~ xavier",
  " ~ bogus(1)",
  " ~ normal(1, 2, 3)",
);

const expr: fc.Arbitrary<string> = fc.letrec<{ e: string }>((tie) => ({
  e: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    name,
    fc.constantFrom("h'", "1", "0.5"),
    fc
      .tuple(tie("e"), fc.constantFrom(" + ", " - ", " * ", " @ ", " / "), tie("e"))
      .map(([a, o, b]) => a + o + b),
    fc
      .tuple(fc.constantFrom("tanh", "sigmoid", "sum", "relu", "nope", "clip"), tie("e"))
      .map(([f, a]) => `${f}(${a})`),
    tie("e").map((a) => `(${a})`),
    fc.tuple(tie("e"), tie("e")).map(([a, b]) => `[${a}, ${b}]`),
  ),
})).e;

const clause = fc.oneof(
  fc.tuple(name, dim).map(([n, d]) => `input ${n}[${d}]`),
  fc.tuple(name, fc.constantFrom("int", "float", "itn"), dim).map(([n, t, d]) => `input ${n} : ${t}[${d}]`),
  fc.tuple(name, shape, init).map(([n, s, i]) => `embed ${n} : ${s}${i}`),
  fc
    .tuple(
      fc.constantFrom("lstm", "gru", "rnn", "lstmm", "mix", "loss"),
      fc.array(
        fc.constantFrom(
          ", layers 2",
          ", layers 0",
          ", layers 1.5",
          ", bidirectional",
          ", bidirectional 2",
          ", deep",
          ", layers",
        ),
        {
          maxLength: 3,
        },
      ),
    )
    .map(([c, os]) => `cell ${c}${os.join("")}`),
  fc
    .tuple(fc.array(name, { minLength: 1, maxLength: 2 }), shape, init)
    .map(([ns, s, i]) => `param ${ns.join(", ")} : ${s}${i}`),
  fc
    .tuple(
      fc.constantFrom("", "on last ", "on every ", "on first "),
      fc.constantFrom("y", "h", "y'", "Wy"),
      expr,
    )
    .map(([on, t, e]) => `readout ${on}${t} = ${e}`),
  fc
    .tuple(
      fc.constantFrom("mse", "cross_entropy", "binary_cross_entropy", "l1"),
      fc.array(name, { maxLength: 3 }),
    )
    .map(([k, as]) => `loss ${k}(${as.join(", ")})`),
  fc.constantFrom("state s[H]", "output y", "z = tanh(h)", "h' = h"),
);

const GOOD = [
  "input x[D]",
  "cell lstm",
  "param Wy : [O, H] ~ xavier",
  "param by : [O] = 0",
  "readout y = Wy @ h + by",
  "loss mse(y, target)",
];

/** Weighted towards well-formed models, so that the back end is reached often. */
const often = <T>(likely: fc.Arbitrary<T>, rest: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: likely, weight: 2 }, { arbitrary: rest, weight: 1 });
const block = fc.tuple(
  often(fc.constant("model"), fc.constant("cell")),
  fc.constantFrom("m", "n", "lstm", "model"),
  often(fc.constant(GOOD), fc.subarray(GOOD)),
  often<string[]>(fc.constant([]), fc.array(clause, { minLength: 1, maxLength: 4 })),
);

const source = fc
  .tuple(
    often(
      fc.constant('import "examples/cells/lstm.cell"\nimport "examples/cells/gru.cell"\n'),
      fc.constantFrom("", 'import "nope.cell"\n'),
    ),
    fc.boolean(),
    fc.array(block, { minLength: 1, maxLength: 3 }),
    often<[number, string][]>(
      fc.constant([]),
      fc.array(
        fc.tuple<[number, string]>(
          fc.nat(),
          fc.constantFrom("{", "}", ",", "=", "(", "model", "loss", "readout", "'", ":", "["),
        ),
        {
          minLength: 1,
          maxLength: 2,
        },
      ),
    ),
  )
  .map(([imports, mix, blocks, stray]) => {
    const cells = mix
      ? "cell mix {\n  input a[D], b[D]\n  state h[H]\n  param W : [H, D]\n  h' = tanh(W @ a + W @ b)\n  output h'\n}\n"
      : "";
    let text =
      imports +
      cells +
      blocks.map(([kw, n, good, more]) => `${kw} ${n} {\n  ${[...good, ...more].join("\n  ")}\n}\n`).join("");
    for (const [at, tok] of stray) {
      const i = at % (text.length + 1);
      text = text.slice(0, i) + ` ${tok} ` + text.slice(i);
    }
    return text;
  });

const SIZES = { D: 3, H: 4, O: 2, V: 5, K: 3 };

describe("fuzzing model blocks (fast-check)", () => {
  it("only located diagnostics or a compiled network; no internal error, no hang", () => {
    let compiled = 0;
    let checked = 0;
    fc.assert(
      fc.property(source, (text) => {
        const t0 = performance.now();
        const r = checkProgram("fuzz.cell", nodeHost, text);
        renderAll(r.diagnostics, r.program.sources);
        for (const d of r.diagnostics)
          if (d.severity === "error" && !d.span && d.code !== "E003")
            throw new Error(`no location: ${d.code} ${d.message}`);
        for (const m of r.models.values()) {
          checked++;
          buildCellIR(m.cell);
          buildCellIR(m.readout);
          if (checked % 4 === 0) {
            const out = compileNetwork(text, {
              file: "fuzz.cell",
              host: nodeHost,
              choice: { model: m.name },
              dims: SIZES,
            });
            if (out.artifact) compiled++;
          }
        }
        expect(performance.now() - t0).toBeLessThan(3000);
      }),
      {
        numRuns: Number(process.env.CELLC_FUZZ_MODELS ?? 600),
        seed: Number(process.env.CELLC_FUZZ_SEED ?? 20261201),
      },
    );
    console.log(`model fuzz: ${checked} models checked, ${compiled} compiled`);
    // The generator must reach the back end too, not only the error paths.
    expect(checked).toBeGreaterThan(20);
    expect(compiled).toBeGreaterThan(5);
  });
});
