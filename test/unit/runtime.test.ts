import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  compileCell,
  Model,
  jsBackend,
  readSafetensors,
  tensor,
  writeSafetensors,
  CellcError,
  type Tensor,
} from "../../api/index.js";
import { Rng } from "../../runtime/init.js";
import { nodeHost } from "../helpers.js";

const lstmSrc = readFileSync("examples/cells/lstm.cell", "utf8");
const lstm = compileCell(lstmSrc, { file: "examples/cells/lstm.cell", host: nodeHost });
const tmp = mkdtempSync(join(tmpdir(), "cellc-rt-"));

function randn(rng: Rng, shape: number[], dtype: "f32" | "f64" = "f32"): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(
    dtype,
    shape,
    Array.from({ length: n }, () => 2 * rng.next() - 1),
  );
}

describe("safetensors", () => {
  it("reads what it writes, for F32, F64 and I32", () => {
    const ts = {
      a: tensor("f32", [2, 3], [1, 2, 3, 4, 5, 6.5]),
      b: tensor("f64", [1], [Math.PI]),
      c: tensor("i32", [3], [-1, 0, 7]),
    };
    const back = readSafetensors(writeSafetensors(ts));
    expect([...back.keys()].sort()).toEqual(["a", "b", "c"]);
    expect(Array.from(back.get("a")!.data)).toEqual([1, 2, 3, 4, 5, 6.5]);
    expect(back.get("b")!.data[0]).toBe(Math.PI);
    expect(back.get("c")!.dtype).toBe("i32");
    expect(Array.from(back.get("c")!.data)).toEqual([-1, 0, 7]);
  });
  it("rejects malformed files with a reason", () => {
    expect(() => readSafetensors(new Uint8Array(3))).toThrow(/fewer than the 8-byte header/);
    const bytes = writeSafetensors({ a: tensor("f32", [4], [1, 2, 3, 4]) });
    expect(() => readSafetensors(bytes.subarray(0, bytes.length - 4))).toThrow(/outside the .* data bytes/);
    const bad = new Uint8Array(16);
    new DataView(bad.buffer).setBigUint64(0, 8n, true);
    bad.set(new TextEncoder().encode("notjson!"), 8);
    expect(() => readSafetensors(bad)).toThrow(/not valid UTF-8 JSON/);
  });
  it("property: arbitrary bytes give a CellcError or tensors, never another exception", () => {
    const valid = writeSafetensors({ x: tensor("f32", [2, 2], [1, 2, 3, 4]), n: tensor("i32", [1], [3]) });
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 5 }),
        (junk, flips) => {
          for (const input of [
            junk,
            valid.map((v, i) => flips.find(([at]) => at % valid.length === i)?.[1] ?? v),
          ]) {
            try {
              readSafetensors(input);
            } catch (e) {
              if (!(e instanceof CellcError)) throw e;
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("the library API", () => {
  it("streaming step by step gives the same outputs and states as the whole sequence", () => {
    const model = new Model(lstm, { dims: { D: 3, H: 5 }, seed: 4, layers: 2, dtype: "f64" });
    const rng = new Rng(1);
    const T = 6;
    const B = 2;
    const x = randn(rng, [T, B, 3], "f64");
    const whole = model.forward({ x }, { train: false });
    const s = model.stream(B);
    for (let t = 0; t < T; t++) {
      const out = s.step({ x: tensor("f64", [B, 3], x.data.slice(t * B * 3, (t + 1) * B * 3)) });
      const expected = whole.outputs.get("h")!.data.slice(t * B * 5, (t + 1) * B * 5);
      expect(Array.from(out.get("h")!.data)).toEqual(Array.from(expected));
    }
    const states = s.currentStates();
    expect(Array.from(states.get("l1.c")!.data)).toEqual(Array.from(whole.finalStates.get("l1.c")!.data));
  });
  it("shapes come from the cell's types: a width-1 vector is [B, 1], a per-row scalar state is [B]", () => {
    const src =
      "cell t { input x[D] state h[H], s[] param W : [H, D] s' = s + sum(h) h' = tanh(W @ x + s) output h' }";
    const model = new Model(compileCell(src), { dims: { D: 2, H: 1 } });
    expect(model.forward({ x: tensor("f32", [3, 2, 2]) }, { train: false }).outputs.get("h")!.shape).toEqual([
      3, 2, 1,
    ]);
    const s = model.stream(2);
    expect(s.step({ x: tensor("f32", [2, 2]) }).get("h")!.shape).toEqual([2, 1]);
    expect(s.currentStates().get("s")!.shape).toEqual([2]);
    expect(s.currentStates().get("h")!.shape).toEqual([2, 1]);
  });
  it("rows past their length output zeros and keep their last valid state", () => {
    const model = new Model(lstm, { dims: { D: 2, H: 3 }, seed: 1 });
    const x = randn(new Rng(2), [4, 2, 2]);
    const full = model.forward({ x }, { train: false });
    const cut = model.forward({ x }, { seqLens: [4, 2], train: false });
    const h = cut.outputs.get("h")!.data;
    expect(Array.from(h.slice((2 * 2 + 1) * 3, (2 * 2 + 2) * 3))).toEqual([0, 0, 0]);
    const short = model.forward({ x: tensor("f32", [2, 2, 2], x.data.slice(0, 8)) }, { train: false });
    expect(Array.from(cut.finalStates.get("c")!.data.slice(3, 6))).toEqual(
      Array.from(short.finalStates.get("c")!.data.slice(3, 6)),
    );
    expect(Array.from(cut.finalStates.get("c")!.data.slice(0, 3))).toEqual(
      Array.from(full.finalStates.get("c")!.data.slice(0, 3)),
    );
  });
  it("wrong shapes, missing parameters and bad lengths are errors that name the tensor and both shapes", () => {
    const model = new Model(lstm, { dims: { D: 3, H: 4 } });
    expect(() => model.forward({ x: tensor("f32", [5, 2, 4]) })).toThrow(
      /input 'x' has shape \[5, 2, 4\]; expected \[5, 2, 3\] \(\[T, B, D\]\)/,
    );
    expect(() => model.forward({ x: tensor("f32", [5, 2, 3]) }, { seqLens: [9, 1] })).toThrow(
      /seq_lens\[0\] = 9 is out of range/,
    );
    expect(() =>
      model.forward({ x: tensor("f32", [5, 2, 3]) }, { initialStates: { h: tensor("f32", [2, 5]) } }),
    ).toThrow(/initial state 'h' has shape \[2, 5\]; expected \[2, 4\]/);
    const params = new Map(model.params);
    params.delete("Uo");
    expect(() => new Model(lstm, { params })).toThrow(/missing parameter 'Uo' of shape \[H, H\] = \[4, 4\]/);
    params.set("Uo", tensor("f32", [4, 5]));
    expect(() => new Model(lstm, { params })).toThrow(
      /parameter 'Uo' has shape \[4, 5\]; expected \[H, H\] with H = 4/,
    );
    expect(() => compileCell("cell c { output h }")).toThrow(/error\[E023\]/);
  });
});

describe("cellc compile --target js", () => {
  it("writes an artifact that the runtime alone runs, matching the compiler's", async () => {
    const dir = join(tmp, "js");
    execFileSync(process.execPath, [
      "bin/cellc.js",
      "compile",
      "examples/cells/gru.cell",
      "--target",
      "js",
      "--out",
      dir,
    ]);
    const artifact = JSON.parse(readFileSync(join(dir, "gru.artifact.json"), "utf8"));
    expect(artifact.signature.dims).toEqual(["D", "H"]);
    expect(artifact.js).toBe(readFileSync(join(dir, "gru.js"), "utf8"));
    const core = await import(pathToFileURL("dist/runtime/index.js").href);
    // Both on the JS kernels (a JS artifact has no WebAssembly module): the same arithmetic, bit for bit.
    const opts = { dims: { D: 3, H: 4 }, seed: 5 };
    const loaded = new core.Model(core.loadArtifact(artifact), { ...opts, backend: core.jsBackend });
    const gru = compileCell(readFileSync("examples/cells/gru.cell", "utf8"));
    const model = new Model(gru, { ...opts, backend: jsBackend });
    const x = randn(new Rng(3), [4, 2, 3]);
    const expected = model.forward({ x }, { train: false }).outputs.get("h")!.data;
    const got = loaded
      .forward({ x: core.tensor("f32", x.shape, x.data) }, { train: false })
      .outputs.get("h").data;
    expect(Array.from(got as Float32Array)).toEqual(Array.from(expected));
    // The generated module is a plain ES module: its kernel factories run without cellc.
    const mod = await import(pathToFileURL(join(dir, "gru.js")).href);
    expect(Object.keys(mod).sort()).toEqual(["GEMMS", "after", "before", "loop", "step"]);
  });

  it("the runtime's entry point imports nothing of the compiler's front end", () => {
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(/^(?:import|export)[^;]*?from\s+"([^"]+)"/gm)) {
        const spec = m[1]!;
        if (!spec.startsWith(".")) {
          seen.add(spec);
          continue;
        }
        visit(join(file, "..", spec));
      }
    };
    visit("dist/runtime/index.js");
    const files = [...seen];
    expect(
      files.filter((f) =>
        /grammar|compiler\/(check|ast|diag|driver|autodiff|passes|schedule\/build)|chevrotain/.test(f),
      ),
    ).toEqual([]);
    expect(files).toContain("dist/runtime/cpu/runner.js");
  });
});

describe("cellc run: bad input is a clear error, exit 1, no stack trace", () => {
  const run = (args: string[]) =>
    spawnSync(process.execPath, ["bin/cellc.js", ...args], { encoding: "utf8" });
  const model = new Model(compileCell(readFileSync("examples/cells/rnn.cell", "utf8")), {
    dims: { D: 2, H: 3 },
  });
  const P = join(tmp, "p.safetensors");
  writeFileSync(P, writeSafetensors(model.params));
  const X = join(tmp, "x.safetensors");
  writeFileSync(X, writeSafetensors({ x: tensor("f32", [4, 2, 2]) }));
  const cases: [string, string[], RegExp][] = [
    [
      "missing parameter file",
      ["--params", join(tmp, "nope.safetensors"), "--inputs", X],
      /cannot read parameters '.*nope.safetensors': no such file/,
    ],
    [
      "malformed parameter file",
      ["--params", "README.md", "--inputs", X],
      /parameters 'README.md' is not a valid safetensors file/,
    ],
    [
      "wrong input shape",
      ["--params", P, "--inputs", "BADX"],
      /input 'x' has shape \[4, 2, 5\]; expected \[4, 2, 2\]/,
    ],
    ["unknown tensor", ["--params", P, "--inputs", "EXTRA"], /unexpected tensor 'y' in inputs/],
    ["seq_lens out of range", ["--params", P, "--inputs", "LENS"], /seq_lens\[1\] = 7 is out of range/],
  ];
  writeFileSync(join(tmp, "badx"), writeSafetensors({ x: tensor("f32", [4, 2, 5]) }));
  writeFileSync(join(tmp, "extra"), writeSafetensors({ x: tensor("f32", [4, 2, 2]), y: tensor("f32", [1]) }));
  writeFileSync(
    join(tmp, "lens"),
    writeSafetensors({ x: tensor("f32", [4, 2, 2]), seq_lens: tensor("i32", [2], [1, 7]) }),
  );
  for (const [what, args, message] of cases)
    it(what, () => {
      const fixed = args.map((a) =>
        a === "BADX"
          ? join(tmp, "badx")
          : a === "EXTRA"
            ? join(tmp, "extra")
            : a === "LENS"
              ? join(tmp, "lens")
              : a,
      );
      const r = run(["run", "examples/cells/rnn.cell", ...fixed, "--out", join(tmp, "o.safetensors")]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  it("a cell file with errors prints diagnostics and exits 1", () => {
    const bad = join(tmp, "bad.cell");
    writeFileSync(bad, "cell c {\n  state h[H]\n  h' = tanh(h +)\n  output h'\n}\n");
    const r = run(["run", bad, "--params", P, "--inputs", X, "--out", join(tmp, "o.safetensors")]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/error\[E002\].*\n.*bad.cell:3:16/);
  });
  it("cellc check exits 1 on errors and 0 on the built-in cells", () => {
    expect(run(["check", "test/errors/E040.cell"]).status).toBe(1);
    expect(run(["check", "examples/cells/lstm.cell"]).status).toBe(0);
    expect(run(["check", "no/such.cell"]).stderr).toMatch(/E003.*no such file/);
    const wrongCell = run(["compile", "examples/cells/greff.cell", "--cell", "lstm_nfgg"]);
    expect(wrongCell.status).toBe(1);
    expect(wrongCell.stderr).toMatch(
      /error\[E051\]: file defines no cell named 'lstm_nfgg'; did you mean 'lstm_nfg'\?/,
    );
  });
});

describe("property: garbage to the other entry points", () => {
  it("Model.forward with random shapes, lengths and states throws only CellcError", () => {
    const model = new Model(lstm, { dims: { D: 2, H: 3 } });
    const dimsArb = fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 });
    fc.assert(
      fc.property(
        dimsArb,
        dimsArb,
        fc.option(fc.array(fc.integer({ min: -2, max: 6 }), { maxLength: 4 })),
        (xs, hs, lens) => {
          try {
            model.forward(
              { x: tensor("f32", xs) },
              { initialStates: { h: tensor("f32", hs) }, seqLens: lens ?? undefined },
            );
          } catch (e) {
            if (!(e instanceof CellcError)) throw e;
          }
        },
      ),
      { numRuns: 300 },
    );
  });
  it("the command line's argument parser rejects garbage with a usage error", async () => {
    const { parseArgs, UsageError } = await import("../../cli/args.js");
    const words = [
      "run",
      "check",
      "compile",
      "--emit",
      "ir",
      "--cell",
      "--grad",
      "--layers",
      "x",
      "--target",
      "js",
      "--out",
      "--f64",
      "-",
    ];
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constantFrom(...words), fc.string({ maxLength: 6 })), { maxLength: 8 }),
        (argv) => {
          try {
            parseArgs(argv);
          } catch (e) {
            if (!(e instanceof UsageError)) throw e;
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
