// A trainable network from a .cell source and its data in one call: compileNetwork (the whole network:
// the file's declared model, or the cell in the data's default model), its errors as a CellCompileError
// whose message is the rendered diagnostics, then a Network with weights from a seed (or given ones).
// Nothing here touches files, so a page may use it.
import { CellCompileError } from "../compiler/compile.js";
import { hasErrors, renderAll, type Diagnostic } from "../compiler/diag/diagnostic.js";
import { compileNetwork, type DataShape, type NetworkOptions } from "../compiler/network/compile.js";
import { Network } from "../workbench/train/network.js";
import type { NetworkOptions as RuntimeOptions } from "../workbench/train/types.js";

export interface NetworkForOptions extends RuntimeOptions {
  /** For diagnostics and imports (read through `host`). */
  readonly file?: string;
  readonly host?: NetworkOptions["host"];
  /** Which cell (in the default model) or declared model; the file's only one when absent. */
  readonly cell?: string;
  readonly model?: string;
  /** The default model's stack (a declared model says its own). */
  readonly layers?: number;
  readonly bidirectional?: boolean;
  /** Sizes the data does not give (H = 32 when the cell has an H and none is given). */
  readonly dims?: Readonly<Record<string, number>>;
  /** The optimiser the artifact carries kernels for (Adam by default); train's `optim` must match it. */
  readonly optimizer?: NetworkOptions["optimizer"];
  /** Called with the warnings, when there are any. */
  readonly onWarnings?: (text: string, diagnostics: readonly Diagnostic[]) => void;
}

/**
 * The network of `source` for `data` (a DataSource, or any DataShape), ready to train or predict.
 * Throws CellCompileError for a file with errors, and CellcError for a network that does not fit its data.
 */
export function networkFor(source: string, data: DataShape, opts: NetworkForOptions = {}): Network {
  const choice = {
    ...(opts.cell !== undefined ? { cell: opts.cell } : {}),
    ...(opts.model !== undefined ? { model: opts.model } : {}),
    ...(opts.layers !== undefined ? { layers: opts.layers } : {}),
    ...(opts.bidirectional ? { bidirectional: true } : {}),
  };
  const dims = { ...opts.dims };
  const out = compileNetwork(source, {
    ...(opts.file !== undefined ? { file: opts.file } : {}),
    ...(opts.host !== undefined ? { host: opts.host } : {}),
    ...(opts.optimizer !== undefined ? { optimizer: opts.optimizer } : {}),
    choice,
    data,
    dims,
  });
  if (!out.artifact || hasErrors(out.diagnostics))
    throw new CellCompileError(renderAll(out.diagnostics, out.sources), out.diagnostics);
  if (out.diagnostics.length) opts.onWarnings?.(renderAll(out.diagnostics, out.sources), out.diagnostics);
  return new Network(out.artifact, opts);
}
