// The Train panel: task, sequence length, size, step budget and backend; start, stop and resume; the
// learning curves of the edited cell and the reference LSTM, the gradient-flow picture, and the trained
// weights as safetensors. Training runs in train.worker.ts, so that the page never freezes.
import { BUILT_IN } from "./cells.js";
import { renderChart, type ChartOptions, type Series } from "./chart.js";
import { download } from "./download.js";
import {
  SERIES,
  TASKS,
  type BackendChoice,
  type CellSource,
  type FromWorker,
  type ToWorker,
} from "./protocol.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const COLOR: Record<string, string> = { [SERIES.cell]: "#1e66f5", [SERIES.ref]: "#fe640b" };
const colorOf = (name: string) => COLOR[name] ?? "#40a02b";
const LOSS: ChartOptions = { x: "step", empty: "no steps yet" };
const FLOW: ChartOptions = { x: "t", empty: "none yet (for a task with one target per sequence: adding)" };

export function setupTrain(current: () => CellSource | undefined): void {
  const task = $<HTMLSelectElement>("task");
  for (const t of TASKS) task.append(new Option(t, t));
  const [start, stop, resume, weights] = ["start", "stop", "resume", "weights"].map((id) =>
    $<HTMLButtonElement>(id),
  ) as [HTMLButtonElement, HTMLButtonElement, HTMLButtonElement, HTMLButtonElement];
  const status = $("train-status");
  const lossChart = document.getElementById("chart") as unknown as SVGSVGElement;
  const flowChart = document.getElementById("gradflow") as unknown as SVGSVGElement;
  /** Losses by series and split; gradient norms by series, at initialisation and the latest. */
  const losses = new Map<string, { train: [number, number][]; eval: [number, number][] }>();
  const flows = new Map<string, { init?: number[]; now?: { step: number; norms: number[] } }>();

  const lossSeries = (): Series[] =>
    [...losses].flatMap(([name, s]) => [
      { name: `${name} train`, color: colorOf(name), points: s.train, faint: true, unlisted: true },
      { name: `${name} eval`, label: name, color: colorOf(name), points: s.eval },
    ]);
  const flowSeries = (): Series[] => {
    const out: Series[] = [];
    for (const [name, f] of flows) {
      const pts = (n: number[]) => n.map((v, t) => [t, v] as [number, number]);
      if (f.init)
        out.push({
          name: `${name} init`,
          color: colorOf(name),
          points: pts(f.init),
          dashed: true,
          unlisted: true,
        });
      if (f.now)
        out.push({
          name: `${name} step ${f.now.step}`,
          label: name,
          color: colorOf(name),
          points: pts(f.now.norms),
        });
    }
    // One legend entry says what the dashed lines are.
    if (out.some((s) => s.dashed)) out.push({ name: "at init", color: "#889", points: [], dashed: true });
    return out;
  };
  // At most one redraw a frame, however fast metrics come.
  let frame = 0;
  const draw = () => {
    frame ||= requestAnimationFrame(() => {
      frame = 0;
      renderChart(lossChart, lossSeries(), LOSS);
      renderChart(flowChart, flowSeries(), FLOW);
    });
  };
  draw();
  // Drawn at the charts' own size: again when that changes.
  const resized = new ResizeObserver(draw);
  resized.observe(lossChart);
  resized.observe(flowChart);

  let worker: Worker | undefined;
  let trained: Uint8Array | undefined;
  let name = "cell";
  /** How the status line names what trains: the edited cell, and the reference when it trains too. */
  let what = "cell";
  let backend = "";
  const running = (on: boolean) => {
    start.disabled = on;
    stop.disabled = !on;
    resume.disabled = on || trained === undefined;
    status.dataset.running = String(on);
  };
  const onMessage = (e: MessageEvent<FromWorker>) => {
    const m = e.data;
    if (m.type === "started") {
      // A fresh run (also a resume that could not continue): new curves.
      if (m.from === 0) {
        losses.clear();
        flows.clear();
        draw();
      }
      backend = m.label;
      status.dataset.backend = m.backend;
      status.dataset.from = String(m.from);
      status.textContent = `training ${what} on ${m.label}, ${m.params} parameters, steps ${m.from}…${m.to}${m.note ? ` (${m.note})` : ""}`;
    } else if (m.type === "metric") {
      let s = losses.get(m.series);
      if (!s) losses.set(m.series, (s = { train: [], eval: [] }));
      s[m.split].push([m.step, m.loss]);
      draw();
    } else if (m.type === "progress") {
      status.dataset.step = String(m.step);
      status.dataset.rate = m.stepsPerSec.toFixed(2);
      status.textContent = `training ${what} on ${backend}: step ${m.step} of ${m.to}, ${m.stepsPerSec.toFixed(1)} steps/s`;
    } else if (m.type === "gradflow") {
      let f = flows.get(m.series);
      if (!f) flows.set(m.series, (f = {}));
      if (m.step === 0) f.init = m.norms;
      else f.now = { step: m.step, norms: m.norms };
      draw();
    } else if (m.type === "done") {
      trained = m.weights;
      weights.disabled = false;
      status.dataset.step = String(m.step);
      status.textContent = m.summary;
      running(false);
    } else {
      status.textContent = `training failed: ${m.message}`;
      running(false);
    }
  };
  const send = (m: ToWorker) => {
    if (!worker) {
      worker = new Worker(new URL("./train.worker.ts", import.meta.url), { type: "module" });
      worker.onmessage = onMessage;
      worker.onerror = (e) => {
        status.textContent = `training failed: ${e.message}`;
        running(false);
      };
    }
    worker.postMessage(m);
  };
  const go = (resumed: boolean) => {
    const cell = current();
    if (!cell) {
      status.textContent = "fix the cell's errors first";
      return;
    }
    const T = Math.round(Number($<HTMLInputElement>("T").value));
    name = cell.cell ?? "cell";
    const lstm = BUILT_IN.get("lstm.cell");
    const vs = $<HTMLInputElement>("reference").checked && lstm;
    what = `'${name}'${vs ? " vs LSTM" : ""}`;
    send({
      type: "start",
      cell,
      reference: vs ? { file: "lstm.cell", source: vs } : undefined,
      backend: $<HTMLSelectElement>("backend").value as BackendChoice,
      task: task.value,
      T: T >= 2 ? T : undefined,
      hidden: Number($<HTMLSelectElement>("hidden").value),
      steps: Math.max(1, Math.round(Number($<HTMLInputElement>("steps").value) || 300)),
      batch: 32,
      lr: 0.01,
      seed: 1,
      resume: resumed,
    });
    status.textContent = "starting…";
    running(true);
  };
  start.onclick = () => go(false);
  resume.onclick = () => go(true);
  stop.onclick = () => send({ type: "stop" });
  weights.onclick = () => trained && download(`${name}.safetensors`, trained, "application/octet-stream");
}
