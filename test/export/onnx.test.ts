import { describe, expect, it } from "vitest";
import { exportOnnx } from "../../compiler/export/onnx.js";
import { compileCell, Model, readSafetensors, tensor, type Tensor } from "../../api/index.js";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeHost } from "../helpers.js";
import { mismatches } from "../compare.js";
import { B, builtinCells, CONFIGS, LENS, setup, T } from "./cases.js";

/**
 * The ONNX export of every built-in cell, run in ONNX Runtime (onnxruntime-node), against cellc's JS
 * backend on the same parameters, inputs, lengths and initial states, in float32.
 */
type Ort = typeof import("onnxruntime-node");
let ort: Ort | undefined;
try {
  ort = await import("onnxruntime-node");
} catch (e) {
  if (process.env.CI) throw new Error(`onnxruntime-node is required in CI: ${(e as Error).message}`);
}

const cells = builtinCells();
export const worst = { diff: 0, where: "" };
const ops = new Map<string, string>();

describe.skipIf(!ort)("ONNX export in ONNX Runtime", () => {
  for (const c of cells)
    for (const cfg of CONFIGS)
      it(`${c.name} layers=${cfg.layers}${cfg.bidirectional ? " bidirectional" : ""}`, async () => {
        const { model, x, inits } = setup(c.cell, cfg, "f32");
        const ref = model.forward(
          { [c.cell.ir.inputs[0]!.name]: x },
          { initialStates: inits, seqLens: LENS },
        );
        const dirs = cfg.bidirectional ? 2 : 1;
        const exp = exportOnnx(c.cell.ir, model, { bidirectional: cfg.bidirectional });
        ops.set(c.name, exp.op);
        const session = await ort!.InferenceSession.create(exp.bytes);
        const feeds: Record<string, InstanceType<Ort["Tensor"]>> = {
          X: new ort!.Tensor("float32", x.data as Float32Array, x.shape),
          sequence_lens: new ort!.Tensor("int32", Int32Array.from(LENS), [B]),
        };
        for (const s of c.cell.ir.states) {
          const parts: Tensor[] = [];
          for (let l = 0; l < cfg.layers; l++)
            for (let d = 0; d < dirs; d++) parts.push(inits.get(model.name(l, d, s.name))!);
          const n = parts[0]!.shape[1]!;
          feeds[`initial_${s.name}`] = new ort!.Tensor(
            "float32",
            Float32Array.from(parts.flatMap((p) => [...p.data])),
            [parts.length, B, n],
          );
        }
        const res = await session.run(feeds);
        const got = new Map<string, Tensor>();
        const want = new Map<string, Tensor>();
        const out = c.cell.ir.outputs[0]!.name;
        // Y [T, dirs, B, H] against cellc's [T, B, dirs * H]
        const y = res.Y!;
        const H = y.dims[3]!;
        const yData = y.data as Float32Array;
        const yFlat = new Float32Array(T * B * dirs * H);
        for (let t = 0; t < T; t++)
          for (let d = 0; d < dirs; d++)
            for (let b = 0; b < B; b++)
              for (let h = 0; h < H; h++)
                yFlat[((t * B + b) * dirs + d) * H + h] = yData[((t * dirs + d) * B + b) * H + h]!;
        got.set(out, tensor("f32", [T, B, dirs * H], yFlat));
        want.set(out, ref.outputs.get(out)!);
        for (const s of c.cell.ir.states)
          for (let d = 0; d < dirs; d++) {
            const r = res[`Y_${s.name}`]!;
            const n = r.dims[2]!;
            const name = model.name(cfg.layers - 1, d, s.name);
            got.set(name, tensor("f32", [B, n], (r.data as Float32Array).slice(d * B * n, (d + 1) * B * n)));
            want.set(name, ref.finalStates.get(name)!);
          }
        for (const [n, t] of want) {
          const a = got.get(n)!;
          for (let i = 0; i < t.data.length; i++) {
            const diff = Math.abs(a.data[i]! - t.data[i]!);
            if (diff > worst.diff)
              Object.assign(worst, { diff, where: `${c.name} ${JSON.stringify(cfg)} ${n}` });
          }
        }
        console.log(
          Array.from(want.get(out)!.data.slice(16, 20)),
          Array.from(got.get(out)!.data.slice(16, 20)),
          [...got]
            .filter(([n]) => n !== out)
            .map(([n, t]) => [n, Array.from(t.data.slice(4, 8)), Array.from(want.get(n)!.data.slice(4, 8))]),
        );
        expect(mismatches(got, want, 1e-5, 1e-4)).toEqual([]);
      });

  it("native operators where the cell is one", () => {
    // Which cells are ONNX operators is a fact about their equations (see examples/cells/).
    expect(Object.fromEntries([...ops].filter(([, op]) => op !== "Scan"))).toEqual({
      rnn: "RNN",
      lstm: "LSTM",
      peephole_lstm: "LSTM",
      onnx_lstm: "LSTM",
      gru: "GRU",
      gru_cho: "GRU",
      lstm_niaf: "LSTM",
      lstm_noaf: "LSTM",
    });
    console.log(
      `ONNX ops: ${JSON.stringify(Object.fromEntries(ops))}; largest |ORT - cellc| = ${worst.diff} at ${worst.where}`,
    );
  });

  it("parameters as graph inputs; states from their declared values and full lengths without those inputs", async () => {
    const c = cells.find((k) => k.name === "ugrnn")!;
    const { model, x } = setup(c.cell, CONFIGS[0], "f32");
    const exp = exportOnnx(c.cell.ir, new Model(c.cell, { dims: { D: 3, H: 4 }, prefixed: true }), {
      weights: false,
      sequenceLens: false,
      initialStates: false,
    });
    const session = await ort!.InferenceSession.create(exp.bytes);
    expect([...session.inputNames].sort()).toEqual(["X", "l0.Wc", "l0.Wg", "l0.bc", "l0.bg"]);
    const feeds: Record<string, InstanceType<Ort["Tensor"]>> = {
      X: new ort!.Tensor("float32", x.data as Float32Array, x.shape),
    };
    for (const [n, t] of model.params) feeds[n] = new ort!.Tensor("float32", t.data as Float32Array, t.shape);
    const res = await session.run(feeds);
    const ref = model.forward({ x });
    const got = new Map([["h", tensor("f32", [T, B, 4], res.Y!.data as Float32Array)]]);
    expect(mismatches(got, new Map([["h", ref.outputs.get("h")!]]), 1e-5, 1e-4)).toEqual([]);
  });

  it("cellc compile --target onnx", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "cellc-onnx-")), "lstm.onnx");
    const params = "examples/data/lstm.params.safetensors";
    const r = spawnSync(
      process.execPath,
      [
        "bin/cellc.js",
        "compile",
        "examples/cells/lstm.cell",
        "--target",
        "onnx",
        "--out",
        out,
        "--params",
        params,
      ],
      { encoding: "utf8" },
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain("(ONNX LSTM)");
    const inputs = readSafetensors(readFileSync("examples/data/lstm.inputs.safetensors"));
    const x = inputs.get("x")!;
    const [Tx, Bx] = x.shape as [number, number];
    const cell = compileCell(readFileSync("examples/cells/lstm.cell", "utf8"), {
      file: "lstm.cell",
      host: nodeHost,
    });
    const model = new Model(cell, { params: readSafetensors(readFileSync(params)) });
    const ref = model.forward({ x });
    const session = await ort!.InferenceSession.create(readFileSync(out));
    const res = await session.run({
      X: new ort!.Tensor("float32", Float32Array.from(x.data), x.shape),
      sequence_lens: new ort!.Tensor("int32", new Int32Array(Bx).fill(Tx), [Bx]),
      initial_h: new ort!.Tensor("float32", new Float32Array(Bx * res0(ref)), [1, Bx, res0(ref)]),
      initial_c: new ort!.Tensor("float32", new Float32Array(Bx * res0(ref)), [1, Bx, res0(ref)]),
    });
    const got = new Map([["h", tensor("f32", ref.outputs.get("h")!.shape, res.Y!.data as Float32Array)]]);
    expect(mismatches(got, new Map([["h", ref.outputs.get("h")!]]), 1e-5, 1e-4)).toEqual([]);
  });

  it("refuses a cell that ONNX's recurrent form cannot hold, saying why", () => {
    const src =
      "cell two { input a[D], b[D]\n state h[H]\n param W, V : [H, D]\n h' = tanh(W @ a + V @ b)\n output h' }";
    const cell = compileCell(src);
    expect(() => exportOnnx(cell.ir, new Model(cell, { dims: { D: 2, H: 2 } }))).toThrow(
      "cannot export cell 'two' to ONNX: it has 2 inputs (ONNX's recurrent form has one, X)",
    );
  });

  it("recognises an LSTM by its equations, whatever its names and order", async () => {
    const src = `cell mine {
      input u[K]
      state mem[N], out[N]
      param A, B2, C, E : [N, K]
      param Q, R, S, V : [N, N]
      param z1, z2, z3 : [N]
      keep = sigmoid(z2 + R @ out + B2 @ u)
      wr = sigmoid(A @ u + Q @ out + z1)
      cand = tanh(C @ u + S @ out)
      show = sigmoid(E @ u + V @ out + z3)
      mem' = wr * cand + keep * mem
      out' = show * tanh(mem')
      output out'
    }`;
    const cell = compileCell(src);
    const model = new Model(cell, { dims: { K: 3, N: 4 }, seed: 3 });
    const exp = exportOnnx(cell.ir, model, { sequenceLens: false, initialStates: false });
    expect(exp.op).toBe("LSTM");
    const x = tensor(
      "f32",
      [T, B, 3],
      Float32Array.from({ length: T * B * 3 }, (_, i) => Math.sin(i)),
    );
    const session = await ort!.InferenceSession.create(exp.bytes);
    const res = await session.run({ X: new ort!.Tensor("float32", x.data as Float32Array, x.shape) });
    const ref = model.forward({ u: x });
    const got = new Map([["out", tensor("f32", [T, B, 4], res.Y!.data as Float32Array)]]);
    expect(mismatches(got, new Map([["out", ref.outputs.get("out")!]]), 1e-5, 1e-4)).toEqual([]);
  });
});

const res0 = (r: { finalStates: Map<string, Tensor> }) => r.finalStates.get("h")!.shape[1]!;
