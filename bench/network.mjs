#!/usr/bin/env node
// A network's training step (forward, loss, backward, update) on WebGPU, whole on the device against the
// same step run as on the host (outputs and gradients read back, loss and update on the host: how cellc
// trained on WebGPU before the network artifact), with the wasm backend beside them. Per configuration:
// median ms/step over --reps steps after warm-up (min-max), read-backs per step, and the process's peak
// RSS. Synthetic regression data: x [T, B, D] -> y [B, 1] on the last step, MSE, Adam with clipping.
//   node bench/network.mjs [--sizes S,M] [--cells lstm,gru] [--reps 5] [--impls device,host,wasm2]
// On a CPU Vulkan driver (lavapipe) the times say how much the round trips cost, not what a GPU does.
import { readFileSync } from "node:fs";
import { compileNetwork, Network, Trainer } from "../dist/api/index.js";
import { createBackend } from "../dist/runtime/backends.js";
import { Rng } from "../dist/runtime/init.js";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
};
const SIZES = { XS: [10, 8, 32, 32], S: [50, 32, 128, 128], M: [100, 64, 256, 256], L: [100, 64, 512, 512] };
const sizes = arg("sizes", "S,M").split(",");
const cells = arg("cells", "lstm,gru").split(",");
const impls = arg("impls", "device,host,wasm2").split(",");
const REPS = Number(arg("reps", "5"));
const host = { read: (p) => readFileSync(p, "utf8") };

function data(T, B, D) {
  return {
    name: "synthetic",
    summary: `synthetic: x [T, B, ${D}] -> y [B, 1]`,
    T,
    inputSize: D,
    inputKind: "real",
    outputSize: 1,
    on: "last",
    loss: "mse",
    batch(_split, n, rng) {
      const x = Float32Array.from({ length: T * n * D }, () => rng.normal());
      const y = Float32Array.from({ length: n }, () => rng.normal());
      return {
        inputs: new Map([["x", { dtype: "f32", shape: [T, n, D], data: x }]]),
        target: { dtype: "f32", shape: [n, 1], data: y },
      };
    },
  };
}

const gpu = impls.some((i) => i !== "wasm2") ? await createBackend("webgpu") : undefined;
if (gpu) console.log(`adapter: ${gpu.adapterName}`);
console.log(`impl     cell  size  ms/step (min-max)          read-backs/step  peak RSS`);
for (const size of sizes) {
  const [T, B, D, H] = SIZES[size];
  for (const cellName of cells) {
    const file = `examples/cells/${cellName}.cell`;
    const ds = data(T, B, D);
    const artifact = compileNetwork(undefined, {
      file,
      host,
      data: ds,
      dims: { H },
      optimizer: "adam",
    }).artifact;
    for (const impl of impls) {
      const backend = impl === "wasm2" ? await createBackend("wasm", { threads: 2 }) : gpu;
      const net = new Network(artifact, { seed: 1, backend, onDevice: impl === "device" });
      const t = new Trainer(net, ds, {
        steps: REPS + 2,
        batch: B,
        lr: 1e-3,
        optim: "adam",
        clip: 1,
        seed: 1,
      });
      const times = [];
      const ctx = gpu?.context;
      let reads = 0;
      for (let s = 0; s < REPS + 2; s++) {
        const before = ctx?.readBacks ?? 0;
        const t0 = performance.now();
        await t.step();
        if (s >= 2) {
          times.push(performance.now() - t0);
          reads += (ctx?.readBacks ?? 0) - before;
        }
      }
      times.sort((a, b) => a - b);
      const med = times[Math.floor(times.length / 2)];
      const rss = (process.resourceUsage().maxRSS / 1024).toFixed(0);
      console.log(
        `${impl.padEnd(8)} ${cellName.padEnd(5)} ${size.padEnd(5)} ${med.toFixed(1).padStart(8)} (${times[0].toFixed(1)}-${times.at(-1).toFixed(1)})`.padEnd(
          50,
        ) +
          `${impl === "wasm2" ? "-" : (reads / REPS).toFixed(1)}`.padEnd(17) +
          `${rss} MiB`,
      );
      void Rng;
    }
  }
}
process.exit(0);
