#!/usr/bin/env node
// The GEMM alone, on the RNN's shapes: TensorFlow.js wasm's matMul (XNNPACK) against cellc's WebAssembly
// GEMM (one thread, packed weight panels as the runtime keeps them), in one process. A script, not a test.
//   npm run build && node bench/peers/gemm.mjs
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cpus } from "node:os";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = join(here, "../..");
const { buildKernelModule } = await import(join(root, "dist/compiler/wasm/kernels.js"));
const { packedBytes, DEFAULT_TILING } = await import(join(root, "dist/compiler/wasm/gemm.js"));
const tf = await import("@tensorflow/tfjs");
const w = await import("@tensorflow/tfjs-backend-wasm");
w.setWasmPaths(join(here, "node_modules/@tensorflow/tfjs-backend-wasm/dist/"));
await tf.setBackend("wasm");
await tf.ready();

// C[R, M] = A[R, K] W[M, K]^T: the gate GEMM (per step: R = B; hoisted: R = T*B; M = G*H).
const SHAPES = [
  [32, 512, 128],
  [64, 1024, 256],
  [64, 2048, 512],
  [1600, 512, 128],
  [6400, 1024, 256],
];
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function time(fn) {
  for (let i = 0; i < 3; i++) fn();
  const ms = [];
  for (let r = 0; r < 7; r++) {
    let n = 0;
    const t0 = performance.now();
    do {
      fn();
      n++;
    } while (performance.now() - t0 < 50);
    ms.push((performance.now() - t0) / n);
  }
  return median(ms);
}

const { bytes } = buildKernelModule(DEFAULT_TILING);
let memory, e;
console.log(`${cpus()[0].model}, Node ${process.version}; GFLOP/s (2 per multiply-add), medians`);
console.log("| R | M | K | tfjs-wasm matMul | cellc wasm (packed) | cellc / tfjs |");
console.log("|---|---|---|---|---|---|");
for (const [R, M, K] of SHAPES) {
  const flops = 2 * R * M * K;
  const a = tf.randomNormal([R, K]);
  // tfjs-wasm's fast path (XNNPACK) takes B as [K, M]; its transposed form is far slower here.
  const b = tf.randomNormal([K, M]);
  const tfMs = time(() => {
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
  });
  a.dispose();
  b.dispose();
  memory ??= new WebAssembly.Memory({ initial: 2048, maximum: 65536, shared: true });
  e ??= new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
  // cellc: A and C in the memory, W packed once into panels (as a pass does), then mm_rows.
  const [A, P, C] = [0, R * K * 4, R * K * 4 + packedBytes(DEFAULT_TILING, M, K)].map((x) => 64 + x);
  const f = new Float32Array(memory.buffer);
  for (let i = 0; i < R * K + M * K; i++) f[A / 4 + i] = Math.sin(i);
  const W = C + R * M * 4 + 64;
  e.pack_t(P, W, K, M, K);
  const mine = time(() => e.mm_rows(C, M, A, K, P, R, M, K, 0));
  const [g1, g2] = [flops / (tfMs * 1e6), flops / (mine * 1e6)];
  console.log(`| ${R} | ${M} | ${K} | ${g1.toFixed(1)} | ${g2.toFixed(1)} | ${(g2 / g1).toFixed(2)} |`);
}
