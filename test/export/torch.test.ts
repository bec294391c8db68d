import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { exportTorch } from "../../compiler/export/torch.js";
import { readSafetensors, tensor, writeSafetensors, type Tensor } from "../../api/index.js";
import { mismatches } from "../compare.js";
import { builtinCells, CONFIGS, dimsOf, LENS, noise, setup } from "./cases.js";
import { hasTorch, PYTHON } from "./python.js";

/**
 * The generated PyTorch module of every built-in cell, run by PyTorch (test/export/torch_driver.py: eager,
 * autograd, and TorchScript), against cellc's default CPU backend (float64: JS; float32: wasm): outputs, final states and every gradient, with
 * sequence lengths, initial states and upstream gradients into outputs and final states.
 */
const cells = builtinCells();
const DTYPES = ["f64", "f32"] as const;
const TOL = { f64: [1e-9, 1e-9], f32: [1e-5, 2e-4] } as const;
const jobs: { key: string; want: Map<string, Tensor>; out: string }[] = [];
export const worst = { f64: 0, f32: 0 };

describe.skipIf(!hasTorch)("PyTorch export", () => {
  beforeAll(() => {
    const dir = mkdtempSync(join(tmpdir(), "cellc-torch-"));
    const list: object[] = [];
    for (const c of cells) {
      const module = join(dir, `${c.name}.py`);
      writeFileSync(module, exportTorch(c.cell.ir));
      for (const cfg of CONFIGS)
        for (const dtype of DTYPES) {
          const key = `${c.name} ${dtype} layers=${cfg.layers}${cfg.bidirectional ? " bidirectional" : ""}`;
          const base = join(dir, key.replace(/[ =]/g, "_"));
          const { model, x, inits } = setup(c.cell, cfg, dtype);
          const r = noise(5);
          const rand = (t: Tensor) =>
            tensor(
              dtype,
              t.shape,
              Float32Array.from(t.data, () => r()),
            );
          const fwd = model.forward(
            { [c.cell.ir.inputs[0]!.name]: x },
            { initialStates: inits, seqLens: LENS },
          );
          const up = { outputs: new Map<string, Tensor>(), finalStates: new Map<string, Tensor>() };
          for (const [n, t] of fwd.outputs) up.outputs.set(n, rand(t));
          for (const [n, t] of fwd.finalStates) up.finalStates.set(n, rand(t));
          const g = model.backward(fwd, up);
          const want = new Map<string, Tensor>();
          for (const [n, t] of fwd.outputs) want.set(n, t);
          for (const [n, t] of fwd.finalStates) want.set(`${n}.final`, t);
          for (const [n, t] of g.params) want.set(`grad.${n}`, t);
          for (const [n, t] of g.inputs) want.set(`grad.${n}`, t);
          for (const [n, t] of g.initialStates) want.set(`grad.${n}.init`, t);
          const inputs = new Map<string, Tensor>([
            ["x", x],
            ["seq_lens", tensor("i32", [LENS.length], LENS)],
          ]);
          for (const [n, t] of inits) inputs.set(`${n}.init`, t);
          for (const [n, t] of up.outputs) inputs.set(`upstream.${n}`, t);
          for (const [n, t] of up.finalStates) inputs.set(`upstream.${n}.final`, t);
          writeFileSync(`${base}.params.safetensors`, writeSafetensors(model.params));
          writeFileSync(`${base}.inputs.safetensors`, writeSafetensors(inputs));
          const out = `${base}.out.safetensors`;
          // What build() must initialise to a constant, by name (the cell's `= value` initialisers).
          const consts: Record<string, number> = {};
          for (const n of model.params.keys()) {
            const p = c.cell.ir.params.find((q) => n === q.name || n.endsWith(`.${q.name}`))!;
            if (p.init.kind === "const") consts[n] = p.init.value;
          }
          list.push({
            consts,
            module,
            dims: dimsOf(c.cell),
            layers: cfg.layers,
            bidirectional: cfg.bidirectional,
            dtype,
            params: `${base}.params.safetensors`,
            inputs: `${base}.inputs.safetensors`,
            out,
          });
          jobs.push({ key, want, out });
        }
    }
    writeFileSync(join(dir, "jobs.json"), JSON.stringify(list));
    execFileSync(PYTHON, ["test/export/torch_driver.py", join(dir, "jobs.json")], { stdio: "inherit" });
  }, 600_000);

  for (const c of cells)
    for (const cfg of CONFIGS)
      for (const dtype of DTYPES) {
        const key = `${c.name} ${dtype} layers=${cfg.layers}${cfg.bidirectional ? " bidirectional" : ""}`;
        it(key, () => {
          const job = jobs.find((j) => j.key === key)!;
          const got = readSafetensors(readFileSync(job.out));
          for (const [n, t] of job.want) {
            const a = got.get(n);
            if (a)
              for (let i = 0; i < t.data.length; i++)
                worst[dtype] = Math.max(
                  worst[dtype],
                  Math.abs(a.data[i]! - t.data[i]!) / Math.max(1, Math.abs(t.data[i]!)),
                );
          }
          expect(mismatches(got, job.want, TOL[dtype][0], TOL[dtype][1])).toEqual([]);
        });
      }

  it("build(params=...) loads cellc init's file with the module's own reader, no safetensors package", () => {
    const dir = mkdtempSync(join(tmpdir(), "cellc-torch-init-"));
    const [module, params] = [join(dir, "gru.py"), join(dir, "gru.safetensors")];
    const cellc = (...a: string[]) =>
      execFileSync(process.execPath, ["bin/cellc.js", ...a], { encoding: "utf8" });
    cellc("compile", "examples/cells/gru.cell", "--target", "torch", "--out", module);
    cellc(
      "init",
      "examples/cells/gru.cell",
      "--dims",
      "D=3,H=5",
      "--layers",
      "2",
      "--bidirectional",
      "--out",
      params,
    );
    const script = `
import importlib.util, json, sys
assert importlib.util.find_spec("safetensors") is None, "this Python has the safetensors package"
spec = importlib.util.spec_from_file_location("gru", sys.argv[1])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
model = m.build({"D": 3, "H": 5}, layers=2, bidirectional=True, params=sys.argv[2])
print(json.dumps({
    "named": [n for n, _ in model.named_parameters()],
    "state": {k: [list(v.shape), v.flatten().tolist()] for k, v in model.state_dict().items()},
}))
`;
    const got = JSON.parse(execFileSync(PYTHON, ["-c", script, module, params], { encoding: "utf8" })) as {
      named: string[];
      state: Record<string, [number[], number[]]>;
    };
    const want = readSafetensors(readFileSync(params));
    expect(got.named.sort()).toEqual([...want.keys()].sort());
    expect(Object.keys(got.state).sort()).toEqual([...want.keys()].sort());
    for (const [n, t] of want) {
      expect(got.state[n]![0]).toEqual(t.shape);
      expect(got.state[n]![1]).toEqual(Array.from(t.data));
    }
  });

  it("reports the largest difference", () => {
    console.log(`largest |PyTorch - cellc| / max(1, |cellc|): f64 ${worst.f64}, f32 ${worst.f32}`);
  });
});
