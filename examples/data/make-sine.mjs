// Writes data of your own kind for `cellc train/compare/gradflow --data`: noisy sine waves.
//   node examples/data/make-sine.mjs [DIR]        (after npm ci, which builds dist/; DIR: out/data)
// Four safetensors files, time-major as cellc takes them:
//   sine.train.safetensors, sine.eval.safetensors      forecasting: x [T, N, 1], T = 40 values of
//     sin(w t + phase) + noise (w in [0.1, 0.5]); target [N, 1], the clean value 5 steps after the window
//     (real targets: MSE, read out on the last step);
//   waves.train.safetensors, waves.eval.safetensors    classes: the same windows; target [N], which of
//     four frequency bands w lies in (class ids: cross-entropy, with the accuracy reported).
// 1024 training and 256 eval rows each; the same files every time (a fixed seed).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tensor, writeSafetensors } from "../../dist/api/index.js";

const dir = process.argv[2] ?? "out/data";
const T = 40;
const AHEAD = 5;
const BANDS = 4;
const [W0, W1] = [0.1, 0.5];
let state = 20241207;
/** A small LCG: any generator will do, this one makes the same files on every platform. */
const random = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;

function windows(N) {
  const x = new Float32Array(T * N);
  const next = new Float32Array(N);
  const band = new Int32Array(N);
  for (let n = 0; n < N; n++) {
    band[n] = Math.floor(random() * BANDS);
    const w = W0 + ((band[n] + random()) * (W1 - W0)) / BANDS;
    const phase = 2 * Math.PI * random();
    for (let t = 0; t < T; t++) x[t * N + n] = Math.sin(w * t + phase) + 0.1 * (random() - 0.5);
    next[n] = Math.sin(w * (T - 1 + AHEAD) + phase);
  }
  return {
    x: tensor("f32", [T, N, 1], x),
    next: tensor("f32", [N, 1], next),
    band: tensor("i32", [N], band),
  };
}

mkdirSync(dir, { recursive: true });
for (const [split, N] of [
  ["train", 1024],
  ["eval", 256],
]) {
  const d = windows(N);
  writeFileSync(join(dir, `sine.${split}.safetensors`), writeSafetensors({ x: d.x, target: d.next }));
  writeFileSync(join(dir, `waves.${split}.safetensors`), writeSafetensors({ x: d.x, target: d.band }));
}
console.log(
  `wrote ${dir}/sine.{train,eval}.safetensors (forecast 5 steps ahead) and ${dir}/waves.{train,eval}.safetensors (4 frequency bands)`,
);
