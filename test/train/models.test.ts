// Declared models train whatever size their readout reads: every shipped model file trains through
// `cellc train`, and the gradients of readouts over `2*H` (bidirectional), `H + D` (an output that carries
// its input along) and a constant size (4, stacked and bidirectional) match central differences in f64.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { main } from "../../cli/main.js";
import { Rng } from "../../runtime/init.js";
import type { Tensor } from "../../runtime/tensor.js";
import { Network } from "../../workbench/train/network.js";
import type { Batch } from "../../workbench/train/types.js";
import { renderAll } from "../../compiler/diag/diagnostic.js";
import { checkSource, jsonl, networkArtifact } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "cellc-models-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function cellc(...argv: string[]) {
  let err = "";
  const code = await main(argv, { out: () => {}, err: (s) => void (err += s) });
  return { code, err };
}

/** A task each shipped model fits, and the sizes it needs. */
const TASKS: Record<string, string[]> = {
  "adding.cell": ["--task", "adding", "--T", "6", "--dims", "H=4"],
  "bigru.cell": ["--task", "copy", "--T", "4", "--dims", "H=4,K=3"],
  "tagger.cell": ["--task", "chars", "--T", "8", "--dims", "H=4,D=3"],
};

describe("every model in examples/models trains", () => {
  const files = readdirSync("examples/models").filter((f) => f.endsWith(".cell"));
  test("each has a task here", () => expect(files.filter((f) => !TASKS[f])).toEqual([]));
  for (const f of files)
    test(f, async () => {
      const out = join(tmp, f);
      const r = await cellc("train", `examples/models/${f}`, ...TASKS[f]!, "--steps", "4", "--batch", "4", "--quiet", "--backend", "js", "--out", out); // prettier-ignore
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      const m = jsonl(join(out, "metrics.jsonl"));
      expect(m.filter((x) => x.split === "train").length).toBe(4);
      for (const x of m) expect(Number.isFinite(x.loss)).toBe(true);
    });
});

const CAT = `cell cat {
  input x[D]
  state h[H]
  param W : [H, D]
  param U : [H, H]
  h' = tanh(W @ x + U @ h)
  o = [h', x]
  output o
}
`;
const FOUR = `cell four {
  input x[D]
  state s[4]
  param W : [4, D]
  param U : [4, 4]
  s' = tanh(W @ x + U @ s)
  output s'
}
`;
const GRU = `import "examples/cells/gru.cell"\n`;

/** A model over `cellLine` reading out `inputSize` features; classes at every step. */
const model = (cellLine: string, read: string, inputSize: string) => `model m {
  input x[D]
  cell ${cellLine}
  param Wk : [K, ${inputSize}]
  param Wy : [O, K]
  param by : [O] = 0
  readout y = Wy @ tanh(Wk @ ${read}) + by
  loss cross_entropy(y, target)
}
`;

const T = 4;
const B = 3;
const D = 3;
const O = 3;

function batch(): Batch {
  const r = new Rng(11);
  const x: Tensor = {
    dtype: "f64",
    shape: [T, B, D],
    data: Float64Array.from({ length: T * B * D }, () => r.normal()),
  };
  const target: Tensor = {
    dtype: "i32",
    shape: [T, B],
    data: Int32Array.from({ length: T * B }, () => Math.floor(r.next() * O)),
  };
  return { inputs: new Map([["x", x]]), target, seqLens: Int32Array.of(4, 2, 3) };
}

describe("readouts of 2*H, H + D and a constant size: gradients match central differences (f64)", () => {
  const cases: [string, string][] = [
    ["bidirectional GRU, [K, 2*H]", GRU + model("gru, bidirectional", "h", "2*H")],
    ["[h', x], [K, H + D]", CAT + model("cat", "o", "H + D")],
    ["[h', x] bidirectional, [K, 2*H + 2*D]", CAT + model("cat, bidirectional", "o", "2*H + 2*D")],
    ["state [4], two layers, [K, 4]", FOUR + model("four, layers 2", "s", "4")],
    ["state [4] bidirectional, [K, 8]", FOUR + model("four, bidirectional", "s", "8")],
  ];
  for (const [name, source] of cases)
    test(name, async () => {
      const data = { name: "t", inputKind: "real" as const, inputSize: D, outputSize: O, on: "every" as const, loss: "cross_entropy" as const }; // prettier-ignore
      const artifact = networkArtifact("models.cell", data, { source, dims: { H: 3, K: 2 } });
      const net = new Network(artifact, { dtype: "f64", seed: 5 });
      const b = batch();
      const { loss, grads } = await net.loss(b, { grads: true });
      expect(Number.isFinite(loss)).toBe(true);
      const eps = 1e-6;
      let checked = 0;
      for (const [n, p] of net.params) {
        const g = grads!.get(n)!.data;
        const step = Math.max(1, Math.floor(p.data.length / 5));
        for (let i = 0; i < p.data.length; i += step) {
          const old = p.data[i]!;
          p.data[i] = old + eps;
          const up = (await net.loss(b)).loss;
          p.data[i] = old - eps;
          const down = (await net.loss(b)).loss;
          p.data[i] = old;
          const fd = (up - down) / (2 * eps);
          expect(Math.abs(g[i]! - fd), `${n}[${i}]: ${g[i]} vs ${fd}`).toBeLessThan(
            1e-7 + 1e-5 * Math.abs(fd),
          );
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(20);
    });
});

describe("a readout of the wrong size is refused by check, with the reason", () => {
  test("[K, H] over a bidirectional GRU's [2*H]", () => {
    const r = checkSource(GRU + model("gru, bidirectional", "h", "H"), "models.cell");
    expect(r.diagnostics.map((d) => d.code)).toEqual(["E041"]);
    expect(renderAll(r.diagnostics, r.program.sources)).toContain(
      "bidirectional: 'h' is both directions concatenated, [2*H]",
    );
  });
  test("[K, H] over an output of [H + D]", () => {
    const r = checkSource(CAT + model("cat", "o", "H"), "models.cell");
    expect(r.diagnostics.map((d) => d.code)).toEqual(["E041"]);
    expect(r.diagnostics[0]!.message).toMatch(/Wk \[K, H\] @ \[(H \+ D|D \+ H)\]/);
  });
});
