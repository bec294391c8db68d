import type { CellIR } from "./ir/cell.js";
import type { Parsed } from "./cli-args.js";
import type { Io } from "./cli.js";
import type { SourceMap } from "./diag/span.js";
import { CliError } from "./cli.js";

export async function emitCompiled(_ir: CellIR, args: Parsed, _io: Io, _sources: SourceMap): Promise<void> {
  throw new CliError(`--emit ${args.options.emit ?? args.options.target} is not available yet`);
}
