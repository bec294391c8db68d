// The one way cellc reads a file it is given (a .cell file and its imports, parameters, inputs, data,
// checkpoints, run folders): a regular file of bounded size, checked before anything is read. A FIFO would
// block, `/dev/zero` never ends, a directory is not data, and a file larger than its limit is refused from
// its size alone. Messages name the path and why, never the file's content.
import { closeSync, constants, fstatSync, openSync, readSync, statSync } from "node:fs";
import { constants as bufferConstants } from "node:buffer";
import { memoryLimit } from "../runtime/tensor.js";
import { CliError } from "./io.js";

/** Why a file cannot be read: a short reason, shown after its path. */
export class FileReadError extends Error {}

/** The most a network.json may hold (its kernels' text and wasm included). */
export const MAX_JSON_BYTES = 64 * 2 ** 20;

/** Tensor files: the memory limit (CELLC_MEMORY_LIMIT, 4 GiB by default), and what a Buffer can hold. */
export const tensorFileLimit = (): number => Math.min(memoryLimit(), bufferConstants.MAX_LENGTH - 1);

function reason(e: unknown): string {
  const code = (e as { code?: string }).code;
  if (code === "ENOENT" || code === "ENOTDIR") return "no such file";
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  if (code === "EISDIR") return "not a regular file";
  if (code === "ELOOP") return "too many symbolic links";
  return (e as Error).message;
}

/** The bytes of `path`, a regular file of at most `maxBytes`; else a FileReadError that says why. */
export function readBoundedFile(path: string, maxBytes: number): Buffer {
  let fd: number;
  try {
    // stat first: opening a FIFO for reading blocks until a writer comes.
    if (!statSync(path).isFile()) throw new FileReadError("not a regular file");
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw e instanceof FileReadError ? e : new FileReadError(reason(e));
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new FileReadError("not a regular file");
    const tooLarge = () => new FileReadError(`larger than the limit of ${maxBytes} bytes`);
    if (st.size > maxBytes) throw tooLarge();
    // One byte more than the size said: a file that grows while it is read is caught at the limit.
    const buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
    let n = 0;
    for (let r; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, null)) > 0;) n += r;
    if (n > maxBytes) throw tooLarge();
    return buf.subarray(0, n);
  } catch (e) {
    throw e instanceof FileReadError ? e : new FileReadError(reason(e));
  } finally {
    closeSync(fd);
  }
}

/**
 * `readBoundedFile` for a command: a CliError `cannot read <what> '<path>': <why>` when it cannot.
 * `maxBytes` defaults to the tensor-file limit.
 */
export function readInputFile(path: string, what: string, maxBytes = tensorFileLimit()): Buffer {
  try {
    return readBoundedFile(path, maxBytes);
  } catch (e) {
    if (e instanceof FileReadError) throw new CliError(`cannot read ${what} '${path}': ${e.message}`);
    throw e;
  }
}
