// An artifact is data: its JS is run only as the verifier rebuilds it (runtime/verify.ts), its wasm only
// once validated. Every built-in cell's, loss's and optimiser's generated JS passes; edits that reach for
// globals, strings or properties are refused before anything of them runs.
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { buildCellIR, checkProgram } from "../../compiler/driver.js";
import { compileIR } from "../../compiler/compile.js";
import { lossKernels } from "../../compiler/network/loss.js";
import { optimKernels } from "../../compiler/network/optim.js";
import { compileCell, loadArtifact, Model, tensor, CellcError } from "../../api/index.js";
import type { Artifact } from "../../artifact/artifact.js";
import type { LossKind, OptimName } from "../../artifact/network.js";
import { toBase64 } from "../../artifact/wasm.js";
import { loadJsModule } from "../../runtime/kernels.js";
import { verifyKernelJs } from "../../runtime/verify.js";
import { createWasmBackend } from "../../runtime/cpu/wasm.js";
import { builtinCellFiles, nodeHost } from "../helpers.js";

const SENTINEL = "__cellcEdited";
const g = globalThis as Record<string, unknown>;
afterEach(() => {
  delete g[SENTINEL];
});

/** Every cell of every built-in file, compiled: 14 files, some with several cells. */
function builtinCells(): [string, Artifact][] {
  const out: [string, Artifact][] = [];
  for (const file of builtinCellFiles()) {
    const r = checkProgram(file, nodeHost);
    for (const name of r.cellNames) out.push([name, compileIR(buildCellIR(r.checked.get(name)!)).artifact]);
  }
  return out;
}

describe("the JS cellc generates passes the verifier", () => {
  const cells = builtinCells();
  it("all 17 built-in cell files", () => {
    expect(new Set(builtinCellFiles()).size).toBe(17);
    expect(cells.length).toBeGreaterThanOrEqual(17);
  });
  for (const [name, a] of cells)
    it(`cell ${name}`, () => {
      const v = verifyKernelJs(a.js!, name);
      for (const k of ["before", "step", "loop", "after", "GEMMS"]) expect(v.names.has(k)).toBe(true);
      expect(() => loadArtifact(a)).not.toThrow();
    });
  for (const kind of ["mse", "cross_entropy", "binary_cross_entropy"] as LossKind[])
    it(`loss ${kind}`, () => {
      const k = loadJsModule(lossKernels(kind).js, ["loss"], "loss");
      // The loss of one row, y = [0, 0], against its target: by hand.
      const dy = new Float64Array(2);
      const target = kind === "cross_entropy" ? Int32Array.of(1) : Float32Array.of(1, 0);
      const l = (k.loss as (...a: unknown[]) => number)(
        Float64Array.of(0, 0),
        2,
        1,
        target,
        Uint8Array.of(1),
        1,
        dy,
      );
      const want = { mse: 1, cross_entropy: Math.log(2), binary_cross_entropy: 2 * Math.log(2) }[kind];
      expect(l).toBeCloseTo(want, 12);
    });
  for (const kind of ["sgd", "momentum", "adam", "adamw"] as OptimName[])
    it(`optimiser ${kind}`, () => {
      const k = loadJsModule(optimKernels(kind).js, ["update", "sumsq", "scale"], "optimiser");
      expect((k.sumsq as (g: Float32Array, n: number) => number)(Float32Array.of(3, 4), 2)).toBe(25);
    });
});

const rnn = () => compileCell(readFileSync("examples/cells/rnn.cell", "utf8")).artifact;
/** The rnn artifact's JS with `edit` inserted before its step kernel. */
const edited = (edit: string): Artifact => {
  const a = rnn();
  return { ...a, js: a.js!.replace("export function step(", `${edit}\nexport function step(`) };
};

describe("an edited artifact's JS is refused and never runs", () => {
  const edits: [string, string, RegExp][] = [
    ["a global", `globalThis.${SENTINEL} = 1;`, /the name 'globalThis'/],
    ["process.exit()", "process.exit(3);", /the name 'process'/],
    ["a string", `const v1 = "x";`, /the character '"'/],
    ["a template", "const v1 = `${1}`;", /the character '`'/],
    [
      "a regular expression",
      "const v1 = 1; const v2 = /x/;",
      /'\/' where it would start a regular expression/,
    ],
    [
      "a comment that hides code from a regex-blind reader",
      "const v1 = / //; globalThis.x = 1",
      /regular expression/,
    ],
    ["constructor", "const v1 = gemmNT.constructor;", /the property 'constructor'/],
    ["Function", "const v1 = Function;", /the name 'Function'/],
    ["import()", "const v1 = import(0);", /the name 'import'/],
    ["this", "const v1 = this;", /the name 'this'/],
    ["an assignment to Math", "Math.exp = 0;", /Math\.exp must be called/],
    ["Math as a value", "const v1 = Math;", /'Math' other than in Math/],
    [
      "an assignment to a typed array's constructor",
      "Float32Array = 0;",
      /'Float32Array' other than after 'new'/,
    ],
    ["a call of a computed value", "function v9() { return (0, gemmNT)(1); }", /a call of a computed value/],
    ["a loop at the top level (it would run on loading)", "for (;;) {}", /'for' outside a function/],
    ["a call at the top level", "const v1 = gemmNT(1);", /code that would run when the module loads/],
    ["a call of a parameter", "function f1(g1) { return g1(); }", /a call of 'g1'/],
    ["an array literal", "const v1 = [1][0];", /'\[' other than an index/],
    ["a unicode escape", "const v\\u0031 = 1;", /the character '\\'/],
    ["a line separator", "const v1 = 1;\u2028", /U\+2028/],
    ["an unclosed comment", "/* never closed", /a comment that is never closed/],
    ["a property write", "gemmNT.length = 0;", /'\.length' cannot be assigned/],
    ["a hex number", "const v1 = 0x10;", /a malformed number/],
  ];
  for (const [what, edit, why] of edits)
    it(what, () => {
      const a = edited(edit);
      expect(() => loadArtifact(a)).toThrow(CellcError);
      expect(() => loadArtifact(a)).toThrow(why);
      expect(() => loadArtifact(a)).toThrow(/an edited artifact is not run/);
      expect(g[SENTINEL]).toBeUndefined();
    });

  it("the control: the same edit as a harmless statement loads", () => {
    expect(() => loadArtifact(edited("const v1 = 1 + 2;"))).not.toThrow();
  });

  it("an index is always a number: a string made by + names no property", () => {
    // Without the verifier's `[+(...)]`, o[k] would read the property k names.
    const text = "function f1(mem, t) { return mem[t]; }";
    const f = loadJsModule(text, ["f1"], "test").f1 as (o: unknown, k: unknown) => unknown;
    expect(f({ a: 5 }, "a")).toBeUndefined();
    expect(f([7, 8], 1)).toBe(8);
    expect(f(Float32Array.of(1, 2), "constructor")).toBeUndefined();
  });

  it("a missing kernel is named", () => {
    const a = rnn();
    expect(() => loadArtifact({ ...a, js: a.js!.replace("export function step(", "function v99(") })).toThrow(
      "the cell's kernels have no 'step'",
    );
  });
});

/** A wasm module (bytes) with one type `() -> ()` and one import of a function `env.f`. */
const IMPORTS_A_FUNCTION = Uint8Array.of(
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
  0x02, 0x09, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x01, 0x66, 0x00, 0x00,
); // prettier-ignore

describe("an artifact's wasm is validated before it is instantiated", () => {
  const backend = createWasmBackend();
  const run = (a: Artifact) => {
    const m = new Model(loadArtifact(a), { backend, dims: { D: 2, H: 2 } });
    return () => m.forward({ x: tensor("f32", [2, 1, 2]) });
  };
  // The module and its relaxed-SIMD form: which one runs depends on the engine, and both are checked.
  const both = (m: string) => ({ module: m, relaxed: m });
  it("the compiled module runs", () => expect(run(rnn())).not.toThrow());
  it("bytes that are not WebAssembly", () => {
    const a = rnn();
    expect(run({ ...a, wasm: { ...a.wasm!, ...both(toBase64(Uint8Array.of(1, 2, 3, 4))) } })).toThrow(
      "the wasm kernels of 'rnn' are refused: the module is not valid WebAssembly",
    );
  });
  it("a module that imports a function", () => {
    const a = rnn();
    expect(run({ ...a, wasm: { ...a.wasm!, ...both(toBase64(IMPORTS_A_FUNCTION)) } })).toThrow(
      /imports function 'env\.f'; only the memory env\.memory may be imported/,
    );
  });
  it("a step that calls a function the module does not export", () => {
    const a = rnn();
    const kernels = JSON.parse(JSON.stringify(a.wasm!.kernels)) as Record<string, { steps?: { kind: string; fn?: string }[] }>; // prettier-ignore
    const call = Object.values(kernels)
      .flatMap((k) => k.steps ?? [])
      .find((s) => s.kind === "call")!;
    call.fn = "nowhere";
    expect(run({ ...a, wasm: { ...a.wasm!, kernels } as Artifact["wasm"] })).toThrow(
      /calls 'nowhere', which the module does not export/,
    );
  });
});
