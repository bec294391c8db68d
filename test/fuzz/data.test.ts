// Fuzzing training data files: safetensors files of inputs, targets and lengths, generated with odd
// shapes, types and values (NaN, infinities, negative or huge ids, empty axes) and with their bytes
// flipped, go through the reader, the data source, a batch and a network's loss. Each must succeed or be a
// CellcError, in bounded time; the reproducers of the hardening issue are the corpus.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Rng } from "../../runtime/init.js";
import { readSafetensors, writeSafetensors } from "../../runtime/safetensors.js";
import { CellcError, type Tensor } from "../../runtime/tensor.js";
import { dataFromSafetensors } from "../../workbench/tasks/index.js";
import { Network } from "../../workbench/train/network.js";
import { networkArtifact } from "../helpers.js";

const SEED = Number(process.env.CELLC_FUZZ_SEED ?? 0);
const SCALE = Number(process.env.CELLC_FUZZ_SCALE ?? 1);
const TIME_LIMIT_MS = 3000;

type Files = { train: Map<string, Tensor>; eval?: Map<string, Tensor> };

/** Reads the files as `cellc train --data --eval` does, then a batch of each split and the loss of one. */
async function tryData(f: Files | { bytes: Uint8Array }): Promise<"ok" | "refused"> {
  const t0 = performance.now();
  try {
    const files = "bytes" in f ? { train: readSafetensors(f.bytes, "training data") } : f;
    const data = dataFromSafetensors(files.train, files.eval, {
      inputs: ["x"],
      files: { train: "t", eval: "e" },
    });
    const b = data.batch("train", 3, new Rng(1));
    data.batch("eval", 3, new Rng(2));
    {
      // Sizes from the data (a class id of 2^31 - 1 asks for a readout of 2^31 rows) are checked first.
      const dims: Record<string, number> = data.inputKind === "tokens" ? { H: 2, D: 2 } : { H: 2 };
      const art = networkArtifact("examples/cells/rnn.cell", data, { dims });
      const loss = (await new Network(art, {}).loss(b)).loss;
      expect(Number.isFinite(loss)).toBe(true);
    }
    return "ok";
  } catch (e) {
    if (!(e instanceof CellcError)) throw e;
    return "refused";
  } finally {
    expect(performance.now() - t0).toBeLessThan(TIME_LIMIT_MS);
  }
}

const f32 = (shape: number[], data?: number[]): Tensor => {
  const n = shape.reduce((a, b) => a * b, 1);
  return {
    dtype: "f32",
    shape,
    data: Float32Array.from(data ?? Array.from({ length: n }, (_, i) => Math.sin(i))),
  };
};
const i32 = (shape: number[], f: (i: number) => number): Tensor => {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: "i32", shape, data: Int32Array.from({ length: n }, (_, i) => f(i)) };
};

describe("fuzzing data files", () => {
  // A flipped byte can make a class id of millions: a readout that large is refused by the memory limit.
  beforeAll(() => void (process.env.CELLC_MEMORY_LIMIT = "16M"));
  afterAll(() => void delete process.env.CELLC_MEMORY_LIMIT);
  it("the corpus: the reproducers of the hardening issue", async () => {
    const N = 250_000;
    const cases: [string, Files, "ok" | "refused"][] = [
      [
        "250,000 class ids",
        {
          train: new Map([
            ["x", f32([1, N, 1])],
            ["target", i32([N], (i) => i % 7)],
          ]),
        },
        "ok",
      ],
      ["250,000 token ids", { train: new Map([["x", i32([1, N], (i) => i % 50)], ["target", i32([N], (i) => i % 3)]]) }, "ok"], // prettier-ignore
      ["NaN in the eval targets", { train: new Map([["x", f32([2, 4, 1])], ["target", f32([4, 1])]]), eval: new Map([["x", f32([2, 2, 1])], ["target", f32([2, 1], [0, NaN])]]) }, "refused"], // prettier-ignore
      ["Infinity in the inputs", { train: new Map([["x", f32([2, 4, 1], [0, 0, 0, 0, 0, 0, 0, Infinity])], ["target", f32([4, 1])]]) }, "refused"], // prettier-ignore
      ["a negative token id", { train: new Map([["x", i32([2, 4], (i) => i - 1)], ["target", i32([4], () => 0)]]) }, "refused"], // prettier-ignore
      ["a class id of 2^31 - 1", { train: new Map([["x", f32([2, 4, 1])], ["target", i32([4], () => 2 ** 31 - 1)]]) }, "refused"], // prettier-ignore
      ["a token id of 2^31 - 1", { train: new Map([["x", i32([2, 4], () => 2 ** 31 - 1)], ["target", i32([4], () => 0)]]) }, "refused"], // prettier-ignore
      [
        "no rows",
        {
          train: new Map([
            ["x", f32([2, 0, 1])],
            ["target", f32([0, 1])],
          ]),
        },
        "refused",
      ],
      ["a length past T", { train: new Map([["x", f32([2, 4, 1])], ["target", f32([4, 1])], ["seq_lens", i32([4], () => 3)]]) }, "refused"], // prettier-ignore
    ];
    for (const [what, f, want] of cases) expect(await tryData(f), what).toBe(want);
  });

  /** Mostly absent: each oddity is tried alone more often than all together. */
  const rare = <T>(a: fc.Arbitrary<T>) =>
    fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: a });
  const dim = fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 6, arbitrary: fc.integer({ min: 1, max: 4 }) }); // prettier-ignore
  const value = fc.oneof(
    { weight: 20, arbitrary: fc.double({ min: -3, max: 3, noNaN: true }) },
    { weight: 1, arbitrary: fc.constantFrom(NaN, Infinity, -Infinity, 1e38, -0) },
  );
  const id = fc.oneof(
    { weight: 20, arbitrary: fc.integer({ min: 0, max: 5 }) },
    { weight: 1, arbitrary: fc.constantFrom(-1, 2 ** 31 - 1, 1000, 100_000) },
  );
  const tensorOf = (kind: "real" | "ids", shape: number[]) =>
    kind === "real"
      ? fc.array(value, { minLength: 1, maxLength: 8 }).map((vs) => f32(shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => vs[i % vs.length]!))) // prettier-ignore
      : fc.array(id, { minLength: 1, maxLength: 8 }).map((vs) => i32(shape, (i) => vs[i % vs.length]!));
  /** A file: x of [T, N, D] reals or [T, N] ids; target of [N], [T, N] ids or [N, O], [T, N, O] reals; maybe lengths. */
  const file = fc
    .record({
      T: dim,
      N: dim,
      D: dim,
      O: dim,
      tokens: fc.boolean(),
      classes: fc.boolean(),
      every: fc.boolean(),
      lens: rare(fc.array(fc.integer({ min: -1, max: 7 }), { minLength: 0, maxLength: 6 })),
      extra: rare(fc.constantFrom("y", "x.init", "__proto__")),
      drop: rare(fc.constantFrom("x", "target")),
    })
    .chain((s) => {
      const x = s.tokens ? tensorOf("ids", [s.T, s.N]) : tensorOf("real", [s.T, s.N, s.D]);
      const lead = s.every ? [s.T, s.N] : [s.N];
      const target = s.classes ? tensorOf("ids", lead) : tensorOf("real", [...lead, s.O]);
      return fc.tuple(fc.constant(s), x, target);
    })
    .map(([s, x, target]) => {
      const m = new Map<string, Tensor>([
        ["x", x],
        ["target", target],
      ]);
      if (s.lens)
        m.set(
          "seq_lens",
          i32([s.lens.length], (i) => s.lens![i]!),
        );
      if (s.extra) m.set(s.extra, f32([1]));
      if (s.drop) m.delete(s.drop);
      return m;
    });

  it("600 generated files, with an eval file or without", async () => {
    let ok = 0;
    await fc.assert(
      fc.asyncProperty(file, rare(file), async (train, ev) => {
        if ((await tryData({ train, eval: ev })) === "ok") ok++;
      }),
      { seed: 20261203 + SEED, numRuns: 600 * SCALE, endOnFailure: true },
    );
    expect(ok).toBeGreaterThan(20);
  });

  it("400 files with flipped bytes", async () => {
    const base = writeSafetensors({
      x: f32([3, 4, 2]),
      target: i32([4], (i) => i % 3),
      seq_lens: i32([4], () => 2),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 6,
        }),
        async (flips) => {
          const bytes = base.slice();
          for (const [at, v] of flips) bytes[at] = v;
          await tryData({ bytes });
        },
      ),
      { seed: 20261204 + SEED, numRuns: 400 * SCALE, endOnFailure: true },
    );
  });
});
