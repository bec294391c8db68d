import type { SourceHost } from "../check/program.js";
import { buildCellIR, checkProgram, selectModel } from "../driver.js";
import { diag, hasErrors, type Diagnostic } from "../diag/diagnostic.js";
import type { SourceMap } from "../diag/span.js";
import type { CellIR } from "../ir/cell.js";
import { printDim } from "../ir/shape.js";
import { loadArtifact } from "../../runtime/cell.js";
import { compileIR } from "../../runtime/compile.js";
import { CellcError } from "../../runtime/tensor.js";
import type { NetworkSpec } from "../../runtime/train/types.js";
import type { CheckedModel } from "./check.js";

/**
 * A declared model's network. Besides NetworkSpec: the model's name, and its input's name and kind as the
 * file declares them (NetworkSpec has no place for them yet).
 */
export interface ModelNetworkSpec extends NetworkSpec {
  readonly model: string;
  readonly input: { readonly name: string; readonly kind: "real" | "tokens" };
}

/** The IR of the model's two compiled parts: the recurrent cell and the stateless readout. */
export function buildModelIR(m: CheckedModel): { cell: CellIR; readout: CellIR } {
  return { cell: buildCellIR(m.cell), readout: buildCellIR(m.readout) };
}

/**
 * Compiles a checked model into the network the trainer runs: the cell and the readout each through the
 * whole pipeline (IR, AD, schedule, JS and WGSL kernels). `dims` are the sizes of dimension names (the
 * embedding's V must be among them). Throws CellcError when a size the spec needs is missing.
 */
export function buildNetworkSpec(
  m: CheckedModel,
  opts: { readonly dims: Readonly<Record<string, number>> },
): ModelNetworkSpec {
  const dims = Object.assign(Object.create(null) as Record<string, number>, opts.dims);
  const missing = missingEmbedDim(m, dims);
  if (missing) throw new CellcError(`dimension '${missing}' of embedding '${m.embed!.name}' has no size`);
  const ir = buildModelIR(m);
  const load = (x: CellIR) => loadArtifact(compileIR(x).artifact);
  let embed: NetworkSpec["embed"];
  if (m.embed) {
    const V = m.embed.type.dims[0]!;
    let v = V.c;
    for (const [n, k] of Object.entries(V.terms)) v += k * dims[n]!;
    embed = { name: m.embed.name, V: v, init: m.embed.init };
  }
  return {
    model: m.name,
    input: { name: m.input.name, kind: m.input.kind },
    cell: load(ir.cell),
    layers: m.layers,
    bidirectional: m.bidirectional,
    readout: load(ir.readout),
    on: m.on,
    loss: m.loss,
    embed,
    dims,
  };
}

function missingEmbedDim(m: CheckedModel, dims: Readonly<Record<string, number>>): string | undefined {
  const V = m.embed?.type.dims[0];
  return V && Object.keys(V.terms).find((n) => !Object.hasOwn(dims, n));
}

export interface ModelSpecResult {
  readonly diagnostics: Diagnostic[];
  /** The source files read, for rendering the diagnostics. */
  readonly sources: SourceMap;
  readonly spec?: ModelNetworkSpec;
}

export interface ModelSpecOptions {
  /** Which model, when the file defines several. */
  readonly model?: string;
  readonly dims: Readonly<Record<string, number>>;
}

/** A .cell file's model as a network: diagnostics, and the spec when there are no errors. */
export function networkSpecFromFile(file: string, host: SourceHost, opts: ModelSpecOptions): ModelSpecResult {
  return networkSpecFromSource(undefined, { ...opts, file, host });
}

/** As networkSpecFromFile, from source text (imports are read through `host`, by default they fail). */
export function networkSpecFromSource(
  source: string | undefined,
  opts: ModelSpecOptions & { readonly file?: string; readonly host?: SourceHost },
): ModelSpecResult {
  const host = opts.host ?? {
    read: (p: string) => {
      throw new Error(`no source host to read '${p}'`);
    },
  };
  const r = checkProgram(opts.file ?? "input.cell", host, source);
  const sources = r.program.sources;
  if (hasErrors(r.diagnostics)) return { diagnostics: r.diagnostics, sources };
  const sel = selectModel(r, opts.model, "pass the `model` option to choose one");
  const diagnostics = [...r.diagnostics, ...sel.diagnostics];
  if (!sel.model) return { diagnostics, sources };
  const missing = missingEmbedDim(sel.model, opts.dims);
  if (missing) {
    const e = sel.model.embed!;
    diagnostics.push(
      diag("E090", e.span, { name: missing, of: e.name, hint: "" }, [
        {
          message: `give the vocabulary size, e.g. dims ${missing}=64 (the embedding is [${e.type.dims.map(printDim).join(", ")}])`,
        },
      ]),
    );
    return { diagnostics, sources };
  }
  return { diagnostics, sources, spec: buildNetworkSpec(sel.model, { dims: opts.dims }) };
}
