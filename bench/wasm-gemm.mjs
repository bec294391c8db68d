#!/usr/bin/env node
// GEMM throughput of the wasm kernels (after `npm run build`):
//   node bench/wasm-gemm.mjs            the three forms on the RNN's shapes, 1 and 2 threads, and plain JS
//   node bench/wasm-gemm.mjs --quick    fewer shapes and repetitions
//   node bench/wasm-gemm.mjs --tiling 4,8,256,128   mr,nr,kc,nc of the micro-kernel
//   node bench/wasm-gemm.mjs --json FILE            also write the figures as JSON
// The module is built as the runtime builds it (fused multiply-adds where relaxed SIMD exists; --no-fma
// for plain SIMD128). GFLOP/s counts 2 per multiply-add; each figure is the median of several timed calls
// after a warm-up; `foreign` is the cores busy with other processes meanwhile (/proc/stat).
import { writeFileSync } from "node:fs";
import { buildKernelModule } from "../dist/kernels/library.js";
import { engineTiling } from "../dist/runtime/wasm/features.js";
import { machine, meter } from "./load.mjs";

const quick = process.argv.includes("--quick");
const ti = process.argv.indexOf("--tiling");
const tiling =
  ti > 0
    ? Object.fromEntries(
        process.argv[ti + 1].split(",").map((v, i) => [["mr", "nr", "kc", "nc"][i], Number(v)]),
      )
    : undefined;
const noThreads = process.argv.includes("--no-threads");

const json =
  process.argv.indexOf("--json") > 0 ? process.argv[process.argv.indexOf("--json") + 1] : undefined;
const { bytes, tiling: t } = buildKernelModule({
  ...engineTiling(),
  ...tiling,
  ...(process.argv.includes("--no-fma") ? { fma: false } : {}),
});
const PAGES = 4096; // 256 MiB
const memory = new WebAssembly.Memory({ initial: PAGES, maximum: PAGES, shared: true });
const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
const f32 = new Float32Array(memory.buffer);
for (let i = 0; i < f32.length; i += 1) f32[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;

const shapes = quick
  ? [
      [32, 512, 128],
      [6400, 512, 128],
      [64, 1024, 256],
      [6400, 2048, 512],
    ]
  : [
      [32, 512, 128],
      [32, 1024, 256],
      [64, 1024, 256],
      [64, 2048, 512],
      [1600, 512, 128],
      [3200, 1024, 256],
      [6400, 1024, 256],
      [6400, 2048, 512],
    ];

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** Foreign load over every timed figure (cores busy with other processes). */
const loads = [];
function time(fn, flops) {
  fn();
  const reps = [];
  let total = 0;
  const m = meter();
  const minReps = quick ? 3 : 5;
  while (reps.length < minReps || (total < 0.3 && reps.length < 200)) {
    const t0 = performance.now();
    fn();
    const dt = (performance.now() - t0) / 1000;
    reps.push(dt);
    total += dt;
  }
  loads.push(m.stop().foreign);
  return flops / median(reps) / 1e9;
}

// Plain JS, 4x4 register-blocked C[R,M] = A[R,K] · P[M,K]^T (for comparison, as in issue 7).
function jsGemmNT(C, A, P, R, M, K) {
  for (let r = 0; r < R; r += 4)
    for (let m = 0; m < M; m += 4) {
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      const a0 = r * K, a1 = a0 + K, a2 = a1 + K, a3 = a2 + K;
      const p0 = m * K, p1 = p0 + K, p2 = p1 + K, p3 = p2 + K;
      for (let k = 0; k < K; k++) {
        const x0 = A[a0 + k], x1 = A[a1 + k], x2 = A[a2 + k], x3 = A[a3 + k];
        const y0 = P[p0 + k], y1 = P[p1 + k], y2 = P[p2 + k], y3 = P[p3 + k];
        c00 += x0 * y0; c01 += x0 * y1; c02 += x0 * y2; c03 += x0 * y3;
        c10 += x1 * y0; c11 += x1 * y1; c12 += x1 * y2; c13 += x1 * y3;
        c20 += x2 * y0; c21 += x2 * y1; c22 += x2 * y2; c23 += x2 * y3;
        c30 += x3 * y0; c31 += x3 * y1; c32 += x3 * y2; c33 += x3 * y3;
      }
      const c = r * M + m;
      C[c] = c00; C[c + 1] = c01; C[c + 2] = c02; C[c + 3] = c03;
      C[c + M] = c10; C[c + M + 1] = c11; C[c + M + 2] = c12; C[c + M + 3] = c13;
      C[c + 2 * M] = c20; C[c + 2 * M + 1] = c21; C[c + 2 * M + 2] = c22; C[c + 2 * M + 3] = c23;
      C[c + 3 * M] = c30; C[c + 3 * M + 1] = c31; C[c + 3 * M + 2] = c32; C[c + 3 * M + 3] = c33;
    }
} // prettier-ignore

let pool, pg;
const { gemm, poolGemm } = noThreads ? {} : await import("../dist/runtime/wasm/gemm.js");
if (!noThreads) {
  const { createNodePool } = await import("../dist/runtime/wasm/node.js");
  pool = await createNodePool({ module: new WebAssembly.Module(bytes), memory, threads: 2, control: 0 });
  pg = poolGemm(pool, t);
}

console.log(machine());
console.log(
  `tiling mr=${t.mr} nr=${t.nr} kc=${t.kc} nc=${t.nc}${t.fma ? ", fused multiply-add (relaxed SIMD)" : ", SIMD128"}; GFLOP/s (2 per multiply-add)`,
);
console.log("form    R     M     K   | wasm 1T  (packed) | wasm 2T  speedup | js 4x4 | foreign");
const rows = [];
const MB = 1 << 20;
for (const [R, M, K] of shapes) {
  const flops = 2 * R * M * K;
  // Regions: 1 KiB control, then operands 16-byte aligned.
  const A = 1 * MB,
    P = A + 64 * MB,
    C = P + 16 * MB,
    S = C + 64 * MB;
  for (const form of ["nt", "nn", "tn"]) {
    const ex = inst.exports;
    // nt: C[R,M] = A[R,K] P[M,K]^T; nn: C[R,K] = G[R,M] P[M,K]; tn: D[M,K] = G[R,M]^T X[R,K]
    const args = {
      nt: [C, M, A, K, P, K, R, M, K, 0, S],
      nn: [C, K, A, M, P, K, R, M, K, 0, S],
      tn: [C, K, A, M, P, K, R, M, K, 0, S],
    }[form];
    const first = loads.length;
    const one = time(() => ex[`gemm_${form}`](...args), flops);
    let packed = "";
    if (form === "nt") {
      ex.pack_t(S, P, K, M, K);
      packed = time(() => ex.mm_rows(C, M, A, K, S, R, M, K, 0), flops).toFixed(1);
    }
    let two = "",
      speed = "";
    if (pool && !process.argv.includes("--skip-2t")) {
      const g = time(() => gemm(pg, form, args), flops);
      two = g.toFixed(1);
      speed = (g / one).toFixed(2) + "x";
    }
    let js = "";
    if (form === "nt" && R * M * K <= (quick ? 1 << 27 : 1 << 30)) {
      const C32 = new Float32Array(R * M),
        A32 = f32.subarray(0, R * K),
        P32 = f32.subarray(0, M * K);
      js = time(() => jsGemmNT(C32, A32, P32, R, M, K), flops).toFixed(1);
    }
    const foreign = Math.max(...loads.slice(first));
    rows.push({ form, R, M, K, one, packed: packed ? Number(packed) : undefined, two: two ? Number(two) : undefined, foreign }); // prettier-ignore
    console.log(
      `${form.padEnd(5)} ${String(R).padStart(5)} ${String(M).padStart(5)} ${String(K).padStart(5)} | ` +
        `${one.toFixed(1).padStart(6)}  ${packed.padStart(8)} | ${two.padStart(6)}  ${speed.padStart(7)} | ${js.padStart(6)} | ${foreign.toFixed(1)}`,
    );
  }
}
await pool?.close();
if (json) writeFileSync(json, JSON.stringify({ machine: machine(), tiling: t, rows }, null, 1));
