import type { Binding } from "../compiler/autodiff/kernel.js";
import { evalDim, type Type } from "../compiler/ir/shape.js";
import type { CompiledCell, StepFn } from "./cell.js";
import { floatArray, type FloatArray } from "./tensor.js";

/** Per-row feature count of a binding. */
export function rowSize(t: Type, sizes: Readonly<Record<string, number>>): number {
  return t.dims.reduce((a, d) => a * evalDim(d, sizes), 1);
}

/** What the forward pass keeps for the backward pass: states at every step and the saved values. */
export interface Tape {
  readonly T: number;
  readonly inputs: readonly FloatArray[];
  readonly states: readonly (readonly FloatArray[])[]; // states[t][s]: state before step t; states[T]: final
  readonly saved: readonly (readonly FloatArray[])[];
  readonly lens?: Int32Array;
}

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
    params: readonly FloatArray[],
    lens: Int32Array | undefined,
    keep: boolean,
  ): SequenceResult | Promise<SequenceResult>;
  backward(
    tape: unknown,
    params: readonly FloatArray[],
    dOutputs: readonly (Seq | undefined)[],
    dFinals: readonly (FloatArray | undefined)[],
  ): SequenceGrads | Promise<SequenceGrads>;
}

/** Per-row sizes of a cell's outputs, states and inputs at given dimension sizes: shared by the runners. */
export abstract class RowSizes {
  constructor(
    protected readonly cell: CompiledCell,
    readonly sizes: Readonly<Record<string, number>>,
  ) {}
  outputRow(i: number): number {
    return rowSize(this.cell.ir.graph.node(this.cell.ir.outputs[i]!.node).type, this.sizes);
  }
  stateRow(i: number): number {
    return rowSize(this.cell.ir.states[i]!.type, this.sizes);
  }
  inputRow(i: number): number {
    return rowSize(this.cell.ir.inputs[i]!.type, this.sizes);
  }
}

/**
 * Rows past their length at step t: each carried buffer gets the row of its source, each zeroed sequence
 * buffer `[T, B, row]` gets zeros at t. Both the forward masking and its gradient have this shape.
 */
export function maskRows(
  t: number,
  B: number,
  lens: Int32Array,
  carry: readonly { to: FloatArray; from: FloatArray; row: number }[],
  zero: readonly { seq: FloatArray; row: number }[],
): void {
  for (let b = 0; b < B; b++) {
    if (t < lens[b]!) continue;
    for (const { to, from, row } of carry) to.set(from.subarray(b * row, (b + 1) * row), b * row);
    for (const { seq, row } of zero) seq.fill(0, (t * B + b) * row, (t * B + b + 1) * row);
  }
}

/**
 * Runs one direction of one layer over a whole sequence with the cell's fused step kernels. Rows past
 * their `lens` entry carry their state unchanged and output zeros (PyTorch's packed-sequence semantics),
 * and nothing past a row's length contributes to a gradient.
 */
export class SequenceRunner extends RowSizes implements DirectionRunner {
  private readonly fstep: StepFn;
  private readonly bstep: StepFn;
  private readonly fwdRows: number[];
  private readonly bwdRows: number[];

  constructor(
    cell: CompiledCell,
    sizes: Readonly<Record<string, number>>,
    readonly B: number,
    readonly dtype: "f32" | "f64",
  ) {
    super(cell, sizes);
    const dims = cell.ir.dims.map((d) => sizes[d]!);
    this.fstep = cell.forward(B, dims);
    this.bstep = cell.backward(B, dims);
    this.fwdRows = cell.kernels.forward.bindings.map((b) => rowSize(b.type, sizes));
    this.bwdRows = cell.kernels.backward.bindings.map((b) => rowSize(b.type, sizes));
  }

  private get ir() {
    return this.cell.ir;
  }
  private alloc(b: Binding, rows: number): FloatArray {
    return floatArray(this.dtype, (b.type.batched ? this.B : 1) * rows);
  }

  forward(
    inputs: readonly FloatArray[],
    T: number,
    inits: readonly FloatArray[],
    params: readonly FloatArray[],
    lens: Int32Array | undefined,
    keep: boolean,
  ): SequenceResult {
    const k = this.cell.kernels.forward;
    const B = this.B;
    const outputs = this.ir.outputs.map((_, i) => floatArray(this.dtype, T * B * this.outputRow(i)));
    const states: FloatArray[][] = [inits.map((s) => s.slice())];
    const saved: FloatArray[][] = [];
    let spare: FloatArray[] | undefined;
    const sharedSaved = keep
      ? undefined
      : k.bindings.map((b, i) => (b.role === "saved" ? this.alloc(b, this.fwdRows[i]!) : undefined));
    let prev: FloatArray[] = states[0]!;
    let next: FloatArray[] = [];
    let stepSaved: FloatArray[] = [];
    // Where each binding's buffer comes from, resolved once; only the time step varies in the loop.
    const source = k.bindings.map((b, i): ((t: number) => FloatArray) => {
      const rows = this.fwdRows[i]!;
      const at = (seq: FloatArray) => (t: number) => seq.subarray(t * B * rows, (t + 1) * B * rows);
      switch (b.role) {
        case "output":
          return at(outputs[b.index]!);
        case "next":
          return () => next[b.index]!;
        case "saved":
          return () => (stepSaved[b.index] = sharedSaved ? sharedSaved[i]! : this.alloc(b, rows));
        case "input":
          return at(inputs[b.index]!);
        case "state":
          return () => prev[b.index]!;
        case "param":
          return () => params[b.index]!;
        default:
          throw new Error(`forward kernel binding ${b.role}`);
      }
    });
    for (let t = 0; t < T; t++) {
      prev = states[states.length - 1]!;
      next = spare ?? this.ir.states.map((_, s) => floatArray(this.dtype, B * this.stateRow(s)));
      spare = undefined;
      stepSaved = [];
      this.fstep(source.map((f) => f(t)));
      if (lens)
        maskRows(
          t,
          B,
          lens,
          next.map((n, si) => ({ to: n, from: prev[si]!, row: this.stateRow(si) })),
          outputs.map((o, i) => ({ seq: o, row: this.outputRow(i) })),
        );
      if (keep) {
        states.push(next);
        saved.push(stepSaved);
      } else {
        states[0] = next;
        spare = prev;
      }
    }
    const finals = states[states.length - 1]!;
    return { outputs, finals, tape: keep ? { T, inputs, states, saved, lens } : undefined };
  }

  backward(
    tape: Tape,
    params: readonly FloatArray[],
    dOutputs: readonly (FloatArray | undefined)[],
    dFinals: readonly (FloatArray | undefined)[],
  ): SequenceGrads {
    const k = this.cell.kernels.backward;
    const B = this.B;
    const { T, lens } = tape;
    const ir = this.ir;
    const dInputs = ir.inputs.map((_, i) => floatArray(this.dtype, T * B * this.inputRow(i)));
    const dParams = ir.params.map((p) => floatArray(this.dtype, rowSize(p.type, this.sizes)));
    let dState = ir.states.map((_, s) => {
      const d = floatArray(this.dtype, B * this.stateRow(s));
      const given = dFinals[s];
      if (given) d.set(given);
      return d;
    });
    let dPrev = ir.states.map((_, s) => floatArray(this.dtype, B * this.stateRow(s)));
    const upOut = ir.outputs.map((_, i) => floatArray(this.dtype, B * this.outputRow(i)));
    const upNext = ir.states.map((_, s) => floatArray(this.dtype, B * this.stateRow(s)));
    const source = k.bindings.map((b, i): ((t: number) => FloatArray) => {
      const rows = this.bwdRows[i]!;
      const at = (seq: FloatArray) => (t: number) => seq.subarray(t * B * rows, (t + 1) * B * rows);
      switch (b.role) {
        case "grad_input":
          return at(dInputs[b.index]!);
        case "grad_state":
          return () => dPrev[b.index]!;
        case "grad_param":
          return () => dParams[b.index]!;
        case "input":
          return at(tape.inputs[b.index]!);
        case "state":
          return (t) => tape.states[t]![b.index]!;
        case "param":
          return () => params[b.index]!;
        case "saved":
          return (t) => tape.saved[t]![b.index]!;
        case "upstream":
          return b.name.startsWith("out:") ? () => upOut[b.index]! : () => upNext[b.index]!;
        default:
          throw new Error(`backward kernel binding ${b.role}`);
      }
    });
    for (let t = T - 1; t >= 0; t--) {
      ir.outputs.forEach((_, i) => {
        const r = this.outputRow(i);
        const d = dOutputs[i];
        if (d) upOut[i]!.set(d.subarray(t * B * r, (t + 1) * B * r));
        else upOut[i]!.fill(0);
      });
      ir.states.forEach((_, s) => upNext[s]!.set(dState[s]!));
      if (lens)
        for (let b = 0; b < B; b++) {
          if (t < lens[b]!) continue;
          upOut.forEach((u, i) => u.fill(0, b * this.outputRow(i), (b + 1) * this.outputRow(i)));
          upNext.forEach((u, s) => u.fill(0, b * this.stateRow(s), (b + 1) * this.stateRow(s)));
        }
      this.bstep(source.map((f) => f(t)));
      if (lens)
        maskRows(
          t,
          B,
          lens,
          dPrev.map((d, si) => ({ to: d, from: dState[si]!, row: this.stateRow(si) })),
          dInputs.map((d, i) => ({ seq: d, row: this.inputRow(i) })),
        );
      [dState, dPrev] = [dPrev, dState];
    }
    return { inputs: dInputs, inits: dState, params: dParams };
  }
}
