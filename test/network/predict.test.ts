// A run folder is the trained network: `cellc predict DIR` applies it (embedding, layers, directions,
// readout) to new inputs, and equals an independent recomputation in PyTorch (nn.GRU / nn.LSTM,
// nn.Embedding, an affine readout) from the run's params.safetensors alone (predict_torch.py).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { main } from "../../cli/main.js";
import { loadNetwork } from "../../cli/rundir.js";
import { Rng } from "../../runtime/init.js";
import { readSafetensors, writeSafetensors } from "../../runtime/safetensors.js";
import type { Tensor } from "../../runtime/tensor.js";
import { hasTorch, PYTHON } from "../export/python.js";

const tmp = mkdtempSync(join(tmpdir(), "cellc-predict-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function cellc(...argv: string[]) {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

function inputs(file: string, x: Tensor, name: string, lens?: number[]): string {
  const path = join(tmp, file);
  const ts = new Map<string, Tensor>([[name, x]]);
  if (lens) ts.set("seq_lens", { dtype: "i32", shape: [lens.length], data: Int32Array.from(lens) });
  writeFileSync(path, writeSafetensors(ts));
  return path;
}

const reals = (T: number, B: number, D: number, seed: number): Tensor => {
  const r = new Rng(seed);
  return { dtype: "f32", shape: [T, B, D], data: Float32Array.from({ length: T * B * D }, () => r.next()) };
};

/** y from PyTorch for the run folder's weights, on the same inputs. */
function torchY(kind: string, dir: string, inputsFile: string): { y: number[]; shape: number[] } {
  const out = join(tmp, `${kind}.torch.json`);
  execFileSync(PYTHON, [
    "test/network/predict_torch.py",
    kind,
    join(dir, "params.safetensors"),
    inputsFile,
    out,
  ]);
  return JSON.parse(readFileSync(out, "utf8")) as { y: number[]; shape: number[] };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function predict(dir: string, x: string, ...extra: string[]) {
  const y = join(tmp, `y-${Math.random().toString(36).slice(2)}.safetensors`);
  const r = await cellc("predict", dir, "--inputs", x, "--out", y, ...extra);
  expect(r.code, r.err).toBe(0);
  return readSafetensors(readFileSync(y));
}

describe.skipIf(!hasTorch)("cellc predict equals PyTorch on the run's weights", () => {
  test("a GRU trained on adding (last step), f32 on the default backend and f64", async () => {
    const R = join(tmp, "gru");
    const t = await cellc(
      "train",
      "examples/cells/gru.cell",
      "--task",
      "adding",
      "--T",
      "30",
      "--steps",
      "40",
      "--out",
      R,
      "--quiet",
    );
    expect(t.code, t.err).toBe(0);
    const x = inputs("gru.x.safetensors", reals(30, 5, 2, 1), "x", [30, 7, 1, 30, 12]);
    const want = torchY("gru", R, x);
    const got = await predict(R, x);
    expect(got.get("y")!.shape).toEqual([5, 1]);
    expect(want.shape).toEqual([5, 1]);
    expect(maxDiff(got.get("y")!.data, want.y)).toBeLessThan(1e-5);
    expect(maxDiff((await predict(R, x, "--f64")).get("y")!.data, want.y)).toBeLessThan(1e-10);
    // The library: loadNetwork(dir).predict gives the same.
    const net = loadNetwork(R, { dtype: "f64" });
    const xs = readSafetensors(readFileSync(x));
    const y = await net.predict(new Map([["x", xs.get("x")!]]), xs.get("seq_lens")!.data as Int32Array);
    expect(maxDiff(y.data, want.y)).toBeLessThan(1e-10);
  }, 120_000);

  test("a bidirectional 2-layer GRU with seq_lens", async () => {
    const R = join(tmp, "bigru");
    const t = await cellc(
      "train",
      "examples/cells/gru.cell",
      "--task",
      "adding",
      "--T",
      "12",
      "--steps",
      "5",
      "--layers",
      "2",
      "--bidirectional",
      "--dims",
      "H=6",
      "--out",
      R,
      "--quiet",
    );
    expect(t.code, t.err).toBe(0);
    const x = inputs("bigru.x.safetensors", reals(12, 4, 2, 2), "x", [12, 3, 9, 1]);
    const want = torchY("gru-bi2", R, x);
    expect(maxDiff((await predict(R, x, "--f64")).get("y")!.data, want.y)).toBeLessThan(1e-10);
    expect(maxDiff((await predict(R, x)).get("y")!.data, want.y)).toBeLessThan(1e-5);
  }, 120_000);

  test("the character tagger: token ids through the embedding, 2 LSTM layers, every step", async () => {
    const R = join(tmp, "tagger");
    const t = await cellc(
      "train",
      "examples/models/tagger.cell",
      "--task",
      "chars",
      "--T",
      "16",
      "--steps",
      "3",
      "--batch",
      "4",
      "--dims",
      "D=8,H=12",
      "--out",
      R,
      "--quiet",
    );
    expect(t.code, t.err).toBe(0);
    const V = JSON.parse(readFileSync(join(R, "network.json"), "utf8")).input.size as number;
    const r = new Rng(3);
    const ids: Tensor = {
      dtype: "i32",
      shape: [10, 3],
      data: Int32Array.from({ length: 30 }, () => Math.floor(r.next() * V)),
    };
    const x = inputs("tagger.x.safetensors", ids, "tokens", [10, 4, 7]);
    const want = torchY("lstm-tagger2", R, x);
    const got = await predict(R, x, "--f64");
    expect(got.get("y")!.shape).toEqual([10, 3, V]);
    expect(maxDiff(got.get("y")!.data, want.y)).toBeLessThan(1e-10);
    // Class targets: probabilities that sum to 1 and the most likely class; -1 past a row's length.
    const probs = got.get("probs")!.data;
    const argmax = got.get("argmax")!.data;
    let sum = 0;
    for (let k = 0; k < V; k++) sum += probs[k]!;
    expect(sum).toBeCloseTo(1, 5);
    expect(argmax[1 + 3 * 5]).toBe(-1); // row 1 (length 4) at step 5
    expect(argmax[0]).toBeGreaterThanOrEqual(0);
  }, 120_000);
});

describe("predict refuses what it cannot use", () => {
  test("a folder without a network, an input of another name", async () => {
    const r = await cellc("predict", tmp, "--inputs", "x.safetensors", "--out", join(tmp, "y.safetensors"));
    expect([r.code, r.err]).toEqual([1, expect.stringMatching(/holds no trained network \(network\.json\)/)]);
    const R = join(tmp, "small");
    await cellc(
      "train",
      "examples/cells/rnn.cell",
      "--task",
      "adding",
      "--T",
      "5",
      "--steps",
      "2",
      "--out",
      R,
      "--quiet",
    );
    const x = inputs("wrong.safetensors", reals(5, 2, 2, 1), "u");
    const bad = await cellc("predict", R, "--inputs", x, "--out", join(tmp, "y.safetensors"));
    expect([bad.code, bad.err]).toEqual([
      1,
      expect.stringMatching(/unexpected tensor 'u' .* takes 'x' \(\[T, B, 2\]\)/),
    ]);
  });
});
