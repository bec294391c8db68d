// Trains off the page's thread: compiles the edited cell (and the reference LSTM), builds the task's
// default network for each, and steps their Trainers in turn (one update of the cell, one of the
// reference), posting metrics as they come. The Trainers stay here between runs, so that resume goes on
// with the same optimiser state and data stream, not only the weights.
import { compileNetwork } from "../compiler/network/compile.js";
import { renderAll } from "../compiler/diag/diagnostic.js";
import { CellcError } from "../runtime/tensor.js";
import { createThreadedWasmBackend } from "../runtime/cpu/wasm.js";
import { Rng } from "../runtime/init.js";
import { jsBackend, type Backend } from "../runtime/model.js";
import { writeSafetensors } from "../runtime/safetensors.js";
import { makeTask } from "../workbench/tasks/index.js";
import { Network } from "../workbench/train/network.js";
import { Trainer } from "../workbench/train/trainer.js";
import type { Batch, DataSource } from "../workbench/train/types.js";
import { canShareMemory } from "../runtime/wasm/web.js";
import { builtInHost } from "./cells.js";
import {
  SERIES,
  type BackendKind,
  type CellSource,
  type FromWorker,
  type StartRequest,
  type ToWorker,
} from "./protocol.js";

const scope = self as unknown as Worker;
const post = (m: FromWorker, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

/** Gradient flow is measured on this many held-out sequences, as `cellc gradflow` does. */
const FLOW_BATCH = 32;
const FLOW_SEED = 0x9a3d;

const backends = new Map<BackendKind, Promise<{ backend: Backend; label: string }>>();
const gpuOf = () => (navigator as Navigator & { gpu?: GPU }).gpu;

/** `auto`: a hardware WebGPU adapter; not a software one (SwiftShader: seconds a step), which WebAssembly outruns. */
async function resolveKind(choice: StartRequest["backend"]): Promise<BackendKind> {
  if (choice !== "auto") return choice;
  const adapter = await gpuOf()
    ?.requestAdapter()
    .catch(() => null);
  if (adapter && !adapter.info.isFallbackAdapter) return "webgpu";
  return canShareMemory() ? "wasm" : "js";
}

function getBackend(kind: BackendKind): Promise<{ backend: Backend; label: string }> {
  let b = backends.get(kind);
  if (!b) {
    b = (async () => {
      if (kind === "webgpu") {
        const { createWebGpuBackend } = await import("../runtime/webgpu/index.js");
        const g = await createWebGpuBackend(gpuOf());
        return { backend: g as Backend, label: `WebGPU (${g.adapterName})` };
      }
      if (kind === "wasm") {
        // Its memory is shared (SharedArrayBuffer), which a page has only when cross-origin isolated.
        if (!canShareMemory())
          throw new Error("WebAssembly needs a cross-origin isolated page (COOP/COEP headers): choose JS");
        // Web Workers over the shared memory, one per core (kernels too small to split stay here).
        const threads = Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 8));
        const backend = await createThreadedWasmBackend(threads);
        return { backend, label: `WebAssembly, ${threads} thread${threads > 1 ? "s" : ""}` };
      }
      return { backend: jsBackend, label: "JavaScript" };
    })();
    b.catch(() => backends.delete(kind));
    backends.set(kind, b);
  }
  return b;
}

interface Run {
  readonly series: string;
  readonly trainer: Trainer;
  /** The cell's state whose gradient the picture shows (its first output's), as the network names it. */
  readonly state: string;
}

/** The last run, kept to resume: what it was started with, and its trainers. */
let session: { key: string; runs: Run[]; flow?: Batch; label: string; kind: BackendKind } | undefined;
let stopping = false;
let busy = false;

/** The cell's network for the task (its default model), compiled whole; errors as the CLI renders them. */
function networkOf(c: CellSource, data: DataSource, H: number) {
  const out = compileNetwork(c.source, {
    file: c.file,
    host: builtInHost,
    choice: { cell: c.cell },
    data,
    dims: { H },
    optimizer: "adam",
  });
  if (!out.artifact) throw new CellcError(renderAll(out.diagnostics, out.sources));
  return out.artifact;
}

/** Lets the worker see a stop message between steps: a step's awaits alone never yield to the event loop. */
function yieldToEvents(): Promise<void> {
  return new Promise((r) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => r();
    ch.port2.postMessage(0);
  });
}

async function gradflow(run: Run, batch: Batch): Promise<void> {
  const r = await run.trainer.net.loss(batch, { stateGrads: true });
  const norms = r.stateGradNorms?.get(run.state);
  if (norms)
    post({
      type: "gradflow",
      series: run.series,
      step: run.trainer.steps,
      state: run.state,
      norms: [...norms],
    });
}

async function open(req: StartRequest, kind: BackendKind): Promise<NonNullable<typeof session>> {
  const { backend, label } = await getBackend(kind);
  const cfg = {
    steps: req.steps,
    batch: req.batch,
    lr: req.lr,
    optim: "adam" as const,
    clip: 1,
    seed: req.seed,
    evalEvery: Math.max(5, Math.round(req.steps / 30)),
    evalBatch: 128,
  };
  const cells: [string, CellSource][] = [[SERIES.cell, req.cell]];
  if (req.reference) cells.push([SERIES.ref, req.reference]);
  // Each network has its own task object: a task may keep a position of its own in its data.
  const runs = cells.map(([series, src]): Run => {
    const data: DataSource = makeTask(req.task, req.T === undefined ? {} : { T: req.T });
    const artifact = networkOf(src, data, req.hidden);
    const net = new Network(artifact, { backend, seed: req.seed });
    const sig = artifact.cell.signature;
    const state = sig.states[sig.outputs[0]?.state ?? 0]?.name ?? "";
    return { series, trainer: new Trainer(net, data, cfg), state };
  });
  const task = runs[0]!.trainer.data;
  const flow =
    task.on === "last" && runs.every((r) => r.state)
      ? task.batch("eval", FLOW_BATCH, new Rng(FLOW_SEED))
      : undefined;
  return { key: "", runs, flow, label, kind };
}

async function start(req: StartRequest): Promise<void> {
  const kind = await resolveKind(req.backend);
  const key = JSON.stringify([
    req.cell,
    req.reference,
    kind,
    req.task,
    req.T,
    req.hidden,
    req.batch,
    req.lr,
    req.seed,
  ]);
  let note: string | undefined;
  if (req.resume && session && session.key !== key)
    note = "the settings or the cell changed, so it starts afresh";
  const resumed = req.resume && session?.key === key;
  if (!resumed) session = { ...(await open(req, kind)), key };
  const s = session!;
  const main = s.runs[0]!;
  const from = main.trainer.steps;
  const to = from >= req.steps ? from + req.steps : req.steps;
  post({
    type: "started",
    backend: s.kind,
    label: s.label,
    params: main.trainer.net.paramCount,
    from,
    to,
    note,
  });
  for (const run of s.runs)
    run.trainer.onMetric = (m) =>
      post({ type: "metric", series: run.series, step: m.step, split: m.split, loss: m.loss });
  if (!resumed && s.flow) for (const run of s.runs) await gradflow(run, s.flow);

  let shown = 0;
  const progress = () => {
    const r = main.trainer.result();
    post({
      type: "progress",
      step: main.trainer.steps,
      to,
      stepsPerSec: r.msPerStep ? 1000 / r.msPerStep : 0,
    });
    shown = performance.now();
  };
  const every = main.trainer.evalEvery;
  while (main.trainer.steps < to && !stopping) {
    for (const run of s.runs) {
      await run.trainer.step();
      if (run.trainer.steps % every === 0) await run.trainer.evaluate();
    }
    if (performance.now() - shown > 200) progress();
    await yieldToEvents();
  }
  for (const run of s.runs) {
    const last = run.trainer.metrics.at(-1);
    if (!(last?.split === "eval" && last.step === run.trainer.steps)) await run.trainer.evaluate();
    if (s.flow) await gradflow(run, s.flow);
  }
  progress();
  // Trained on the device (WebGPU), the parameters come back first.
  await main.trainer.net.syncHost();
  const r = main.trainer.result();
  const weights = writeSafetensors(main.trainer.net.params);
  // Each cell's result: the edited one by its name, then the reference's.
  const result = (x: ReturnType<Trainer["result"]>) =>
    `${x.finalEvalLoss.toPrecision(4)}${x.solved ? " (solved)" : ""}`;
  const ref = s.runs[1] ? ` vs LSTM ${result(s.runs[1].trainer.result())}` : "";
  const summary = stopping
    ? `stopped at step ${main.trainer.steps}: resume continues from there`
    : `step ${main.trainer.steps}: '${req.cell.cell ?? "cell"}' eval loss ${result(r)}${ref}, ${(1000 / r.msPerStep).toFixed(1)} steps/s on ${s.label}`;
  post({ type: "done", stopped: stopping, step: main.trainer.steps, summary, weights }, [weights.buffer]);
}

scope.onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  if (m.type === "stop") stopping = busy;
  else if (m.type === "start" && !busy) {
    busy = true;
    stopping = false;
    start(m)
      .catch((err: unknown) => {
        // A run that failed half way cannot be resumed.
        session = undefined;
        post({ type: "error", message: err instanceof Error ? err.message : String(err) });
      })
      .finally(() => {
        busy = false;
        stopping = false;
      });
  }
};
