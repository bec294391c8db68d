// The compiler's view of a trained network, for the exporters: the network artifact holds the compiled
// cell and readout (kernels and signatures), not their IR, so the source kept with it is compiled again and
// checked against it.
import type { NetworkArtifact } from "../../artifact/network.js";
import { CellcError } from "../../artifact/tensor.js";
import { renderAll } from "../diag/diagnostic.js";
import { buildCellIR } from "../driver.js";
import { compileNetwork } from "../network/compile.js";
import type { CellIR } from "../ir/cell.js";

/** A trained network for the exporters: its artifact, and the IR of its cell and of its readout. */
export interface NetworkIR {
  readonly artifact: NetworkArtifact;
  readonly cell: CellIR;
  readonly readout: CellIR;
}

/**
 * The IR of a network's cell and readout, from the source its artifact keeps (`source`, set by `cellc
 * train`). The source is compiled as it was for training (the same choice, sizes and data shape); the result
 * must have the artifact's parameters and signatures, else it is not the network that was trained (the
 * artifact was edited, or a cellc that compiles the file differently).
 */
export function networkIR(artifact: NetworkArtifact, where = "the network"): NetworkIR {
  const src = artifact.source;
  if (!src)
    throw new CellcError(
      `${where} does not keep its source (trained by an older cellc): train it again to export it`,
    );
  const files = new Map(Object.entries(src.files));
  const text = files.get(src.file);
  if (text === undefined) throw new CellcError(`${where}: its source has no '${src.file}'`);
  const host = {
    read: (path: string) => {
      const t = files.get(path);
      if (t === undefined) throw new Error("not kept with the network");
      return t;
    },
  };
  const a = artifact;
  const out = compileNetwork(text, {
    file: src.file,
    host,
    choice: src.choice,
    dims: src.dims,
    data: {
      name: where,
      inputKind: a.input.kind,
      inputSize: a.input.size,
      outputSize: a.outputSize,
      on: a.on,
      loss: a.loss.kind,
    },
    optimizer: a.optimizer.kind,
    targets: ["js"],
  });
  if (!out.artifact || !out.model)
    throw new CellcError(
      `${where}: its source no longer compiles:\n${renderAll(out.diagnostics, out.sources)}`,
    );
  const again = out.artifact;
  const same = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);
  const params = (n: NetworkArtifact) => n.params.map((p) => [p.name, p.part, p.shape]);
  if (
    !same(params(again), params(a)) ||
    !same(again.cell.signature, a.cell.signature) ||
    !same(again.readout.signature, a.readout.signature) ||
    !same(again.sizes, a.sizes) ||
    again.layers !== a.layers ||
    again.bidirectional !== a.bidirectional
  )
    throw new CellcError(
      `${where}: its source compiles to another network than the one trained (its parameters or signatures differ)`,
    );
  return { artifact: a, cell: buildCellIR(out.model.cell), readout: buildCellIR(out.model.readout) };
}
