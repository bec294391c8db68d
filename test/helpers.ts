import type { NetworkArtifact, OptimName } from "../artifact/network.js";
import { renderAll } from "../compiler/diag/diagnostic.js";
import { compileNetwork, type DataShape, type NetworkChoice } from "../compiler/network/compile.js";
import { readFileSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { expect } from "vitest";
import { checkProgram } from "../compiler/driver.js";
import type { Model } from "../runtime/model.js";
import type { Tensor } from "../runtime/tensor.js";

export const UPDATE = process.env.UPDATE_GOLDEN === "1";
export const nodeHost = { read: (p: string) => readFileSync(p, "utf8") };

/** Compares text with a reviewed golden file; UPDATE_GOLDEN=1 rewrites it (review the diff). */
export function expectGolden(path: string, actual: string): void {
  if (UPDATE || !existsSync(path)) {
    if (!UPDATE) throw new Error(`missing golden file ${path}: run with UPDATE_GOLDEN=1 and review it`);
    writeFileSync(path, actual);
    return;
  }
  expect(actual).toBe(readFileSync(path, "utf8"));
}

export function builtinCellFiles(): string[] {
  return readdirSync("examples/cells")
    .filter((f) => f.endsWith(".cell"))
    .sort()
    .map((f) => `examples/cells/${f}`);
}

/** Checks an in-memory source; imports are read from disk. */
export function checkSource(text: string, file = "test.cell") {
  return checkProgram(file, nodeHost, text);
}

/** Every tensor of a forward and backward pass, by a name that says what it is. */
export async function everything(model: Model, x: Map<string, Tensor>, seqLens: number[]) {
  const f = await model.forwardAsync(x, { seqLens });
  return passTensors(f, await model.backwardAsync(f), "out");
}

/** A forward pass's outputs and final states and its backward pass's gradients, each by what it is. */
export function passTensors(
  f: { readonly outputs: ReadonlyMap<string, Tensor>; readonly finalStates: ReadonlyMap<string, Tensor> },
  g: {
    readonly params: ReadonlyMap<string, Tensor>;
    readonly inputs: ReadonlyMap<string, Tensor>;
    readonly initialStates: ReadonlyMap<string, Tensor>;
  },
  output = "output",
): Map<string, Tensor> {
  const all = new Map<string, Tensor>();
  for (const [k, v] of f.outputs) all.set(`${output} ${k}`, v);
  for (const [k, v] of f.finalStates) all.set(`final ${k}`, v);
  for (const [k, v] of g.params) all.set(`grad ${k}`, v);
  for (const [k, v] of g.inputs) all.set(`grad input ${k}`, v);
  for (const [k, v] of g.initialStates) all.set(`grad init ${k}`, v);
  return all;
}

/** The lines of a metrics.jsonl file (`cellc train`, `cellc compare`). */
export const jsonl = (path: string) =>
  readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, number | string>);

/**
 * The network artifact of a .cell file for data of this shape (its declared model, or its cell in the
 * default model), compiled as `cellc train` compiles it; errors in the file fail the test.
 */
export function networkArtifact(
  file: string,
  data: DataShape,
  opts: NetworkChoice & {
    dims?: Record<string, number>;
    optimizer?: OptimName;
    source?: string;
  } = {},
): NetworkArtifact {
  const { dims, optimizer, source, ...choice } = opts;
  const out = compileNetwork(source, { file, host: nodeHost, choice, data, dims, optimizer });
  if (!out.artifact) throw new Error(renderAll(out.diagnostics, out.sources));
  return out.artifact;
}
