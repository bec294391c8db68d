// Checkpoint files in a folder, written so that a crash at any moment leaves the previous checkpoint
// loadable: each file goes to a temporary name, is fsynced, then renamed over the old one.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "./atomic.js";
import { readInputFile } from "./files.js";
import {
  decodeCheckpoint,
  encodeCheckpoint,
  STATE_FILE,
  WEIGHTS_FILE,
  type Checkpoint,
} from "../workbench/train/checkpoint.js";
import { CellcError, type Tensor } from "../runtime/tensor.js";

export function saveCheckpoint(dir: string, ck: Checkpoint): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new CellcError(`cannot create '${dir}': ${(e as Error).message}`);
  }
  const { weights, json } = encodeCheckpoint(ck);
  writeFileAtomic(join(dir, WEIGHTS_FILE), weights);
  writeFileAtomic(join(dir, STATE_FILE), json);
}

export function loadCheckpoint(dir: string): { tensors: Map<string, Tensor>; state: unknown } {
  const path = join(dir, WEIGHTS_FILE);
  return decodeCheckpoint(readInputFile(path, "checkpoint"), path);
}
