import { availableParallelism } from "node:os";
import { writeFileAtomic } from "./atomic.js";
import { readInputFile } from "./files.js";
import { nodeHost } from "./node-host.js";
import type { Parsed } from "./args.js";
import { CHOOSE_CELL, readCellFile } from "./network.js";
import type { Io } from "./io.js";
import { CliError } from "./io.js";
import { CellCompileError } from "../compiler/compile.js";
import { compileCell } from "../api/compile-cell.js";
import { Model, type Backend } from "../runtime/model.js";
import { BACKEND_NAMES, createBackend } from "../runtime/backends.js";
import { readSafetensors, writeSafetensors } from "../runtime/safetensors.js";
import type { Tensor } from "../runtime/tensor.js";
import { UsageError } from "./args.js";
import { isDirectory } from "./io.js";
import { loadRun } from "./rundir.js";
import { loadArtifact, type CompiledCell } from "../runtime/cell.js";
import type { Signature } from "../artifact/schedule.js";
import { LAYER_PREFIX, layerParamName } from "../artifact/network.js";

/** A safetensors file (a regular file within the memory limit), or a CliError that names it. */
export function readTensors(path: string, what: string): Map<string, Tensor> {
  return readSafetensors(readInputFile(path, what), `${what} '${path}'`);
}

/** `cellc run`: see the README for the contract. */
export async function runCommand(args: Parsed, io: Io): Promise<number> {
  const file = args.files[0]!;
  const runDir = isDirectory(file);
  for (const need of runDir ? ["inputs", "out"] : ["params", "inputs", "out"])
    if (!args.options[need]) throw new UsageError(`run needs --${need} FILE`);
  const webgpu = args.options.backend === "webgpu";
  if (webgpu && args.flags.has("f64"))
    throw new CliError("--f64 needs --backend js: WebGPU computes in float32");
  if (args.options.backend === "wasm" && args.flags.has("f64"))
    throw new CliError("--f64 needs --backend js: the wasm backend computes in float32");
  const layersText = args.options.layers;
  let layers = layersText === undefined ? 1 : Number(layersText);
  if (!Number.isInteger(layers) || layers < 1)
    throw new CliError(`--layers must be a positive integer, got '${layersText}'`);
  let bidirectional = args.flags.has("bidirectional");
  let prefixed = layersText !== undefined || bidirectional;
  let cell: CompiledCell;
  let params: Map<string, Tensor>;
  if (runDir) {
    // A run folder: its cell, in the trained network's layers and directions, with its trained weights.
    for (const o of ["cell", "params", "layers"])
      if (args.options[o] !== undefined)
        throw new CliError(`--${o} does not go with a run folder: the trained network fixes it`);
    if (bidirectional)
      throw new CliError("--bidirectional does not go with a run folder: the trained network fixes it");
    const run = loadRun(file);
    const a = run.artifact;
    cell = loadArtifact(a.cell);
    params = new Map(
      [...run.params].filter(([n]) => a.params.some((p) => p.name === n && p.part === "cell")),
    );
    ({ layers, bidirectional } = a);
    prefixed = layers > 1 || bidirectional;
    const skipped = a.embed ? "its embedding and readout are" : "its readout is";
    io.err(
      `cellc: note: '${file}' holds the trained network '${a.name}': this runs its cell '${cell.signature.name}' (${layers} layer(s)${bidirectional ? ", bidirectional" : ""}) on the inputs as given; ${skipped} not run\n`,
    );
  } else {
    const compiled = compileCellFile(file, args.options.cell, io);
    if (!compiled) return 1;
    cell = compiled;
    params = readTensors(args.options.params!, "parameters");
    const other = notTheCells(cell.signature, params, layers, bidirectional, prefixed);
    if (other.length) {
      for (const n of other) params.delete(n);
      io.err(
        `cellc: note: ${other.length > 1 ? "parameters" : "parameter"} ${other.map((n) => `'${n}'`).join(", ")} of '${args.options.params}' ${other.length > 1 ? "are" : "is"} not the cell's (a network's readout or embedding): ignored; this runs cell '${cell.signature.name}' alone\n`,
      );
    }
  }
  const inputsFile = readTensors(args.options.inputs!, "inputs");
  const dtype = args.flags.has("f64") ? "f64" : "f32";
  const nonfinite = new Map<string, string[]>();
  for (const [group, ts] of [
    ["parameters", params],
    ["inputs", inputsFile],
  ] as const) {
    const bad = nonfiniteNames(ts);
    if (bad.length) nonfinite.set(group, bad);
  }
  const backend = await cliBackend(args);
  const model = new Model(cell, {
    backend,
    params,
    dtype,
    precision: cliPrecision(args),
    layers,
    bidirectional,
    prefixed,
    dims: inputDims(cell.signature, inputsFile),
  });
  for (const n of model.ignoredParams)
    io.err(`cellc: warning: parameter '${n}' is never used by '${cell.signature.name}': ignored\n`);
  const ir = cell.signature;
  const inputs = new Map<string, Tensor>();
  const inits = new Map<string, Tensor>();
  const upOutputs = new Map<string, Tensor>();
  const upFinals = new Map<string, Tensor>();
  let seqLens: Int32Array | undefined;
  for (const [name, t] of inputsFile) {
    if (ir.inputs.some((i) => i.name === name)) inputs.set(name, t);
    else if (name === "seq_lens") {
      if (t.dtype !== "i32" || t.shape.length !== 1)
        throw new CliError(
          `seq_lens must be an integer tensor (I32 or I64) of shape [B], got ${t.stored ?? t.dtype.toUpperCase()} [${t.shape.join(", ")}]`,
        );
      seqLens = t.data as Int32Array;
    } else if (name.startsWith("upstream.") && name.endsWith(".final")) upFinals.set(name.slice(9, -6), t);
    else if (name.startsWith("upstream.")) upOutputs.set(name.slice(9), t);
    else if (name.endsWith(".init")) inits.set(name.slice(0, -5), t);
    else
      throw new CliError(
        `unexpected tensor '${name}' in inputs '${args.options.inputs}': expected ${ir.inputs.map((i) => `'${i.name}'`).join(", ")}, '<state>.init', 'seq_lens', 'upstream.<output>' or 'upstream.<state>.final'`,
      );
  }
  const grad = args.flags.has("grad");
  const fwd = await model.forwardAsync(inputs, { initialStates: inits, seqLens, train: grad });
  const out = new Map<string, Tensor>();
  for (const [n, t] of fwd.outputs) out.set(n, t);
  for (const [n, t] of fwd.finalStates) out.set(`${n}.final`, t);
  if (grad) {
    const up = upOutputs.size || upFinals.size ? { outputs: upOutputs, finalStates: upFinals } : {};
    const g = await model.backwardAsync(fwd, up);
    for (const [n, t] of g.params) out.set(`grad.${n}`, t);
    for (const [n, t] of g.inputs) out.set(`grad.${n}`, t);
    for (const [n, t] of g.initialStates) out.set(`grad.${n}.init`, t);
  } else if (upOutputs.size || upFinals.size)
    throw new CliError("upstream gradients were given without --grad");
  const badOut = nonfiniteNames(out);
  if (badOut.length) nonfinite.set("outputs", badOut);
  // Recorded in the file too, so that a later reader of the outputs sees it.
  const metadata = new Map<string, string>();
  if (nonfinite.size) metadata.set("nonfinite", [...nonfinite.keys()].join(","));
  for (const [group, names] of nonfinite) {
    metadata.set(`nonfinite.${group}`, names.join(","));
    io.err(`cellc: warning: non-finite values (NaN or Inf) in ${group}: ${names.join(", ")}\n`);
  }
  writeFileAtomic(args.options.out!, writeSafetensors(out, metadata));
  const listed = [...out].map(([n, t]) => `${n} [${t.shape.join(", ")}]`);
  io.out(`wrote ${args.options.out} (${model.backend.name}, ${dtype}): ${listed.join(", ")}\n`);
  return 0;
}

/** The float tensors that hold NaN or an infinity. */
export function nonfiniteNames(ts: ReadonlyMap<string, Tensor>): string[] {
  return [...ts].filter(([, t]) => t.dtype !== "i32" && !t.data.every(Number.isFinite)).map(([n]) => n);
}

/**
 * The parameters of a file that are not the cell's, when the file also holds every one of the cell's (a
 * network's parameters: its readout and embedding beside the cell's). Otherwise none: a file that lacks
 * some of the cell's, or holds another layer or direction of them, is reported by the model, names and all.
 */
function notTheCells(
  sig: Signature,
  params: ReadonlyMap<string, Tensor>,
  layers: number,
  bidirectional: boolean,
  prefixed: boolean,
): string[] {
  const dirs = bidirectional ? 2 : 1;
  const names = (bases: readonly string[]) => {
    const out: string[] = [];
    for (let l = 0; l < layers; l++)
      for (let d = 0; d < dirs; d++)
        for (const n of bases) out.push(layerParamName(prefixed || layers > 1 || dirs > 1, l, d, n));
    return out;
  };
  const used = names(sig.params.map((p) => p.name));
  const mine = new Set([...used, ...names(sig.unusedParams ?? [])]);
  if (!used.every((n) => params.has(n))) return [];
  const other = [...params.keys()].filter((n) => !mine.has(n));
  // Another layout of the cell's own (a second layer, a reverse direction) is a mistake the model names.
  const bases = new Set([...sig.params.map((p) => p.name), ...(sig.unusedParams ?? [])]);
  return other.some((n) => bases.has(n.replace(LAYER_PREFIX, ""))) ? [] : other;
}

/** Sizes of the inputs' dimensions that no parameter has (the parameters' own come from their shapes). */
function inputDims(ir: Signature, inputs: ReadonlyMap<string, Tensor>): Record<string, number> {
  const inParams = new Set(ir.params.flatMap((p) => p.type.dims.flatMap((d) => Object.keys(d.terms))));
  const dims: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const inp of ir.inputs) {
    const t = inputs.get(inp.name);
    if (!t || t.shape.length !== 2 + inp.type.dims.length) continue;
    inp.type.dims.forEach((d, i) => {
      const names = Object.keys(d.terms);
      const n = names[0]!;
      if (names.length === 1 && d.c === 0 && d.terms[n] === 1 && !inParams.has(n))
        dims[n] ??= t.shape[2 + i]!;
    });
  }
  return dims;
}

/**
 * The wasm backend on `--threads` threads (default 1: with the elementwise kernels still single-threaded
 * JS, a second thread gave 1.2-1.3x at best here, and less on a busy machine; see BENCHMARKS.md).
 */
/**
 * The backend of `--backend` and `--threads`, for every command that runs a cell: the WebAssembly backend
 * by default (on all cores unless `--threads N`), the JS kernels for `--backend js` and for `--f64` (the
 * wasm kernels are float32), or WebGPU. Undefined stands for the JS backend.
 */
export async function cliBackend(args: Parsed, allowed: readonly string[] = BACKEND_NAMES): Promise<Backend> {
  const f64 = args.flags.has("f64");
  const name = args.options.backend ?? (f64 ? "js" : "wasm");
  if (!allowed.includes(name))
    throw new CliError(`${args.command} runs on the ${allowed.join(" or ")} backend, not '${name}'`);
  if (args.options.threads !== undefined && name !== "wasm")
    throw new CliError("--threads goes with the wasm backend");
  if (name !== "wasm") return createBackend(name);
  const text = args.options.threads ?? "all";
  const threads = text === "all" ? availableParallelism() : Number(text);
  if (!Number.isInteger(threads) || threads < 1 || threads > 256)
    throw new CliError(`--threads must be 'all' or an integer from 1 to 256, got '${text}'`);
  return createBackend("wasm", { threads });
}

/**
 * `--precision f32|f16`: f16 keeps the cell's tape and weights in float16 on WebGPU (the device must have
 * `shader-f16`; the model says so when it has not).
 */
export function cliPrecision(args: Parsed): "f32" | "f16" {
  const p = (args.options.precision ?? "f32") as "f32" | "f16";
  if (p === "f16" && args.options.backend !== "webgpu")
    throw new CliError("--precision f16 goes with --backend webgpu (float16 storage on the GPU)");
  return p;
}

/**
 * Reads and compiles one cell of a file, imports through the guarded host; prints the diagnostics and
 * gives undefined when it has errors.
 */
export function compileCellFile(file: string, cellName: string | undefined, io: Io) {
  const source = readCellFile(file);
  try {
    return compileCell(source, { file, cell: cellName, host: nodeHost, howToChoose: CHOOSE_CELL });
  } catch (e) {
    if (e instanceof CellCompileError) {
      io.err(e.message + "\n");
      return undefined;
    }
    throw e;
  }
}
