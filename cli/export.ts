import { compileCellFile, nonfiniteNames, readTensors } from "./run.js";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadArtifact } from "../runtime/cell.js";
import { compileIR } from "../compiler/compile.js";
import { Model } from "../runtime/model.js";
import { writeSafetensors } from "../runtime/safetensors.js";
import { parseDims, type Parsed } from "./args.js";
import type { Io } from "./io.js";
import { CliError } from "./io.js";
import type { CellIR } from "../compiler/ir/cell.js";
import { exportOnnx, exportOnnxNetwork, type InputMode, type OnnxExport } from "../compiler/export/onnx.js";
import { importTorch } from "../compiler/export/import-torch.js";
import { networkIR } from "../compiler/export/network.js";
import { exportTorch, exportTorchNetwork } from "../compiler/export/torch.js";
import { sourceDigestText } from "../artifact/network.js";
import { sha256 } from "./network.js";
import { loadRun, PARAMS_FILE } from "./rundir.js";

function write(path: string, data: string | Uint8Array): void {
  try {
    writeFileSync(path, data);
  } catch (e) {
    throw new CliError(`cannot write '${path}': ${(e as Error).message}`);
  }
}

function layersOf(args: Parsed): number {
  const text = args.options.layers;
  const n = text === undefined ? 1 : Number(text);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`--layers must be a positive integer, got '${text}'`);
  return n;
}

/** `--onnx-inputs`: how the model takes sequence_lens and the initial states (default optional). */
function inputMode(args: Parsed): InputMode {
  return (args.options["onnx-inputs"] ?? "optional") as InputMode;
}

/** What the ONNX model's extra inputs are, and which parameters an interface name made rename. */
function onnxNotes(r: OnnxExport, mode: InputMode, states: readonly string[], io: Io): void {
  const extra = ["sequence_lens", ...states.map((s) => `initial_${s}`)].join(", ");
  if (mode === "optional" && extra)
    io.out(
      `  ${extra}: optional inputs (initialisers that a runtime feeding them overrides; onnxruntime-node feeds only required inputs: --onnx-inputs required makes them so)\n`,
    );
  for (const [from, to] of r.renamed)
    io.out(`  parameter '${from}' is '${to}' in the model ('${from}' is an input or output name)\n`);
}

/** `cellc compile F.cell --target onnx|torch --out FILE`. */
export function emitExport(ir: CellIR, args: Parsed, io: Io): void {
  const out = args.options.out!;
  if (args.options.target === "torch") {
    if (args.options["onnx-inputs"]) throw new CliError("--onnx-inputs goes with --target onnx");
    write(out, exportTorch(ir));
    io.out(`wrote ${out}: build(dims, layers=1, bidirectional=False, params=None) for cell '${ir.name}'\n`);
    return;
  }
  const params = args.options.params ? readTensors(args.options.params, "parameters") : undefined;
  const dims = args.options.dims === undefined ? undefined : parseDims(args.options.dims);
  if (!params && !dims)
    throw new CliError("--target onnx needs the sizes: --params P.safetensors, or --dims D=8,H=16");
  // The runtime's model decides the sizes and names of every layer, and initialises what is not given.
  const model = new Model(loadArtifact(compileIR(ir, ["js"]).artifact), {
    params,
    dims,
    layers: layersOf(args),
    bidirectional: args.flags.has("bidirectional"),
    prefixed: args.options.layers !== undefined || args.flags.has("bidirectional"),
  });
  const mode = inputMode(args);
  const r = exportOnnx(ir, model, {
    weights: !!params,
    bidirectional: args.flags.has("bidirectional"),
    sequenceLens: mode,
    initialStates: mode,
  });
  write(out, r.bytes);
  io.out(`wrote ${out} (${r.op === "Scan" ? "a Scan over the cell's step" : `ONNX ${r.op}`})\n`);
  onnxNotes(
    r,
    mode,
    ir.states.map((s) => s.name),
    io,
  );
}

/**
 * `cellc compile DIR --target onnx|torch --out FILE`: the trained network of a run folder, whole (embedding,
 * cell, readout), with its trained weights (ONNX: as initialisers; PyTorch: `build(params=...)` loads them).
 */
export function exportRun(dir: string, args: Parsed, io: Io): number {
  for (const o of ["cell", "model", "params", "dims", "layers", "emit"])
    if (args.options[o] !== undefined)
      throw new CliError(`--${o} does not go with a run folder: the trained network fixes it`);
  if (args.flags.has("bidirectional"))
    throw new CliError("--bidirectional does not go with a run folder: the trained network fixes it");
  const target = args.options.target;
  if (target === undefined)
    throw new CliError(
      `'${dir}' is not a regular file but a folder: compile takes a .cell file, or a run folder with --target onnx or --target torch`,
    );
  if (target !== "onnx" && target !== "torch")
    throw new CliError(`a run folder exports with --target onnx or --target torch, not '${target}'`);
  const out = args.options.out!;
  const { artifact, params } = loadRun(dir);
  const src = artifact.source;
  if (src && sha256(sourceDigestText(src.files)) !== src.sha256)
    throw new CliError(
      `the source kept in '${join(dir, "network.json")}' does not match its digest: the file was changed`,
    );
  const net = networkIR(artifact, `the network in '${dir}'`);
  const what = `${artifact.model !== undefined ? "model" : "network of cell"} '${artifact.name}'`;
  if (target === "torch") {
    if (args.options["onnx-inputs"]) throw new CliError("--onnx-inputs goes with --target onnx");
    write(out, exportTorchNetwork(net));
    io.out(
      `wrote ${out}: build(params=None) for the ${what}; build(params=${JSON.stringify(join(dir, PARAMS_FILE))}) loads its trained weights\n`,
    );
    return 0;
  }
  const mode = inputMode(args);
  const r = exportOnnxNetwork(net, params, { sequenceLens: mode });
  write(out, r.bytes);
  io.out(
    `wrote ${out}: the ${what} with its trained weights (X${artifact.embed ? " token ids" : ""} in, y out; the cell ${r.op === "Scan" ? "a Scan over its step" : `as ONNX ${r.op}`})\n`,
  );
  onnxNotes(r, mode, [], io);
  return 0;
}

/** `cellc import torch STATE.safetensors --cell F.cell --out P.safetensors [--layers N] [--bidirectional]`. */
export function importCommand(args: Parsed, io: Io): number {
  const [what, stateFile] = args.files;
  if (what !== "torch" || stateFile === undefined)
    throw new CliError("usage: cellc import torch STATE.safetensors --cell F.cell --out P.safetensors");
  const file = args.options.cell;
  if (!file || !args.options.out) throw new CliError("import needs --cell F.cell and --out P.safetensors");
  const cell = compileCellFile(file, args.options.name, io);
  if (!cell) return 1;
  const layers = layersOf(args);
  const bidirectional = args.flags.has("bidirectional");
  const prefixed = args.options.layers !== undefined || bidirectional;
  const params = importTorch(cell.ir, readTensors(stateFile, "state dict"), {
    layers,
    bidirectional,
    prefixed,
  });
  // The shapes must also fit the cell's dimensions: the model checks them with the tensor's name.
  new Model(cell, { params, layers, bidirectional, prefixed });
  const bad = nonfiniteNames(params);
  if (bad.length)
    io.err(`cellc: warning: non-finite values (NaN or Inf) in the imported weights: ${bad.join(", ")}\n`);
  write(args.options.out, writeSafetensors(params));
  io.out(`wrote ${args.options.out}: ${[...params.keys()].join(", ")}\n`);
  return 0;
}
