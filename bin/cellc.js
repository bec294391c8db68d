#!/usr/bin/env node
import { main } from "../dist/compiler/cli.js";

const io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };
main(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    // A bug in cellc, not in the user's input: say so plainly; the stack only when asked for.
    process.stderr.write(`cellc: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
    if (process.env.CELLC_DEBUG) process.stderr.write(String(e && e.stack) + "\n");
    process.exitCode = 2;
  },
);
