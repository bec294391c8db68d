#!/usr/bin/env node
// The CPU benchmark of the JS and wasm backends (a script, not a test): LSTM and GRU at
//   S (T50 B32 D128 H128), M (T100 B64 D256 H256), L (T100 B64 D512 H512),
// forward (inference) and training step (forward + backward, no input gradient), each configuration in its own process so
// that peak memory is its own. Prints milliseconds (median of --reps after one warm-up, with min and max),
// GFLOP/s (2 FLOPs per multiply-add of the cell's matmuls: forward 1x, training step 3x), kernel launches
// per step, bytes kept per step for the backward pass, and peak RSS.
//   node bench/cpu.mjs [--sizes S,M,L] [--cells lstm,gru] [--reps 5] [--before DIR] [--impls js,wasm,wasm2,before]
// --before DIR runs the same against another checkout of cellc (built, with its dist/), side by side in
// the same run, and prints the ratio: `git worktree add /tmp/before <rev> && (cd /tmp/before && npm ci)`.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";

const SIZES = { S: [50, 32, 128, 128], M: [100, 64, 256, 256], L: [100, 64, 512, 512] };
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
};
const root = fileURLToPath(new URL("..", import.meta.url));

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
  const which = arg("backend");
  const wasm = which.startsWith("wasm") ? await import(`${dir}/dist/runtime/cpu/wasm.js`) : undefined;
  const backend =
    which === "wasm"
      ? wasm.createWasmBackend()
      : which === "wasm2"
        ? await wasm.createThreadedWasmBackend(2)
        : undefined;
  const model = new api.Model(cell, { dims: { D, H }, seed: 1, backend });
  const x = api.tensor(
    "f32",
    [T, B, D],
    Float32Array.from({ length: T * B * D }, (_, i) => Math.sin(i * 0.37)),
  );
  const time = (fn, n) => {
    // Warm-up runs as bench/peers/run.mjs: three, or as many as fit in a second (JIT tiers settle).
    let t0 = performance.now();
    fn();
    const w = performance.now() - t0;
    for (let k = 1, t = w; k < 3 && t + w < 1000; k++) {
      t0 = performance.now();
      fn();
      t += performance.now() - t0;
    }
    const ms = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      fn();
      ms.push(performance.now() - t0);
    }
    ms.sort((a, b) => a - b);
    return { median: ms[Math.floor(ms.length / 2)], min: ms[0], max: ms[ms.length - 1] };
  };
  const fwd = time(() => model.forward({ x }, { train: false }), reps);
  // The data needs no gradient (as in bench/peers); older checkouts ignore the option.
  const train = time(() => model.backward(model.forward({ x }), {}, { inputGrads: false }), reps);
  // Multiply-adds per row and step of the cell's matmuls: from the cell's parameters used as matrices.
  const macs = (cell.signature ?? cell.ir).params
    .filter((p) => p.type.dims.length === 2)
    .reduce((a, p) => a + p.type.dims.reduce((m, d) => m * (d.terms.H ? H : d.terms.D ? D : 1), 1), 0);
  let extra = {};
  if (cell.artifact) {
    const { printSchedule, launches, savedPerStep } = await import(`${dir}/dist/compiler/schedule/print.js`);
    void printSchedule;
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
const before = arg("before");
// "js", "wasm" and "wasm2" (the wasm kernels on 2 threads): this checkout's backends; "before": the JS
// backend of the --before checkout. --impls chooses among them.
const chosen = arg("impls", "js,wasm,before").split(",");
const impls = [["js", root], ["wasm", root], ["wasm2", root], ...(before ? [["before", before]] : [])].filter(
  ([name]) => chosen.includes(name),
);
console.log(`# cellc CPU backends: ${cpus()[0].model}, ${cpus().length} cores, Node ${process.version}`);
console.log(
  `# medians of ${reps} after warm-up (up to 3 runs within 1 s; min-max); GFLOP/s of the cell's matmuls; peak RSS per process`,
);
console.log(
  "| cell | size | impl | forward ms | fwd GFLOP/s | train step ms | train GFLOP/s | launches/step fwd, bwd | kept/step | peak RSS |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const cell of cells)
  for (const size of sizes) {
    const got = {};
    for (const [name, dir] of impls) {
      const n = name === "before" && size === "L" ? "1" : reps;
      const out = execFileSync(
        process.execPath,
        [
          fileURLToPath(import.meta.url),
          "--one",
          "--dir",
          dir,
          "--cell",
          cell,
          "--size",
          size,
          "--reps",
          n,
          "--backend",
          name,
        ],
        { encoding: "utf8", maxBuffer: 1 << 20 },
      );
      const r = (got[name] = JSON.parse(out.trim().split("\n").pop()));
      const f = (t) => `${t.median.toFixed(1)} (${t.min.toFixed(0)}-${t.max.toFixed(0)})`;
      const gf = (t, k) => ((k * r.flops) / (t.median * 1e6)).toFixed(2);
      console.log(
        `| ${cell} | ${size} | ${name} | ${f(r.fwd)} | ${gf(r.fwd, 1)} | ${f(r.train)} | ${gf(r.train, 3)} | ${r.launchesFwd ?? "-"}, ${r.launchesBwd ?? "-"} | ${r.savedBytesPerStep ? `${(r.savedBytesPerStep / 1024).toFixed(0)} KiB` : "-"} | ${r.maxRssMiB.toFixed(0)} MiB |`,
      );
    }
    if (got.before)
      for (const now of ["js", "wasm", "wasm2"].filter((n) => got[n]))
        console.log(
          `| ${cell} | ${size} | ${now} vs before | ${(got.before.fwd.median / got[now].fwd.median).toFixed(2)}x | | ${(got.before.train.median / got[now].train.median).toFixed(2)}x | | | | |`,
        );
  }
