#!/usr/bin/env node
// Scan states against the step loop (a script, not a test), all in one run on the same machine:
//   - wasm on 2 threads at T = 4096, B = 16, D = H = 128 (--T, --B, --H): the minGRU training step (forward +
//     backward, no input gradient) as a scan, the time of its GEMMs alone (the same GEMM calls on the same
//     shapes), minGRU with the scan off (the step loop), and cellc's GRU;
//   - the scan's results against the step loop's at that T (float32, largest difference over the largest
//     value of each tensor);
//   - with --gpu, WebGPU (Dawn; lavapipe where there is no GPU: a CPU, timings for what they are):
//     dispatches per training step at two lengths, and the training step of minGRU and GRU.
//   node bench/scan.mjs [--reps 3] [--T 4096] [--gpu] [--gpu-T 512]
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
};
const root = fileURLToPath(new URL("..", import.meta.url));
const api = await import(`${root}/dist/api/index.js`);
const { createThreadedWasmBackend } = await import(`${root}/dist/runtime/cpu/wasm.js`);
const reps = Number(arg("reps", "3"));
const [T, B, D, H] = [Number(arg("T", "4096")), Number(arg("B", "16")), 128, Number(arg("H", "128"))];
const host = { read: (p) => readFileSync(p, "utf8") };
const compiled = (name, scan = true) => {
  const file = `${root}/examples/cells/${name}.cell`;
  return api.compileCell(readFileSync(file, "utf8"), { file, host, scan });
};

async function time(fn, n = reps) {
  // Two warm-ups: the first passes at a new size grow the wasm memory (its new pages' first touch).
  await fn();
  await fn();
  const ms = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return { median: ms[Math.floor(ms.length / 2)], min: ms[0], max: ms[ms.length - 1] };
}
const show = (t) => `${t.median.toFixed(1)} (${t.min.toFixed(0)}-${t.max.toFixed(0)})`;
const input = (dtype = "f32") =>
  api.tensor(
    dtype,
    [T, B, D],
    Float32Array.from({ length: T * B * D }, (_, i) => Math.sin(i * 0.37)),
  );

const wasm = await createThreadedWasmBackend(2);
// A training step as a readout drives it: the upstream gradient of the outputs given (made once), no
// gradient for the data. NO_DISPOSE=1: every step's outputs in new arrays.
const upstreams = new Map();
const step = (model, x) => async () => {
  const f = await model.forwardAsync({ x });
  const key = x.shape.join();
  if (!upstreams.has(key))
    upstreams.set(
      key,
      new Map([...f.outputs].map(([n, t]) => [n, { ...t, data: t.data.map((_, i) => Math.cos(i) * 1e-3) }])),
    );
  const g = await model.backwardAsync(f, { outputs: upstreams.get(key) }, { inputGrads: false });
  // As the network trainer does: the step's outputs go back to the model, to be written again next step.
  if (!process.env.NO_DISPOSE) model.dispose(f);
  return g;
};

console.log(`# cellc scans: ${cpus()[0].model}, ${cpus().length} cores, Node ${process.version}`);
console.log(
  `# wasm on 2 threads, T = ${T}, B = ${B}, D = ${D}, H = ${H}; medians of ${reps} after two warm-ups (min-max), ms`,
);
const x = input();
const rows = [];
const mingru = new api.Model(compiled("mingru"), { dims: { D, H }, seed: 1, backend: wasm });
rows.push(["minGRU, scan: training step", await time(step(mingru, x))]);
rows.push(["minGRU, scan: forward", await time(() => mingru.forward({ x }, { train: false }))]);

// The same GEMMs on the same shapes: forward X [TB, D] x P0^T [D, 2H]; the packed weight's gradient
// P0 += G^T [2H, TB] X [TB, D] (no input gradient, as the training step above).
const g = wasm.gemms;
const TB = T * B;
const [X, P, C, G, dP] = [TB * D, 2 * H * D, TB * 2 * H, TB * 2 * H, 2 * H * D].map((n) =>
  g.alloc(n).fill(0.01),
);
const gemms = await time(() => {
  g.nt(C, 0, 2 * H, X, 0, D, P, 0, D, TB, 2 * H, D);
  g.tn(dP, 0, D, G, 0, 2 * H, X, 0, D, TB, 2 * H, D);
});
rows.push(["minGRU's GEMMs alone (forward, weight gradient)", gemms]);

const loop = new api.Model(compiled("mingru", false), { params: mingru.params, backend: wasm });
rows.push(["minGRU, step loop (scan off): training step", await time(step(loop, x))]);
const gru = new api.Model(compiled("gru"), { dims: { D, H }, seed: 1, backend: wasm });
rows.push(["GRU: training step", await time(step(gru, x))]);

console.log("| what | ms |");
console.log("|---|---|");
for (const [what, t] of rows) console.log(`| ${what} | ${show(t)} |`);
const m = (what) => rows.find(([w]) => w.startsWith(what))[1].median;
console.log(
  `\nminGRU training step / its GEMMs alone: ${(m("minGRU, scan: training") / gemms.median).toFixed(2)}x; GRU / minGRU: ${(m("GRU: training") / m("minGRU, scan: training")).toFixed(1)}x; step loop / scan: ${(m("minGRU, step loop") / m("minGRU, scan: training")).toFixed(1)}x`,
);

// The scan against the step loop at this T, float32: every output and gradient.
const everything = async (model) => {
  const f = await model.forwardAsync({ x });
  const up = new Map([...f.outputs].map(([n, t]) => [n, { ...t, data: t.data.map((_, i) => Math.cos(i)) }]));
  const gr = await model.backwardAsync(f, { outputs: up });
  return new Map([...f.outputs, ...[...gr.params].map(([n, t]) => [`grad ${n}`, t])]);
};
const [a, b] = [await everything(mingru), await everything(loop)];
let worst = 0;
let where = "";
for (const [n, t] of b) {
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < t.data.length; i++) {
    scale = Math.max(scale, Math.abs(t.data[i]));
    diff = Math.max(diff, Math.abs(t.data[i] - a.get(n).data[i]));
  }
  if (diff / scale >= worst) [worst, where] = [diff / scale, n];
}
console.log(
  `scan against step loop at T = ${T}, float32: largest difference ${worst.toExponential(2)} of the largest value (${where})`,
);
await wasm.gemms.useThreads(1);

if (process.argv.includes("--gpu")) {
  const { createNodeWebGpuBackend } = await import(`${root}/dist/runtime/webgpu/node.js`);
  const gpu = await createNodeWebGpuBackend();
  const gT = Number(arg("gpu-T", "512"));
  console.log(
    `\n# WebGPU (Dawn in Node: lavapipe, a CPU, where there is no GPU), B = ${B}, D = ${D}, H = ${H}`,
  );
  const dispatches = async (name, len) => {
    const model = new api.Model(compiled(name), { dims: { D, H }, seed: 1, backend: gpu });
    const xs = api.tensor("f32", [len, B, D], new Float32Array(len * B * D).fill(0.1));
    await step(model, xs)();
    return [...model.runners.values()].reduce((s, r) => s + r.dispatches, 0);
  };
  for (const name of ["mingru", "gru"])
    console.log(
      `${name}: dispatches per training step at T = 64: ${await dispatches(name, 64)}, at T = ${gT}: ${await dispatches(name, gT)}`,
    );
  const xs = api.tensor(
    "f32",
    [gT, B, D],
    Float32Array.from({ length: gT * B * D }, (_, i) => Math.sin(i)),
  );
  for (const name of ["mingru", "gru"]) {
    const model = new api.Model(compiled(name), { dims: { D, H }, seed: 1, backend: gpu });
    console.log(
      `${name}: WebGPU training step at T = ${gT}: ${show(await time(step(model, xs), Math.min(reps, 2)))} ms`,
    );
  }
}
process.exit(0);
