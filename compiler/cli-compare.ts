// Placeholder until compare and gradflow land (issue 9): the commands are declared so that their modules can be built separately.
import type { Parsed } from "./cli-args.js";
import { CliError, type Io } from "./cli.js";

type CommandFn = (args: Parsed, io: Io) => Promise<number> | number;
const missing: CommandFn = (args) => {
  throw new CliError(`'${args.command}' is not built yet`);
};
export const compareCommands: Record<"compare" | "gradflow", CommandFn> = {
  compare: missing,
  gradflow: missing,
};
