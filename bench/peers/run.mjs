#!/usr/bin/env node
// cellc against its peers, in one run on one machine (a script, not a test): LSTM and GRU, forward and
// training step (forward + backward of the summed outputs + an SGD update), each implementation in its own
// process so that peak RSS is its own.
//   cd bench/peers && ONNXRUNTIME_NODE_INSTALL=skip npm install     (once; the peers are not cellc's deps)
//   node bench/peers/run.mjs [--sizes S,M] [--cells lstm,gru] [--reps 5] [--impls a,b] [--webgpu] [--json FILE]
// cellc: its wasm backend on one and two threads and its js backend, each named explicitly (`--webgpu`
// adds WebGPU). Peers: TensorFlow.js (tf.layers.lstm/gru, cpu and wasm backends), onnxruntime-node (CPU,
// 1 and 2 intra-op threads) and onnxruntime-web (wasm, 1 and 2 threads) running the single ONNX LSTM/GRU
// node that `cellc compile --target onnx` emits with cellc's own weights (forward only), PyTorch when
// /usr/bin/python3 has torch (torch_rnn.py): `torch-1` one OpenMP and one BLAS thread, `torch-2` two and
// two, `torch-1x2` one OpenMP thread and two BLAS threads. PyTorch must run on an optimised BLAS: the run
// prints the one it loaded and its GFLOP/s at 1024^3, and refuses a reference BLAS. Each peer first checks
// its output against cellc's on a tiny case with the same weights, where it can take them. Every figure
// comes with the foreign CPU load during its timed runs (cores busy with other processes, /proc/stat).
import { spawnSync, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { machine, meter } from "../load.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = join(here, "../..");
const SIZES = { S: [50, 32, 128, 128], M: [100, 64, 256, 256], L: [100, 64, 512, 512] };
const GATES = { lstm: 4, gru: 3 };
const LR = 1e-5;
const PY = "/usr/bin/python3";
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
};

// Warm-up runs (three, or as many as fit in a second: JIT tiers settle, WebAssembly included), then
// `reps` runs; when one run takes over 10 s, 2 runs; over 30 s, the first run alone.
async function timed(fn, reps) {
  let t0 = performance.now();
  await fn();
  const w = performance.now() - t0;
  for (let k = 1, t = w; k < 3 && t + w < 1000; k++) {
    const t1 = performance.now();
    await fn();
    t += performance.now() - t1;
  }
  if (w > 30000) return { median: w, min: w, max: w, n: 1, warm: false };
  const n = w > 10000 ? 2 : reps;
  const ms = [];
  const m = meter();
  for (let i = 0; i < n; i++) {
    t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  const load = m.stop();
  // CPU time over wall time: how many cores the implementation kept busy (threads actually used).
  const cores = load.own;
  ms.sort((a, b) => a - b);
  return { median: ms[Math.floor(n / 2)], min: ms[0], max: ms[n - 1], n, warm: true, cores, load };
}

const cellc = await import(join(root, "dist/api/index.js"));
const cellSource = (cell) => readFileSync(join(root, `examples/cells/${cell}.cell`), "utf8");
const input = (T, B, D) => Float32Array.from({ length: T * B * D }, (_, i) => Math.sin(i * 0.37));

/** cellc's model with the benchmark's weights (seed 1), on the JS backend (the reference) unless given. */
function cellcModel(cell, D, H, backend = cellc.jsBackend) {
  return new cellc.Model(cellc.compileCell(cellSource(cell)), { dims: { D, H }, seed: 1, backend });
}
function cellcOut(model, T, B, D, x) {
  const r = model.forward({ x: cellc.tensor("f32", [T, B, D], x) }, { train: false });
  return [...r.outputs.values()][0].data;
}
const maxDiff = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const TINY = [5, 3, 4, 6];

/** Rows of the gate matrices stacked in `names` order: [G*H, K]. */
const stack = (p, names) => Float32Array.from(names.flatMap((n) => [...p.get(n).data]));
/** [K, G*H] with column g*H + j = row j of gate g (Keras' kernels). */
function stackT(p, names, H) {
  const K = p.get(names[0]).shape[1];
  const out = new Float32Array(K * names.length * H);
  names.forEach((n, g) => {
    const w = p.get(n).data;
    for (let j = 0; j < H; j++)
      for (let k = 0; k < K; k++) out[k * names.length * H + g * H + j] = w[j * K + k];
  });
  return out;
}

/** cellc: backend "js", "wasm" (one thread), "wasm2" (two) or "webgpu", always named. */
async function runCellc(kind, cell, T, B, D, H, reps) {
  let backend;
  if (kind === "js") backend = cellc.jsBackend;
  if (kind === "wasm") backend = (await import(join(root, "dist/runtime/cpu/wasm.js"))).createWasmBackend();
  if (kind === "wasm2")
    backend = await (await import(join(root, "dist/runtime/cpu/wasm.js"))).createThreadedWasmBackend(2);
  if (kind === "webgpu")
    backend = await (await import(join(root, "dist/runtime/webgpu/node.js"))).createNodeWebGpuBackend();
  if (!backend) throw new Error(`unknown cellc backend ${kind}`);
  const model = cellcModel(cell, D, H, backend);
  const x = cellc.tensor("f32", [T, B, D], input(T, B, D));
  const step = async () => {
    // The data needs no gradient, as for the peers (PyTorch's x has no requires_grad; tfjs's
    // variableGrads differentiates the variables only).
    const g = await model.backwardAsync(await model.forwardAsync({ x }), {}, { inputGrads: false });
    for (const [name, grad] of g.params) {
      const p = model.params.get(name).data;
      for (let i = 0; i < p.length; i++) p[i] -= LR * grad.data[i];
    }
    model.paramsChanged();
  };
  const fwd = await timed(() => model.forwardAsync({ x }, { train: false }), reps);
  return { fwd, train: await timed(step, reps), check: "reference" };
}

/** TensorFlow.js: backend "cpu" or "wasm". Inputs are batch-major there. */
async function runTfjs(kind, cell, T, B, D, H, reps) {
  const tf = await import("@tensorflow/tfjs");
  if (kind === "wasm") {
    const w = await import("@tensorflow/tfjs-backend-wasm");
    w.setWasmPaths(join(here, "node_modules/@tensorflow/tfjs-backend-wasm/dist/"));
  }
  await tf.setBackend(kind);
  await tf.ready();
  const build = (T, D, H) =>
    tf.sequential({
      layers: [
        tf.layers[cell]({
          units: H,
          returnSequences: true,
          recurrentActivation: "sigmoid",
          inputShape: [T, D],
        }),
      ],
    });
  // tf.layers.gru has no reset_after (it refuses resetAfter: true): its GRU applies r before Un, so only
  // the LSTM can be checked against cellc; the GRU's FLOPs are the same.
  let check = "n/a (GRU without reset_after)";
  if (cell === "lstm") {
    const [t, b, d, h] = TINY;
    const ref = cellcModel(cell, d, h);
    const p = ref.params;
    const m = build(t, d, h);
    m.layers[0].setWeights([
      tf.tensor(stackT(p, ["Wi", "Wf", "Wg", "Wo"], h), [d, 4 * h]),
      tf.tensor(stackT(p, ["Ui", "Uf", "Ug", "Uo"], h), [h, 4 * h]),
      tf.tensor(stack(p, ["bi", "bf", "bg", "bo"]), [4 * h]),
    ]);
    const x = input(t, b, d);
    const y = m.predict(tf.tensor(x, [t, b, d]).transpose([1, 0, 2])).transpose([1, 0, 2]);
    check = `max abs diff ${maxDiff(y.dataSync(), cellcOut(ref, t, b, d, x)).toExponential(1)}`;
  }
  const model = build(T, D, H);
  const x = tf.tensor(input(T, B, D), [T, B, D]).transpose([1, 0, 2]);
  const opt = tf.train.sgd(LR);
  const fwd = await timed(() => {
    const y = model.predict(x);
    y.dataSync();
    y.dispose();
  }, reps);
  const train = await timed(() => {
    const { value, grads } = tf.variableGrads(() => model.apply(x, { training: true }).sum());
    opt.applyGradients(grads);
    value.dataSync();
    tf.dispose([value, grads]);
  }, reps);
  return { fwd, train, check, version: tf.version.tfjs };
}

/** The ONNX model cellc exports for this cell, with cellc's weights as initialisers. */
function onnxBytes(cell, D, H) {
  const dir = mkdtempSync(join(tmpdir(), "cellc-peers-"));
  const [params, out] = [join(dir, "p.safetensors"), join(dir, "m.onnx")];
  writeFileSync(params, cellc.writeSafetensors(cellcModel(cell, D, H).params));
  execFileSync(process.execPath, [
    join(root, "bin/cellc.js"),
    "compile",
    join(root, `examples/cells/${cell}.cell`),
    ...["--target", "onnx", "--out", out, "--params", params, "--dims", `D=${D},H=${H}`],
  ]);
  return readFileSync(out);
}

/** ONNX Runtime: "node" (native CPU) or "web" (WebAssembly), with `threads` threads. Forward only. */
async function runOrt(kind, threads, cell, T, B, D, H, reps) {
  const ort = kind === "node" ? (await import("onnxruntime-node")).default : await import("onnxruntime-web");
  if (kind === "web") ort.env.wasm.numThreads = threads;
  const opts =
    kind === "node"
      ? { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: "sequential" }
      : { executionProviders: ["wasm"] };
  const feeds = (s, T, B, D, H) => {
    // The export's sequence_lens and initial states are optional inputs with defaults (initialisers): fed
    // only where the session lists them (onnxruntime's JS APIs list X alone: node drops an unlisted input,
    // web refuses it), full-length and zero, as the defaults are.
    const f = { X: new ort.Tensor("float32", input(T, B, D), [T, B, D]) };
    for (const n of s.inputNames)
      if (n === "sequence_lens") f[n] = new ort.Tensor("int32", new Int32Array(B).fill(T), [B]);
      else if (n.startsWith("initial_")) f[n] = new ort.Tensor("float32", new Float32Array(B * H), [1, B, H]);
    return f;
  };
  const [t, b, d, h] = TINY;
  const tiny = await ort.InferenceSession.create(onnxBytes(cell, d, h), opts);
  const y = (await tiny.run(feeds(tiny, t, b, d, h))).Y.data;
  const diff = maxDiff(y, cellcOut(cellcModel(cell, d, h), t, b, d, input(t, b, d)));
  const s = await ort.InferenceSession.create(onnxBytes(cell, D, H), opts);
  const f = feeds(s, T, B, D, H);
  const fwd = await timed(() => s.run(f), reps);
  return { fwd, check: `max abs diff ${diff.toExponential(1)}` };
}

/** PyTorch's threads by name: "1" (one OpenMP, one BLAS), "2" (two, two), "1x2" (one OpenMP, two BLAS). */
export function torchThreads(name) {
  const m = /^(\d+)(?:x(\d+))?$/.exec(name ?? "");
  if (!m) throw new Error(`torch threads '${name}': write N (OpenMP and BLAS) or NxM (OpenMP x BLAS)`);
  return { omp: Number(m[1]), blas: Number(m[2] ?? m[1]) };
}

/** The environment that gives PyTorch `omp` OpenMP threads and OpenBLAS `blas` threads (read at load). */
const torchEnv = ({ omp, blas }) => ({
  ...process.env,
  OMP_NUM_THREADS: String(omp),
  OPENBLAS_NUM_THREADS: String(blas),
  MKL_NUM_THREADS: String(blas),
});

function runTorch(threads, cell, T, B, D, H, reps) {
  const th = torchThreads(threads);
  const r = spawnSync(
    PY,
    [join(here, "torch_rnn.py"), "time", cell, T, B, D, H, reps, th.omp, th.blas].map(String),
    { encoding: "utf8", timeout: 1800e3, env: torchEnv(th) },
  );
  if (r.status !== 0) throw new Error(r.stderr || `exit ${r.status}`);
  const out = JSON.parse(r.stdout.trim().split("\n").pop());
  // Check: the same weights (PyTorch's gate order is cellc's), tiny case.
  const [t, b, d, h] = TINY;
  const ref = cellcModel(cell, d, h);
  const p = ref.params;
  const names =
    cell === "lstm"
      ? [
          ["Wi", "Wf", "Wg", "Wo"],
          ["Ui", "Uf", "Ug", "Uo"],
          ["bi", "bf", "bg", "bo"],
        ]
      : [
          ["Wr", "Wz", "Wn"],
          ["Ur", "Uz", "Un"],
          ["br", "bz", "bin"],
        ];
  const G = names[0].length;
  const bhh = new Float32Array(G * h);
  if (cell === "gru") bhh.set(p.get("bhn").data, 2 * h);
  const params = {
    weight_ih_l0: [...stack(p, names[0])],
    weight_hh_l0: [...stack(p, names[1])],
    bias_ih_l0: [...stack(p, names[2])],
    bias_hh_l0: [...bhh],
  };
  const x = input(t, b, d);
  const q = JSON.stringify({ cell, T: t, B: b, D: d, H: h, x: [...x], params });
  const c = spawnSync(PY, [join(here, "torch_rnn.py"), "check"], { input: q, encoding: "utf8" });
  const y = JSON.parse(c.stdout);
  out.check = `max abs diff ${maxDiff(y, cellcOut(ref, t, b, d, x)).toExponential(1)}`;
  return out;
}

if (process.argv.includes("--one")) {
  const [impl, cell, size] = [arg("impl"), arg("cell"), arg("size")];
  const reps = Number(arg("reps", "5"));
  const dims = SIZES[size];
  const [lib, kind, threads] = impl.split("-");
  let r;
  if (lib === "cellc") r = await runCellc(kind, cell, ...dims, reps);
  else if (lib === "tfjs") r = await runTfjs(kind, cell, ...dims, reps);
  else if (lib === "ort") r = await runOrt(kind, Number(threads), cell, ...dims, reps);
  // torch-1, torch-2, torch-1x2 (and the older torch-cpu-N).
  else if (lib === "torch") r = runTorch(kind === "cpu" ? threads : kind, cell, ...dims, reps);
  else throw new Error(`unknown implementation ${impl}`);
  r.maxRssMiB ??= process.resourceUsage().maxRSS / 1024;
  console.log(JSON.stringify(r));
  process.exit(0);
}

const sizes = arg("sizes", "S,M").split(",");
const cells = arg("cells", "lstm,gru").split(",");
const reps = arg("reps", "5");
const json = arg("json");
const hasTorch = spawnSync(PY, ["-c", "import torch"]).status === 0;
const TORCH = ["torch-1", "torch-2", "torch-1x2"];
const all = [
  "cellc-wasm",
  "cellc-wasm2",
  "cellc-js",
  ...(process.argv.includes("--webgpu") ? ["cellc-webgpu"] : []),
  "tfjs-wasm",
  "tfjs-cpu",
  "ort-node-1",
  "ort-node-2",
  "ort-web-1",
  "ort-web-2",
  ...(hasTorch ? TORCH : []),
];
const impls = arg("impls") ? arg("impls").split(",") : all;

/** The BLAS PyTorch loads with each thread setting used here (library, threads, GFLOP/s at 1024^3). */
const blas = {};
if (hasTorch)
  for (const t of new Set(
    impls.filter((i) => i.startsWith("torch-")).map((i) => i.replace(/^torch-(cpu-)?/, "")),
  )) {
    const th = torchThreads(t);
    const r = spawnSync(PY, [join(here, "torch_rnn.py"), "blas"], { encoding: "utf8", env: torchEnv(th) });
    blas[t] = r.status === 0 ? JSON.parse(r.stdout.trim().split("\n").pop()) : { error: r.stderr.trim() };
  }

const ms = (t) => (t ? `${t.median.toFixed(1)} (${t.min.toFixed(0)}-${t.max.toFixed(0)})` : "-");
const runs = (t) =>
  t ? (t.warm ? `${t.n}` : "1, no warm-up") + (t.cores ? `, ${t.cores.toFixed(1)} cores` : "") : "-";
const foreign = (t) => (t?.load ? t.load.foreign.toFixed(1) : "-");
const gf = (t, flops) => (t ? (flops / (t.median * 1e6)).toFixed(2) : "-");
console.log(
  `Machine: ${machine()}` + (hasTorch ? "" : "; no PyTorch (/usr/bin/python3 cannot import torch)"),
);
for (const [t, b] of Object.entries(blas))
  console.log(
    b.error
      ? `PyTorch with threads ${t}: ${b.error}`
      : `PyTorch ${t}: ${b.name}${b.config ? ` (${b.config}; kernels ${b.core})` : ""}, ${b.torchThreads} OpenMP thread(s) at load, ` +
          `${b.blasThreads ?? "?"} BLAS thread(s); 1024^3 GEMM ${b.gemmGflops.toFixed(1)} GFLOP/s (one OpenMP thread)`,
  );
console.log(
  "\nMedians after warm-up (up to 3 runs within 1 s; min-max); n: timed runs, and CPU time / wall time over them (cores kept busy); " +
    "foreign: cores busy with other processes during the timed runs (/proc/stat). GFLOP/s: 2 FLOPs per multiply-add of the gate " +
    "matmuls, forward 2*T*B*G*H*(D+H) (G = 4 LSTM, 3 GRU), training step 3x forward. Training step: " +
    `forward, backward of the sum of the outputs (no implementation computes the input data's gradient), SGD update (lr ${LR}). Peak RSS per process.\n`,
);
console.log(
  "| cell | size | impl | forward ms | n | foreign | fwd GFLOP/s | train step ms | n | foreign | train GFLOP/s | peak RSS | check vs cellc (tiny case) |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
const results = [];
for (const cell of cells)
  for (const size of sizes) {
    const [T, B, D, H] = SIZES[size];
    const flops = 2 * T * B * GATES[cell] * H * (D + H);
    const got = {};
    for (const impl of impls) {
      process.stderr.write(`${cell} ${size} ${impl}...\n`);
      const p = spawnSync(
        process.execPath,
        [
          fileURLToPath(import.meta.url),
          ...["--one", "--impl", impl, "--cell", cell, "--size", size, "--reps", reps],
        ],
        { encoding: "utf8", timeout: 1800e3, maxBuffer: 1 << 24 },
      );
      const last = (p.stdout ?? "").trim().split("\n").pop();
      if (p.status !== 0 || !last.startsWith("{")) {
        const why = p.error ? p.error.message : (p.stderr || "").trim().split("\n").slice(-3).join(" ");
        console.log(
          `| ${cell} | ${size} | ${impl} | failed: ${why.replaceAll("|", "/").slice(0, 200)} |||||||||| |`,
        );
        results.push({ cell, size, impl, flops, failed: why });
        continue;
      }
      const r = (got[impl] = JSON.parse(last));
      results.push({ cell, size, impl, flops, ...r });
      console.log(
        `| ${cell} | ${size} | ${impl}${r.version ? ` ${r.version}` : ""} | ${ms(r.fwd)} | ${runs(r.fwd)} | ${foreign(r.fwd)} | ${gf(r.fwd, flops)} | ${ms(r.train)} | ${runs(r.train)} | ${foreign(r.train)} | ${gf(r.train, 3 * flops)} | ${r.maxRssMiB.toFixed(0)} MiB | ${r.check} |`,
      );
    }
  }

console.log("\nRatios: the peer's median time / cellc's (above 1: cellc is faster).\n");
const mine = impls.filter((i) => i.startsWith("cellc"));
console.log(
  `| cell | size | peer | ${mine.map((m) => `fwd: ${m}`).join(" | ")} | ${mine.map((m) => `train: ${m}`).join(" | ")} |`,
);
console.log(`|---|---|---|${mine.map(() => "---|---|").join("")}`);
const ratio = (peer, me, k) =>
  peer?.[k] && me?.[k] ? `${(peer[k].median / me[k].median).toFixed(2)}x` : "-";
for (const cell of cells)
  for (const size of sizes) {
    const got = Object.fromEntries(
      results.filter((r) => r.cell === cell && r.size === size && !r.failed).map((r) => [r.impl, r]),
    );
    for (const [impl, r] of Object.entries(got)) {
      if (impl.startsWith("cellc")) continue;
      const cols = ["fwd", "train"].flatMap((k) => mine.map((m) => ratio(r, got[m], k)));
      console.log(`| ${cell} | ${size} | ${impl} | ${cols.join(" | ")} |`);
    }
  }
if (json)
  writeFileSync(
    json,
    JSON.stringify(
      { machine: machine(), date: new Date().toISOString(), reps: Number(reps), blas, results },
      null,
      1,
    ),
  );
