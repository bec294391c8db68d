#!/usr/bin/env node
// The WebGPU benchmark, to run in one go on a machine with a GPU (after `npm ci` and `npm run build`):
//   node bench/gpu.mjs [--sizes S,M,L] [--cells lstm,gru] [--precision f32,f16] [--reps 5]
//                      [--peak-tflops X] [--timing timestamps|wall] [--js-sizes S,M] [--js-reps 1]
//                      [--no-parity] [--small] [--write]
// 1. Parity on this adapter: every built-in cell, two layers, bidirectional, with sequence lengths and
//    initial states, forward and backward on WebGPU against the JS backend (relative 2e-3).
// 2. The cost of a launch: 2,000 dispatches of an empty kernel in one pass, then one pass each.
// 3. LSTM and GRU forward (inference) and training step (forward + backward), wall clock, medians after a
//    warm-up, including upload and read-back: ms, GFLOP/s (2 FLOPs per multiply-add of the cell's
//    matmuls; a training step 3x the forward), launches, device memory; the JS backend beside it
//    (--js-sizes).
// 4. Each kernel of one forward and one backward pass, timed apart (each launch in a pass of its own): its
//    launches, its time, and for the GEMMs GFLOP/s; with --peak-tflops (the device's float32 peak, which
//    WebGPU does not tell) the share of it. The times come from timestamp queries where the adapter has
//    `timestamp-query`; otherwise from the wall clock per submission (each launch its own submission, an
//    upper bound), and the output says which.
// --write puts the tables into BENCHMARKS.md (section "WebGPU per kernel"), replacing an earlier one.
// Timings on a CPU Vulkan driver (lavapipe, --small) say nothing about a GPU.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { compileCell, Model, tensor } from "../dist/api/index.js";
import { createNodeWebGpuBackend } from "../dist/runtime/webgpu/node.js";
import { GpuProfile } from "../dist/runtime/webgpu/profile.js";
import { launches } from "../dist/compiler/schedule/print.js";
import { compile } from "../dist/compiler/compile.js";

const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? dflt : argv[i + 1];
};
const small = argv.includes("--small");
const SIZES = {
  XS: [10, 8, 32, 32],
  S: [50, 32, 128, 128],
  M: [100, 64, 256, 256],
  L: [100, 64, 512, 512],
  XL: [100, 256, 1024, 1024],
};
const sizes = arg("sizes", small ? "XS" : "S,M,L").split(",");
const cells = arg("cells", "lstm,gru").split(",");
const precisions = arg("precision", "f32").split(",");
const REPS = Number(arg("reps", small ? "3" : "5"));
const JS_REPS = Number(arg("js-reps", "1"));
const jsSizes = arg("js-sizes", "").split(",").filter(Boolean);
const peak = arg("peak-tflops") === undefined ? undefined : Number(arg("peak-tflops"));
if (peak !== undefined && !(peak > 0))
  throw new Error("--peak-tflops takes the device's float32 peak in TFLOP/s");
for (const s of sizes) if (!SIZES[s]) throw new Error(`unknown size ${s}: ${Object.keys(SIZES).join(", ")}`);
const root = new URL("../examples/cells/", import.meta.url);
// Dawn quantizes timestamps (to 100 us) unless told not to: kernels take less than that.
const backend = await createNodeWebGpuBackend({}, ["disable-dawn-features=timestamp_quantization"]);
const device = backend.device;
const timing = arg("timing", device.features.has("timestamp-query") ? "timestamps" : "wall");
const features = ["timestamp-query", "subgroups", "shader-f16"].filter((f) => device.features.has(f));
const out = []; // the report, printed as it goes and written by --write
const say = (line = "") => {
  console.log(line);
  out.push(line);
};
say(
  `adapter: ${backend.adapterName}; features: ${features.join(", ") || "none of timestamp-query, subgroups, shader-f16"}`,
);
say(
  timing === "timestamps"
    ? "per-kernel times: GPU timestamps at the start and end of each launch's pass"
    : `per-kernel times: WALL CLOCK per submission (${device.features.has("timestamp-query") ? "--timing wall" : "this adapter has no timestamp-query"}): each launch submitted alone and awaited, so each time includes the submission and the wait; upper bounds`,
);
say(
  peak === undefined
    ? "share of peak: not given (pass --peak-tflops X, the device's float32 peak in TFLOP/s)"
    : `share of peak: against ${peak} TFLOP/s float32 (given with --peak-tflops)`,
);

// ---- 1. Parity on this adapter.
const rng = (() => {
  let s = 12345;
  return () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
})();
const randn = (shape) =>
  tensor("f32", shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rng));
let worst = 0;
let checked = 0;
const parityFiles = argv.includes("--no-parity") ? [] : readdirSync(root);
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
if (checked)
  say(
    `parity: ${checked} cells, 2 layers, bidirectional, seq_lens: largest difference to JS (relative to each tensor's largest value) ${worst.toExponential(2)} ${worst < 2e-3 ? "OK" : "FAIL"}`,
  );

// ---- 2. The cost of a launch.
{
  const module = device.createShaderModule({
    code: "@group(0) @binding(0) var<storage, read_write> x: array<f32>;\n@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) { if (g.x == 0xffffffffu) { x[0] = 1.0; } }",
  });
  const pipeline = await device.createComputePipelineAsync({
    layout: "auto",
    compute: { module, entryPoint: "main" },
  });
  const buf = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
  const bg = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: buf } }],
  });
  const N = 2000;
  const onePass = async () => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bg);
    for (let i = 0; i < N; i++) pass.dispatchWorkgroups(1);
    pass.end();
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  await onePass();
  const wall = Math.min(await onePass(), await onePass());
  let gpu = "";
  if (timing === "timestamps") {
    const prof = new GpuProfile(device, "timestamps");
    const enc = device.createCommandEncoder();
    for (let i = 0; i < 200; i++)
      prof.dispatch(
        "empty",
        0,
        () => enc,
        () => undefined,
        (p) => {
          p.setPipeline(pipeline);
          p.setBindGroup(0, bg);
          p.dispatchWorkgroups(1);
        },
      );
    device.queue.submit([enc.finish()]);
    const ts = (await prof.timings()).map((t) => t.ms * 1000).sort((a, b) => a - b);
    gpu = `; a pass of its own: ${ts[ts.length >> 1].toFixed(2)} us median on the GPU (timestamps)`;
    prof.destroy();
  }
  say(
    `an empty launch: ${((wall * 1000) / N).toFixed(2)} us each, ${N} in one pass and one submission (wall clock, submission to completion)${gpu}`,
  );
}

// ---- 3. Speed, wall clock.
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
const pct = (gflops) => (peak === undefined ? "-" : `${((100 * gflops) / (peak * 1000)).toFixed(2)}%`);
const rows = [];
const kernelTables = [];
for (const name of cells)
  for (const size of sizes)
    for (const precision of precisions) {
      const [T, B, D, H] = SIZES[size];
      const src = readFileSync(new URL(`${name}.cell`, root), "utf8");
      const cell = compileCell(src);
      const sched = compile(src).schedule;
      const cpu = new Model(cell, { dims: { D, H }, seed: 1 });
      const gpu = new Model(cell, { params: cpu.params, backend, precision });
      const x = tensor(
        "f32",
        [T, B, D],
        Float32Array.from({ length: T * B * D }, (_, i) => Math.sin(i * 0.37)),
      );
      const fwd = () => gpu.forwardAsync({ x }, { train: false });
      const step = async () => gpu.backwardAsync(await gpu.forwardAsync({ x }));
      const gF = await time(fwd, REPS);
      const gT = await time(step, REPS);
      const js = jsSizes.includes(size) && precision === "f32";
      const cF = js ? await time(() => cpu.forward({ x }, { train: false }), JS_REPS) : NaN;
      const cT = js ? await time(() => cpu.backward(cpu.forward({ x })), JS_REPS) : NaN;
      const macs = cell.signature.params
        .filter((p) => p.type.dims.length === 2)
        .reduce((acc, p) => acc + p.type.dims.reduce((m, d) => m * (d.terms.H ? H : D), 1), 0);
      const flops = 2 * macs * T * B;
      const gf = (ms, k) => (k * flops) / (ms * 1e6);
      const dev = Math.max(...[...gpu["runners"].values()].map((r) => r.deviceBytes)) / 2 ** 20;

      // ---- 4. Each kernel, timed apart.
      // Three timed calls each; per launch the median of the three.
      const prof = new GpuProfile(device, timing);
      const timed = async (fn) => {
        const reps = [];
        for (let r = 0; r < 3; r++) {
          prof.reset();
          backend.context.profile = prof;
          await fn();
          backend.context.profile = undefined;
          reps.push(await prof.timings());
        }
        return reps[0].map((t, i) => ({ ...t, ms: median(reps.map((ts) => ts[i].ms)) }));
      };
      const tf = await timed(fwd);
      const tt = await timed(step);
      prof.destroy();
      const sum = (ts) => ts.reduce((a, t) => a + t.ms, 0);
      const label = `${name} ${size} T${T} B${B} D${D} H${H}${precision === "f16" ? " f16" : ""}`;
      rows.push(
        `| ${label} | ${gF.toFixed(2)} | ${gf(gF, 1).toFixed(1)} | ${pct(gf(gF, 1))} | ${tf.length} | ${sum(tf).toFixed(2)} | ${gT.toFixed(2)} | ${gf(gT, 3).toFixed(1)} | ${pct(gf(gT, 3))} | ${tt.length} | ${sum(tt).toFixed(2)} | ${launches(sched.forward.step)}, ${launches(sched.backward.loop)} | ${dev.toFixed(1)} | ${js ? `${cF.toFixed(1)}, ${cT.toFixed(1)}` : "-"} |`,
      );
      const byKernel = new Map();
      for (const t of tt) {
        const k = byKernel.get(t.label) ?? { n: 0, ms: 0, flops: 0 };
        k.n++;
        k.ms += t.ms;
        k.flops += t.flops;
        byKernel.set(t.label, k);
      }
      const lines = [...byKernel]
        .sort((p, q) => q[1].ms - p[1].ms)
        .map(([l, k]) => {
          const g = k.flops ? k.flops / (k.ms * 1e6) : 0;
          return `| ${l.slice(l.indexOf(".") + 1)} | ${k.n} | ${k.ms.toFixed(3)} | ${((1000 * k.ms) / k.n).toFixed(1)} | ${k.flops ? g.toFixed(1) : "-"} | ${k.flops ? pct(g) : "-"} |`;
        });
      const overhead = ((gT - sum(tt)) * 1000) / tt.length;
      kernelTables.push(
        `\n${label}: one training step, ${tt.length} launches (forward ${tf.length}), kernels ${sum(tt).toFixed(2)} ms of ${gT.toFixed(2)} ms wall (the rest, ${overhead.toFixed(1)} us per launch, is encoding, submission, upload, read-back and gaps)\n\n| kernel.entry | launches | total ms | us / launch | GFLOP/s | of peak |\n|---|---|---|---|---|---|\n${lines.join("\n")}`,
      );
    }
say(
  `\nmedians of ${REPS} after a warm-up, wall clock, including upload and read-back; kernel sums from a timed call`,
);
say(
  "| cell, size | fwd ms | GFLOP/s | of peak | launches | kernels ms | train ms | GFLOP/s | of peak | launches | kernels ms | launches/step fwd, bwd | device MiB | js fwd, train ms |",
);
say("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
for (const r of rows) say(r);
for (const t of kernelTables) say(t);
say(`\nprocess peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);

if (argv.includes("--write")) {
  const path = new URL("../BENCHMARKS.md", import.meta.url);
  const heading = "## WebGPU per kernel (bench/gpu.mjs)";
  // Text lines as paragraphs of their own, table rows together.
  const body = out.map((l) => (l.startsWith("|") || l === "" ? l : `${l}\n`)).join("\n");
  const section = `${heading}\n\n\`node bench/gpu.mjs ${argv.filter((a) => a !== "--write").join(" ")}\`\n\n${body}\n`;
  const text = readFileSync(path, "utf8");
  const at = text.indexOf(heading);
  const next = at < 0 ? -1 : text.indexOf("\n## ", at + heading.length);
  const updated =
    at < 0
      ? `${text.trimEnd()}\n\n${section}`
      : `${text.slice(0, at)}${section}${next < 0 ? "" : text.slice(next + 1)}`;
  writeFileSync(path, updated);
  console.log(`wrote the tables to BENCHMARKS.md (${heading})`);
}
process.exit(worst < 2e-3 ? 0 : 1);
