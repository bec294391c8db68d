// Writes the example parameter and input files for lstm.cell (D = 4, H = 8, T = 10, B = 2):
//   node examples/data/make.mjs        (after npm ci, which builds dist/)
import { writeFileSync } from "node:fs";
import { compileCell, Model, tensor, writeSafetensors } from "../../dist/api/index.js";
import { readFileSync } from "node:fs";

const cell = compileCell(readFileSync(new URL("../cells/lstm.cell", import.meta.url), "utf8"));
const model = new Model(cell, { dims: { D: 4, H: 8 }, seed: 42 });
writeFileSync(new URL("lstm.params.safetensors", import.meta.url), writeSafetensors(model.params));
const T = 10;
const B = 2;
const x = tensor(
  "f32",
  [T, B, 4],
  Array.from({ length: T * B * 4 }, (_, i) => Math.sin(i * 0.7)),
);
const lens = tensor("i32", [B], [10, 6]);
writeFileSync(new URL("lstm.inputs.safetensors", import.meta.url), writeSafetensors({ x, seq_lens: lens }));
