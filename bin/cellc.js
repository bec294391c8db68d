#!/usr/bin/env node
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);

// Dawn prints warnings such as "maxDynamicUniformBuffersPerPipelineLayout artificially reduced" from
// native code straight to file descriptor 2, where nothing in the process can catch them. So a WebGPU run
// runs in a child whose standard error passes through a filter; CELLC_DEBUG=1 shows them.
const webgpu = args.some(
  (a, i) => a === "--backend=webgpu" || (a === "--backend" && args[i + 1] === "webgpu"),
);
if (webgpu && !process.env.CELLC_DEBUG && !process.env.CELLC_STDERR_FILTERED) runFiltered();
else runHere();

function runHere() {
  // A reader that goes away (`cellc ... | head`) is not an error: stop writing to it and finish quietly.
  const gone = new Set();
  for (const s of [process.stdout, process.stderr])
    s.on("error", (e) => {
      if (e.code === "EPIPE" || e.code === "ERR_STREAM_DESTROYED") gone.add(s);
      else throw e;
    });
  const write = (s, text) => {
    if (!gone.has(s)) s.write(text);
  };
  const io = { out: (s) => write(process.stdout, s), err: (s) => write(process.stderr, s) };
  import("../dist/cli/main.js")
    .then(({ main }) => main(args, io))
    .then(
      (code) => {
        process.exitCode = code;
      },
      (e) => {
        // A bug in cellc, not in the user's input: say so plainly; the stack only when asked for.
        write(process.stderr, `cellc: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
        if (process.env.CELLC_DEBUG) write(process.stderr, String(e && e.stack) + "\n");
        process.exitCode = 2;
      },
    );
}

function runFiltered() {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), ...args], {
    stdio: ["inherit", "inherit", "pipe"],
    env: { ...process.env, CELLC_STDERR_FILTERED: "1" },
  });
  process.stderr.on("error", () => {}); // a closed standard error: the child's output is dropped
  let pending = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    const lines = (pending + chunk).split("\n");
    pending = lines.pop();
    for (const l of lines)
      if (!/^Warning: .* artificially reduced from /.test(l)) process.stderr.write(l + "\n");
  });
  child.on("close", (code, signal) => {
    if (pending) process.stderr.write(pending);
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    } else process.exitCode = code ?? 2;
  });
  for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
}
