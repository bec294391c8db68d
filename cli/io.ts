import { statSync } from "node:fs";

// What every command shares: where it writes, and the error that ends it with a message and exit code 1.
/** A failure the user can act on: printed as its message, exit code 1, no stack trace. */
export class CliError extends Error {}

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

/** Whether a path is a folder (a run folder, where a command takes a .cell file or a folder). */
export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
