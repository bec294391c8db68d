import type { Parsed } from "./cli-args.js";
import type { Io } from "./cli.js";
import { CliError } from "./cli.js";

export async function runCommand(_args: Parsed, _io: Io): Promise<number> {
  throw new CliError("run is not available yet");
}
