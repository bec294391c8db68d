// A run folder is the trained network: `network.json` (the network artifact the compiler made, with its
// sizes and the data's classes), `params.safetensors` (the trained parameters, or the last checkpoint's
// while a run goes on), `metrics.jsonl` and the checkpoint. Predicting from it and exporting it need no
// source file.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { isMoment, type NetworkArtifact } from "../artifact/network.js";
import type { Backend } from "../runtime/model.js";
import { readSafetensors } from "../runtime/safetensors.js";
import { CellcError, type Tensor } from "../runtime/tensor.js";
import { checkNetworkArtifact, Network } from "../workbench/train/network.js";
import { writeFileAtomic } from "./atomic.js";
import { loadCheckpoint } from "./checkpoint.js";
import { MAX_JSON_BYTES, readInputFile } from "./files.js";

export const NETWORK_FILE = "network.json";
export const PARAMS_FILE = "params.safetensors";

export function writeRunNetwork(dir: string, artifact: NetworkArtifact): void {
  writeFileAtomic(join(dir, NETWORK_FILE), new TextEncoder().encode(JSON.stringify(artifact) + "\n"));
}

/**
 * The run folder's network, or undefined for a folder without one (a run of an older cellc). The file is
 * data: its fields are checked (types, ranges, what they say about each other) before anything uses
 * them, and its kernels are verified when they are loaded (runtime/verify.ts).
 */
export function readRunNetwork(dir: string): NetworkArtifact | undefined {
  const path = join(dir, NETWORK_FILE);
  if (!existsSync(path)) return undefined;
  const text = readInputFile(path, "the network", MAX_JSON_BYTES).toString("utf8");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CellcError(`cannot read the network '${path}': ${(e as Error).message}`);
  }
  return checkNetworkArtifact(value as NetworkArtifact, `the network '${path}'`);
}

/** The trained network of a run folder: its artifact and its parameters (final, or the last checkpoint's). */
export function loadRun(dir: string): { artifact: NetworkArtifact; params: Map<string, Tensor> } {
  if (!existsSync(dir)) throw new CellcError(`'${dir}' does not exist`);
  const artifact = readRunNetwork(dir);
  if (!artifact)
    throw new CellcError(
      `'${dir}' holds no trained network (${NETWORK_FILE}): train one with cellc train --out ${dir}`,
    );
  const final = join(dir, PARAMS_FILE);
  const params = existsSync(final)
    ? readSafetensors(readInputFile(final, "parameters"), `parameters '${final}'`)
    : new Map([...loadCheckpoint(dir).tensors].filter(([n]) => !isMoment(n)));
  return { artifact, params };
}

/** A run folder's trained network, ready to predict (`network.predict(inputs)`). */
export function loadNetwork(
  dir: string,
  opts: { readonly backend?: Backend; readonly dtype?: "f32" | "f64" } = {},
): Network {
  const { artifact, params } = loadRun(dir);
  // Predicting needs no device training step (its parameter, gradient and moment buffers).
  return new Network(artifact, { ...opts, params, onDevice: false });
}
