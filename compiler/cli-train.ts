// Placeholder until training lands (issue 9): the commands are declared so that their modules can be built separately.
import type { Parsed } from "./cli-args.js";
import { CliError, type Io } from "./cli.js";

type CommandFn = (args: Parsed, io: Io) => Promise<number> | number;
const missing: CommandFn = (args) => {
  throw new CliError(`'${args.command}' is not built yet`);
};
export const trainCommands: Record<"init" | "train" | "sample", CommandFn> = {
  init: missing,
  train: missing,
  sample: missing,
};
