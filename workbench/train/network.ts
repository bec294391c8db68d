// A trainable network as the compiler compiled it (artifact/network.ts): an optional embedding, the
// recurrent cell (a Model: stacked, optionally bidirectional, on any backend), the readout (a stateless
// cell) and the loss, whose kernels come with the artifact.
import type { NetworkArtifact, ParamPart } from "../../artifact/network.js";
import { checkNetworkData, within } from "../../artifact/validate.js";
import { loadArtifact } from "../../runtime/cell.js";
import { initialise, Rng } from "../../runtime/init.js";
import { loadJsModule } from "../../runtime/kernels.js";
import { verifyKernelJs } from "../../runtime/verify.js";
import { jsBackend, Model, type ForwardResult, type Gradients } from "../../runtime/model.js";
import {
  CellcError,
  checkAllocation,
  checkTensor,
  floatArray,
  showShape,
  tensorMap,
  type FloatArray,
  type Tensor,
  type TensorData,
} from "../../runtime/tensor.js";
import { checkTarget } from "./loss.js";
import type { Batch, LossResult, NetworkOptions } from "./types.js";

/** What `loss()` computes: gradients, per-step state gradients, and truncated BPTT in chunks of `tbptt` steps. */
export interface LossWant {
  readonly grads?: boolean;
  readonly stateGrads?: boolean;
  /** Chunks of this many steps; states carried across chunks without gradient (see Trainer). */
  readonly tbptt?: number;
}

type LossKernel = (
  y: ArrayLike<number>,
  O: number,
  rows: number,
  target: TensorData,
  valid: Uint8Array,
  scale: number,
  dy: Float64Array,
) => number;

/** A network artifact, checked for what the runtime reads of it. */
export function checkNetworkArtifact(a: NetworkArtifact, where = "the network"): NetworkArtifact {
  const v = a as unknown;
  if (typeof v !== "object" || v === null || a.format !== "cellc-network" || a.version !== 1)
    throw new CellcError(`${where} is not a cellc network (format cellc-network, version 1)`);
  const n = checkNetworkData(a, where);
  // Its kernels are checked again where they load; here an edit is reported with the file's name.
  within(where, () => {
    for (const [text, what] of [
      [n.cell.js, "cell's"],
      [n.readout.js, "readout's"],
      [n.loss.js, "loss"],
      [n.optimizer.js, "optimiser"],
    ] as const)
      if (text !== undefined) verifyKernelJs(text, what);
  });
  return n;
}

export class Network {
  readonly params = new Map<string, Tensor>();
  readonly paramCount: number;
  readonly dtype: "f32" | "f64";
  /** The recurrent part, and the readout (on the host: it reads what the cell's outputs came back as). */
  readonly cellModel: Model;
  readonly readoutModel: Model;
  /** Features of a step's cell output (directions concatenated), and of y. */
  readonly features: number;
  readonly outputSize: number;
  private readonly inputName: string;
  private readonly outputName: string;
  private readonly embedDim: number;
  private readonly lossKernel: LossKernel;

  constructor(
    readonly artifact: NetworkArtifact,
    opts: NetworkOptions = {},
  ) {
    checkNetworkArtifact(artifact);
    this.dtype = opts.dtype ?? "f32";
    const seed = opts.seed ?? 0;
    const layers = artifact.layers;
    const cell = loadArtifact(artifact.cell);
    const readout = loadArtifact(artifact.readout);
    const cellIr = cell.signature;
    const rIr = readout.signature;
    if (!cellIr.inputs.length) throw new CellcError(`'${cellIr.name}' has no input`);
    this.inputName = cellIr.inputs[0]!.name;
    this.outputName = cellIr.outputs[0]?.name ?? "";
    if (rIr.inputs.length !== 1 || rIr.outputs.length !== 1 || rIr.states.length)
      throw new CellcError(`the readout '${rIr.name}' must be stateless with one input and one output`);

    // Every name belongs to one part (the compiler made them so); the given ones must be among them.
    const owner = new Map<string, ParamPart>(artifact.params.map((p) => [p.name, p.part]));
    const given = tensorMap(opts.params, "params", "parameter");
    const unknown = [...given.keys()].filter((n) => !owner.has(n));
    if (unknown.length)
      throw new CellcError(
        `unexpected parameter${unknown.length > 1 ? "s" : ""} ${unknown.map((n) => `'${n}'`).join(", ")}: the network has ${[...owner.keys()].map((n) => `'${n}'`).join(", ")}`,
      );
    // Copies: the optimiser updates parameters in place, and the caller's tensors are not ours to change.
    const part = (which: ParamPart) => {
      const m = new Map(
        artifact.params
          .filter((p) => p.part === which && given.has(p.name))
          .map((p) => [p.name, { ...given.get(p.name)!, data: given.get(p.name)!.data.slice() }]),
      );
      return m.size ? m : undefined;
    };

    this.cellModel = new Model(cell, {
      backend: opts.backend,
      layers,
      bidirectional: artifact.bidirectional,
      dtype: this.dtype,
      params: part("cell"),
      dims: artifact.sizes[0],
      seed,
    });
    this.features = artifact.features;
    // Readout parameters from their own stream, so that changing the cell does not change them.
    // On the cell's backend when that one reads host arrays (js, wasm); a device backend's readout would
    // cost a round trip per batch for a small GEMM, so it runs on the JS kernels then.
    this.readoutModel = new Model(readout, {
      backend: opts.backend?.async ? jsBackend : opts.backend,
      dtype: this.dtype,
      params: part("readout"),
      dims: artifact.readoutSizes,
      seed: (seed + 0x9e3779b9) >>> 0,
    });
    this.outputSize = artifact.outputSize;
    this.lossKernel = loadJsModule(artifact.loss.js, ["loss"], "loss").loss as LossKernel;

    this.embedDim = 0;
    if (artifact.embed) {
      const e = artifact.embed;
      this.embedDim = e.D;
      const shape = [e.V, e.D];
      const g = given.get(e.param);
      checkAllocation(
        e.V * e.D,
        this.dtype === "f64" ? 8 : 4,
        `embedding '${e.param}' of shape [${e.V}, ${e.D}]`,
      );
      const t: Tensor = { dtype: this.dtype, shape, data: floatArray(this.dtype, e.V * e.D) };
      if (g) {
        if (g.shape.length !== 2 || g.shape[0] !== shape[0] || g.shape[1] !== shape[1])
          throw new CellcError(
            `parameter '${e.param}' has shape ${showShape(g.shape)}; expected [V, D] = ${showShape(shape)}`,
          );
        if (g.dtype === "i32") throw new CellcError(`parameter '${e.param}' must be a float tensor`);
        (t.data as FloatArray).set(g.data);
      } else {
        const init = artifact.params.find((p) => p.name === e.param)!.init;
        initialise(init, shape, t.data as FloatArray, new Rng((seed + 0x3c6ef372) >>> 0));
      }
      this.params.set(e.param, t);
    }
    for (const [n, t] of this.cellModel.params) this.params.set(n, t);
    for (const [n, t] of this.readoutModel.params) this.params.set(n, t);
    let count = 0;
    for (const t of this.params.values()) count += t.data.length;
    this.paramCount = count;
  }

  /** Says that parameter values were changed in place (by an optimiser): a device backend re-uploads them. */
  paramsChanged(): void {
    this.cellModel.paramsChanged();
    this.readoutModel.paramsChanged();
  }

  /** The loss of a batch and, when asked, every parameter's gradient. */
  async loss(batch: Batch, want: LossWant = {}): Promise<LossResult> {
    if (typeof batch !== "object" || batch === null)
      throw new CellcError("loss() takes a batch { inputs, target, seqLens? }");
    checkTensor(batch.target, "target");
    if (batch.seqLens !== undefined && !(batch.seqLens instanceof Int32Array))
      throw new CellcError("a batch's seqLens must be an Int32Array, one length per row");
    const { T, B, x, tokens } = this.inputs(batch.inputs);
    const spec = this.artifact;
    const O = this.outputSize;
    checkTarget(batch.target, spec.loss.kind, spec.on, T, B, O);
    const lens = batch.seqLens;
    if (lens && lens.length !== B)
      throw new CellcError(`seq_lens has ${lens.length} entries; expected one per batch row, [${B}]`);
    const len = (b: number) => (lens ? lens[b]! : T);
    let terms = 0;
    for (let b = 0; b < B; b++) terms += spec.on === "last" ? (len(b) > 0 ? 1 : 0) : Math.min(len(b), T);
    if (spec.loss.kind !== "cross_entropy") terms *= O;
    const scale = terms ? 1 / terms : 0;
    const K = want.tbptt ?? T;
    if (!Number.isInteger(K) || K < 1) throw new CellcError(`tbptt must be a positive integer, got ${K}`);
    if (K < T && spec.bidirectional)
      throw new CellcError(
        "truncated BPTT cannot run a bidirectional cell: its reverse direction needs the whole sequence",
      );
    const grads = want.grads || want.stateGrads ? new Map<string, Float64Array>() : undefined;
    const stepNorms = want.stateGrads ? new Map<string, Float64Array>() : undefined;
    const F = this.features;
    let loss = 0;
    let states: Map<string, Tensor> | undefined;
    for (let t0 = 0; t0 < T; t0 += K) {
      const t1 = Math.min(T, t0 + K);
      const Tc = t1 - t0;
      const chunkLens = lens && Int32Array.from(lens, (n) => Math.max(0, Math.min(n, t1) - t0));
      const xs = new Map<string, Tensor>();
      for (const [n, t] of x) xs.set(n, K < T ? sliceSteps(t, t0, t1) : t);
      const fwd = await this.forward(xs, chunkLens, states, !!grads);
      states = fwd.finalStates;
      const H = fwd.outputs.get(this.outputName)!.data as FloatArray;
      // The rows the readout reads and whether the loss counts them.
      let rows: FloatArray;
      let valid: Uint8Array;
      let target: Tensor["data"];
      const lastAt = new Int32Array(B).fill(-1);
      if (spec.on === "every") {
        rows = H;
        valid = new Uint8Array(Tc * B);
        for (let t = 0; t < Tc; t++) for (let b = 0; b < B; b++) valid[t * B + b] = t0 + t < len(b) ? 1 : 0;
        const per = spec.loss.kind === "cross_entropy" ? B : B * O;
        target = batch.target.data.subarray(t0 * per, t1 * per);
      } else {
        rows = floatArray(this.dtype, B * F);
        valid = new Uint8Array(B);
        for (let b = 0; b < B; b++) {
          const t = len(b) - 1 - t0;
          if (t < 0 || t >= Tc) continue;
          lastAt[b] = t;
          valid[b] = 1;
          rows.set(H.subarray((t * B + b) * F, (t * B + b + 1) * F), b * F);
        }
        target = batch.target.data;
      }
      if (!valid.some((v) => v)) continue;
      const Tr = rows.length / (B * F);
      const rIn = new Map([
        [this.readoutModel.cell.signature.inputs[0]!.name, tensorOf(this.dtype, [Tr, B, F], rows)],
      ]);
      const rFwd = this.readoutModel.forward(rIn, { train: !!grads });
      const y = rFwd.outputs.values().next().value!.data;
      if (spec.loss.kind === "cross_entropy") checkClasses(target, valid, O);
      const dy = new Float64Array(y.length);
      loss += this.lossKernel(y, O, valid.length, target, valid, scale, dy);
      if (!grads) continue;
      const yName = this.readoutModel.cell.signature.outputs[0]!.name;
      const rG = this.readoutModel.backward(rFwd, {
        outputs: new Map([[yName, tensorOf(this.dtype, [Tr, B, O], dy)]]),
      });
      accumulate(grads, rG.params);
      const dRows = rG.inputs.values().next().value!.data as FloatArray;
      let dH: FloatArray;
      if (spec.on === "every") dH = dRows;
      else {
        dH = floatArray(this.dtype, Tc * B * F);
        for (let b = 0; b < B; b++)
          if (lastAt[b]! >= 0) dH.set(dRows.subarray(b * F, (b + 1) * F), (lastAt[b]! * B + b) * F);
      }
      const up = new Map([[this.outputName, tensorOf(this.dtype, [Tc, B, F], dH)]]);
      const g = await this.backward(fwd, up, !!stepNorms);
      accumulate(grads, g.params);
      if (stepNorms) stateNorms(stepNorms, g.stateSteps!, t0, T);
      if (this.artifact.embed) this.embedGrad(grads, tokens!, g.inputs.get(this.inputName)!, t0, B);
    }
    const result: { loss: number; grads?: Map<string, Tensor>; stateGradNorms?: Map<string, Float64Array> } =
      {
        loss,
      };
    if (stepNorms) result.stateGradNorms = stepNorms;
    if (grads && want.grads) {
      result.grads = new Map();
      for (const [n, p] of this.params) {
        const data = floatArray(this.dtype, p.data.length);
        const g = grads.get(n);
        if (g) data.set(g);
        result.grads.set(n, { dtype: this.dtype, shape: p.shape, data });
      }
    }
    return result;
  }

  /** The readout's outputs: `[B, O]` on the last valid step, or `[T, B, O]` on every step. */
  async predict(inputs: ReadonlyMap<string, Tensor>, seqLens?: Int32Array): Promise<Tensor> {
    const { T, B, x } = this.inputs(inputs);
    const fwd = await this.forward(x, seqLens, undefined, false);
    const F = this.features;
    const H = fwd.outputs.get(this.outputName)!.data as FloatArray;
    let rows = H;
    if (this.artifact.on === "last") {
      rows = floatArray(this.dtype, B * F);
      for (let b = 0; b < B; b++) {
        const t = (seqLens ? seqLens[b]! : T) - 1;
        if (t >= 0) rows.set(H.subarray((t * B + b) * F, (t * B + b + 1) * F), b * F);
      }
    }
    const Tr = rows.length / (B * F);
    const rIn = new Map([
      [this.readoutModel.cell.signature.inputs[0]!.name, tensorOf(this.dtype, [Tr, B, F], rows)],
    ]);
    const y = this.readoutModel.forward(rIn, { train: false }).outputs.values().next().value!;
    return this.artifact.on === "last" ? { ...y, shape: [B, this.outputSize] } : y;
  }

  /**
   * Steps the network one time step at a time (generation): `step(x)` takes the inputs of one step,
   * `[B, D]` reals or `[B]` token ids, and gives the readout `[B, O]`.
   */
  stepper(B: number): (x: Tensor) => Float64Array {
    if (this.cellModel.backend.async) throw new CellcError("stepping runs on the js backend only");
    const stream = this.cellModel.stream(B);
    const rName = this.readoutModel.cell.signature.inputs[0]!.name;
    return (x) => {
      let xi = x;
      if (this.artifact.embed) {
        // Token ids [B], or one-hot rows [B, V] as the chars task gives them.
        const ids = x.dtype === "i32" ? x : hotIndices({ ...x, shape: [1, ...x.shape] }, this.inputName);
        const rows = this.embedRows({ ...ids, shape: [1, B] }, 1, B);
        xi = { ...rows, shape: [B, this.embedDim] };
      }
      const out = stream.step(new Map([[this.inputName, xi]])).get(this.outputName)!;
      const r = new Map([[rName, { ...out, shape: [1, B, this.features] }]]);
      return Float64Array.from(
        this.readoutModel.forward(r, { train: false }).outputs.values().next().value!.data,
      );
    };
  }

  /** The cell's inputs: the batch's, with token ids looked up in the embedding. */
  private inputs(given: ReadonlyMap<string, Tensor>): {
    T: number;
    B: number;
    x: Map<string, Tensor>;
    tokens?: Tensor;
  } {
    given = tensorMap(given, "inputs", "input");
    // A task's batch holds one input under its own name: it is the network's input whatever that is called.
    let first = given.get(this.inputName) ?? (given.size === 1 ? [...given.values()][0] : undefined);
    if (!first) throw new CellcError(`missing input '${this.inputName}'`);
    if (this.artifact.embed && first.dtype !== "i32" && first.shape.length === 3)
      first = hotIndices(first, this.inputName);
    if (first.shape.length < 2)
      throw new CellcError(
        `input '${this.inputName}' has shape ${showShape(first.shape)}; expected [T, B, ...]`,
      );
    const [T, B] = first.shape as [number, number];
    const x = new Map([[this.inputName, first]]);
    if (this.artifact.embed) {
      if (first.dtype !== "i32" || first.shape.length !== 2)
        throw new CellcError(
          `input '${this.inputName}' feeds the embedding '${this.artifact.embed.param}': token ids (I32) of shape [T, B], got ${first.stored ?? first.dtype.toUpperCase()} ${showShape(first.shape)}`,
        );
      x.set(this.inputName, this.embedRows(first, T, B));
      return { T, B, x, tokens: first };
    }
    return { T, B, x };
  }

  private embedRows(tokens: Tensor, T: number, B: number): Tensor {
    const e = this.artifact.embed!;
    const D = this.embedDim;
    const E = this.params.get(e.param)!.data as FloatArray;
    const out = floatArray(this.dtype, T * B * D);
    tokens.data.forEach((v, i) => {
      if (!Number.isInteger(v) || v < 0 || v >= e.V)
        throw new CellcError(
          `input '${this.inputName}' holds token ${v} at index ${i}: the vocabulary is 0 to ${e.V - 1}`,
        );
      out.set(E.subarray(v * D, (v + 1) * D), i * D);
    });
    return { dtype: this.dtype, shape: [T, B, D], data: out };
  }

  /** Scatter-adds the gradient of the cell's input into the rows of E its tokens read. */
  private embedGrad(
    grads: Map<string, Float64Array>,
    tokens: Tensor,
    dx: Tensor,
    t0: number,
    B: number,
  ): void {
    const e = this.artifact.embed!;
    const D = this.embedDim;
    let g = grads.get(e.param);
    if (!g) grads.set(e.param, (g = new Float64Array(e.V * D)));
    const rows = dx.data.length / D;
    for (let i = 0; i < rows; i++) {
      const v = tokens.data[t0 * B + i]!;
      for (let k = 0; k < D; k++) g[v * D + k]! += dx.data[i * D + k]!;
    }
  }

  private forward(
    x: Map<string, Tensor>,
    seqLens: Int32Array | undefined,
    initialStates: Map<string, Tensor> | undefined,
    train: boolean,
  ): Promise<ForwardResult> | ForwardResult {
    const m = this.cellModel;
    const opts = { seqLens, initialStates, train };
    return m.backend.async ? m.forwardAsync(x, opts) : m.forward(x, opts);
  }

  private backward(
    fwd: ForwardResult,
    up: Map<string, Tensor>,
    stateGrads: boolean,
  ): Promise<Gradients> | Gradients {
    const m = this.cellModel;
    // The data needs no gradient; the embedding's rows take theirs from the inputs' gradient.
    const opts = { stateGrads, inputGrads: !!this.artifact.embed };
    return m.backend.async
      ? m.backwardAsync(fwd, { outputs: up }, opts)
      : m.backward(fwd, { outputs: up }, opts);
  }
}

function tensorOf(dtype: "f32" | "f64", shape: number[], data: ArrayLike<number>): Tensor {
  const d =
    data instanceof (dtype === "f32" ? Float32Array : Float64Array)
      ? (data as FloatArray)
      : floatArray(dtype, data.length);
  if (d !== data) d.set(data);
  return { dtype, shape, data: d };
}

/** One-hot rows `[T, B, V]` as token ids `[T, B]` (what an embedding reads); other rows are an error. */
function hotIndices(x: Tensor, name: string): Tensor {
  const [T, B, V] = x.shape as [number, number, number];
  const ids = new Int32Array(T * B);
  for (let r = 0; r < T * B; r++) {
    let hot = -1;
    for (let v = 0; v < V; v++) {
      const e = x.data[r * V + v]!;
      if (e === 0) continue;
      if (e !== 1 || hot >= 0)
        throw new CellcError(`input '${name}' feeds an embedding: its rows must be token ids or one-hot`);
      hot = v;
    }
    if (hot < 0) throw new CellcError(`input '${name}' feeds an embedding: row ${r} is all zeros`);
    ids[r] = hot;
  }
  return { dtype: "i32", shape: [T, B], data: ids };
}

/** ‖∂L/∂s_t‖ over the batch, per state, for the steps of a chunk starting at t0 (of T in all). */
function stateNorms(
  into: Map<string, Float64Array>,
  steps: ReadonlyMap<string, Tensor>,
  t0: number,
  T: number,
) {
  for (const [name, g] of steps) {
    let norms = into.get(name);
    if (!norms) into.set(name, (norms = new Float64Array(T)));
    const Tc = g.shape[0]!;
    const per = g.data.length / Math.max(Tc, 1);
    for (let t = 0; t < Tc; t++) {
      let sq = 0;
      for (let k = t * per; k < (t + 1) * per; k++) sq += g.data[k]! * g.data[k]!;
      norms[t0 + t] = Math.sqrt(sq);
    }
  }
}

function accumulate(into: Map<string, Float64Array>, gs: ReadonlyMap<string, Tensor>): void {
  for (const [n, t] of gs) {
    let g = into.get(n);
    if (!g) into.set(n, (g = new Float64Array(t.data.length)));
    for (let i = 0; i < g.length; i++) g[i]! += t.data[i]!;
  }
}

/** Steps [t0, t1) of a `[T, B, ...]` sequence. */
function sliceSteps(t: Tensor, t0: number, t1: number): Tensor {
  const per = t.data.length / t.shape[0]!;
  return { dtype: t.dtype, shape: [t1 - t0, ...t.shape.slice(1)], data: t.data.subarray(t0 * per, t1 * per) };
}

/** Class ids of the rows that count must be classes of the readout (the kernel reads y[c]). */
function checkClasses(target: TensorData, valid: Uint8Array, O: number): void {
  for (let r = 0; r < valid.length; r++) {
    if (!valid[r]) continue;
    const c = target[r]!;
    if (!(c >= 0 && c < O) || !Number.isInteger(c))
      throw new CellcError(`target holds class ${c} at row ${r}: classes are 0 to ${O - 1}`);
  }
}
