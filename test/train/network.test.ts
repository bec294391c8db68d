// The network's loss gradients (readout, losses, masks, embedding, layers, directions) against central
// finite differences in f64; truncated BPTT's loss against the whole sequence's.
import { describe, expect, test } from "vitest";
import { Rng } from "../../runtime/init.js";
import type { Tensor } from "../../runtime/tensor.js";
import { Network } from "../../workbench/train/network.js";
import type { Batch, LossKind } from "../../workbench/train/types.js";
import { networkArtifact } from "../helpers.js";

const gru: string = "examples/cells/gru.cell";
const lstm = "examples/cells/lstm.cell";
const T = 4;
const B = 3;
const D = 3;
const H = 3;
const O = 2;
const V = 5;

function makeBatch(loss: LossKind, on: "last" | "every", tokens: boolean, lens?: number[]): Batch {
  const r = new Rng(7);
  const x: Tensor = tokens
    ? {
        dtype: "i32",
        shape: [T, B],
        data: Int32Array.from({ length: T * B }, () => Math.floor(r.next() * V)),
      }
    : { dtype: "f64", shape: [T, B, D], data: Float64Array.from({ length: T * B * D }, () => r.normal()) };
  const rows = on === "last" ? [B] : [T, B];
  const n = rows.reduce((a, b) => a * b, 1);
  const target: Tensor =
    loss === "cross_entropy"
      ? { dtype: "i32", shape: rows, data: Int32Array.from({ length: n }, () => Math.floor(r.next() * O)) }
      : {
          dtype: "f64",
          shape: [...rows, O],
          data: Float64Array.from({ length: n * O }, () => (loss === "mse" ? r.normal() : r.next())),
        };
  return { inputs: new Map([["x", x]]), target, ...(lens ? { seqLens: Int32Array.from(lens) } : {}) };
}

interface Variant {
  loss: LossKind;
  on: "last" | "every";
  tokens?: boolean;
  lens?: number[];
  layers?: number;
  bidirectional?: boolean;
  cell?: typeof gru;
}

const variants: Variant[] = [
  { loss: "mse", on: "last" },
  { loss: "mse", on: "every", lens: [4, 2, 0] },
  { loss: "cross_entropy", on: "last", lens: [1, 4, 3] },
  { loss: "cross_entropy", on: "every", tokens: true },
  { loss: "binary_cross_entropy", on: "every", lens: [3, 4, 1] },
  { loss: "binary_cross_entropy", on: "last", tokens: true, lens: [2, 0, 4] },
  { loss: "mse", on: "last", layers: 2, cell: lstm },
  { loss: "cross_entropy", on: "every", bidirectional: true, lens: [4, 3, 2] },
];

function network(v: Variant): Network {
  const data = {
    name: "the test data",
    inputKind: v.tokens ? ("tokens" as const) : ("real" as const),
    inputSize: v.tokens ? V : D,
    outputSize: O,
    on: v.on,
    loss: v.loss,
  };
  const artifact = networkArtifact(v.cell ?? gru, data, {
    dims: { D, H },
    layers: v.layers,
    bidirectional: v.bidirectional,
  });
  return new Network(artifact, { dtype: "f64", seed: 3 });
}

describe("loss gradients match central differences (f64)", () => {
  for (const v of variants)
    test(
      JSON.stringify(v, (k, x: unknown) => (k === "cell" ? "lstm" : x)),
      async () => {
        const net = network(v);
        const batch = makeBatch(v.loss, v.on, !!v.tokens, v.lens);
        const { loss, grads } = await net.loss(batch, { grads: true });
        expect(Number.isFinite(loss)).toBe(true);
        expect([...grads!.keys()].sort()).toEqual([...net.params.keys()].sort());
        const eps = 1e-6;
        let checked = 0;
        for (const [name, p] of net.params) {
          const g = grads!.get(name)!.data;
          // Every entry of small tensors, a spread of the larger ones.
          const step = Math.max(1, Math.floor(p.data.length / 6));
          for (let i = 0; i < p.data.length; i += step) {
            const old = p.data[i]!;
            p.data[i] = old + eps;
            const up = (await net.loss(batch)).loss;
            p.data[i] = old - eps;
            const down = (await net.loss(batch)).loss;
            p.data[i] = old;
            const fd = (up - down) / (2 * eps);
            expect(Math.abs(g[i]! - fd), `${name}[${i}]: ${g[i]} vs ${fd}`).toBeLessThan(
              1e-7 + 1e-5 * Math.abs(fd),
            );
            checked++;
          }
        }
        expect(checked).toBeGreaterThan(20);
      },
    );
});

describe("truncated BPTT", () => {
  test("chunks carry the states: the loss is the whole sequence's, the gradient is truncated", async () => {
    for (const v of [variants[1]!, variants[2]!, variants[3]!]) {
      const net = network(v);
      const batch = makeBatch(v.loss, v.on, !!v.tokens, v.lens);
      const full = await net.loss(batch, { grads: true });
      const chunked = await net.loss(batch, { grads: true, tbptt: 2 });
      const one = await net.loss(batch, { grads: true, tbptt: T });
      expect(Math.abs(chunked.loss - full.loss)).toBeLessThan(1e-12);
      expect(one.grads!.get("Ur")!.data).toEqual(full.grads!.get("Ur")!.data);
      const a = chunked.grads!.get("Ur")!.data;
      const b = full.grads!.get("Ur")!.data;
      expect(a.some((x, i) => Math.abs(x - b[i]!) > 1e-9)).toBe(true);
    }
  });

  test("refused for a bidirectional cell", async () => {
    const net = network(variants[7]!);
    await expect(net.loss(makeBatch("cross_entropy", "every", false), { tbptt: 2 })).rejects.toThrow(
      /bidirectional/,
    );
  });
});

describe("predict", () => {
  test("the readout the loss is computed from: last valid step, or every step", async () => {
    for (const v of [variants[2]!, variants[1]!]) {
      const net = network({ ...v, loss: "mse" });
      const batch = makeBatch("mse", v.on, false, v.lens);
      const y = await net.predict(batch.inputs, batch.seqLens);
      expect(y.shape).toEqual(v.on === "last" ? [B, O] : [T, B, O]);
      // MSE by hand over the valid rows.
      let sum = 0;
      let n = 0;
      const len = (b: number) => batch.seqLens?.[b] ?? T;
      for (let r = 0; r < y.data.length / O; r++) {
        const b = r % B;
        const t = Math.floor(r / B);
        if (v.on === "last" ? len(b) === 0 : t >= len(b)) continue;
        for (let k = 0; k < O; k++) sum += (y.data[r * O + k]! - batch.target.data[r * O + k]!) ** 2;
        n += O;
      }
      expect((await net.loss(batch)).loss).toBeCloseTo(sum / n, 12);
    }
  });
});

describe("accuracy", () => {
  test("class targets: the fraction of counted rows whose largest readout (from predict) is the target", async () => {
    // Random weights and targets: 2 of 3, 2 of 9 and 4 of 8 counted rows are right, so neither is trivial.
    for (const v of [variants[2]!, variants[7]!, { ...variants[3]!, lens: [4, 1, 3] }]) {
      const net = network(v);
      const batch = makeBatch(v.loss, v.on, !!v.tokens, v.lens);
      const y = await net.predict(batch.inputs, batch.seqLens);
      const len = (b: number) => batch.seqLens?.[b] ?? T;
      let right = 0;
      let counted = 0;
      for (let r = 0; r < y.data.length / O; r++) {
        const [b, t] = [r % B, Math.floor(r / B)];
        if (v.on === "last" ? len(b) === 0 : t >= len(b)) continue;
        const best = y.data[r * O + 1]! > y.data[r * O]! ? 1 : 0;
        counted++;
        if (best === batch.target.data[r]) right++;
      }
      expect(counted).toBeGreaterThan(2);
      const r = await net.loss(batch, { accuracy: true });
      expect(r.accuracy).toBe(right / counted);
      expect((await net.loss(batch)).accuracy).toBeUndefined(); // only when asked
      // With truncated BPTT, counted over all the chunks.
      if (!v.bidirectional)
        expect((await net.loss(batch, { accuracy: true, tbptt: 3 })).accuracy).toBe(right / counted);
    }
  });

  test("other losses have none, asked or not", async () => {
    const net = network(variants[0]!);
    expect((await net.loss(makeBatch("mse", "last", false), { accuracy: true })).accuracy).toBeUndefined();
  });
});

describe("bad batches are named", () => {
  test("target shape, class range, token range", async () => {
    const net = network({ loss: "cross_entropy", on: "every" });
    const b = makeBatch("cross_entropy", "every", false);
    await expect(
      net.loss({ ...b, target: { dtype: "i32", shape: [B], data: new Int32Array(B) } }),
    ).rejects.toThrow(/target has shape \[3\]; expected \[T, B\] = \[4, 3\]/);
    await expect(
      net.loss({ ...b, target: { dtype: "i32", shape: [T, B], data: new Int32Array(T * B).fill(O) } }),
    ).rejects.toThrow(/target holds class 2 at row 0: classes are 0 to 1/);
    const emb = network({ loss: "mse", on: "last", tokens: true });
    const tb = makeBatch("mse", "last", true);
    (tb.inputs.get("x")!.data as Int32Array)[5] = V;
    await expect(emb.loss(tb)).rejects.toThrow(/token 5 at index 5: the vocabulary is 0 to 4/);
  });
});
