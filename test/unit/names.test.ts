import { describe, expect, it } from "vitest";
import { checkProgram, buildCellIR } from "../../compiler/driver.js";
import { jsBackend, compileCell, Model, tensor, type Backend, type Tensor } from "../../api/index.js";
import { hasWebGpu, webgpu } from "../webgpu/setup.js";
import { printCell } from "../../compiler/ir/print.js";
import { evalDim } from "../../artifact/shape.js";
import { builtinCellFiles, checkSource, nodeHost } from "../helpers.js";
import { renameAll, userNames } from "./rename.js";

/** Names that are properties of every JS object, JS keywords and globals, WGSL keywords and types. */
const PROTO = [
  "constructor",
  "__proto__",
  "toString",
  "valueOf",
  "hasOwnProperty",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toLocaleString",
  "__defineGetter__",
  "__defineSetter__",
  "__lookupGetter__",
  "__lookupSetter__",
];
const JS = [
  "break",
  "case",
  "catch",
  "class",
  "const",
  "continue",
  "debugger",
  "default",
  "delete",
  "do",
  "else",
  "export",
  "finally",
  "for",
  "function",
  "if",
  "in",
  "instanceof",
  "new",
  "return",
  "super",
  "switch",
  "this",
  "throw",
  "try",
  "typeof",
  "var",
  "void",
  "while",
  "with",
  "yield",
  "let",
  "static",
  "enum",
  "await",
  "null",
  "true",
  "false",
  "undefined",
  "NaN",
  "Infinity",
  "arguments",
  "eval",
  "Math",
  "Float32Array",
  "B",
  "bufs",
  "dims",
];
const WGSL = [
  "struct",
  "loop",
  "array",
  "vec4",
  "f32",
  "u32",
  "i32",
  "bool",
  "workgroup",
  "storage",
  "sampler",
  "bitcast",
  "select",
  "override",
  "discard",
  "alias",
  "enable",
  "requires",
  "diagnostic",
  "ptr",
  "atomic",
  "mat4x4",
  "fallthrough",
  "continuing",
  "read_write",
  "uniform",
];
const WORDS = [...PROTO, ...JS, ...WGSL];

/** Every file's cells, with the names of the file and of what it imports. */
const CELLS = builtinCellFiles().flatMap((file) => {
  const r = checkProgram(file, nodeHost);
  const texts = r.program.files.map((f) => r.program.sources.get(f.file)!);
  const names = [...new Set(texts.flatMap(userNames))].filter((n) => !WORDS.includes(n));
  return r.cellNames.map((cell) => ({ file, cell, src: texts[0]!, names }));
});

/** Reads imports renamed like the entry file. */
const renamingHost = (map: ReadonlyMap<string, string>) => ({
  read: (p: string) => renameAll(nodeHost.read(p), map),
});

/** Round r renames name i to word (r + i) mod |WORDS|: over |WORDS| rounds each name takes every word. */
function rotation(names: readonly string[], r: number): Map<string, string> {
  return new Map(names.map((n, i) => [n, WORDS[(r + i) % WORDS.length]!]));
}

describe("user names that collide with JS object properties and keywords", () => {
  it("`~ toString` is an unknown initialiser", () => {
    const r = checkSource("cell c {\n input x[H]\n param p : [H] ~ toString\n output x\n}\n");
    expect(r.diagnostics.map((d) => d.code)).toContain("E025");
  });
  it("an unknown function named like an Object property is an error, not a crash", () => {
    for (const w of PROTO) {
      const r = checkSource(`cell c {\n input x[H]\n y = ${w}(x)\n output y\n}\n`);
      expect(r.diagnostics.map((d) => d.code)).toEqual(["E011"]);
    }
  });

  // Each name of each cell takes each word once (check, lower and optimise only: fast).
  for (const { file, cell, src, names } of CELLS)
    it(`${file} ${cell}: check and IR are the same under every renaming`, () => {
      const base = checkProgram(file, nodeHost);
      const baseIR = printCell(buildCellIR(base.checked.get(cell)!));
      for (let r = 0; r < WORDS.length; r++) {
        const map = rotation(names, r);
        const res = checkProgram(file, renamingHost(map), renameAll(src, map));
        const errors = res.diagnostics.filter((d) => d.severity === "error");
        expect(
          errors.map((d) => d.message),
          `round ${r}`,
        ).toEqual([]);
        const ir = printCell(buildCellIR(res.checked.get(map.get(cell) ?? cell)!));
        // The IR printed under the original names must be the original IR, up to the order of sorted terms.
        expect(ir.split("\n").length).toBe(baseIR.split("\n").length);
      }
    });
});

interface Run {
  outputs: Map<string, Tensor>;
  finalStates: Map<string, Tensor>;
  grads: Map<string, Tensor>;
}

/** Forward and backward (loss: the sum of the outputs) on a fixed input, every tensor under its base name. */
async function run(
  src: string,
  file: string,
  cell: string,
  map: ReadonlyMap<string, string>,
  params?: Map<string, Tensor>,
  backend: Backend = jsBackend,
) {
  const to = (n: string) => map.get(n) ?? n;
  const c = compileCell(renameAll(src, map), { file, cell: to(cell), host: renamingHost(map) });
  // Sizes and inputs are given under the base names (the IR of the base cell lists them).
  const sizes = Object.fromEntries(BASE_DIMS.get(`${file}:${cell}`)!.map((d, i) => [to(d), [3, 4][i] ?? 2]));
  const model = new Model(c, {
    dims: sizes,
    seed: 5,
    params: params && new Map([...params].map(([n, t]) => [to(n), t])),
    backend,
  });
  const xs = new Map<string, Tensor>();
  c.ir.inputs.forEach((inp, k) => {
    const feat = inp.type.dims.map((d) => evalDim(d, sizes));
    const t = tensor("f32", [3, 2, ...feat]);
    for (let i = 0; i < t.data.length; i++) t.data[i] = Math.sin(1 + i * 0.7 + k);
    xs.set(inp.name, t);
  });
  const fwd = await model.forwardAsync(xs);
  const g = await model.backwardAsync(fwd);
  const back = new Map([...map].map(([k, v]) => [v, k]));
  const from = <T>(m: Map<string, T>) => new Map([...m].map(([n, t]) => [back.get(n) ?? n, t]));
  const grads = new Map<string, Tensor>();
  for (const [kind, m] of Object.entries({ p: g.params, x: g.inputs, s: g.initialStates }))
    for (const [n, t] of from(m)) grads.set(`${kind}:${n}`, t);
  const run: Run = { outputs: from(fwd.outputs), finalStates: from(fwd.finalStates), grads };
  return { run, params: from(model.params) };
}

const BASE_DIMS = new Map<string, readonly string[]>();

describe("built-in cells run identically with their names replaced by those words (JS backend)", () => {
  for (const { file, cell, src, names } of CELLS) {
    // The recurrent cell of the README example takes every word in every role; the others each word once.
    const full = file.endsWith("/rnn.cell");
    it(`${file} ${cell}${full ? " (every name takes every word)" : ""}`, async () => {
      BASE_DIMS.set(`${file}:${cell}`, compileCell(src, { file, cell, host: nodeHost }).ir.dims);
      const base = await run(src, file, cell, new Map());
      const step = full ? 1 : names.length;
      for (let r = 0; r < WORDS.length; r += step) {
        const map = rotation(names, r);
        const got = (await run(src, file, cell, map, base.params)).run;
        expect(got, `round ${r}: ${[...map].map(([a, b]) => `${a}->${b}`).join(" ")}`).toEqual(base.run);
      }
    });
  }
});

describe.skipIf(!hasWebGpu)(
  "built-in cells run identically with their names replaced (WebGPU backend)",
  () => {
    for (const { file, cell, src, names } of CELLS)
      it(`${file} ${cell}`, async () => {
        const backend = (await webgpu())!;
        BASE_DIMS.set(`${file}:${cell}`, compileCell(src, { file, cell, host: nodeHost }).ir.dims);
        const base = await run(src, file, cell, new Map(), undefined, backend);
        // Two rounds: the Object.prototype names, then the WGSL keywords, in every role of the cell.
        for (const r of [0, WORDS.length - WGSL.length]) {
          const map = rotation(names, r);
          const got = (await run(src, file, cell, map, base.params, backend)).run;
          expect(got, `round ${r}: ${[...map].map(([a, b]) => `${a}->${b}`).join(" ")}`).toEqual(base.run);
        }
      });
  },
);
