// Trains a cell off the page's thread: compiles the edited cell (and the reference), builds the default
// network for the task, and runs the trainer (issue 9) with its metrics posted as they come. WebGPU where
// the worker has an adapter, the WebAssembly backend otherwise (JavaScript where the page cannot share memory).
import { compileCell } from "../runtime/compile.js";
import type { CompiledCell } from "../runtime/cell.js";
import { createWasmBackend } from "../runtime/cpu/wasm.js";
import { jsBackend, type Backend } from "../runtime/model.js";
import { canShareMemory } from "../runtime/wasm/web.js";
import { writeSafetensors } from "../runtime/safetensors.js";
import type { Tensor } from "../runtime/tensor.js";
import type {
  DataSource,
  Metric,
  NetworkOptions,
  NetworkSpec,
  TaskInfo,
  TrainConfig,
  TrainResult,
} from "../runtime/train/types.js";
import { builtInHost } from "./cells.js";
import type { CellSource, FromWorker, StartRequest, ToWorker } from "./protocol.js";

/** What the worker uses of the trainer's API (api.md), typed here since its modules load lazily. */
interface NetworkLike {
  readonly params: Map<string, Tensor>;
  readonly paramCount: number;
}
interface TrainApi {
  Network: new (spec: NetworkSpec, opts?: NetworkOptions) => NetworkLike;
  defaultNetworkSpec(cell: CompiledCell, task: TaskInfo, dims: Record<string, number>): NetworkSpec;
  makeTask(name: string, opts?: { T?: number }): DataSource;
  train(
    net: NetworkLike,
    data: DataSource,
    cfg: TrainConfig,
    hooks?: { onMetric?(m: Metric): void; signal?: AbortSignal },
  ): Promise<TrainResult>;
}

const scope = self as unknown as Worker;
const post = (m: FromWorker, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

/** Lazily, each its own chunk; a build without them finds none. The paths of trainer-files.ts. */
const TRAINER_MODULES = import.meta.glob([
  "../runtime/train/network.ts",
  "../runtime/train/trainer.ts",
  "../runtime/tasks/index.ts",
]);

let api: Promise<TrainApi> | undefined;
function loadApi(): Promise<TrainApi> {
  const load = (path: string) => {
    const f = TRAINER_MODULES[path];
    if (!f) throw new Error("training is not available in this build");
    return f() as Promise<Record<string, unknown>>;
  };
  api ??= Promise.all([
    load("../runtime/train/network.ts"),
    load("../runtime/train/trainer.ts"),
    load("../runtime/tasks/index.ts"),
  ]).then(([n, t, k]) => ({ ...n, ...t, ...k }) as unknown as TrainApi);
  return api;
}

let backend: Promise<{ backend: Backend; name: string }> | undefined;
function getBackend() {
  backend ??= (async () => {
    const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
    if (gpu && (await gpu.requestAdapter())) {
      const { createWebGpuBackend } = await import("../runtime/webgpu/index.js");
      const b = await createWebGpuBackend(gpu);
      return { backend: b as Backend, name: `WebGPU (${b.adapterName})` };
    }
    // The WebAssembly backend's memory is shared, which a page has only when cross-origin isolated.
    if (canShareMemory()) return { backend: createWasmBackend(), name: "WebAssembly" };
    return { backend: jsBackend, name: "JavaScript (the page is not cross-origin isolated)" };
  })();
  return backend;
}

/** Where the last run stopped, to resume it: its key (cell, task, size), step and weights. */
let last:
  { key: string; step: number; params: Map<string, Tensor>; refParams?: Map<string, Tensor> } | undefined;
let running: AbortController | undefined;

const compileOf = (c: CellSource) => compileCell(c.source, { file: c.file, cell: c.cell, host: builtInHost });

async function start(req: StartRequest): Promise<void> {
  const A = await loadApi();
  const { backend: b, name } = await getBackend();
  const data = A.makeTask(req.task, req.T === undefined ? {} : { T: req.T });
  const dims = { H: req.hidden };
  const key = JSON.stringify([req.cell, req.reference, req.task, req.T, req.hidden, req.batch]);
  const from = req.resume && last?.key === key ? last : undefined;
  const net = new A.Network(A.defaultNetworkSpec(compileOf(req.cell), data, dims), {
    backend: b,
    seed: req.seed,
    params: from?.params,
  });
  const ref = req.reference
    ? new A.Network(A.defaultNetworkSpec(compileOf(req.reference), data, dims), {
        backend: b,
        seed: req.seed,
        params: from?.refParams,
      })
    : undefined;
  const offset = from?.step ?? 0;
  const steps = req.steps - offset;
  post({ type: "started", backend: name, params: net.paramCount, from: offset });
  const controller = new AbortController();
  running = controller;
  let reached = offset;
  const cfg: TrainConfig = {
    steps,
    batch: req.batch,
    lr: req.lr,
    optim: "adam",
    clip: 1,
    seed: req.seed + offset,
    evalEvery: Math.max(10, Math.round(steps / 20)),
  };
  const hooks = (series: string, main: boolean) => ({
    signal: controller.signal,
    onMetric(m: Metric) {
      const step = m.step + offset;
      if (main) reached = Math.max(reached, step);
      post({ type: "metric", series, step, split: m.split, loss: m.loss });
    },
  });
  let summary = "";
  try {
    const [r] = await Promise.all([
      A.train(net, data, cfg, hooks("this cell", true)),
      ref ? A.train(ref, data, cfg, hooks("lstm (reference)", false)) : undefined,
    ]);
    summary = `final eval loss ${r.finalEvalLoss.toPrecision(4)}${r.solved ? ", solved" : ""}, ${r.msPerStep.toFixed(1)} ms/step`;
  } catch (e) {
    if (!controller.signal.aborted) throw e;
  } finally {
    running = undefined;
  }
  const stopped = controller.signal.aborted;
  last = { key, step: reached, params: net.params, refParams: ref?.params };
  const weights = writeSafetensors(net.params);
  post(
    {
      type: "done",
      stopped,
      step: reached,
      summary: stopped ? `stopped at step ${reached}` : summary,
      weights,
    },
    [weights.buffer],
  );
}

scope.onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  if (m.type === "stop") running?.abort();
  else if (m.type === "start" && !running)
    start(m).catch((err: unknown) => {
      running = undefined;
      post({ type: "error", message: err instanceof Error ? err.message : String(err) });
    });
};
