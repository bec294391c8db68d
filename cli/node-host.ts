import { closeSync, fstatSync, openSync, readSync, statSync, constants } from "node:fs";
import { MAX_SOURCE_BYTES, type SourceHost } from "../compiler/check/program.js";

export { MAX_SOURCE_BYTES };

/**
 * Reads source files from disk: only regular files (a FIFO would block, `/dev/zero` never ends), at most
 * MAX_SOURCE_BYTES. The messages name the path, never the file's content.
 */
export const nodeHost: SourceHost = {
  read(path: string): string {
    // stat first: opening a FIFO for reading blocks until a writer comes.
    if (!statSync(path).isFile()) throw new Error("not a regular file");
    const fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
    try {
      if (!fstatSync(fd).isFile()) throw new Error("not a regular file");
      const buf = Buffer.alloc(MAX_SOURCE_BYTES + 1);
      let n = 0;
      for (let r; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, null)) > 0;) n += r;
      if (n > MAX_SOURCE_BYTES) throw new Error(`larger than the limit of ${MAX_SOURCE_BYTES} bytes`);
      return buf.toString("utf8", 0, n);
    } finally {
      closeSync(fd);
    }
  },
};
