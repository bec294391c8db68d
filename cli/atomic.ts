// Files that are either the old version or the new one, never half of either (Node only): written to a
// temporary name beside them, fsynced, then renamed over the old one. Used for every file cellc writes
// that a crash must not corrupt: `cellc run --out`, parameters, checkpoints.
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { CellcError } from "../runtime/tensor.js";

/** @internal A test hook: runs after a file's temporary copy is written and synced, before its rename. */
export const atomicHooks: { beforeRename?: (path: string) => void } = {};

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
    atomicHooks.beforeRename?.(path);
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
