import { MAX_SOURCE_BYTES, type SourceHost } from "../compiler/check/program.js";
import { readBoundedFile } from "./files.js";

export { MAX_SOURCE_BYTES };

/**
 * Reads source files from disk through cli/files.ts: only regular files (a FIFO would block, `/dev/zero`
 * never ends), at most MAX_SOURCE_BYTES. The messages name the path, never the file's content.
 */
export const nodeHost: SourceHost = {
  read(path: string): string {
    return readBoundedFile(path, MAX_SOURCE_BYTES).toString("utf8");
  },
};
