import type { Artifact } from "../artifact/artifact.js";
import { KERNEL_NAMES, type KernelName, type Signature } from "../artifact/schedule.js";
import { checkArtifact } from "../artifact/validate.js";
import { loadJsModule } from "./kernels.js";
import { CellcError, type FloatArray } from "./tensor.js";

/** One generated JS kernel, instantiated for a number of rows (see compiler/codegen/js.ts). */
export interface KernelFns {
  /** `inputGrads` false: the inputs' gradient buffers are not read afterwards (a kernel may skip them). */
  run(mem: FloatArray, pmem: FloatArray, offs: Float64Array, t: number, inputGrads?: boolean): void;
  /** Runs at t = from, then toward `to` (excluded) one step at a time, if it can as one job; false if not. */
  runSteps?(mem: FloatArray, pmem: FloatArray, offs: Float64Array, from: number, to: number): boolean;
  premask(mem: FloatArray, pmem: FloatArray, offs: Float64Array, t: number, lens: Int32Array): void;
  postmask(mem: FloatArray, pmem: FloatArray, offs: Float64Array, t: number, lens: Int32Array): void;
}
/**
 * The three GEMMs of the generated kernels, on (array, element offset, leading dimension) operands:
 * nt: C[R, M] (+)= A[R, K] P[M, K]^T (acc 1 adds); nn: C[R, K] = G[R, M] P[M, K]; tn: D[M, K] += G[R, M]^T X[R, K].
 */
export interface Gemms {
  nt(C: FloatArray, co: number, ldc: number, A: FloatArray, ao: number, lda: number, P: FloatArray, po: number, ldp: number, R: number, M: number, K: number, acc?: number): void; // prettier-ignore
  nn(C: FloatArray, co: number, ldc: number, G: FloatArray, go: number, ldg: number, P: FloatArray, po: number, ldp: number, R: number, M: number, K: number): void; // prettier-ignore
  tn(D: FloatArray, dof: number, ldd: number, G: FloatArray, go: number, ldg: number, X: FloatArray, xo: number, ldx: number, R: number, M: number, K: number): void; // prettier-ignore
}
export type KernelFactory = (
  rows: number,
  dims: readonly number[],
  F: Float32ArrayConstructor | Float64ArrayConstructor,
  gemms?: Gemms,
) => KernelFns;

/** A cell ready to run: its artifact, and the artifact's JS kernels loaded. */
export interface CompiledCell {
  readonly artifact: Artifact;
  readonly signature: Signature;
  readonly kernels: Readonly<Record<KernelName, KernelFactory>>;
  /** The JS GEMMs of the kernels' module: what a GEMM provider falls back to. */
  readonly gemms: Gemms;
}

/**
 * Loads a compiled artifact (as `compile` makes it, or read back from `cellc compile --target js --out`).
 * Needs nothing of the compiler's front end.
 */
export function loadArtifact(artifact: Artifact): CompiledCell {
  const a = artifact as unknown;
  if (typeof a !== "object" || a === null || artifact.format !== "cellc-artifact" || artifact.version !== 1)
    throw new CellcError("not a cellc artifact (format cellc-artifact, version 1)");
  checkArtifact(artifact);
  if (artifact.js === undefined) throw new CellcError("the artifact has no JS kernels");
  // The generated code holds no user text (see compiler/codegen/js.ts).
  const mod = loadJsModule(artifact.js, [...KERNEL_NAMES, "GEMMS"], "cell's") as Record<
    KernelName,
    KernelFactory
  > & { GEMMS: Gemms };
  const kernels = Object.fromEntries(KERNEL_NAMES.map((k) => [k, mod[k]])) as Record<
    KernelName,
    KernelFactory
  >;
  return { artifact, signature: artifact.signature, kernels, gemms: mod.GEMMS };
}
