import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { checkProgram } from "../../compiler/driver.js";
import { hasErrors } from "../../compiler/diag/diagnostic.js";
import { exportOnnx } from "../../compiler/export/onnx.js";
import { exportTorch, pyFloat } from "../../compiler/export/torch.js";
import {
  compileCell,
  Model,
  readSafetensors,
  tensor,
  writeSafetensors,
  type Tensor,
} from "../../api/index.js";
import { CellcError } from "../../artifact/tensor.js";
import { mismatches } from "../compare.js";
import { builtinCellFiles, nodeHost } from "../helpers.js";
import { noise } from "./cases.js";
import { hasTorch, PYTHON } from "./python.js";

/**
 * The exporters on every cell of the examples and of the fuzz corpus that compiles (names that are the
 * exporters' own, keywords, folded NaN and infinities, 60000-character names, 3000-term sums): every ONNX
 * model they write passes `onnx.checker.check_model` (full check, with shape inference), and every PyTorch
 * file imports, names its parameters as cellc does and computes what cellc computes.
 */
const tmp = mkdtempSync(join(tmpdir(), "cellc-export-corpus-"));
type Compiled = ReturnType<typeof compileCell>;
interface Entry {
  readonly key: string;
  readonly cell: Compiled;
}

function corpus(): Entry[] {
  const files = [
    ...builtinCellFiles(),
    ...readdirSync("test/fuzz/corpus")
      .filter((f) => f.endsWith(".cell"))
      .sort()
      .map((f) => `test/fuzz/corpus/${f}`),
  ];
  const out: Entry[] = [];
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    const r = checkProgram(file, nodeHost, text);
    if (hasErrors(r.diagnostics)) continue;
    for (const name of r.cellNames)
      out.push({
        key: `${file}:${name.slice(0, 40)}`,
        cell: compileCell(text, { file, cell: name, host: nodeHost }),
      });
  }
  return out;
}
const entries = corpus();
/** D = 3, H = 4, any other dimension 3. */
const dimsOf = (c: Compiled) => Object.fromEntries(c.ir.dims.map((d) => [d, d === "H" ? 4 : 3]));
/** What an exporter refuses (a cell ONNX's recurrent form cannot hold), or a model the sizes do not fit. */
const refused = (f: () => void) => {
  try {
    f();
    return false;
  } catch (e) {
    if (e instanceof CellcError) return true;
    throw e;
  }
};

describe("Python float literals", () => {
  it("are valid Python for every number", () => {
    const values = [
      0,
      -0,
      1,
      -1,
      0.5,
      1e21,
      -1e21,
      1e-7,
      3.4028234663852886e38,
      5e-324,
      NaN,
      Infinity,
      -Infinity,
    ];
    const text = values.map(pyFloat).join(", ");
    expect(text).not.toMatch(/e\+\d+\.0|NaN|Infinity/);
    if (!hasTorch) return;
    const back = execFileSync(
      PYTHON,
      ["-c", `import json; print(json.dumps([repr(v) for v in [${text}]]))`],
      {
        encoding: "utf8",
      },
    );
    expect(JSON.parse(back)).toEqual([
      "0.0",
      "-0.0",
      "1.0",
      "-1.0",
      "0.5",
      "1e+21",
      "-1e+21",
      "1e-07",
      "3.4028234663852886e+38",
      "5e-324",
      "nan",
      "inf",
      "-inf",
    ]);
  });
});

describe("ONNX export of the corpus, checked by onnx.checker", () => {
  const written: string[] = [];
  const refusedBy: string[] = [];
  beforeAll(() => {
    entries.forEach((e, i) => {
      for (const [variant, cfg, opts] of [
        ["default", { layers: 1, bidirectional: false }, {}],
        [
          "scan-2-bidirectional-inputs",
          { layers: 2, bidirectional: true },
          { native: false, weights: false },
        ],
        [
          "required",
          { layers: 1, bidirectional: true },
          { sequenceLens: "required", initialStates: "required" },
        ],
      ] as const) {
        let bytes: Uint8Array | undefined;
        if (
          refused(() => {
            const model = new Model(e.cell, { dims: dimsOf(e.cell), seed: 1, ...cfg });
            bytes = exportOnnx(e.cell.ir, model, { bidirectional: cfg.bidirectional, ...opts }).bytes;
          })
        ) {
          refusedBy.push(`${e.key} ${variant}`);
          continue;
        }
        const file = join(tmp, `${i}.${variant}.onnx`);
        writeFileSync(file, bytes!);
        written.push(file);
      }
    });
  }, 300_000);

  it("every exported model passes onnx.checker.check_model(full_check=True)", () => {
    console.log(`${written.length} ONNX models; refused: ${refusedBy.join("; ") || "none"}`);
    expect(written.length).toBeGreaterThan(60);
    let onnx = true;
    try {
      execFileSync(PYTHON, ["-c", "import onnx"], { stdio: "ignore" });
    } catch {
      if (process.env.CI) throw new Error(`python3-onnx is required in CI ('${PYTHON} -c "import onnx"')`);
      onnx = false;
    }
    if (!onnx) return;
    const list = join(tmp, "onnx-files.json");
    writeFileSync(list, JSON.stringify(written));
    const script = `
import json, sys, onnx
bad = []
for f in json.load(open(sys.argv[1])):
    try:
        onnx.checker.check_model(onnx.load(f), full_check=True)
    except Exception as e:
        bad.append("%s: %s" % (f, str(e).splitlines()[0] if str(e) else type(e).__name__))
print(json.dumps(bad))
`;
    const bad = JSON.parse(execFileSync(PYTHON, ["-c", script, list], { encoding: "utf8" })) as string[];
    expect(bad).toEqual([]);
  }, 300_000);
});

describe.skipIf(!hasTorch)("PyTorch export of the corpus", () => {
  const jobs: { key: string; out: string; want: Map<string, Tensor> }[] = [];
  beforeAll(() => {
    const list: object[] = [];
    entries.forEach((e, i) => {
      let text = "";
      if (refused(() => (text = exportTorch(e.cell.ir)))) return;
      const dims = dimsOf(e.cell);
      const model = new Model(e.cell, { dims, seed: 2, dtype: "f64", prefixed: true });
      const D = model.sizes[0]![Object.keys(e.cell.ir.inputs[0]!.type.dims[0]!.terms)[0]!]!;
      const r = noise(i + 1);
      const x = tensor(
        "f64",
        [3, 2, D],
        Float64Array.from({ length: 6 * D }, () => r()),
      );
      const ref = model.forward({ [e.cell.ir.inputs[0]!.name]: x }, { seqLens: [3, 1] });
      const want = new Map<string, Tensor>(ref.outputs);
      for (const [n, t] of ref.finalStates) want.set(`${n}.final`, t);
      const base = join(tmp, `${i}`);
      writeFileSync(`${base}.py`, text);
      writeFileSync(`${base}.params.safetensors`, writeSafetensors(model.params));
      writeFileSync(
        `${base}.inputs.safetensors`,
        writeSafetensors(
          new Map([
            ["x", x],
            ["seq_lens", tensor("i32", [2], [3, 1])],
          ]),
        ),
      );
      list.push({
        module: `${base}.py`,
        dims,
        params: `${base}.params.safetensors`,
        inputs: `${base}.inputs.safetensors`,
        out: `${base}.out.safetensors`,
      });
      jobs.push({ key: e.key, out: `${base}.out.safetensors`, want });
    });
    writeFileSync(join(tmp, "torch-jobs.json"), JSON.stringify(list));
    execFileSync(PYTHON, ["test/export/names_driver.py", join(tmp, "torch-jobs.json")], { stdio: "inherit" });
  }, 300_000);

  it("imports every file, names the parameters as cellc does, and computes what cellc computes", () => {
    expect(jobs.length).toBeGreaterThan(25);
    expect(jobs.some((j) => j.key.endsWith("python_names"))).toBe(true);
    const problems: string[] = [];
    for (const j of jobs) {
      const got = readSafetensors(readFileSync(j.out));
      // The same NaN and infinities where cellc has them (a folded 0 / 0), the rest to 1e-9.
      const finite = (m: ReadonlyMap<string, Tensor>, ref: ReadonlyMap<string, Tensor>) =>
        new Map(
          [...m].map(([n, t]) => [
            n,
            { ...t, data: Float64Array.from(t.data, (v, i) => (Object.is(v, ref.get(n)?.data[i]) ? 0 : v)) },
          ]),
        );
      for (const p of mismatches(finite(got, j.want), finite(j.want, got), 1e-9, 1e-9))
        problems.push(`${j.key}: ${p}`);
    }
    expect(problems).toEqual([]);
  });
});
