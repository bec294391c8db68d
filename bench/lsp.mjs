#!/usr/bin/env node
// How long the language server takes to re-check a 500-line .cell file after an edit (a script, not a
// test): the pure re-check in-process (parse, check every cell, place the diagnostics: what the server
// does per edit), and the round trip an editor sees over stdio (didChange to publishDiagnostics, with the
// server's debounce set to 0). Prints milliseconds per re-check: min, median, p95 and max of --edits
// edits after a warm-up, and the machine's load average (on shared cores the median tracks it). Needs
// the build (`npm run build`, or `npx tsc -p tsconfig.build.json`).
//   node bench/lsp.mjs [--lines 500] [--edits 50]
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  createMessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
} from "vscode-languageserver/node";
import { Analysis, fileDiagnostics } from "../dist/compiler/service/index.js";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
};
const LINES = arg("lines", 500);
const EDITS = arg("edits", 50);

/** Cells of 50 lines each: declarations, a chain of gate equations, the next state, the output. */
function source(lines) {
  const out = [];
  for (let c = 0; out.length + 50 <= lines; c++) {
    out.push(`# cell ${c}`, `cell c${c} {`, "  input  x[D]", "  state  h[H], m[H]");
    out.push(
      "  param  W, V : [H, D] ~ xavier",
      "  param  U : [H, H] ~ orthogonal",
      "  param  b : [H] = 0",
      "",
    );
    out.push("  g0 = sigmoid(W @ x + U @ h + b)");
    for (let i = 1; i <= 36; i++) out.push(`  g${i} = tanh(g${i - 1} * m + V @ x) * 0.5 + g${i - 1}`);
    out.push("  m' = g36 * m + (1 - g36) * g0", "  h' = tanh(m') * g35", "  output h'", "}", "");
  }
  return out.join("\n");
}

const stats = (ms) => {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  // The minimum says what the code costs; the median and p95 also what else the machine is doing.
  return `min ${s[0].toFixed(2)} ms, median ${q(0.5).toFixed(2)} ms, p95 ${q(0.95).toFixed(2)} ms, max ${s[s.length - 1].toFixed(2)} ms`;
};

const dir = mkdtempSync(join(tmpdir(), "cellc-bench-lsp-"));
const path = join(dir, "big.cell");
const base = source(LINES);
writeFileSync(path, base);
// Each edit renames one use of a gate and back: the file alternates between an error and none.
const edited = (k) => (k % 2 ? base.replace("g20 * m", "g2O * m") : base);
console.log(`load average ${loadavg()[0].toFixed(2)} on ${cpus().length} cores`);
console.log(`${base.split("\n").length} lines, ${base.length} bytes, ${EDITS} edits`);

// In-process: what one re-check costs.
const host = { read: () => base };
const inProcess = [];
for (let k = 0; k < EDITS + 10; k++) {
  const text = edited(k);
  const t0 = performance.now();
  const a = new Analysis(path, { read: (p) => (p === path ? text : host.read(p)) });
  fileDiagnostics(a, path);
  if (k >= 10) inProcess.push(performance.now() - t0);
}
console.log(`re-check in-process:       ${stats(inProcess)}`);

// Over stdio, as an editor: didChange -> publishDiagnostics.
const child = spawn(process.execPath, ["bin/cellc.js", "lsp", "--stdio"], {
  stdio: ["pipe", "pipe", "inherit"],
});
const rpc = createMessageConnection(
  new StreamMessageReader(child.stdout),
  new StreamMessageWriter(child.stdin),
);
let waiting;
rpc.onNotification("textDocument/publishDiagnostics", (p) => waiting?.(p));
rpc.listen();
await rpc.sendRequest("initialize", {
  processId: process.pid,
  rootUri: null,
  capabilities: {},
  initializationOptions: { debounceMs: 0 },
});
await rpc.sendNotification("initialized", {});
const uri = pathToFileURL(path).href;
const published = (version) =>
  new Promise((resolve) => {
    waiting = (p) => {
      if (p.uri === uri && p.version === version) resolve(p);
    };
  });
let ready = published(1);
await rpc.sendNotification("textDocument/didOpen", {
  textDocument: { uri, languageId: "cell", version: 1, text: base },
});
await ready;
const overStdio = [];
for (let k = 1; k <= EDITS + 10; k++) {
  const version = k + 1;
  ready = published(version);
  const t0 = performance.now();
  await rpc.sendNotification("textDocument/didChange", {
    textDocument: { uri, version },
    contentChanges: [{ text: edited(k) }],
  });
  const p = await ready;
  if (k > 10) overStdio.push(performance.now() - t0);
  if ((k % 2 === 1) !== p.diagnostics.some((d) => d.code === "E010"))
    throw new Error(`edit ${k}: wrong diagnostics ${JSON.stringify(p.diagnostics.map((d) => d.message))}`);
}
console.log(`re-check over stdio (LSP): ${stats(overStdio)}`);
await rpc.sendRequest("shutdown");
await rpc.sendNotification("exit");
rpc.dispose();
