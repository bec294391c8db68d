// The playground page: edit a cell, see the checker's diagnostics as you type and every compiler stage
// printed as `cellc compile --emit` prints it, share it as a link, and train it (train-panel.ts).
import { setDiagnostics, lintGutter } from "@codemirror/lint";
import { EditorView } from "@codemirror/view";
import { basicSetup } from "codemirror";
import { checkProgram, type CompileResult } from "../compiler/driver.js";
import { hasErrors } from "../compiler/diag/diagnostic.js";
import { formatSource } from "../compiler/format/format.js";
import { STAGES, stageOutput, watOutput, type Stage } from "../compiler/stage.js";
import { compile } from "../compiler/compile.js";
import { canShareMemory } from "../runtime/wasm/web.js";
import { cellHighlight, cellLanguage } from "./cell-lang.js";
import { BUILT_IN, builtInHost, isVariant } from "./cells.js";
import { renderList, toEditor } from "./diagnostics.js";
import { download } from "./download.js";
import { decodeHash, encodeHash } from "./link.js";
import type { CellSource } from "./protocol.js";
import { setupTrain } from "./train-panel.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
/** Edits are checked once typing pauses this long. */
const DEBOUNCE_MS = 150;

let file = "lstm.cell";
let stage: Stage | "wat" = "ir";
let result: CompileResult | undefined;
let checks = 0;

const picker = $<HTMLSelectElement>("picker");
const cellSelect = $<HTMLSelectElement>("cell");
const stageOut = $("stage");
const status = $("status");

for (const [group, variants] of [
  ["cells", false],
  ["extends variants", true],
] as const) {
  const g = document.createElement("optgroup");
  g.label = group;
  for (const [name, text] of BUILT_IN) if (isVariant(text) === variants) g.append(new Option(name, name));
  picker.append(g);
}

let timer: ReturnType<typeof setTimeout> | undefined;
const view = new EditorView({
  parent: $("editor"),
  extensions: [
    basicSetup,
    cellLanguage,
    cellHighlight,
    lintGutter(),
    EditorView.updateListener.of((u) => {
      if (!u.docChanged) return;
      clearTimeout(timer);
      timer = setTimeout(check, DEBOUNCE_MS);
    }),
  ],
});

/** The cell to show and train: the one chosen when the file defines several. */
function chosenCell(): string | undefined {
  return result && result.cellNames.length > 1 ? cellSelect.value : undefined;
}

function check(): void {
  clearTimeout(timer);
  const text = view.state.doc.toString();
  const t0 = performance.now();
  result = checkProgram(file, builtInHost, text);
  const { diagnostics, program, cellNames } = result;
  view.dispatch(setDiagnostics(view.state, toEditor(diagnostics, file, program.sources)));
  renderList($("diagnostics"), diagnostics, program.sources);
  const keep = cellSelect.value;
  cellSelect.replaceChildren(...cellNames.map((n) => new Option(n, n, false, n === keep)));
  $("cell-choice").hidden = cellNames.length < 2;
  const errors = diagnostics.filter((d) => d.severity === "error").length;
  // The cells by name: a file loaded as lstm.cell may hold any cell once edited.
  const cells =
    cellNames.length === 1
      ? `cell '${cellNames[0]}'`
      : `${cellNames.length} cells${cellNames.length ? ` (${cellNames.join(", ")})` : ""}`;
  status.textContent = `${errors ? `${errors} error(s)` : `${cells} ok`}, checked in ${(performance.now() - t0).toFixed(1)} ms`;
  $<HTMLButtonElement>("artifact").disabled = hasErrors(diagnostics) || cellNames.length === 0;
  showStage();
  void saveLink(text);
  document.body.dataset.checks = String(++checks);
}

let shown = 0;
function showStage(): void {
  for (const b of $("tabs").querySelectorAll("button"))
    b.setAttribute("aria-selected", String(b.dataset.stage === stage));
  stageOut.dataset.stage = stage;
  if (!result) return;
  const r = result;
  const seq = ++shown;
  const show = (out: { text?: string; diagnostics: readonly { message: string }[] }) => {
    if (seq !== shown) return; // a later check or tab has taken over
    stageOut.classList.toggle("stale", out.text === undefined);
    stageOut.textContent =
      out.text ??
      (hasErrors(r.diagnostics)
        ? "The cell has errors: see the diagnostics."
        : out.diagnostics.map((d) => d.message).join("\n"));
    stageOut.dataset.shown = String(seq);
  };
  if (stage !== "wat") return show(stageOutput(r, stage, chosenCell()));
  // The WebAssembly text needs wabt, loaded (a few MB) the first time this tab opens.
  stageOut.textContent = "loading the WebAssembly printer...";
  void watOutput(r, chosenCell()).then(show, (e: unknown) =>
    show({ diagnostics: [{ message: `cannot print the WebAssembly text: ${String(e)}` }] }),
  );
}

for (const s of [...STAGES, "wat"] as const) {
  const b = document.createElement("button");
  b.type = "button";
  b.role = "tab";
  b.textContent = s;
  b.dataset.stage = s;
  b.onclick = () => {
    stage = s;
    showStage();
  };
  $("tabs").append(b);
}

let linkSeq = 0;
async function saveLink(text: string): Promise<void> {
  const seq = ++linkSeq;
  const hash = await encodeHash({ file, text });
  if (seq === linkSeq) history.replaceState(null, "", hash);
}

function load(name: string, text: string): void {
  file = name;
  picker.value = BUILT_IN.has(name) ? name : "";
  view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
  check();
}

picker.onchange = () => load(picker.value, BUILT_IN.get(picker.value) ?? "");
cellSelect.onchange = showStage;
$("share").onclick = () => {
  navigator.clipboard.writeText(location.href).then(
    () => (status.textContent = "link copied"),
    () => (status.textContent = `link: ${location.href}`),
  );
};
$("format").onclick = () => {
  const text = view.state.doc.toString();
  try {
    const r = formatSource(file, text);
    if (!r.ok) status.textContent = `${file}: not formatted: it has syntax errors (see the diagnostics)`;
    else if (r.changed) view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: r.text } });
  } catch (e) {
    status.textContent = `${file}: not formatted: ${e instanceof Error ? e.message : String(e)}`;
  }
};
$("artifact").onclick = () => {
  const out = compile(view.state.doc.toString(), { file, host: builtInHost, cell: chosenCell() });
  if (out.artifact && out.ir)
    download(
      `${out.ir.name}.artifact.json`,
      JSON.stringify(out.artifact, null, 1) + "\n",
      "application/json",
    );
};

const current = (): CellSource | undefined =>
  result && !hasErrors(result.diagnostics) && result.cellNames.length
    ? { file, source: view.state.doc.toString(), cell: chosenCell() ?? result.cellNames[0] }
    : undefined;
setupTrain(current);

async function detectGpu(): Promise<void> {
  const el = $("gpu");
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  const adapter = gpu ? await gpu.requestAdapter().catch(() => null) : null;
  if (adapter) {
    const { vendor, architecture } = adapter.info;
    el.textContent = `WebGPU: ${[vendor, architecture].filter(Boolean).join(" ") || "adapter found"}`;
    if (adapter.info.isFallbackAdapter)
      el.textContent += ` (software: auto trains on ${canShareMemory() ? "WebAssembly" : "JavaScript"})`;
  } else {
    el.textContent = canShareMemory()
      ? "WebGPU not available: training uses WebAssembly"
      : "WebGPU not available: training uses JavaScript (WebAssembly needs a cross-origin isolated page)";
    el.classList.add("no");
  }
}

async function restore(): Promise<void> {
  const shared = await decodeHash(location.hash);
  if (shared) load(shared.file, shared.text);
  else load("lstm.cell", BUILT_IN.get("lstm.cell") ?? "");
}
window.addEventListener("hashchange", () => void restore());
void restore();
void detectGpu();
