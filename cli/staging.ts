// An output folder written all at once: files go to a hidden folder inside it first, and are renamed
// into place only when everything is done, so a failed or interrupted run leaves no half-written result.
import { mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { CliError } from "./io.js";

export class Staging {
  private readonly tmp: string;
  private readonly files: string[] = [];

  constructor(readonly out: string) {
    try {
      mkdirSync(out, { recursive: true });
      if (!statSync(out).isDirectory()) throw new Error("not a folder");
      this.tmp = mkdtempSync(join(out, ".cellc-"));
    } catch (e) {
      const code = (e as { code?: string }).code;
      throw new CliError(
        `cannot write to '${out}': ${code === "EEXIST" ? "not a folder" : (e as Error).message}`,
      );
    }
  }

  /** `rel` is a path inside the output folder, made by the caller (never user text). */
  write(rel: string, data: string | Uint8Array): void {
    const path = join(this.tmp, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, data);
    this.files.push(rel);
  }

  /** Each file renamed into place (one rename each: a reader sees the old file or the new one). */
  commit(): void {
    try {
      for (const rel of this.files) {
        const to = join(this.out, rel);
        mkdirSync(dirname(to), { recursive: true });
        renameSync(join(this.tmp, rel), to);
      }
    } catch (e) {
      throw new CliError(`cannot write to '${this.out}': ${(e as Error).message}`);
    } finally {
      this.abort();
    }
  }

  abort(): void {
    rmSync(this.tmp, { recursive: true, force: true });
  }
}
