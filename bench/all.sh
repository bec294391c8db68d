#!/bin/sh
# The CPU benchmark run behind BENCHMARKS.md and the README's speed summary: builds, runs the GEMM kernels
# alone, cellc against its peers (S and M with every peer; L without the JS backend and tfjs-cpu, which
# take minutes per step there), the wasm backend against its GEMM floor and with one core kept busy, then
# rewrites the marked section of BENCHMARKS.md and the README's summary from this run alone.
#   bench/all.sh [DIR]        results as JSON in DIR (default bench/results/<date>), then the report
# Needs the peers (`cd bench/peers && ONNXRUNTIME_NODE_INSTALL=skip npm ci`) and /usr/bin/python3 with
# torch on an optimised BLAS (Debian: python3-torch and libopenblas0-pthread). Run it on a quiet machine:
# every figure records the foreign load, but a loaded machine gives figures of a loaded machine.
set -eu
cd "$(dirname "$0")/.."
out=${1:-bench/results/$(date +%Y-%m-%d)}
mkdir -p "$out"
REPS=${REPS:-5}

PEERS_SM="node bench/peers/run.mjs --sizes S,M --reps $REPS --json $out/peers-sm.json"
PEERS_L="node bench/peers/run.mjs --sizes L --reps $REPS --impls cellc-wasm,cellc-wasm2,tfjs-wasm,ort-node-1,ort-node-2,ort-web-1,ort-web-2,torch-1,torch-2,torch-1x2 --json $out/peers-l.json"
GEMM="node bench/wasm-gemm.mjs --json $out/gemm.json"
CPU="node bench/cpu.mjs --sizes S,M,L --reps $REPS --impls wasm,wasm2,wasm+busy,wasm2+busy --json $out/cpu.json"

npx tsc -p tsconfig.build.json
[ -d bench/peers/node_modules ] || (cd bench/peers && ONNXRUNTIME_NODE_INSTALL=skip npm ci)
before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

$GEMM | tee "$out/gemm.txt"
$PEERS_SM | tee "$out/peers-sm.txt"
$PEERS_L | tee "$out/peers-l.txt"
$CPU | tee "$out/cpu.txt"

after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
commit=$(git rev-parse --short HEAD)
dirty=$(if git diff --quiet HEAD -- . ':!bench/results'; then echo false; else echo true; fi)
node -e '
const [out, before, after, commit, dirty, ...commands] = process.argv.slice(1);
const os = require("node:os");
const machine = `${os.cpus()[0].model}, ${os.cpus().length} cores, Node ${process.version}`;
require("node:fs").writeFileSync(`${out}/meta.json`, JSON.stringify({
  date: new Date().toISOString(), commit, dirty: dirty === "true", machine,
  loadBefore: before, loadAfter: after, commands: ["bench/all.sh", ...commands],
}, null, 1));
' "$out" "$before" "$after" "$commit" "$dirty" "$GEMM" "$PEERS_SM" "$PEERS_L" "$CPU"
node bench/report.mjs "$out"
npx prettier --write BENCHMARKS.md README.md > /dev/null
