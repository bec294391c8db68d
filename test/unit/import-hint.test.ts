// `cellc import torch` refusing entries it was not told of: it says what the state dict holds and the
// options that import it (compiler/export/import-torch.ts).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileCell } from "../../api/compile-cell.js";
import { importTorch } from "../../compiler/export/import-torch.js";
import type { Tensor } from "../../runtime/tensor.js";

const lstm = compileCell(readFileSync("examples/cells/lstm.cell", "utf8")).ir;
const [D, H] = [3, 2];
const t = (...shape: number[]): Tensor => ({
  dtype: "f32",
  shape,
  data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
});
/** nn.LSTM's state dict: the names and shapes PyTorch gives `layers` layers in `dirs` directions. */
function stateDict(layers: number, dirs: number): Map<string, Tensor> {
  const m = new Map<string, Tensor>();
  for (let l = 0; l < layers; l++)
    for (let d = 0; d < dirs; d++) {
      const s = `_l${l}${d ? "_reverse" : ""}`;
      m.set(`weight_ih${s}`, t(4 * H, l ? dirs * H : D));
      m.set(`weight_hh${s}`, t(4 * H, H));
      m.set(`bias_ih${s}`, t(4 * H));
      m.set(`bias_hh${s}`, t(4 * H));
    }
  return m;
}

describe("import torch: entries beyond what was asked", () => {
  it("suggests the layers and directions the names show", () => {
    expect(() => importTorch(lstm, stateDict(2, 2))).toThrow(
      /unexpected entries .* for a nn.LSTM with 1 layer\(s\); it holds 2 layer\(s\) in both directions: import with --layers 2 --bidirectional$/,
    );
    expect(() => importTorch(lstm, stateDict(3, 1), { layers: 2 })).toThrow(
      /it holds 3 layer\(s\): import with --layers 3$/,
    );
    expect(() => importTorch(lstm, stateDict(1, 2))).toThrow(/import with --layers 1 --bidirectional$/);
    // What fits imports.
    expect([...importTorch(lstm, stateDict(2, 2), { layers: 2, bidirectional: true }).keys()]).toContain(
      "l1.reverse.Wi",
    );
  });

  it("entries of another kind get no suggestion", () => {
    const m = stateDict(1, 1);
    m.set("fc.weight", t(1, H));
    expect(() => importTorch(lstm, m)).toThrow(
      /unexpected entries 'fc.weight' for a nn.LSTM with 1 layer\(s\)$/,
    );
  });
});
