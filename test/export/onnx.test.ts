import { describe, expect, it } from "vitest";
import { exportOnnx } from "../../compiler/export/onnx.js";
import { recognise } from "../../compiler/export/recognise.js";
import { ModelProto } from "../../compiler/export/proto.js";
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
 * backend on the same parameters, in float32: on X alone (full lengths, the states' declared initial
 * values), and with sequence lengths and initial states; as ONNX's own operator where the cell is one, and
 * as a Scan over its step.
 */
type Ort = typeof import("onnxruntime-node");
let ort: Ort | undefined;
try {
  ort = await import("onnxruntime-node");
} catch (e) {
  if (process.env.CI) throw new Error(`onnxruntime-node is required in CI: ${(e as Error).message}`);
}
type OrtTensor = InstanceType<Ort["Tensor"]>;
/** ONNX Runtime warns at every initialiser that is also an input: the optional inputs are exactly that. */
const QUIET = { logSeverityLevel: 3 as const };

const cells = builtinCells();
export const worst = { diff: 0, where: "" };
const ops = new Map<string, string>();

/**
 * The model with its optional inputs' defaults removed: the same graph with `sequence_lens` and
 * `initial_<state>` as plain inputs. onnxruntime-node feeds only a model's required inputs, so this is how a
 * test here feeds them (ONNX Runtime's C, C++ and Python APIs feed an input that has a default directly).
 */
export function requireOptionalInputs(bytes: Uint8Array): Uint8Array {
  const m = ModelProto.decode(bytes) as unknown as { graph: { initializer: { name: string }[] } };
  const optional = (n: string) => n === "sequence_lens" || n.startsWith("initial_");
  m.graph.initializer = m.graph.initializer.filter((t) => !optional(t.name));
  return ModelProto.encode(m as never).finish();
}

/** Y [T, dirs, B, H] and Y_<state> [dirs, B, n] as cellc's [T, B, dirs * H] and per-direction states. */
function fromOnnx(
  res: Record<string, OrtTensor>,
  c: (typeof cells)[number],
  model: Model,
  layers: number,
  dirs: number,
): Map<string, Tensor> {
  const got = new Map<string, Tensor>();
  const y = res.Y!;
  const H = y.dims[3]!;
  const yData = y.data as Float32Array;
  const yFlat = new Float32Array(T * B * dirs * H);
  for (let t = 0; t < T; t++)
    for (let d = 0; d < dirs; d++)
      for (let b = 0; b < B; b++)
        for (let h = 0; h < H; h++)
          yFlat[((t * B + b) * dirs + d) * H + h] = yData[((t * dirs + d) * B + b) * H + h]!;
  got.set(c.cell.ir.outputs[0]!.name, tensor("f32", [T, B, dirs * H], yFlat));
  for (const s of c.cell.ir.states)
    for (let d = 0; d < dirs; d++) {
      const r = res[`Y_${s.name}`]!;
      const n = r.dims[2]!;
      const data = (r.data as Float32Array).slice(d * B * n, (d + 1) * B * n);
      got.set(model.name(layers - 1, d, s.name), tensor("f32", [B, n], data));
    }
  return got;
}

function wanted(c: (typeof cells)[number], ref: ReturnType<Model["forward"]>, model: Model, layers: number) {
  const want = new Map<string, Tensor>();
  const out = c.cell.ir.outputs[0]!.name;
  want.set(out, ref.outputs.get(out)!);
  for (const s of c.cell.ir.states)
    for (const [n, t] of ref.finalStates)
      if (n === model.name(layers - 1, 0, s.name) || n === model.name(layers - 1, 1, s.name)) want.set(n, t);
  return want;
}

function track(got: Map<string, Tensor>, want: Map<string, Tensor>, where: string) {
  for (const [n, t] of want) {
    const a = got.get(n)!;
    for (let i = 0; i < t.data.length; i++) {
      const diff = Math.abs(a.data[i]! - t.data[i]!);
      if (diff > worst.diff) Object.assign(worst, { diff, where: `${where} ${n}` });
    }
  }
}

describe.skipIf(!ort)("ONNX export in ONNX Runtime", () => {
  for (const c of cells)
    for (const native of recognise(c.cell.ir) ? [true, false] : [false])
      for (const cfg of CONFIGS)
        it(`${c.name}${native ? "" : " (Scan)"} layers=${cfg.layers}${cfg.bidirectional ? " bidirectional" : ""}`, async () => {
          const { model, x, inits } = setup(c.cell, cfg, "f32");
          const dirs = cfg.bidirectional ? 2 : 1;
          const exp = exportOnnx(c.cell.ir, model, { bidirectional: cfg.bidirectional, native });
          if (native) ops.set(c.name, exp.op);
          else expect(exp.op).toBe("Scan");
          const where = `${c.name} native=${native} ${JSON.stringify(cfg)}`;
          const X = new ort!.Tensor("float32", x.data as Float32Array, x.shape);

          // X alone: every row T steps long, the states at their declared initial values.
          const alone = await ort!.InferenceSession.create(exp.bytes, QUIET);
          expect(alone.inputNames).toEqual(["X"]);
          const ref0 = model.forward({ [c.cell.ir.inputs[0]!.name]: x });
          const got0 = fromOnnx(await alone.run({ X }), c, model, cfg.layers, dirs);
          const want0 = wanted(c, ref0, model, cfg.layers);
          track(got0, want0, where);
          expect(mismatches(got0, want0, 1e-5, 1e-4)).toEqual([]);

          // With sequence_lens and initial states.
          const given = await ort!.InferenceSession.create(requireOptionalInputs(exp.bytes), QUIET);
          const feeds: Record<string, OrtTensor> = {
            X,
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
          expect([...given.inputNames].sort()).toEqual(Object.keys(feeds).sort());
          const ref = model.forward(
            { [c.cell.ir.inputs[0]!.name]: x },
            { initialStates: inits, seqLens: LENS },
          );
          const got = fromOnnx(await given.run(feeds), c, model, cfg.layers, dirs);
          const want = wanted(c, ref, model, cfg.layers);
          track(got, want, where);
          expect(mismatches(got, want, 1e-5, 1e-4)).toEqual([]);
          // The inputs matter: another length or initial state gives another result.
          expect(mismatches(got0, want, 1e-5, 1e-4)).not.toEqual([]);
        });

  it("native operators where the cell is one", () => {
    // Which cells are ONNX operators is a fact about their equations (see examples/cells/).
    expect(Object.fromEntries(ops)).toEqual({
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

  it("ONNX Runtime keeps the optional inputs' defaults as inputs: it does not fold them into constants", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cellc-onnx-opt-"));
    for (const [name, native] of [
      ["lstm", true],
      ["ugrnn", false],
    ] as const) {
      const c = cells.find((k) => k.name === name)!;
      const { model } = setup(c.cell, CONFIGS[2], "f32");
      const exp = exportOnnx(c.cell.ir, model, { bidirectional: true, native });
      const saved = join(dir, `${name}.optimised.onnx`);
      await ort!.InferenceSession.create(exp.bytes, {
        ...QUIET,
        graphOptimizationLevel: "all",
        optimizedModelFilePath: saved,
      });
      type G = {
        input: { name: string }[];
        initializer: { name: string }[];
        node: { input: string[]; attribute: { g?: G }[] }[];
      };
      const g = (ModelProto.decode(readFileSync(saved)) as unknown as { graph: G }).graph;
      const read = (graph: G): string[] =>
        graph.node.flatMap((n) => [...n.input, ...n.attribute.flatMap((a) => (a.g ? read(a.g) : []))]);
      const used = new Set(read(g));
      for (const n of ["sequence_lens", ...c.cell.ir.states.map((s) => `initial_${s.name}`)]) {
        expect(g.input.map((i) => i.name)).toContain(n);
        expect(g.initializer.map((i) => i.name)).toContain(n);
        expect(used.has(n), `${name}: nothing reads ${n} after optimisation`).toBe(true);
      }
    }
  });

  it("parameters as graph inputs; no sequence_lens or initial states at all", async () => {
    const c = cells.find((k) => k.name === "ugrnn")!;
    const { model, x } = setup(c.cell, CONFIGS[0], "f32");
    const exp = exportOnnx(c.cell.ir, new Model(c.cell, { dims: { D: 3, H: 4 }, prefixed: true }), {
      weights: false,
      sequenceLens: "none",
      initialStates: "none",
    });
    const session = await ort!.InferenceSession.create(exp.bytes);
    expect([...session.inputNames].sort()).toEqual(["X", "l0.Wc", "l0.Wg", "l0.bc", "l0.bg"]);
    const feeds: Record<string, OrtTensor> = {
      X: new ort!.Tensor("float32", x.data as Float32Array, x.shape),
    };
    for (const [n, t] of model.params) feeds[n] = new ort!.Tensor("float32", t.data as Float32Array, t.shape);
    const res = await session.run(feeds);
    const ref = model.forward({ x });
    const got = new Map([["h", tensor("f32", [T, B, 4], res.Y!.data as Float32Array)]]);
    expect(mismatches(got, new Map([["h", ref.outputs.get("h")!]]), 1e-5, 1e-4)).toEqual([]);
  });

  it("cellc compile --target onnx: X alone by default; --onnx-inputs required", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cellc-onnx-"));
    const params = "examples/data/lstm.params.safetensors";
    const compile = (out: string, ...more: string[]) =>
      spawnSync(
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
          ...more,
        ],
        { encoding: "utf8" },
      );
    const r = compile(join(dir, "lstm.onnx"));
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain("(ONNX LSTM)");
    expect(r.stdout).toContain("sequence_lens, initial_h, initial_c: optional inputs");
    const req = compile(join(dir, "lstm.req.onnx"), "--onnx-inputs", "required");
    expect(req.stderr).toBe("");
    const inputs = readSafetensors(readFileSync("examples/data/lstm.inputs.safetensors"));
    const x = inputs.get("x")!;
    const [Tx, Bx] = x.shape as [number, number];
    const cell = compileCell(readFileSync("examples/cells/lstm.cell", "utf8"), {
      file: "lstm.cell",
      host: nodeHost,
    });
    const model = new Model(cell, { params: readSafetensors(readFileSync(params)) });
    const H = model.sizes[0]!.H!;
    const X = new ort!.Tensor("float32", Float32Array.from(x.data), x.shape);
    const lens = Int32Array.from({ length: Bx }, (_, b) => Tx - (b % Tx));
    const h0 = Float32Array.from({ length: Bx * H }, (_, i) => Math.cos(i));
    const check = (res: Record<string, OrtTensor>, ref: ReturnType<Model["forward"]>) => {
      const got = new Map([["h", tensor("f32", ref.outputs.get("h")!.shape, res.Y!.data as Float32Array)]]);
      expect(mismatches(got, new Map([["h", ref.outputs.get("h")!]]), 1e-5, 1e-4)).toEqual([]);
    };
    const alone = await ort!.InferenceSession.create(readFileSync(join(dir, "lstm.onnx")), QUIET);
    check(await alone.run({ X }), model.forward({ x }));
    const s = await ort!.InferenceSession.create(readFileSync(join(dir, "lstm.req.onnx")));
    expect([...s.inputNames].sort()).toEqual(["X", "initial_c", "initial_h", "sequence_lens"]);
    const res = await s.run({
      X,
      sequence_lens: new ort!.Tensor("int32", lens, [Bx]),
      initial_h: new ort!.Tensor("float32", h0, [1, Bx, H]),
      initial_c: new ort!.Tensor("float32", new Float32Array(Bx * H), [1, Bx, H]),
    });
    check(res, model.forward({ x }, { seqLens: lens, initialStates: { h: tensor("f32", [Bx, H], h0) } }));
  });

  it("parameters named as the interface (X, Y_h, initial_h, sequence_lens) keep out of its way", async () => {
    const file = "test/fuzz/corpus/export-names.cell";
    const cell = compileCell(readFileSync(file, "utf8"), { file, cell: "interface_names", host: nodeHost });
    const model = new Model(cell, { dims: { D: 3, H: 4 }, seed: 5 });
    const exp = exportOnnx(cell.ir, model);
    expect(Object.fromEntries(exp.renamed)).toEqual({
      X: "param.X",
      Y_h: "param.Y_h",
      sequence_lens: "param.sequence_lens",
      initial_h: "param.initial_h",
      Y_initial_c: "param.Y_initial_c",
      initial_initial_c: "param.initial_initial_c",
    });
    const x = tensor(
      "f32",
      [T, B, 3],
      Float32Array.from({ length: T * B * 3 }, (_, i) => Math.sin(i)),
    );
    const X = new ort!.Tensor("float32", x.data as Float32Array, x.shape);
    const check = (res: Record<string, OrtTensor>, ref: ReturnType<Model["forward"]>) => {
      const got = new Map([
        ["h", tensor("f32", [T, B, 4], res.Y!.data as Float32Array)],
        ["initial_c", tensor("f32", [B, 4], res.Y_initial_c!.data as Float32Array)],
      ]);
      const want = new Map([
        ["h", ref.outputs.get("h")!],
        ["initial_c", ref.finalStates.get("initial_c")!],
      ]);
      expect(mismatches(got, want, 1e-5, 1e-4)).toEqual([]);
    };
    const alone = await ort!.InferenceSession.create(exp.bytes, QUIET);
    check(await alone.run({ X }), model.forward({ Y: x }));
    const given = await ort!.InferenceSession.create(requireOptionalInputs(exp.bytes), QUIET);
    const h0 = Float32Array.from({ length: B * 4 }, (_, i) => Math.cos(i));
    const res = await given.run({
      X,
      sequence_lens: new ort!.Tensor("int32", Int32Array.from(LENS), [B]),
      initial_h: new ort!.Tensor("float32", h0, [1, B, 4]),
      initial_initial_c: new ort!.Tensor(
        "float32",
        h0.map((v) => -v),
        [1, B, 4],
      ),
    });
    check(
      res,
      model.forward(
        { Y: x },
        {
          seqLens: LENS,
          initialStates: {
            h: tensor("f32", [B, 4], h0),
            initial_c: tensor(
              "f32",
              [B, 4],
              h0.map((v) => -v),
            ),
          },
        },
      ),
    );
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
    const exp = exportOnnx(cell.ir, model, { sequenceLens: "none", initialStates: "none" });
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
