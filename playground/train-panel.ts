// The Train panel: task, size and step budget, start/stop/resume, the live learning curve, and the
// trained weights as safetensors. Training runs in train.worker.ts so that the page never freezes.
import { BUILT_IN } from "./cells.js";
import { renderChart, type Series } from "./chart.js";
import { download } from "./download.js";
import { TASKS, trainingAvailable, type CellSource, type FromWorker, type ToWorker } from "./protocol.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const COLORS = ["#1e66f5", "#8839ef", "#fe640b", "#40a02b"];

export function setupTrain(current: () => CellSource | undefined): void {
  const task = $<HTMLSelectElement>("task");
  for (const t of TASKS) task.append(new Option(t, t));
  const [start, stop, resume, weights] = ["start", "stop", "resume", "weights"].map((id) =>
    $<HTMLButtonElement>(id),
  ) as [HTMLButtonElement, HTMLButtonElement, HTMLButtonElement, HTMLButtonElement];
  const status = $("train-status");
  const chart = document.getElementById("chart") as unknown as SVGSVGElement;
  const series = new Map<string, [number, number][]>();
  // At most one redraw a frame, however fast metrics come.
  let frame = 0;
  const draw = () => {
    frame ||= requestAnimationFrame(() => {
      frame = 0;
      const list = [...series].map(([name, points], i): Series => ({
        name,
        points,
        color: COLORS[i % COLORS.length]!,
      }));
      renderChart(chart, list);
    });
  };
  draw();

  if (!trainingAvailable()) {
    status.textContent = "training is not available in this build";
    for (const b of [start, stop, resume]) b.disabled = true;
    return;
  }

  let worker: Worker | undefined;
  let trained: Uint8Array | undefined;
  let name = "cell";
  const running = (on: boolean) => {
    start.disabled = on;
    stop.disabled = !on;
    resume.disabled = on || trained === undefined;
  };
  const onMessage = (e: MessageEvent<FromWorker>) => {
    const m = e.data;
    if (m.type === "started")
      status.textContent = `training on ${m.backend}, ${m.params} parameters${m.from ? `, from step ${m.from}` : ""}`;
    else if (m.type === "metric") {
      const key = `${m.series} ${m.split}`;
      if (!series.has(key)) series.set(key, []);
      series.get(key)!.push([m.step, m.loss]);
      draw();
    } else if (m.type === "done") {
      trained = m.weights;
      weights.disabled = false;
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
    if (!resumed) series.clear();
    draw();
    name = cell.cell ?? "cell";
    const lstm = BUILT_IN.get("lstm.cell");
    send({
      type: "start",
      cell,
      reference:
        $<HTMLInputElement>("reference").checked && lstm ? { file: "lstm.cell", source: lstm } : undefined,
      task: task.value,
      hidden: Number($<HTMLSelectElement>("hidden").value),
      steps: Math.max(10, Math.round(Number($<HTMLInputElement>("steps").value) || 300)),
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
