#!/usr/bin/env node
// Writes the CPU part of BENCHMARKS.md and the README's speed summary from the JSON files of one run of
// bench/all.sh (a directory: meta.json, gemm.json, peers-*.json, cpu.json). Only what that run measured is
// written: every figure with its min-max and the foreign CPU load during its timed runs.
//   node bench/report.mjs DIR [--benchmarks BENCHMARKS.md] [--readme README.md]
// Both files keep what lies outside their markers: <!-- cpu-run --> ... <!-- /cpu-run --> in BENCHMARKS.md,
// <!-- speed-summary --> ... <!-- /speed-summary --> in the README.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2];
if (!dir) throw new Error("usage: node bench/report.mjs DIR [--benchmarks FILE] [--readme FILE]");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
};
const read = (f) => JSON.parse(readFileSync(join(dir, f), "utf8"));
const meta = read("meta.json");
const gemm = existsSync(join(dir, "gemm.json")) ? read("gemm.json") : undefined;
const cpu = existsSync(join(dir, "cpu.json")) ? read("cpu.json") : undefined;
const peerFiles = readdirSync(dir).filter((f) => /^peers.*\.json$/.test(f));
const peers = peerFiles.map(read);
const rows = peers.flatMap((p) => p.results);
const blas = Object.assign({}, ...peers.map((p) => p.blas ?? {}));

const CELLS = ["lstm", "gru"];
const SIZES = ["S", "M", "L"];
const SHAPE = { S: "T50 B32 D128 H128", M: "T100 B64 D256 H256", L: "T100 B64 D512 H512" };
const f1 = (x) => (x === undefined ? "-" : x.toFixed(1));
const f2 = (x) => (x === undefined ? "-" : x.toFixed(2));
const ms = (t) => (t ? `${t.median.toFixed(1)} (${t.min.toFixed(1)}-${t.max.toFixed(1)})` : "-");
const foreign = (t) => (t?.load ? t.load.foreign.toFixed(1) : "-");
const gf = (t, flops) => (t ? (flops / (t.median * 1e6)).toFixed(1) : "-");
const table = (head, body) =>
  [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...body.map((r) => `| ${r.join(" | ")} |`)].join("\n"); // prettier-ignore

/** A table row of an implementation that failed: its lead cells, the reason, blanks to `width` cells. */
const failedRow = (lead, why, width) => [
  ...lead,
  `failed: ${why.replaceAll("|", "/").slice(0, 120)}`,
  ...Array(width - lead.length - 1).fill(""),
];
const get = (cell, size, impl) => rows.find((r) => r.cell === cell && r.size === size && r.impl === impl && !r.failed); // prettier-ignore
/** The fastest of some implementations on one phase: [impl, its row]. */
function best(cell, size, impls, phase) {
  let pick;
  for (const i of impls) {
    const r = get(cell, size, i);
    if (r?.[phase] && (!pick || r[phase].median < pick[1][phase].median)) pick = [i, r];
  }
  return pick;
}
const TORCH = ["torch-1", "torch-2", "torch-1x2"];
const CELLC = ["cellc-wasm", "cellc-wasm2"];
const ORT = ["ort-node-1", "ort-node-2"];
const cpuRow = (cell, size, impl) => cpu?.results.find((r) => r.cell === cell && r.size === size && r.impl === impl && !r.failed); // prettier-ignore

const out = [];
out.push(`## The CPU backends against their peers (${meta.date.slice(0, 10)}, one run)`);
out.push("");
out.push(
  `One run of \`bench/all.sh\` at ${meta.commit}${meta.dirty ? " (with uncommitted changes)" : ""} on ${meta.machine}; ` +
    `load average ${meta.loadBefore} before the run and ${meta.loadAfter} after it. Every figure is the median of ` +
    "its timed runs after warm-up, with its min-max and the foreign load: the cores busy with other processes " +
    "during its timed runs (from /proc/stat, less the benchmark's own CPU time). Regenerate with `bench/all.sh` " +
    "(it rewrites this section and the README's speed summary); compare figures only within this section.",
);
out.push("");
out.push("Commands:");
out.push("");
for (const c of meta.commands) out.push(`    ${c}`);
out.push("");
out.push("PyTorch (Debian's python3-torch, 1.13) and its BLAS as loaded by the benchmark's processes:");
out.push("");
for (const [t, b] of Object.entries(blas))
  out.push(
    b.error
      ? `- \`torch-${t}\`: ${b.error}`
      : `- \`torch-${t}\`: ${b.name}${b.config ? ` (${b.config}; kernels ${b.core})` : ""}, ` +
          `${b.torchThreads} OpenMP thread(s), ${b.blasThreads ?? "?"} BLAS thread(s); 1024^3 GEMM ${b.gemmGflops.toFixed(1)} GFLOP/s`,
  );
out.push("");
out.push(
  "`torch-1`: one OpenMP and one BLAS thread; `torch-2`: two and two; `torch-1x2`: one OpenMP thread, two BLAS " +
    "threads. A reference (netlib) BLAS is refused by the benchmark. `cellc-wasm`: cellc's wasm backend on one " +
    "thread, `cellc-wasm2` on two, `cellc-js` its JS backend: every backend is named, none is the default.",
);
out.push("");

// Targets of issue 20.
const targets = [];
const ratioRow = (what, test, reported = false) => {
  const cols = [];
  let ok = true;
  for (const cell of CELLS)
    for (const size of SIZES) {
      const r = test(cell, size);
      if (r === undefined) {
        cols.push("-");
        continue;
      }
      cols.push(r.text);
      ok &&= r.ok;
    }
  const met = reported ? "reported" : ok ? "yes" : "no";
  targets.push([what, ...cols, cols.every((c) => c === "-") ? "-" : met]);
};
const trainVsTorch = (cell, size) => {
  const t = best(cell, size, TORCH, "train");
  const c = best(cell, size, CELLC, "train");
  if (!t || !c) return undefined;
  return { x: t[1].train.median / c[1].train.median, t, c };
};
ratioRow("training >= PyTorch's best at S (x: its time / cellc's)", (cell, size) => {
  if (size !== "S") return undefined;
  const r = trainVsTorch(cell, size);
  return r && { text: `${f2(r.x)}x`, ok: r.x >= 1 };
});
ratioRow("training within 1.25x of PyTorch's best at M, L (cellc's time / its)", (cell, size) => {
  if (size === "S") return undefined;
  const r = trainVsTorch(cell, size);
  return r && { text: `${f2(1 / r.x)}x`, ok: 1 / r.x <= 1.25 };
});
for (const impl of ["wasm", "wasm2"])
  for (const phase of ["fwd", "train"])
    ratioRow(
      `${phase === "fwd" ? "forward" : "training step"} >= 90% of its GEMM floor (${impl})`,
      (cell, size) => {
        const r = cpuRow(cell, size, impl);
        if (!r?.floor) return undefined;
        const share = r.floor[phase] / r[phase].median;
        return { text: `${(100 * share).toFixed(0)}%`, ok: share >= 0.9 };
      },
    );
ratioRow(
  "forward against onnxruntime-node's best (cellc's time / its)",
  (cell, size) => {
    const o = best(cell, size, ORT, "fwd");
    const c = best(cell, size, CELLC, "fwd");
    return o && c && { text: `${f2(c[1].fwd.median / o[1].fwd.median)}x`, ok: true };
  },
  true,
);
ratioRow("2 threads with one core busy not slower than 1 (training; 1 thread / 2 threads)", (cell, size) => {
  const [a, b] = [cpuRow(cell, size, "wasm+busy"), cpuRow(cell, size, "wasm2+busy")];
  if (!a || !b) return undefined;
  const x = a.train.median / b.train.median;
  return { text: `${f2(x)}x`, ok: x >= 1 };
});
out.push("### Targets (issue 20)");
out.push("");
out.push(
  table(["target", ...CELLS.flatMap((c) => SIZES.map((s) => `${c.toUpperCase()} ${s}`)), "met?"], targets),
);
out.push("");
out.push(
  "The GEMM floor of a pass is the time of its GEMMs alone (the cell's own shapes, each timed on one thread in " +
    "the same process, divided by the threads): what the pass would take if everything but its GEMMs were free.",
);
out.push("");

// Peers.
out.push("### Training step and forward pass against the peers");
out.push("");
out.push(
  "`node bench/peers/run.mjs`: each implementation in its own process. GFLOP/s: 2 FLOPs per multiply-add of " +
    "the gate matmuls, forward 2*T*B*G*H*(D+H) (G = 4 LSTM, 3 GRU), training step 3x forward. Training step: " +
    "forward, backward of the sum of the outputs (no implementation computes the input data's gradient), SGD " +
    "update. n: timed runs, and the cores the implementation kept busy. onnxruntime runs the ONNX model cellc " +
    "exports (forward only); its check and PyTorch's compare outputs with cellc's on a tiny case with the same weights.",
);
out.push("");
const runs = (t) => (t ? (t.warm === false ? "1, no warm-up" : `${t.n}`) + (t.cores ? `, ${t.cores.toFixed(1)} cores` : "") : "-"); // prettier-ignore
for (const cell of CELLS)
  for (const size of SIZES) {
    const here = rows.filter((r) => r.cell === cell && r.size === size);
    if (!here.length) continue;
    out.push(`**${cell.toUpperCase()} ${size}** (${SHAPE[size]})`);
    out.push("");
    out.push(
      table(
        [
          "impl",
          "forward ms",
          "n",
          "foreign",
          "GFLOP/s",
          "train step ms",
          "n",
          "foreign",
          "GFLOP/s",
          "peak RSS",
          "check",
        ],
        here.map((r) =>
          r.failed
            ? failedRow([r.impl], r.failed, 11)
            : [
                `${r.impl}${r.version ? ` ${r.version}` : ""}`,
                ms(r.fwd),
                runs(r.fwd),
                foreign(r.fwd),
                gf(r.fwd, r.flops),
                ms(r.train),
                runs(r.train),
                foreign(r.train),
                gf(r.train, 3 * r.flops),
                `${r.maxRssMiB.toFixed(0)} MiB`,
                r.check ?? "",
              ],
        ),
      ),
    );
    out.push("");
  }

// Ratios.
const ratios = [];
for (const cell of CELLS)
  for (const size of SIZES) {
    const c = get(cell, size, "cellc-wasm2") ?? get(cell, size, "cellc-wasm");
    if (!c) continue;
    const cName = c.impl;
    const peersHere = rows.filter((r) => r.cell === cell && r.size === size && !r.failed && !r.impl.startsWith("cellc")); // prettier-ignore
    for (const p of peersHere)
      ratios.push([
        `${cell.toUpperCase()} ${size}`,
        p.impl,
        cName,
        p.fwd && c.fwd ? `${f2(p.fwd.median / c.fwd.median)}x` : "-",
        p.train && c.train ? `${f2(p.train.median / c.train.median)}x` : "-",
      ]);
  }
out.push("Ratios: the peer's median time / cellc's (above 1: cellc is faster).");
out.push("");
out.push(table(["cell", "peer", "cellc", "forward", "training step"], ratios));
out.push("");

// GEMM floor, one and two threads, busy core.
if (cpu) {
  out.push("### The wasm backend against its GEMM floor, and with one core busy");
  out.push("");
  out.push(
    "`node bench/cpu.mjs`: each configuration in its own process. `+busy`: while a second process spins on one " +
      "core (its load shows in `foreign`). Floor: the pass's GEMMs alone, as above.",
  );
  out.push("");
  out.push(
    table(
      [
        "cell",
        "size",
        "impl",
        "forward ms",
        "foreign",
        "floor ms",
        "of floor",
        "train step ms",
        "foreign",
        "floor ms",
        "of floor",
        "train GFLOP/s",
      ],
      cpu.results.map((r) =>
        r.failed
          ? failedRow([r.cell, r.size, r.impl], r.failed, 12)
          : [
              r.cell,
              r.size,
              r.impl,
              ms(r.fwd),
              foreign(r.fwd),
              r.floor ? f1(r.floor.fwd) : "-",
              r.floor ? `${((100 * r.floor.fwd) / r.fwd.median).toFixed(0)}%` : "-",
              ms(r.train),
              foreign(r.train),
              r.floor ? f1(r.floor.train) : "-",
              r.floor ? `${((100 * r.floor.train) / r.train.median).toFixed(0)}%` : "-",
              gf(r.train, 3 * r.flops),
            ],
      ),
    ),
  );
  out.push("");
}

if (gemm) {
  out.push("### The GEMM kernels alone");
  out.push("");
  out.push(
    `\`node bench/wasm-gemm.mjs\`: GFLOP/s (2 per multiply-add), medians; tiling mr=${gemm.tiling.mr} nr=${gemm.tiling.nr} ` +
      `kc=${gemm.tiling.kc} nc=${gemm.tiling.nc}${gemm.tiling.fma ? ", fused multiply-adds (relaxed SIMD)" : ""}. ` +
      "nt: C = A P^T (the gate GEMMs, `packed`: on panels packed once, as a pass keeps a weight); nn: the " +
      "backward step's; tn: the weight gradients.",
  );
  out.push("");
  out.push(
    table(
      ["form", "R", "M", "K", "1 thread", "1 thread, packed", "2 threads", "foreign"],
      gemm.rows.map((r) => [r.form, r.R, r.M, r.K, f1(r.one), f1(r.packed), f1(r.two), f1(r.foreign)]),
    ),
  );
  out.push("");
}

const section = out.join("\n");
const benchFile = arg("benchmarks", "BENCHMARKS.md");
const replaceBetween = (text, open, close, body, where) => {
  const [a, b] = [text.indexOf(open), text.indexOf(close)];
  if (a < 0 || b < a) throw new Error(`${where} has no ${open} ... ${close} markers`);
  return text.slice(0, a + open.length) + "\n" + body + "\n" + text.slice(b);
};
writeFileSync(
  benchFile,
  replaceBetween(
    readFileSync(benchFile, "utf8"),
    "<!-- cpu-run -->",
    "<!-- /cpu-run -->",
    section,
    benchFile,
  ),
);

// The README's summary: the run's headline figures, nothing else.
const parts = [];
const fmt = (xs) => xs.map((x) => (x === undefined ? "-" : f2(x))).join(" / ");
for (const cell of CELLS) {
  const vsTorch = SIZES.map((s) => {
    const r = trainVsTorch(cell, s);
    return r && r.x;
  });
  const vsTfjs = SIZES.map((s) => {
    const c = best(cell, s, CELLC, "train");
    const t = get(cell, s, "tfjs-wasm");
    return c && t?.train ? t.train.median / c[1].train.median : undefined;
  });
  const vsOrt = SIZES.map((s) => {
    const c = best(cell, s, CELLC, "fwd");
    const o = best(cell, s, ORT, "fwd");
    return c && o ? o[1].fwd.median / c[1].fwd.median : undefined;
  });
  parts.push(
    `${cell.toUpperCase()} S / M / L: training step ${fmt(vsTorch)}x PyTorch's speed (its best thread setting, on ` +
      `OpenBLAS), ${fmt(vsTfjs)}x TensorFlow.js wasm's; forward pass ${fmt(vsOrt)}x onnxruntime-node's`,
  );
}
const busy = CELLS.flatMap((cell) =>
  SIZES.map((s) => {
    const [a, b] = [cpuRow(cell, s, "wasm+busy"), cpuRow(cell, s, "wasm2+busy")];
    return a && b ? a.train.median / b.train.median : undefined;
  }),
).filter((x) => x !== undefined);
const summary =
  `In the latest run (${meta.date.slice(0, 10)}, ${meta.machine}; figures with their spread and load in ` +
  "[BENCHMARKS.md](BENCHMARKS.md)), cellc's wasm backend (its faster of one and two threads) against its peers " +
  `(above 1: cellc is faster): ${parts.join("; ")}.` +
  (busy.length
    ? ` With one core kept busy by another process, two threads train ${f2(Math.min(...busy))}-${f2(Math.max(...busy))}x as fast as one.`
    : "");
const readme = arg("readme", "README.md");
writeFileSync(
  readme,
  replaceBetween(
    readFileSync(readme, "utf8"),
    "<!-- speed-summary -->",
    "<!-- /speed-summary -->",
    summary,
    readme,
  ),
);
console.log(`wrote ${benchFile} and ${readme} from ${dir}`);
