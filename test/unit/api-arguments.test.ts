// The library API refuses bad arguments with a CellcError that names them: never a TypeError or
// RangeError from deep inside, never a silently wrong result.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  CellcError,
  compileCell,
  compileNetwork,
  jsBackend,
  makeTask,
  Model,
  Network,
  tensor,
  Trainer,
  type Tensor,
} from "../../api/index.js";
import { networkArtifact } from "../helpers.js";

const rnn = compileCell(readFileSync("examples/cells/rnn.cell", "utf8"));
const dims = { D: 2, H: 3 };
const model = (opts = {}) => new Model(rnn, { dims, seed: 1, ...opts });
const x = () => tensor("f32", [2, 1, 2], [1, 2, 3, 4]);

/** Throws a CellcError whose message matches. */
function refuses(f: () => unknown, message: RegExp | string) {
  expect(f).toThrow(CellcError);
  expect(f).toThrow(message);
}

describe("compileCell", () => {
  for (const [what, source] of [
    ["null", null],
    ["42", 42],
    ["{}", {}],
    ["undefined", undefined],
  ] as const)
    it(`compileCell(${what})`, () =>
      refuses(
        () => compileCell(source as unknown as string),
        /compile\(\) takes the source text of a \.cell file \(a string\)/,
      ));
  it("options that are not an object, or of the wrong types", () => {
    const src = readFileSync("examples/cells/rnn.cell", "utf8");
    refuses(() => compileCell(src, null as never), /options must be an object, got null/);
    refuses(() => compileCell(src, { cell: 5 } as never), /option 'cell' must be a string, got 5/);
    refuses(
      () => compileCell(src, { host: {} } as never),
      /option 'host' must be an object with a read\(path\)/,
    );
    refuses(
      () => compileCell(src, { targets: ["x86"] } as never),
      /option 'targets' must list targets of js, wgsl, wasm/,
    );
  });
  it("compileNetwork: dims that are not sizes", () =>
    refuses(
      () => compileNetwork(readFileSync("examples/cells/rnn.cell", "utf8"), { dims: { H: -1 } }),
      /dims'.*H must be a whole number from 1 to 4294967296, got -1/,
    ));
});

describe("Model", () => {
  for (const [what, v] of [
    ["negative", -2],
    ["fractional", 2.5],
    ["NaN", NaN],
    ["zero", 0],
    ["a string", "2"],
  ] as const)
    it(`dims that are ${what}`, () =>
      refuses(
        () => new Model(rnn, { dims: { D: v as number, H: 3 } }),
        /dims: D must be a whole number from 1/,
      ));
  it("a parameter whose data does not match its shape", () => {
    const params = model().params;
    const short = new Map(params);
    short.set("U", { dtype: "f32", shape: [3, 3], data: new Float32Array(4) });
    for (const backend of [jsBackend, undefined])
      refuses(
        () => new Model(rnn, { params: short, backend }),
        "parameter 'U' of shape [3, 3] needs 9 values, got 4",
      );
    const long = new Map(params);
    long.set("b", { dtype: "f32", shape: [3], data: new Float32Array(300) });
    refuses(() => new Model(rnn, { params: long }), "parameter 'b' of shape [3] needs 3 values, got 300");
  });
  it("a tensor whose data is not of its dtype, or not a tensor", () => {
    const params = new Map(model().params);
    params.set("b", { dtype: "f32", shape: [3], data: Float64Array.of(1, 2, 3) });
    refuses(() => new Model(rnn, { params }), "parameter 'b' is f32: its data must be a Float32Array");
    params.set("b", [1, 2, 3] as unknown as Tensor);
    refuses(
      () => new Model(rnn, { params }),
      /parameter 'b' must be a tensor \{ dtype, shape, data \}, got an array of 3/,
    );
    refuses(
      () => new Model(rnn, { params: 5 as never }),
      /params must be a Map or an object of tensors by name, got 5/,
    );
  });
  it("a cell that is not one, options that are not an object", () => {
    refuses(() => new Model(null as never), /Model needs a compiled cell/);
    refuses(() => new Model({} as never), /Model needs a compiled cell/);
    refuses(() => new Model(rnn, null as never), /options must be an object/);
    refuses(() => new Model(rnn, { dims, dtype: "f16" as never }), /dtype must be "f32" or "f64", got "f16"/);
    refuses(() => new Model(rnn, { dims, seed: 0.5 }), /the seed must be a whole number, got 0\.5/);
  });
  it("forward(null), forward(42), an input of the wrong shape of data", () => {
    const m = model();
    refuses(() => m.forward(null as never), /inputs must be a Map or an object of tensors by name, got null/);
    refuses(() => m.forward(42 as never), /inputs must be a Map or an object of tensors by name, got 42/);
    refuses(() => m.forward({ x: { dtype: "f32", shape: [2, 1, 2], data: new Float32Array(3) } }), "input 'x' of shape [2, 1, 2] needs 4 values, got 3"); // prettier-ignore
    refuses(() => m.forward({ x: x() }, null as never), /forward\(\)'s options must be an object/);
    refuses(() => m.forward({ x: x() }, { seqLens: 2 as never }), /seq_lens must be an array/);
    refuses(
      () => m.forward({ x: x() }, { initialStates: { h: null as never } }),
      /initial state 'h' must be a tensor/,
    );
  });
  it("stream(-1), stream(0.5), stream(NaN)", () => {
    const m = model();
    for (const B of [-1, 0, 0.5, NaN])
      refuses(() => m.stream(B), /stream\(\) takes the batch size B, a whole number from 1/);
    refuses(
      () => m.stream(1).step({ x: tensor("f32", [2, 2]) }),
      "input 'x' has shape [2, 2]; expected [1, 2]",
    );
  });
  it("backward() given another model's forward result", () => {
    const a = model();
    const b = model();
    const fa = a.forward({ x: x() });
    refuses(
      () => b.backward(fa),
      "backward() was given the forward result of another model: pass this model's own",
    );
    expect(() => a.backward(fa)).not.toThrow();
    refuses(() => a.backward(null as never), /backward\(\) takes the result of this model's forward\(\)/);
    refuses(() => a.backward(fa, null as never), /upstream gradients must be an object/);
    refuses(
      () => a.backward(fa, { outputs: { h: tensor("f32", [1]) } }),
      /upstream gradient of output 'h' has shape \[1\]/,
    );
  });
  it("tensor(): sizes that are not whole numbers", () => {
    refuses(() => tensor("f32", [-1]), /invalid tensor shape/);
    refuses(() => tensor("f32", [2], [1, 2, 3]), /needs 2 values, got 3/);
  });
});

describe("Trainer", () => {
  const data = makeTask("adding", { T: 4 });
  const net = () => new Network(networkArtifact("examples/cells/rnn.cell", data, { dims: { H: 2 } }));
  const cfg = { steps: 2, batch: 2, lr: 0.01, optim: "adam" as const, seed: 0 };
  it("a configuration's bad field is named", () => {
    refuses(
      () => new Trainer(net(), data, { ...cfg, batch: 0 }),
      "'config.batch' must be a whole number from 1",
    );
    refuses(
      () => new Trainer(net(), data, { ...cfg, lr: NaN }),
      "'config.lr' must be a number above 0, got NaN",
    );
    refuses(() => new Trainer(net(), data, { ...cfg, betas: [0.9, 1] }), "'config.betas[1]' must be a number from 0 and below 1"); // prettier-ignore
    refuses(() => new Trainer(net(), data, null as never), "'config' must be an object, got null");
  });
  it("a network or data that is not one", () => {
    refuses(() => new Trainer(null as never, data, cfg), "Trainer needs a Network to train");
    refuses(() => new Trainer(net(), {} as never, cfg), "Trainer needs a data source");
  });
});
