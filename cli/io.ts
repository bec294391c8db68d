// What every command shares: where it writes, and the error that ends it with a message and exit code 1.
/** A failure the user can act on: printed as its message, exit code 1, no stack trace. */
export class CliError extends Error {}

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}
