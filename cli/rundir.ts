// A run folder is the trained network: `network.json` (the network artifact the compiler made, with its
// sizes and the data's classes), `params.safetensors` (the trained parameters, or the last checkpoint's
// while a run goes on), `metrics.jsonl` and the checkpoint. Predicting from it and exporting it need no
// source file.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { NetworkArtifact } from "../artifact/network.js";
import type { Backend } from "../runtime/model.js";
import { readSafetensors } from "../runtime/safetensors.js";
import { CellcError, type Tensor } from "../runtime/tensor.js";
import { checkNetworkArtifact, Network } from "../workbench/train/network.js";
import { writeFileAtomic } from "./atomic.js";
import { loadCheckpoint } from "./checkpoint.js";

export const NETWORK_FILE = "network.json";
export const PARAMS_FILE = "params.safetensors";

export function writeRunNetwork(dir: string, artifact: NetworkArtifact): void {
  writeFileAtomic(join(dir, NETWORK_FILE), new TextEncoder().encode(JSON.stringify(artifact) + "\n"));
}

/** The run folder's network, or undefined for a folder without one (a run of an older cellc). */
export function readRunNetwork(dir: string): NetworkArtifact | undefined {
  const path = join(dir, NETWORK_FILE);
  if (!existsSync(path)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new CellcError(`cannot read the network '${path}': ${(e as Error).message}`);
  }
  return checkNetworkArtifact(value as NetworkArtifact);
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
  let params: Map<string, Tensor>;
  if (existsSync(final)) {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(final);
    } catch (e) {
      throw new CellcError(`cannot read parameters '${final}': ${(e as Error).message}`);
    }
    params = readSafetensors(bytes, `parameters '${final}'`);
  } else params = new Map([...loadCheckpoint(dir).tensors].filter(([n]) => !n.includes("/")));
  return { artifact, params };
}

/** A run folder's trained network, ready to predict (`network.predict(inputs)`). */
export function loadNetwork(
  dir: string,
  opts: { readonly backend?: Backend; readonly dtype?: "f32" | "f64" } = {},
): Network {
  const { artifact, params } = loadRun(dir);
  return new Network(artifact, { ...opts, params });
}
