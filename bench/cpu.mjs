#!/usr/bin/env node
// The CPU benchmark of the JS and wasm backends (a script, not a test): LSTM and GRU at
//   S (T50 B32 D128 H128), M (T100 B64 D256 H256), L (T100 B64 D512 H512),
// forward (inference) and training step (forward + backward, no input gradient), each configuration in its
// own process so that peak memory is its own. Prints milliseconds (median of --reps after warm-up, with min
// and max), GFLOP/s (2 FLOPs per multiply-add of the cell's matmuls: forward 1x, training step 3x), the
// foreign CPU load during the timed runs (cores busy with other processes, from /proc/stat), kernel
// launches per step, bytes kept per step for the backward pass, peak RSS and, for the wasm backend, the
// GEMM floor: the time of the pass's GEMMs alone, each timed on one thread and divided by the threads.
//   node bench/cpu.mjs [--sizes S,M,L] [--cells lstm,gru] [--reps 5] [--impls js,wasm,wasm2]
//                      [--before DIR] [--rounds N] [--json FILE] [--timeout SECONDS]
// Implementations: `js`, `wasm` (one thread), `wasm2` (two threads); `+busy` after a name runs it while a
// second process spins on one core (`wasm+busy,wasm2+busy`: does the second thread still help?);
// `before-<impl>` runs <impl> of the checkout given by --before DIR (built, with its dist/), side by side,
// and prints the ratio (`before` alone means `before-js`):
//   git worktree add /tmp/before <rev> && (cd /tmp/before && npm ci)
// --rounds N runs every implementation N times in turn (A, B, A, B, ...) to see through a noisy machine.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { machine, meter, spinners } from "./load.mjs";

const SIZES = { S: [50, 32, 128, 128], M: [100, 64, 256, 256], L: [100, 64, 512, 512] };
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
};
const root = fileURLToPath(new URL("..", import.meta.url));

/** Warm-up (three runs, or as many as fit in a second: JIT tiers settle), then `n` timed runs. */
function time(fn, n) {
  let t0 = performance.now();
  fn();
  const w = performance.now() - t0;
  for (let k = 1, t = w; k < 3 && t + w < 1000; k++) {
    t0 = performance.now();
    fn();
    t += performance.now() - t0;
  }
  const ms = [];
  const m = meter();
  for (let i = 0; i < n; i++) {
    const t1 = performance.now();
    fn();
    ms.push(performance.now() - t1);
  }
  const load = m.stop();
  ms.sort((a, b) => a - b);
  return { median: ms[Math.floor(ms.length / 2)], min: ms[0], max: ms[ms.length - 1], n, load };
}

/**
 * The GEMMs of a forward pass and of a training step (no input gradient) of a cell whose packs are gate
 * weights, each run alone on the calling thread through the backend's own entry points, as the schedule
 * runs them: the hoisted pack's GEMM over all T*B rows (packed at the call), the per-step pack's GEMM at
 * every step on panels packed once, and in the backward pass the per-step transposed product and the
 * weight gradients over T*B rows. Returns ms for one thread.
 */
function gemmFloor(g, packs, T, B, n) {
  const saved = g.gemmSplitMin;
  g.gemmSplitMin = Infinity; // one thread: the floor is the per-thread rate times the threads
  const heap = g.heap;
  const buf = (floats) => {
    const at = heap.take(4 * floats);
    heap.f32(at, floats).fill(0.01);
    return at;
  };
  const TB = T * B;
  const fwd = [];
  const bwd = [];
  for (const { rows: GH, cols: K, phase } of packs) {
    const W = buf(GH * K);
    if (phase === "before") {
      const [X, C] = [buf(TB * K), buf(TB * GH)];
      fwd.push(() => g.gemmAt("nt", [C, GH, X, K, W, K, TB, GH, K, 0, 0]));
      // D[GH, K] += G[TB, GH]^T X[TB, K]
      const D = buf(GH * K);
      bwd.push(() => g.gemmAt("tn", [D, K, C, GH, X, K, TB, GH, K, 1, 0]));
    } else {
      const [Hs, C, P, Pn, dH] = [buf(B * K), buf(B * GH), buf(GH * K), buf(GH * K), buf(B * K)];
      fwd.push(() => {
        g.packAt("nt", [P, W, K, GH, K]);
        for (let t = 0; t < T; t++) g.mmAt([C, GH, Hs, K, P, B, GH, K, 0]);
      });
      bwd.push(() => {
        g.packAt("nn", [Pn, W, K, GH, K]);
        for (let t = 0; t < T; t++) g.mmAt([dH, K, C, GH, Pn, B, K, GH, 0]);
      });
      const [X, G, D] = [buf(TB * K), buf(TB * GH), buf(GH * K)];
      bwd.push(() => g.gemmAt("tn", [D, K, G, GH, X, K, TB, GH, K, 1, 0]));
    }
  }
  const all = (fs) => () => fs.forEach((f) => f());
  const f = time(all(fwd), n).median;
  const b = time(all(bwd), n).median;
  g.gemmSplitMin = saved;
  return { fwd: f, train: f + b };
}

if (process.argv.includes("--one")) {
  // One configuration in this process: prints a JSON line.
  const [dir, cellName, size, reps] = [arg("dir"), arg("cell"), arg("size"), Number(arg("reps", "5"))];
  const [T, B, D, H] = SIZES[size];
  // A checkout from before the layers moved has its entry at dist/runtime/index.js.
  const api = await import(
    existsSync(`${dir}/dist/api/index.js`) ? `${dir}/dist/api/index.js` : `${dir}/dist/runtime/index.js`
  );
  const file = `${root}/examples/cells/${cellName}.cell`;
  const src = readFileSync(file, "utf8");
  // Imports (peephole_lstm.cell imports lstm.cell) are read from the file system.
  const cell = api.compileCell(src, { file, host: { read: (p) => readFileSync(p, "utf8") } });
  // Every backend is named: the default has changed over time (js, then wasm).
  const which = arg("backend");
  const threads = which === "wasm2" ? 2 : 1;
  let backend;
  if (which === "js") backend = api.jsBackend;
  else if (which === "wasm" || which === "wasm2") {
    const wasm = await import(`${dir}/dist/runtime/cpu/wasm.js`);
    backend = threads > 1 ? await wasm.createThreadedWasmBackend(threads) : wasm.createWasmBackend();
  } else throw new Error(`unknown backend ${which}`);
  if (!backend) throw new Error(`no ${which} backend in ${dir}`);
  const model = new api.Model(cell, { dims: { D, H }, seed: 1, backend });
  const x = api.tensor(
    "f32",
    [T, B, D],
    Float32Array.from({ length: T * B * D }, (_, i) => Math.sin(i * 0.37)),
  );
  const fwd = time(() => model.forward({ x }, { train: false }), reps);
  // A training step as `cellc train` runs it: the data needs no gradient (as in bench/peers), and the
  // outputs go back to the model once the gradients are taken (Model.dispose), to be written again by the
  // next step. Older checkouts ignore the option and have no dispose().
  const train = time(() => {
    const f = model.forward({ x });
    model.backward(f, {}, { inputGrads: false });
    model.dispose?.(f);
  }, reps);
  // Multiply-adds per row and step of the cell's matmuls: from the cell's parameters used as matrices.
  const macs = (cell.signature ?? cell.ir).params
    .filter((p) => p.type.dims.length === 2)
    .reduce((a, p) => a + p.type.dims.reduce((m, d) => m * (d.terms.H ? H : d.terms.D ? D : 1), 1), 0);
  let extra = {};
  if (cell.artifact) {
    const { launches, savedPerStep } = await import(`${dir}/dist/compiler/schedule/print.js`);
    const { compile } = await import(
      existsSync(`${dir}/dist/compiler/compile.js`)
        ? `${dir}/dist/compiler/compile.js`
        : `${dir}/dist/runtime/compile.js`
    );
    const s = compile(src, { file, host: { read: (p) => readFileSync(p, "utf8") } }).schedule;
    const saved = savedPerStep(s);
    const floats = saved.c + (saved.terms.H ?? 0) * H + (saved.terms.D ?? 0) * D;
    extra = {
      launchesFwd: launches(s.forward.step, false), // the CPU targets run a GEMM and its epilogue apart
      launchesBwd: launches(s.backward.loop, false),
      savedBytesPerStep: floats * B * 4,
    };
    const g = backend.gemms;
    if (g?.gemmAt && g.mmAt && g.packAt && cell.artifact.packs) {
      const ev = (d) => d.c + (d.terms.H ?? 0) * H + (d.terms.D ?? 0) * D;
      const packs = cell.artifact.packs.map((p) => ({ rows: ev(p.rows), cols: ev(p.cols), phase: p.phase }));
      const one = gemmFloor(g, packs, T, B, reps);
      extra.floor = { fwd: one.fwd / threads, train: one.train / threads, perThread: one };
    }
  }
  const flops = 2 * macs * T * B;
  console.log(
    JSON.stringify({ fwd, train, flops, maxRssMiB: process.resourceUsage().maxRSS / 1024, ...extra }),
  );
  process.exit(0);
}

const sizes = arg("sizes", "S,M,L").split(",");
const cells = arg("cells", "lstm,gru").split(",");
const reps = arg("reps", "5");
const rounds = Number(arg("rounds", "1"));
const before = arg("before");
const json = arg("json");
const timeoutS = Number(arg("timeout", "1800")); // per configuration
const impls = arg("impls", before ? "js,wasm,before" : "js,wasm")
  .split(",")
  .map((name) => {
    const busy = name.endsWith("+busy");
    const base = busy ? name.slice(0, -5) : name;
    const old = base === "before" || base.startsWith("before-");
    const backend = base === "before" ? "js" : old ? base.slice(7) : base;
    if (!["js", "wasm", "wasm2"].includes(backend)) throw new Error(`unknown implementation ${name}`);
    if (old && !before) throw new Error(`${name} needs --before DIR`);
    return { name, backend, dir: old ? before : root, busy, of: old ? `before-${backend}` : backend };
  });
console.log(`# cellc CPU backends: ${machine()}`);
console.log(
  `# medians of ${reps} after warm-up (up to 3 runs within 1 s; min-max); GFLOP/s of the cell's matmuls; ` +
    "foreign: cores busy with other processes during the timed runs; floor: the pass's GEMMs alone on one " +
    "thread / threads, as a share of the measured time; peak RSS per process",
);
console.log(
  "| cell | size | impl | forward ms | fwd GFLOP/s | foreign | train step ms | train GFLOP/s | foreign | GEMM floor fwd, train | launches/step fwd, bwd | kept/step | peak RSS |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
const results = [];
const f = (t) => `${t.median.toFixed(1)} (${t.min.toFixed(0)}-${t.max.toFixed(0)})`;
for (const cell of cells)
  for (const size of sizes)
    for (let round = 0; round < rounds; round++) {
      const got = {};
      for (const impl of impls) {
        const n = impl.dir !== root && impl.backend === "js" && size === "L" ? "1" : reps;
        const spin = impl.busy ? spinners(1) : undefined;
        // Let the spinner get going before the configuration starts.
        if (spin) await new Promise((r) => setTimeout(r, 200));
        let r;
        try {
          const out = execFileSync(
            process.execPath,
            [
              fileURLToPath(import.meta.url),
              ...["--one", "--dir", impl.dir, "--cell", cell, "--size", size, "--reps", n],
              ...["--backend", impl.backend],
            ],
            {
              encoding: "utf8",
              maxBuffer: 1 << 20,
              timeout: timeoutS * 1000,
              stdio: ["ignore", "pipe", "pipe"],
            },
          );
          r = got[impl.name] = JSON.parse(out.trim().split("\n").pop());
        } catch (e) {
          const why = (e.stderr || e.message || String(e)).trim().split("\n").slice(-2).join(" ");
          console.log(
            `| ${cell} | ${size} | ${impl.name} | failed: ${why.replaceAll("|", "/").slice(0, 200)} |||||||||| |`,
          );
          results.push({ cell, size, round, impl: impl.name, failed: why });
          continue;
        } finally {
          await spin?.stop();
        }
        results.push({ cell, size, round, impl: impl.name, ...r });
        const gf = (t, k) => ((k * r.flops) / (t.median * 1e6)).toFixed(2);
        const floor = r.floor
          ? `${((100 * r.floor.fwd) / r.fwd.median).toFixed(0)}%, ${((100 * r.floor.train) / r.train.median).toFixed(0)}%`
          : "-";
        console.log(
          `| ${cell} | ${size} | ${impl.name} | ${f(r.fwd)} | ${gf(r.fwd, 1)} | ${r.fwd.load.foreign.toFixed(1)} | ${f(r.train)} | ${gf(r.train, 3)} | ${r.train.load.foreign.toFixed(1)} | ${floor} | ${r.launchesFwd ?? "-"}, ${r.launchesBwd ?? "-"} | ${r.savedBytesPerStep ? `${(r.savedBytesPerStep / 1024).toFixed(0)} KiB` : "-"} | ${r.maxRssMiB.toFixed(0)} MiB |`,
        );
      }
      for (const impl of impls) {
        const old = impls.find((o) => o.dir !== root && o.backend === impl.backend && o.busy === impl.busy);
        if (impl.dir !== root || !old || !got[old.name] || !got[impl.name]) continue;
        const [a, b] = [got[old.name], got[impl.name]];
        console.log(
          `| ${cell} | ${size} | ${impl.name} vs ${old.name} | ${(a.fwd.median / b.fwd.median).toFixed(2)}x | | | ${(a.train.median / b.train.median).toFixed(2)}x | | | | | | |`,
        );
      }
    }
if (json) writeFileSync(json, JSON.stringify({ machine: machine(), reps: Number(reps), results }, null, 1));
