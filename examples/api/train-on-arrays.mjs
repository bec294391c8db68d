// Train a cell on your own arrays, then predict with it: the library API end to end.
//   node examples/api/train-on-arrays.mjs          (after npm ci, which builds dist/)
// The arrays: windows of T = 30 values of a noisy sine of random frequency and phase; the target is the
// value that comes next. x is time-major, [T, N, 1]; target is [N, 1] (one value per sequence, so the
// network reads out on the last step).
import { readFileSync } from "node:fs";
import {
  dataFromSafetensors,
  Network,
  networkFor,
  readSafetensors,
  tensor,
  Trainer,
  writeSafetensors,
} from "../../dist/api/index.js";

const T = 30;
const N = 600;
let seed = 1;
const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32; // any generator will do
const x = new Float32Array(T * N);
const y = new Float32Array(N);
for (let n = 0; n < N; n++) {
  const w = 0.15 + 0.35 * random();
  const phase = 2 * Math.PI * random();
  for (let t = 0; t < T; t++) x[t * N + n] = Math.sin(w * t + phase) + 0.05 * (random() - 0.5);
  y[n] = Math.sin(w * T + phase);
}

// Tensors by name: the cell's input ('x' in gru.cell) and 'target'. Without an eval set the last tenth of
// the rows is held out; readSafetensors(bytes) gives such a map from a file.
const data = dataFromSafetensors(
  new Map([
    ["x", tensor("f32", [T, N, 1], x)],
    ["target", tensor("f32", [N, 1], y)],
  ]),
  undefined,
  { inputs: ["x"] },
);
console.log(data.summary);

// The cell in the data's default model (input size from the data, a linear readout, MSE), H = 16.
const source = readFileSync(new URL("../cells/gru.cell", import.meta.url), "utf8");
const net = networkFor(source, data, { file: "gru.cell", dims: { H: 16 }, seed: 0 });

// train(net, data, cfg) does the same as a Trainer's run(); the Trainer also evaluates on demand.
const trainer = new Trainer(net, data, { steps: 300, batch: 32, lr: 0.01, optim: "adam", clip: 1, seed: 0 });
const before = await trainer.evaluate(); // the untrained network on the eval rows
const r = await trainer.run(); // r.finalEvalLoss, r.metrics (metrics.jsonl's lines), r.params, ...
console.log(
  `eval loss ${before.loss.toExponential(2)} before training, ${r.finalEvalLoss.toExponential(2)} after ${trainer.steps} steps (chance ${data.chance.toExponential(2)})`,
);

// Predict: the readout for each sequence of a batch, [B, O] (on the last step; [T, B, O] for every step).
const B = 3;
const xs = new Float32Array(T * B);
const want = [];
for (let b = 0; b < B; b++) {
  const w = 0.2 + 0.1 * b;
  for (let t = 0; t < T; t++) xs[t * B + b] = Math.sin(w * t);
  want.push(Math.sin(w * T));
}
const pred = await net.predict(new Map([["x", tensor("f32", [T, B, 1], xs)]]));
console.log(
  `predict: shape [${pred.shape}], ${[...pred.data].map((v, b) => `${v.toFixed(3)} (true ${want[b].toFixed(3)})`).join(", ")}`,
);

// Streaming: one step at a time, state carried. step(x_t) takes [B, D] and gives the readout [B * O].
const step = net.stepper(B);
let last;
for (let t = 0; t < T; t++) last = step(tensor("f32", [B, 1], xs.subarray(t * B, (t + 1) * B)));
console.log(`stepper after ${T} steps: ${[...last].map((v) => v.toFixed(3)).join(", ")}`);

// Save and load: the weights by name as safetensors, and the network itself (an artifact: plain JSON).
const bytes = writeSafetensors(net.params);
const artifact = JSON.parse(JSON.stringify(net.artifact));
const loaded = new Network(artifact, { params: readSafetensors(bytes) });
const again = await loaded.predict(new Map([["x", tensor("f32", [T, B, 1], xs)]]));
console.log(
  `saved (${bytes.length} bytes) and loaded: predict ${[...again.data].map((v) => v.toFixed(3)).join(", ")}`,
);

if (!(r.finalEvalLoss < before.loss / 10)) {
  console.error("the eval loss did not fall");
  process.exit(1);
}
