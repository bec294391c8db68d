import { readFileSync } from "node:fs";
import { checkProgram } from "../../compiler/driver.js";
import { evalDim } from "../../artifact/shape.js";
import { compileCell, Model, tensor, type Tensor } from "../../api/index.js";

type CompiledCell = ReturnType<typeof compileCell>;
import { builtinCellFiles, nodeHost } from "../helpers.js";

/** Every built-in cell, with the configurations the export tests run: one layer, two, bidirectional. */
export interface CellCase {
  readonly file: string;
  readonly name: string;
  readonly cell: CompiledCell;
}
export const CONFIGS = [
  { layers: 1, bidirectional: false },
  { layers: 2, bidirectional: false },
  { layers: 1, bidirectional: true },
] as const;
export const T = 5;
export const B = 3;
export const LENS = [5, 2, 4];

export function builtinCells(): CellCase[] {
  const out: CellCase[] = [];
  for (const file of builtinCellFiles()) {
    const names = checkProgram(file, nodeHost).cellNames;
    for (const name of names)
      out.push({
        file,
        name,
        cell: compileCell(readFileSync(file, "utf8"), { file, cell: name, host: nodeHost }),
      });
  }
  return out;
}

/** A deterministic pseudo-random stream in [-1, 1), independent of cellc's own generator. */
export function noise(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 2 ** 32) * 2 - 1;
  };
}

/** Sizes of the cell's dimensions: D = 3, H = 4 (only those the cell has). */
export function dimsOf(c: CompiledCell): Record<string, number> {
  const all: Record<string, number> = { D: 3, H: 4 };
  return Object.fromEntries(c.ir.dims.map((d) => [d, all[d] ?? 3]));
}

/** A model with seeded parameters, an input x [T, B, D] and random initial states for every layer. */
export function setup(
  c: CompiledCell,
  cfg: { layers: number; bidirectional: boolean },
  dtype: "f32" | "f64",
) {
  const model = new Model(c, { dims: dimsOf(c), seed: 7, dtype, ...cfg, prefixed: true });
  const r = noise(99);
  const D = model.sizes[0]![Object.keys(c.ir.inputs[0]!.type.dims[0]!.terms)[0]!]!;
  const rand = (shape: number[]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    // Round to f32 so that the f32 and f64 runs see the same values.
    return tensor(
      dtype,
      shape,
      Float32Array.from({ length: n }, () => r()),
    );
  };
  const x = rand([T, B, D]);
  const inits = new Map<string, Tensor>();
  const dirs = cfg.bidirectional ? 2 : 1;
  for (let l = 0; l < cfg.layers; l++)
    for (let d = 0; d < dirs; d++)
      for (const s of c.ir.states) {
        inits.set(model.name(l, d, s.name), rand([B, evalDim(s.type.dims[0]!, model.sizes[l]!)]));
      }
  return { model, x, inits };
}
