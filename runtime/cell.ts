import type { Artifact } from "../compiler/schedule/artifact.js";
import { KERNEL_NAMES, type KernelName, type Signature } from "../compiler/schedule/types.js";
import { CellcError, type FloatArray } from "./tensor.js";

/** One generated JS kernel, instantiated for a number of rows (see compiler/codegen/js.ts). */
export interface KernelFns {
  run(mem: FloatArray, pmem: FloatArray, offs: Float64Array, t: number): void;
  premask(mem: FloatArray, pmem: FloatArray, offs: Float64Array, t: number, lens: Int32Array): void;
  postmask(mem: FloatArray, pmem: FloatArray, offs: Float64Array, t: number, lens: Int32Array): void;
}
export type KernelFactory = (
  rows: number,
  dims: readonly number[],
  F: Float32ArrayConstructor | Float64ArrayConstructor,
) => KernelFns;

/** A cell ready to run: its artifact, and the artifact's JS kernels loaded. */
export interface CompiledCell {
  readonly artifact: Artifact;
  readonly signature: Signature;
  readonly kernels: Readonly<Record<KernelName, KernelFactory>>;
}

/**
 * Loads a compiled artifact (as `compile` makes it, or read back from `cellc compile --target js --out`).
 * Needs nothing of the compiler's front end.
 */
export function loadArtifact(artifact: Artifact): CompiledCell {
  if (artifact.format !== "cellc-artifact" || artifact.version !== 1)
    throw new CellcError("not a cellc artifact (format cellc-artifact, version 1)");
  if (artifact.js === undefined) throw new CellcError("the artifact has no JS kernels");
  const body =
    artifact.js.replace(/^export function /gm, "function ") + `\nreturn { ${KERNEL_NAMES.join(", ")} };`;
  // The generated code holds no user text (see compiler/codegen/js.ts), so evaluating it is safe.
  const kernels = new Function(body)() as Record<KernelName, KernelFactory>;
  return { artifact, signature: artifact.signature, kernels };
}
