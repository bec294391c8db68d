#!/usr/bin/env node
// The GEMM alone, on the RNN's shapes: TensorFlow.js wasm's matMul (XNNPACK) against cellc's WebAssembly
// GEMM (one thread, packed weight panels as the runtime keeps them), in one process. A script, not a test.
//   npm run build && node bench/peers/gemm.mjs
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cpus } from "node:os";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = join(here, "../..");
const { buildKernelModule } = await import(join(root, "dist/kernels/library.js"));
const { packedBytes, DEFAULT_TILING } = await import(join(root, "dist/kernels/gemm.js"));
const { engineTiling } = await import(join(root, "dist/runtime/wasm/features.js"));
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

// cellc's module in SIMD128 alone, and as the runtime builds it here (relaxed SIMD's fused multiply-add
// where the engine has it; tfjs-wasm 4.x ships no relaxed-SIMD build, so it cannot use it).
const engine = engineTiling();
const variants = [DEFAULT_TILING, ...(engine.fma ? [engine] : [])];
let memory;
const exports = [];
console.log(`${cpus()[0].model}, Node ${process.version}; GFLOP/s (2 per multiply-add), medians`);
const head = ["tfjs-wasm matMul", "cellc SIMD128", ...(engine.fma ? ["cellc relaxed SIMD (runtime)"] : [])];
console.log(
  `| R | M | K | ${head.join(" | ")} | ${head
    .slice(1)
    .map((h) => `${h} / tfjs`)
    .join(" | ")} |`,
);
console.log(
  `|---|---|---|${head.map(() => "---|").join("")}${head
    .slice(1)
    .map(() => "---|")
    .join("")}`,
);
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
  if (!exports.length)
    for (const t of variants) {
      const mod = new WebAssembly.Module(buildKernelModule(t).bytes);
      exports.push(new WebAssembly.Instance(mod, { env: { memory } }).exports);
    }
  // cellc: A and C in the memory, W packed once into panels (as a pass does), then mm_rows.
  const [A, P, C] = [0, R * K * 4, R * K * 4 + packedBytes(DEFAULT_TILING, M, K)].map((x) => 64 + x);
  const f = new Float32Array(memory.buffer);
  for (let i = 0; i < R * K + M * K; i++) f[A / 4 + i] = Math.sin(i);
  const W = C + R * M * 4 + 64;
  const g1 = flops / (tfMs * 1e6);
  const mine = exports.map((e) => {
    e.pack_t(P, W, K, M, K);
    return flops / (time(() => e.mm_rows(C, M, A, K, P, R, M, K, 0)) * 1e6);
  });
  const cells = [g1, ...mine].map((g) => g.toFixed(1));
  const ratios = mine.map((g) => (g / g1).toFixed(2));
  console.log(`| ${R} | ${M} | ${K} | ${cells.join(" | ")} | ${ratios.join(" | ")} |`);
}
