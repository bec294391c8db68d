// Checkpoint files, written so that a crash at any moment leaves the previous checkpoint loadable:
// each file goes to a temporary name, is fsynced, then renamed over the old one. The state (step, RNG
// states, optimiser count, config, metrics, what rebuilds the network) is kept both in the safetensors
// metadata, where it commits together with the weights in one rename, and in checkpoint.json for people
// and tools; the loader trusts the safetensors file.
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { readSafetensorsFile, writeSafetensors } from "../safetensors.js";
import { CellcError, type Tensor } from "../tensor.js";

export const WEIGHTS_FILE = "checkpoint.safetensors";
export const STATE_FILE = "checkpoint.json";
const META_KEY = "cellc.checkpoint";

/** @internal A test hook: runs after a file's temporary copy is written and synced, before its rename. */
export const checkpointHooks: { beforeRename?: (path: string) => void } = {};

/** Writes `bytes` to `path` through a synced temporary file and a rename. */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    const fd = openSync(tmp, "wx");
    try {
      for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at, bytes.length - at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    checkpointHooks.beforeRename?.(path);
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // never created, or already renamed
    }
    throw e instanceof CellcError ? e : new CellcError(`cannot write '${path}': ${(e as Error).message}`);
  }
  try {
    // The rename itself is durable once the folder is synced (not possible on every platform).
    const dfd = openSync(dirname(path), "r");
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // best effort
  }
}

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
