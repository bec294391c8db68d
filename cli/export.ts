import { compileCellFile, nonfiniteNames, readTensors } from "./run.js";
import { writeFileSync } from "node:fs";
import { loadArtifact } from "../runtime/cell.js";
import { compileIR } from "../compiler/compile.js";
import { Model } from "../runtime/model.js";
import { writeSafetensors } from "../runtime/safetensors.js";
import type { Parsed } from "./args.js";
import type { Io } from "./io.js";
import { CliError } from "./io.js";
import type { CellIR } from "../compiler/ir/cell.js";
import { exportOnnx } from "../compiler/export/onnx.js";
import { importTorch } from "../compiler/export/import-torch.js";
import { exportTorch } from "../compiler/export/torch.js";

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

/** `--dims D=8,H=16`: sizes the parameters do not give. */
function dimsOf(args: Parsed): Record<string, number> | undefined {
  const text = args.options.dims;
  if (text === undefined) return undefined;
  const out: Record<string, number> = Object.create(null);
  for (const part of text.split(",")) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+)$/.exec(part.trim());
    if (!m) throw new CliError(`--dims takes NAME=SIZE pairs separated by commas (D=8,H=16), got '${part}'`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** `cellc compile F.cell --target onnx|torch --out FILE`. */
export function emitExport(ir: CellIR, args: Parsed, io: Io): void {
  const out = args.options.out!;
  if (args.options.target === "torch") {
    write(out, exportTorch(ir));
    io.out(`wrote ${out}: build(dims, layers=1, bidirectional=False) for cell '${ir.name}'\n`);
    return;
  }
  const params = args.options.params ? readTensors(args.options.params, "parameters") : undefined;
  const dims = dimsOf(args);
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
  const r = exportOnnx(ir, model, { weights: !!params, bidirectional: args.flags.has("bidirectional") });
  write(out, r.bytes);
  io.out(`wrote ${out} (${r.op === "Scan" ? "a Scan over the cell's step" : `ONNX ${r.op}`})\n`);
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
