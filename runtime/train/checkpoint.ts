// Checkpoint files, written so that a crash at any moment leaves the previous checkpoint loadable:
// each file goes to a temporary name, is fsynced, then renamed over the old one. The state (step, RNG
// states, optimiser count, config, metrics, what rebuilds the network) is kept both in the safetensors
// metadata, where it commits together with the weights in one rename, and in checkpoint.json for people
// and tools; the loader trusts the safetensors file.
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../atomic.js";
import { readSafetensorsFile, writeSafetensors } from "../safetensors.js";
import { CellcError, type Tensor } from "../tensor.js";

export const WEIGHTS_FILE = "checkpoint.safetensors";
export const STATE_FILE = "checkpoint.json";
const META_KEY = "cellc.checkpoint";

export function saveCheckpoint(dir: string, tensors: ReadonlyMap<string, Tensor>, state: object): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new CellcError(`cannot create '${dir}': ${(e as Error).message}`);
  }
  const json = JSON.stringify(state);
  writeFileAtomic(join(dir, WEIGHTS_FILE), writeSafetensors(tensors, new Map([[META_KEY, json]])));
  writeFileAtomic(join(dir, STATE_FILE), new TextEncoder().encode(JSON.stringify(state, null, 1) + "\n"));
}

export function loadCheckpoint(dir: string): { tensors: Map<string, Tensor>; state: unknown } {
  const path = join(dir, WEIGHTS_FILE);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new CellcError(
      `cannot read checkpoint '${path}': ${code === "ENOENT" ? "no such file" : (e as Error).message}`,
    );
  }
  const f = readSafetensorsFile(bytes, `checkpoint '${path}'`);
  const text = f.metadata.get(META_KEY);
  if (text === undefined)
    throw new CellcError(`'${path}' is not a cellc checkpoint (no ${META_KEY} metadata)`);
  try {
    return { tensors: f.tensors, state: JSON.parse(text) as unknown };
  } catch {
    throw new CellcError(`the state in checkpoint '${path}' is not valid JSON`);
  }
}
