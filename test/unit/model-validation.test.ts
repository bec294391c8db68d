import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { compileCell, Model, tensor, CellcError } from "../../api/index.js";

const rnn = compileCell(readFileSync("examples/cells/rnn.cell", "utf8"));
const oneLayer = new Model(rnn, { dims: { D: 2, H: 3 }, seed: 1 }).params;

describe("Model: parameter names are checked before dimensions", () => {
  it("a one-layer file for two layers: missing and unexpected names, with the prefix hint", () => {
    const build = () => new Model(rnn, { params: oneLayer, layers: 2 });
    expect(build).toThrow(CellcError);
    expect(build).toThrow(/missing parameters 'l0\.W', 'l0\.U', 'l0\.b', 'l1\.W', 'l1\.U', 'l1\.b'/);
    expect(build).toThrow(/unexpected parameters 'W', 'U', 'b'/);
    expect(build).toThrow(
      /the file has 'W': for several layers or directions parameters are named l<k>\.\[reverse\.\]<name>/,
    );
    expect(build).not.toThrow(/dimension/);
  });
  it("a prefixed file for one unprefixed layer gets the other hint", () => {
    const params = new Map([...oneLayer].map(([n, t]) => [`l0.${n}`, t]));
    expect(() => new Model(rnn, { params })).toThrow(
      /missing parameters 'W', 'U', 'b'; unexpected parameters 'l0\.W'.*the file has 'l0\.W': names with a layer prefix/,
    );
  });
  it("one missing parameter still shows its shape in numbers", () => {
    const params = new Map(oneLayer);
    params.delete("U");
    expect(() => new Model(rnn, { params })).toThrow(/^missing parameter 'U' of shape \[H, H\] = \[3, 3\]$/);
  });
  it("a declared but unused parameter is accepted in a params file, and ignored", () => {
    const src =
      "cell c {\n  input x[D]\n  state h[H]\n  param W : [H, D]\n  param V : [H]\n  h' = tanh(W @ x)\n  output h'\n}\n";
    const c = compileCell(src);
    expect(c.diagnostics.map((d) => d.code)).toContain("W001");
    const params = new Map([
      ["W", tensor("f32", [2, 1], [0.5, -1])],
      ["V", tensor("f32", [2], [9, 9])],
    ]);
    const m = new Model(c, { params });
    expect(m.ignoredParams).toEqual(["V"]);
    const h = m.forward({ x: tensor("f32", [1, 1, 1], [2]) }).outputs.get("h")!;
    // Within the float32 ulps of the default (WebAssembly) tanh.
    expect(h.data[0]).toBeCloseTo(Math.tanh(1), 6);
    expect(h.data[1]).toBeCloseTo(Math.tanh(-2), 6);
    expect(() => new Model(c, { params: new Map([...params, ["Z", tensor("f32", [1])]]) })).toThrow(
      /unexpected parameter 'Z'/,
    );
  });
});

describe("Model: sizes too large are refused before allocation", () => {
  afterEach(() => {
    delete process.env.CELLC_MEMORY_LIMIT;
  });
  it("H = 100000: a parameter past the typed-array limit", () => {
    expect(() => new Model(rnn, { dims: { D: 1, H: 100000 } })).toThrow(
      /parameter 'U' of shape \[H, H\] = \[100000, 100000\] needs 10000000000 values, more than a typed array holds \(4294967296\)/,
    );
  });
  it("a parameter over the memory limit (CELLC_MEMORY_LIMIT)", () => {
    process.env.CELLC_MEMORY_LIMIT = "1M";
    expect(() => new Model(rnn, { dims: { D: 1, H: 1000 } })).toThrow(
      /parameter 'U' .* \(1000000 values\) needs 3\.8 MiB, over the memory limit of 1\.0 MiB/,
    );
  });
  it("state h[5e9] in the cell: refused where it is written; h[3e9] where it is allocated", () => {
    const cell = (n: number) =>
      `cell c {\n  input x[D]\n  state h[${n}]\n  h' = h + sum(x)\n  output h'\n}\n`;
    expect(() => compileCell(cell(5000000000))).toThrow(/error\[E054\]: dimension 5000000000 is too large/);
    const c = compileCell(cell(3000000000));
    expect(() => new Model(c, { dims: { D: 2 } })).toThrow(/state 'h' of shape \[3000000000\]/);
  });
  it("--layers 1e9 is refused at once", () => {
    expect(() => new Model(rnn, { dims: { D: 1, H: 2 }, layers: 1e9 })).toThrow(
      /1000000000 layers asked for; the limit is 10000/,
    );
  });
  it("T = 1e6: the sequence's outputs over the 4 GiB default", () => {
    const m = new Model(rnn, { dims: { D: 1, H: 2000 } });
    const x = tensor("f32", [1_000_000, 1, 1]);
    expect(() => m.forward({ x })).toThrow(
      /output 'h' of layer 0 for T = 1000000, B = 1 \(2000000000 values\) needs 7\.5 GiB, over the memory limit of 4\.0 GiB/,
    );
    expect(() => tensor("f32", [100000, 100000])).toThrow(/more than a typed array holds/);
    // No data at T = 0, but the states of 1e12 rows would still be allocated.
    expect(() => m.forward({ x: tensor("f32", [0, 1e12, 1]) })).toThrow(
      /state 'h' of layer 0 for B = 1000000000000 needs 2000000000000000 values, more than a typed array holds/,
    );
  });
});

describe("Model: sequence edge cases", () => {
  const m = new Model(rnn, { dims: { D: 2, H: 3 }, seed: 2 });
  it("T = 0 and B = 0 give empty outputs, as PyTorch does for B = 0", () => {
    const t0 = m.forward({ x: tensor("f32", [0, 2, 2]) });
    expect(t0.outputs.get("h")!.shape).toEqual([0, 2, 3]);
    expect(Array.from(t0.finalStates.get("h")!.data)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(m.backward(t0).params.get("W")!.data)).toEqual([0, 0, 0, 0, 0, 0]);
    const b0 = m.forward({ x: tensor("f32", [4, 0, 2]) });
    expect(b0.outputs.get("h")!.shape).toEqual([4, 0, 3]);
    expect(b0.finalStates.get("h")!.shape).toEqual([0, 3]);
  });
  it("seq_lens that are not integers in [0, T] are refused, not truncated", () => {
    const x = tensor("f32", [3, 2, 2]);
    expect(() => m.forward({ x }, { seqLens: [2.5, 1] })).toThrow(/seq_lens\[0\] = 2\.5 is out of range/);
    expect(() => m.forward({ x }, { seqLens: [1, 2 ** 32 + 1] })).toThrow(/seq_lens\[1\] = 4294967297/);
    expect(() => m.forward({ x }, { seqLens: [1, -1] })).toThrow(/seq_lens\[1\] = -1 is out of range/);
  });
});
