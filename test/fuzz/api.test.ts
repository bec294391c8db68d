// Fuzzing the library API: compileCell, Model, forward, backward, stream and tensor with arguments of the
// wrong type, size or shape. Each call returns or throws a CellcError, in bounded time; the reproducers of
// the hardening issue are the corpus.
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CellcError, compileCell, jsBackend, Model, tensor, type Tensor } from "../../api/index.js";

const SEED = Number(process.env.CELLC_FUZZ_SEED ?? 0);
const SCALE = Number(process.env.CELLC_FUZZ_SCALE ?? 1);
const TIME_LIMIT_MS = 3000;
const rnn = compileCell(readFileSync("examples/cells/rnn.cell", "utf8"));
const lstm = compileCell(readFileSync("examples/cells/lstm.cell", "utf8"));
beforeAll(() => void (process.env.CELLC_MEMORY_LIMIT = "64M"));
afterAll(() => void delete process.env.CELLC_MEMORY_LIMIT);

/** Runs a call: a CellcError or a result; anything else (TypeError, RangeError) is a finding. */
function attempt(f: () => unknown): "ok" | "refused" {
  const t0 = performance.now();
  try {
    f();
    return "ok";
  } catch (e) {
    if (!(e instanceof CellcError)) throw e;
    return "refused";
  } finally {
    expect(performance.now() - t0).toBeLessThan(TIME_LIMIT_MS);
  }
}

const size = fc.oneof(
  { weight: 10, arbitrary: fc.integer({ min: 0, max: 4 }) },
  { weight: 1, arbitrary: fc.constantFrom(-1, 2.5, NaN, Infinity, 2 ** 32, 2 ** 53, 1e9) },
);
/** Tensor-like values: mostly well-formed and small, sometimes of the wrong kind, shape or length. */
const tensorLike: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({
        dtype: fc.constantFrom("f32", "f32", "f64", "i32", "f16", undefined),
        shape: fc.array(size, { maxLength: 4 }),
        slack: fc.constantFrom(0, 0, 0, 1, -1),
        kind: fc.constantFrom("match", "match", "other", "array"),
      })
      .map(({ dtype, shape, slack, kind }) => {
        const n = shape.every((d) => Number.isSafeInteger(d) && d >= 0 && d < 100) ? shape.reduce((a, b) => a * b, 1) : 3; // prettier-ignore
        const len = Math.max(0, Math.min(n + slack, 10_000));
        const data =
          kind === "array"
            ? Array.from({ length: len }, () => 1)
            : kind === "other" || dtype === "f64"
              ? new Float64Array(len)
              : dtype === "i32"
                ? new Int32Array(len)
                : new Float32Array(len);
        return { dtype, shape, data };
      }),
  },
  { weight: 1, arbitrary: fc.anything() },
);
const tensors = fc.oneof(
  { weight: 4, arbitrary: fc.dictionary(fc.constantFrom("x", "h", "c", "W", "U", "b", "q", "__proto__"), tensorLike, { maxKeys: 4 }) }, // prettier-ignore
  { weight: 1, arbitrary: fc.anything() },
);
const dimSize = fc.oneof(
  { weight: 20, arbitrary: fc.integer({ min: 1, max: 4 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, 2.5, NaN, Infinity, 2 ** 32, 2 ** 53, 1e9) },
);
const dims = fc.oneof(
  { weight: 8, arbitrary: fc.record({ D: dimSize, H: dimSize }) },
  { weight: 1, arbitrary: fc.anything() },
);

describe("fuzzing the library API", () => {
  it("the corpus: the reproducers of the hardening issue are CellcErrors", () => {
    const m = new Model(rnn, { dims: { D: 2, H: 3 } });
    const other = new Model(rnn, { dims: { D: 2, H: 3 } });
    const x = tensor("f32", [2, 1, 2]);
    const cases: [string, () => unknown][] = [
      ["a parameter whose data is short", () => new Model(rnn, { params: new Map([...m.params].map(([n, t]) => [n, n === "U" ? { ...t, data: t.data.subarray(1) } : t])), backend: jsBackend })], // prettier-ignore
      ["dims -1", () => new Model(rnn, { dims: { D: -1, H: 3 } })],
      ["dims 2.5", () => new Model(rnn, { dims: { D: 2.5, H: 3 } })],
      ["dims NaN", () => new Model(rnn, { dims: { D: NaN, H: 3 } })],
      ["compileCell(null)", () => compileCell(null as never)],
      ["compileCell(42)", () => compileCell(42 as never)],
      ["compileCell({})", () => compileCell({} as never)],
      ["forward(null)", () => m.forward(null as never)],
      ["stream(-1)", () => m.stream(-1)],
      ["stream(1e9)", () => m.stream(1e9)],
      ["backward(another model's forward)", () => other.backward(m.forward({ x }))],
    ];
    for (const [what, f] of cases) expect(attempt(f), what).toBe("refused");
  });

  it("600 calls of Model, forward, backward and stream", () => {
    const ok = { model: 0, forward: 0, stream: 0 };
    fc.assert(
      fc.property(
        fc.constantFrom("rnn", "lstm"),
        dims,
        fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: tensors }),
        fc.oneof(
          { weight: 8, arbitrary: fc.constantFrom(undefined, 1, 2) },
          { weight: 1, arbitrary: fc.anything() },
        ),
        fc.boolean(),
        tensors,
        fc.oneof(fc.constantFrom(undefined, {}), fc.record({ seqLens: fc.anything() }), fc.anything()),
        fc.oneof(size, fc.anything()),
        (name, d, params, layers, bidirectional, inputs, fopts, B) => {
          const cell = name === "rnn" ? rnn : lstm;
          let m: Model | undefined;
          attempt(() => {
            m = new Model(cell, { dims: d as never, params: params as never, layers: layers as never, bidirectional, backend: jsBackend }); // prettier-ignore
          });
          if (!m) return;
          ok.model++;
          const model = m;
          const x = inputs && typeof inputs === "object" && "x" in inputs ? inputs : { ...(inputs as object), x: tensor("f32", [2, 1, model.sizes[0]!.D ?? 1]) }; // prettier-ignore
          if (attempt(() => model.backward(model.forward(x as never, fopts as never), { outputs: inputs as never })) === "ok") ok.forward++; // prettier-ignore
          if (attempt(() => model.stream(B as never).step(inputs as never)) === "ok") ok.stream++;
        },
      ),
      { seed: 20261207 + SEED, numRuns: 600 * SCALE, endOnFailure: true },
    );
    // Enough calls get past the argument checks to exercise what follows them.
    expect(ok.model).toBeGreaterThan(50);
    expect(ok.forward).toBeGreaterThan(5);
  });

  it("300 calls of compileCell and tensor", () => {
    const src = readFileSync("examples/cells/rnn.cell", "utf8");
    fc.assert(
      fc.property(
        fc.oneof(fc.constant(src), fc.string(), fc.anything()),
        fc.oneof(fc.constant({}), fc.record({ cell: fc.anything(), targets: fc.anything(), host: fc.anything() }), fc.anything()), // prettier-ignore
        fc.constantFrom("f32", "f64", "i32", "x"),
        fc.array(size, { maxLength: 3 }),
        fc.oneof(fc.constant(undefined), fc.array(fc.double(), { maxLength: 20 })),
        (source, opts, dtype, shape, data) => {
          attempt(() => compileCell(source as never, opts as never));
          attempt(() => tensor(dtype as never, shape, data as unknown as Tensor["data"]));
        },
      ),
      { seed: 20261208 + SEED, numRuns: 300 * SCALE, endOnFailure: true },
    );
  });
});
