import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, it } from "vitest";
import { buildCellIR, checkProgram, selectCell } from "../../compiler/driver.js";
import { renderAll } from "../../compiler/diag/diagnostic.js";
import { builtinCellFiles, nodeHost } from "../helpers.js";

/** The whole front end and the lowering must never throw: every input ends in IR or in diagnostics. */
function frontEnd(text: string): void {
  const r = checkProgram("examples/cells/fuzz.cell", nodeHost, text);
  renderAll(r.diagnostics, r.program.sources);
  for (const name of r.cellNames) {
    const sel = selectCell(r, name);
    if (sel.cell) buildCellIR(sel.cell);
  }
}

const corpus = builtinCellFiles().map((f) => readFileSync(f, "utf8"));
const vocabulary = [
  "cell",
  "extends",
  "input",
  "state",
  "param",
  "output",
  "fn",
  "import",
  "x",
  "h",
  "c",
  "W",
  "U",
  "b",
  "D",
  "H",
  "'",
  "{",
  "}",
  "(",
  ")",
  "[",
  "]",
  ",",
  ":",
  "=",
  "~",
  "+",
  "-",
  "*",
  "/",
  "@",
  "1",
  "0.5",
  "sigmoid",
  "tanh",
  "mean",
  "sum",
  "clip",
  "elu",
  "xavier",
  "\n",
  " ",
  "#",
  '"lstm.cell"',
  "h'",
  "1e400",
  "-",
  "$",
  "é",
];

const mutation = fc.oneof(
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), len: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), text: fc.constantFrom(...vocabulary) }),
  fc.record({ kind: fc.constant("swap" as const), at: fc.nat(), other: fc.nat() }),
);

interface Mutation {
  kind: string;
  at: number;
  len?: number;
  text?: string;
  other?: number;
}

function mutate(text: string, ms: readonly Mutation[]) {
  let t = text;
  for (const m of ms) {
    const at = t.length ? m.at % t.length : 0;
    if (m.kind === "delete") t = t.slice(0, at) + t.slice(at + (m.len ?? 1));
    else if (m.kind === "insert") t = t.slice(0, at) + (m.text ?? "") + t.slice(at);
    else {
      const o = t.length ? (m.other ?? 0) % t.length : 0;
      const [a, b] = at < o ? [at, o] : [o, at];
      t = t.slice(0, a) + t.slice(b, b + 8) + t.slice(a + 8, b) + t.slice(a, a + 8) + t.slice(b + 8);
    }
  }
  return t;
}

describe("property: the front end never throws", () => {
  it("on mutated built-in cells", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...corpus),
        fc.array(mutation, { minLength: 1, maxLength: 6 }),
        (src, ms) => {
          frontEnd(mutate(src, ms));
        },
      ),
      { numRuns: 400 },
    );
  });
  it("on random token soup", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...vocabulary), { maxLength: 80 }), (toks) => {
        frontEnd(toks.join(" "));
      }),
      { numRuns: 400 },
    );
  });
  it("on arbitrary strings", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 200 }), (s) => {
        frontEnd(s);
      }),
      { numRuns: 300 },
    );
  });
});
