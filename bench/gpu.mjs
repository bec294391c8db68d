#!/usr/bin/env node
// The WebGPU benchmark, to run in one go on a machine with a real GPU (after `npm ci` and `npm run build`):
//   node bench/gpu.mjs [--sizes M,L] [--cells lstm,gru] [--reps 5] [--js-reps 1] [--js-sizes S,M,L]
//                      [--no-parity] [--small]
// First a parity check on this adapter: every built-in cell, two layers, bidirectional, with sequence
// lengths and initial states, forward and backward on WebGPU against the JS backend (relative 2e-3).
// Then LSTM and GRU forward (inference) and training step (forward + backward) on WebGPU and on the JS
// backend in the same process, with their ratio, GFLOP/s (2 FLOPs per multiply-add of the cell's matmuls;
// training 3x forward), launches per step, device memory and the process's peak RSS. Times include
// upload and read-back. Timings on a CPU Vulkan driver (lavapipe, --small) say nothing about a GPU.
import { readdirSync, readFileSync } from "node:fs";
import { compileCell, Model, tensor } from "../dist/api/index.js";
import { createNodeWebGpuBackend } from "../dist/runtime/webgpu/node.js";
import { launches } from "../dist/compiler/schedule/print.js";
import { compile } from "../dist/compiler/compile.js";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
};
const small = process.argv.includes("--small");
const SIZES = small
  ? { XS: [10, 8, 32, 32] }
  : { S: [50, 32, 128, 128], M: [100, 64, 256, 256], L: [100, 64, 512, 512], XL: [100, 256, 1024, 1024] };
const sizes = arg("sizes", small ? "XS" : "M,L").split(",");
const cells = arg("cells", "lstm,gru").split(",");
const REPS = Number(arg("reps", small ? "3" : "5"));
const JS_REPS = Number(arg("js-reps", "1"));
const root = new URL("../examples/cells/", import.meta.url);
const backend = await createNodeWebGpuBackend();
console.log(`adapter: ${backend.adapterName}`);

const jsSizes = arg("js-sizes", "S,M,L,XS").split(",");
// ---- Parity on this adapter.
const rng = (() => {
  let s = 12345;
  return () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
})();
const randn = (shape) =>
  tensor("f32", shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rng));
let worst = 0;
let checked = 0;
const parityFiles = process.argv.includes("--no-parity") ? [] : readdirSync(root);
for (const f of parityFiles.filter((n) => n.endsWith(".cell")).sort()) {
  const src = readFileSync(new URL(f, root), "utf8");
  const names = [...src.matchAll(/^cell\s+(\w+)/gm)].map((m) => m[1]);
  for (const name of names) {
    const cell = compileCell(src, {
      cell: name,
      host: { read: (p) => readFileSync(new URL(p, root), "utf8") },
    });
    const D = 5;
    const dims = Object.fromEntries(cell.signature.dims.map((d) => [d, d === "D" ? D : 6]));
    const opts = { dims, seed: 3, layers: 2, bidirectional: true };
    let cpu;
    try {
      cpu = new Model(cell, opts);
    } catch {
      cpu = new Model(cell, { dims, seed: 3 }); // a cell that cannot stack: one layer
    }
    const gpu = new Model(cell, {
      params: cpu.params,
      layers: cpu.layers,
      bidirectional: cpu.directions > 1,
      backend,
    });
    const T = 7,
      B = 3;
    const inputs = Object.fromEntries(
      cell.signature.inputs.map((i) => [
        i.name,
        randn([T, B, ...i.type.dims.map((d) => (d.terms.D ? D : 6))]),
      ]),
    );
    const seqLens = [7, 4, 1];
    const a = cpu.forward(inputs, { seqLens });
    const b = await gpu.forwardAsync(inputs, { seqLens });
    const ga = cpu.backward(a);
    const gb = await gpu.backwardAsync(b);
    const cmp = (x, y) => {
      let scale = 1e-3;
      for (const v of x.data) scale = Math.max(scale, Math.abs(v));
      for (let i = 0; i < x.data.length; i++)
        worst = Math.max(worst, Math.abs(x.data[i] - y.data[i]) / scale);
    };
    for (const [k, v] of a.outputs) cmp(v, b.outputs.get(k));
    for (const [k, v] of ga.params) cmp(v, gb.params.get(k));
    for (const [k, v] of ga.inputs) cmp(v, gb.inputs.get(k));
    checked++;
  }
}
console.log(
  `parity: ${checked} cells, 2 layers, bidirectional, seq_lens: largest difference to JS (relative to each tensor's largest value) ${worst.toExponential(2)} ${worst < 2e-3 ? "OK" : "FAIL"}`,
);

// ---- Speed.
const median = (xs) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
async function time(fn, reps) {
  await fn(); // warm-up: pipelines compiled and cached
  const ms = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}
console.log(`\nmedians of ${REPS} (JS: ${JS_REPS}) after a warm-up, float32, including upload and read-back`);
console.log(
  "| cell | size | webgpu fwd ms | GFLOP/s | js fwd ms | js/webgpu | webgpu train ms | GFLOP/s | js train ms | js/webgpu | launches/step fwd, bwd | device MiB |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
for (const name of cells)
  for (const size of sizes) {
    const [T, B, D, H] = SIZES[size];
    const src = readFileSync(new URL(`${name}.cell`, root), "utf8");
    const cell = compileCell(src);
    const sched = compile(src).schedule;
    const cpu = new Model(cell, { dims: { D, H }, seed: 1 });
    const gpu = new Model(cell, { params: cpu.params, backend });
    const x = tensor(
      "f32",
      [T, B, D],
      Float32Array.from({ length: T * B * D }, (_, i) => Math.sin(i * 0.37)),
    );
    const gF = await time(() => gpu.forwardAsync({ x }, { train: false }), REPS);
    const gT = await time(async () => gpu.backwardAsync(await gpu.forwardAsync({ x })), REPS);
    const skipJs = !jsSizes.includes(size);
    const cF = skipJs ? NaN : await time(() => cpu.forward({ x }, { train: false }), JS_REPS);
    const cT = skipJs ? NaN : await time(() => cpu.backward(cpu.forward({ x })), JS_REPS);
    const macs = cell.signature.params
      .filter((p) => p.type.dims.length === 2)
      .reduce((acc, p) => acc + p.type.dims.reduce((m, d) => m * (d.terms.H ? H : D), 1), 0);
    const flops = 2 * macs * T * B;
    const gf = (ms, k) => ((k * flops) / (ms * 1e6)).toFixed(1);
    const dev = Math.max(...[...gpu["runners"].values()].map((r) => r.deviceBytes)) / 2 ** 20;
    console.log(
      `| ${name} | ${size} T${T} B${B} D${D} H${H} | ${gF.toFixed(1)} | ${gf(gF, 1)} | ${cF.toFixed(1)} | ${(cF / gF).toFixed(1)}x | ${gT.toFixed(1)} | ${gf(gT, 3)} | ${cT.toFixed(1)} | ${(cT / gT).toFixed(1)}x | ${launches(sched.forward.step)}, ${launches(sched.backward.loop)} | ${dev.toFixed(1)} |`,
    );
  }
console.log(`process peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
process.exit(worst < 2e-3 ? 0 : 1);
