import type { CompiledCell } from "./cell.js";
import { rowSize } from "./layout.js";
import type { FloatArray } from "./tensor.js";

/** A value that lives on a device, opaque to the host code (see runtime/webgpu/context.ts). */
export interface DeviceSeq {
  readonly kind: "device";
  readonly length: number;
}

/** A sequence or array of floats, on the host or on a device. */
export type Seq = FloatArray | DeviceSeq;

/**
 * The operations between layers and directions, done where the backend keeps its data; readAll brings
 * values to the host (for a device: one submission of all pending work, then one read-back).
 */
export interface SeqOps {
  reverseValid(x: Seq, T: number, B: number, F: number, lens: Int32Array | undefined): Seq;
  concatFeatures(parts: readonly Seq[], rows: number, F: number, dtype: "f32" | "f64"): Seq;
  sliceFeatures(x: Seq, rows: number, F: number, d: number, n: number, dtype: "f32" | "f64"): Seq;
  add(a: Seq, b: Seq): Seq;
  readAll(xs: readonly Seq[], dtype: "f32" | "f64"): FloatArray[] | Promise<FloatArray[]>;
  /** Drops work encoded but not yet submitted (after an error part-way through a pass). */
  discard?(): void;
}

export interface SequenceResult {
  readonly outputs: Seq[]; // [T, B, F] per cell output
  readonly finals: Seq[]; // [B, ...] per state
  readonly tape?: unknown;
}

export interface SequenceGrads {
  readonly inputs: Seq[]; // [T, B, ...] per cell input
  readonly inits: Seq[]; // [B, ...] per state
  readonly params: Seq[]; // per cell param
  /** [T, B, ...] per state, when asked for: the gradient of the state after each step (see Model.backward). */
  readonly stateSteps?: Seq[];
}

/**
 * What runs one direction of one layer over a sequence: the CPU runner here, or the WebGPU one. The tape
 * is the runner's own; results may come back at once or as a promise.
 */
export interface DirectionRunner {
  outputRow(i: number): number;
  stateRow(i: number): number;
  inputRow(i: number): number;
  forward(
    inputs: readonly Seq[],
    T: number,
    inits: readonly FloatArray[],
    /** Host arrays; a device backend also takes values already on its device. */
    params: readonly Seq[],
    lens: Int32Array | undefined,
    keep: boolean,
    /** Changes whenever parameter values may have changed in place (a device backend re-uploads them). */
    paramVersion?: number,
    /** Host arrays to write the outputs into, where one of the right length is given (a host runner). */
    into?: readonly (FloatArray | undefined)[],
  ): SequenceResult | Promise<SequenceResult>;
  backward(
    tape: unknown,
    params: readonly Seq[],
    dOutputs: readonly (Seq | undefined)[],
    dFinals: readonly (FloatArray | undefined)[],
    paramVersion?: number,
    /** Also return `stateSteps`; a runner that cannot leaves it out. */
    stateSteps?: boolean,
    /** false: the inputs' gradients are not wanted (`inputs` may come back empty; wasm skips their GEMM). */
    inputGrads?: boolean,
    /** Host arrays to write the inputs' gradients into, as `into` of forward(). */
    into?: readonly (FloatArray | undefined)[],
  ): SequenceGrads | Promise<SequenceGrads>;
}

/** Per-row sizes of a cell's outputs, states and inputs at given dimension sizes: shared by the runners. */
export abstract class RowSizes {
  constructor(
    protected readonly cell: CompiledCell,
    readonly sizes: Readonly<Record<string, number>>,
  ) {}
  outputRow(i: number): number {
    return rowSize(this.cell.signature.outputs[i]!.type, this.sizes);
  }
  stateRow(i: number): number {
    return rowSize(this.cell.signature.states[i]!.type, this.sizes);
  }
  inputRow(i: number): number {
    return rowSize(this.cell.signature.inputs[i]!.type, this.sizes);
  }
}
