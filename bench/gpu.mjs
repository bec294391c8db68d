#!/usr/bin/env node
// The WebGPU benchmark, to run in one go on a machine with a real GPU (after `npm ci`):
//   node bench/gpu.mjs            parity tests on this adapter, then LSTM T=100 B=64 D=H=256
//   node bench/gpu.mjs --small    a quick run of the same (T=10 B=8 D=H=32), e.g. on a CPU driver
// Prints the adapter, the median time of forward and forward+backward on WebGPU and on the JS backend in
// the same process (and their ratio), device memory of the sequence, and the process's peak RSS.
// Timings on a CPU Vulkan driver (lavapipe) say nothing about a GPU.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { compileCell, Model, tensor } from "../dist/runtime/index.js";
import { createNodeWebGpuBackend } from "../dist/runtime/webgpu/node.js";

const small = process.argv.includes("--small");
const skipParity = process.argv.includes("--no-parity");
const [T, B, D, H] = small ? [10, 8, 32, 32] : [100, 64, 256, 256];
const REPS = small ? 3 : 5;

if (!skipParity) {
  console.log("parity tests (WebGPU vs JS, PyTorch fixtures on WebGPU):");
  execFileSync("npx", ["vitest", "run", "test/webgpu", "test/reference"], {
    stdio: "inherit",
    env: { ...process.env, CELLC_REQUIRE_WEBGPU: "1" },
  });
}

const backend = await createNodeWebGpuBackend();
const cell = compileCell(readFileSync(new URL("../examples/cells/lstm.cell", import.meta.url), "utf8"));
const cpu = new Model(cell, { dims: { D, H }, seed: 1 });
const gpu = new Model(cell, { params: cpu.params, backend });
const x = tensor(
  "f32",
  [T, B, D],
  Float32Array.from({ length: T * B * D }, (_, i) => Math.sin(i * 0.37)),
);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
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

const gpuFwd = await time(() => gpu.forwardAsync({ x }, { train: false }), REPS);
const gpuTrain = await time(async () => gpu.backwardAsync(await gpu.forwardAsync({ x })), REPS);
const deviceBytes = Math.max(...[...gpu["runners"].values()].map((r) => r.deviceBytes));
const cpuFwd = await time(() => cpu.forward({ x }, { train: false }), 1);
const cpuTrain = await time(() => cpu.backward(cpu.forward({ x })), 1);

const fmt = (ms) => `${ms.toFixed(1)} ms`;
console.log(`\nadapter: ${backend.adapterName}`);
console.log(
  `LSTM T=${T} B=${B} D=${D} H=${H}, float32, median of ${REPS} (JS: 1) after a warm-up, including upload and read-back`,
);
console.log(
  `  forward            webgpu ${fmt(gpuFwd)}   js ${fmt(cpuFwd)}   js/webgpu ${(cpuFwd / gpuFwd).toFixed(2)}x`,
);
console.log(
  `  forward+backward   webgpu ${fmt(gpuTrain)}   js ${fmt(cpuTrain)}   js/webgpu ${(cpuTrain / gpuTrain).toFixed(2)}x`,
);
console.log(`  device memory of one training sequence: ${(deviceBytes / 2 ** 20).toFixed(1)} MiB`);
console.log(`  process peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
process.exit(0);
