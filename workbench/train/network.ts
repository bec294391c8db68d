// A trainable network as the compiler compiled it (artifact/network.ts): an optional embedding, the
// recurrent cell (a Model: stacked, optionally bidirectional, on any backend), the readout (a stateless
// cell) and the loss, whose kernels come with the artifact.
import type { NetworkArtifact, ParamPart } from "../../artifact/network.js";
import { checkNetworkData, within } from "../../artifact/validate.js";
import { loadArtifact } from "../../runtime/cell.js";
import { initialise, Rng } from "../../runtime/init.js";
import { loadJsModule } from "../../runtime/kernels.js";
import { lossRows, lossScale } from "../../runtime/loss-plan.js";
import { verifyKernelJs } from "../../runtime/verify.js";
import { jsBackend, Model, type ForwardResult, type Gradients } from "../../runtime/model.js";
import type { WebGpuBackend } from "../../runtime/webgpu/index.js";
import { GpuNetworkStep, type DeviceBatch, type DeviceUpdate } from "../../runtime/webgpu/network.js";
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
  /** For class targets (cross_entropy): also the accuracy. Other losses ignore it. */
  readonly accuracy?: boolean;
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
      ...(opts.precision ? { precision: opts.precision } : {}),
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
    const gpu = opts.backend as WebGpuBackend | undefined;
    if (gpu?.context && this.dtype === "f32" && opts.onDevice !== false) {
      // The readout runs on the device too there, reading the same parameter values.
      const readoutOnDevice = new Model(readout, {
        backend: gpu,
        params: this.readoutModel.params,
        dims: artifact.readoutSizes,
      });
      this.device = new GpuNetworkStep(gpu, artifact, this.cellModel, readoutOnDevice);
      this.device.writeParams(this.params);
    }
  }

  /**
   * On a WebGPU backend in float32, training steps and evaluations run whole on the device
   * (runtime/webgpu/network.ts); what needs the values on the host syncs them first (syncHost).
   */
  readonly device?: GpuNetworkStep;
  /** The device's parameters are newer than `params`. */
  private hostStale = false;

  /** Says that parameter values were changed in place (by an optimiser): a device backend re-uploads them. */
  paramsChanged(): void {
    if (this.hostStale)
      throw new CellcError(
        "the device has trained past these parameter values: await syncHost() before changing them",
      );
    this.cellModel.paramsChanged();
    this.readoutModel.paramsChanged();
    if (this.device) {
      this.device.writeParams(this.params);
      this.hostStale = false;
    }
  }

  /** Brings the parameters the device trained back into `params` (no read-back when they are current). */
  async syncHost(): Promise<void> {
    if (!this.device || !this.hostStale) return;
    const values = await this.device.readParams();
    for (const [n, t] of this.params) (t.data as FloatArray).set(values.get(n)!);
    this.readoutModel.paramsChanged();
    this.hostStale = false;
  }

  /**
   * One training step on the device: the loss and the gradient norm (before clipping) come back in one
   * read-back; the parameters and the optimiser's moments stay there.
   */
  async deviceStep(batch: Batch, update: DeviceUpdate): Promise<{ loss: number; gradNorm: number }> {
    const [loss, sumsq] = (await this.device!.step(this.deviceBatch(batch), update, true))!;
    this.hostStale = true;
    return { loss, gradNorm: Math.sqrt(sumsq) };
  }

  /** The batch as the device step takes it: checked as loss() checks it; token ids for an embedding. */
  private deviceBatch(batch: Batch): DeviceBatch {
    const { T, B, x } = this.checkedInput(batch.inputs);
    checkTarget(batch.target, this.artifact.loss.kind, this.artifact.on, T, B, this.outputSize);
    this.checkLens(batch.seqLens, T, B);
    if (this.artifact.loss.kind === "cross_entropy") {
      const { valid } = lossRows(this.artifact.on, T, B, batch.seqLens);
      checkClasses(batch.target.data, valid, this.outputSize);
    }
    const f32 = x.dtype === "f64" ? { ...x, dtype: "f32" as const, data: Float32Array.from(x.data) } : x;
    return { x: f32, target: batch.target, ...(batch.seqLens ? { seqLens: batch.seqLens } : {}) };
  }

  /** The loss of a batch and, when asked, every parameter's gradient. */
  async loss(batch: Batch, want: LossWant = {}): Promise<LossResult> {
    if (typeof batch !== "object" || batch === null)
      throw new CellcError("loss() takes a batch { inputs, target, seqLens? }");
    checkTensor(batch.target, "target");
    if (batch.seqLens !== undefined && !(batch.seqLens instanceof Int32Array))
      throw new CellcError("a batch's seqLens must be an Int32Array, one length per row");
    if (
      this.device &&
      !want.grads &&
      !want.stateGrads &&
      (want.tbptt === undefined || want.tbptt >= this.stepsOf(batch))
    ) {
      const r = await this.device.loss(this.deviceBatch(batch));
      return want.accuracy && r.accuracy !== undefined ? r : { loss: r.loss };
    }
    await this.syncHost();
    const { T, B, x, tokens } = this.inputs(batch.inputs);
    const spec = this.artifact;
    const O = this.outputSize;
    checkTarget(batch.target, spec.loss.kind, spec.on, T, B, O);
    const lens = batch.seqLens;
    this.checkLens(lens, T, B);
    const scale = lossScale(spec.on, spec.loss.kind !== "cross_entropy", T, B, O, lens);
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
    const hits = want.accuracy && spec.loss.kind === "cross_entropy" ? { right: 0, counted: 0 } : undefined;
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
      const { valid, lastAt } = lossRows(spec.on, T, B, lens, t0, t1);
      const target = chunkTarget(batch.target, spec.on, spec.loss.kind === "cross_entropy", B, O, t0, t1);
      let rows = H;
      if (lastAt) {
        rows = floatArray(this.dtype, B * F);
        for (let b = 0; b < B; b++) {
          const t = lastAt[b]!;
          if (t >= 0) rows.set(H.subarray((t * B + b) * F, (t * B + b + 1) * F), b * F);
        }
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
      if (hits) countHits(hits, y, O, target, valid);
      // What a step is done with goes back to its model, to be written again next step (Model.dispose).
      if (!grads) {
        this.readoutModel.dispose(rFwd);
        this.cellModel.dispose(fwd);
        continue;
      }
      const yName = this.readoutModel.cell.signature.outputs[0]!.name;
      const rG = this.readoutModel.backward(rFwd, {
        outputs: new Map([[yName, tensorOf(this.dtype, [Tr, B, O], dy)]]),
      });
      accumulate(grads, rG.params);
      const dRows = rG.inputs.values().next().value!.data as FloatArray;
      let dH = dRows;
      if (lastAt) {
        dH = floatArray(this.dtype, Tc * B * F);
        for (let b = 0; b < B; b++)
          if (lastAt[b]! >= 0) dH.set(dRows.subarray(b * F, (b + 1) * F), (lastAt[b]! * B + b) * F);
      }
      const up = new Map([[this.outputName, tensorOf(this.dtype, [Tc, B, F], dH)]]);
      const g = await this.backward(fwd, up, !!stepNorms);
      accumulate(grads, g.params);
      if (stepNorms) stateNorms(stepNorms, g.stateSteps!, t0, T);
      if (this.artifact.embed) this.embedGrad(grads, tokens!, g.inputs.get(this.inputName)!, t0, B);
      for (const [model, done] of [
        [this.readoutModel, rFwd],
        [this.readoutModel, rG],
        [this.cellModel, fwd],
        [this.cellModel, g],
      ] as const)
        model.dispose(done);
    }
    const result: {
      loss: number;
      accuracy?: number;
      grads?: Map<string, Tensor>;
      stateGradNorms?: Map<string, Float64Array>;
    } = { loss };
    if (hits) result.accuracy = hits.counted ? hits.right / hits.counted : NaN;
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
    await this.syncHost();
    const { T, B, x } = this.inputs(inputs);
    this.checkLens(seqLens, T, B);
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

  private stepsOf(batch: Batch): number {
    const x = batch.inputs.get(this.inputName) ?? [...batch.inputs.values()][0];
    return x?.shape[0] ?? 0;
  }

  /** The cell's inputs: the batch's, with token ids looked up in the embedding. */
  /**
   * The network's input among the given tensors, checked: token ids (I32) `[T, B]` within the vocabulary
   * for an embedding (one-hot rows are read as their ids), or float features `[T, B, D]`. The host path and
   * the device path take it from here, so that both refuse the same inputs.
   */
  private checkedInput(given: ReadonlyMap<string, Tensor>): { T: number; B: number; x: Tensor } {
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
    const e = this.artifact.embed;
    if (e) {
      if (first.dtype !== "i32" || first.shape.length !== 2)
        throw new CellcError(
          `input '${this.inputName}' feeds the embedding '${e.param}': token ids (I32) of shape [T, B], got ${first.stored ?? first.dtype.toUpperCase()} ${showShape(first.shape)}`,
        );
      const ids = first.data;
      for (let i = 0; i < ids.length; i++)
        if (!(ids[i]! >= 0 && ids[i]! < e.V))
          throw new CellcError(
            `input '${this.inputName}' holds token ${ids[i]} at index ${i}: the vocabulary is 0 to ${e.V - 1}`,
          );
    } else {
      const D = this.artifact.input.size;
      if (first.dtype === "i32" || first.shape.length !== 3 || first.shape[2] !== D)
        throw new CellcError(
          `input '${this.inputName}' has ${first.stored ?? first.dtype.toUpperCase()} shape ${showShape(first.shape)}; expected float [T, B, D] = ${showShape(["T", "B", D])}`,
        );
    }
    return { T, B, x: first };
  }

  /** Sequence lengths: one per row, whole numbers from 0 to T. */
  private checkLens(lens: Int32Array | undefined, T: number, B: number): void {
    if (!lens) return;
    if (lens.length !== B)
      throw new CellcError(`seq_lens has ${lens.length} entries; expected one per batch row, [${B}]`);
    for (let i = 0; i < B; i++)
      if (!(lens[i]! >= 0 && lens[i]! <= T))
        throw new CellcError(`seq_lens[${i}] = ${lens[i]} is out of range: lengths are from 0 to T = ${T}`);
  }

  /** The cell's inputs: the batch's, with token ids looked up in the embedding. */
  private inputs(given: ReadonlyMap<string, Tensor>): {
    T: number;
    B: number;
    x: Map<string, Tensor>;
    tokens?: Tensor;
  } {
    const { T, B, x: first } = this.checkedInput(given);
    if (this.artifact.embed)
      return { T, B, x: new Map([[this.inputName, this.embedRows(first, T, B)]]), tokens: first };
    return { T, B, x: new Map([[this.inputName, first]]) };
  }

  private embedRows(tokens: Tensor, T: number, B: number): Tensor {
    const e = this.artifact.embed!;
    const D = this.embedDim;
    const E = this.params.get(e.param)!.data as FloatArray;
    const out = floatArray(this.dtype, T * B * D);
    tokens.data.forEach((v, i) => out.set(E.subarray(v * D, (v + 1) * D), i * D));
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

/** Rows that count whose largest output (the first of equals) is their target class. */
function countHits(
  into: { right: number; counted: number },
  y: ArrayLike<number>,
  O: number,
  target: TensorData,
  valid: Uint8Array,
): void {
  for (let r = 0; r < valid.length; r++) {
    if (!valid[r]) continue;
    let best = 0;
    for (let o = 1; o < O; o++) if (y[r * O + o]! > y[r * O + best]!) best = o;
    into.counted++;
    if (best === target[r]) into.right++;
  }
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

/** The targets of steps [t0, t1) (every step), or of the whole batch (the last step). */
export function chunkTarget(
  target: Tensor,
  on: "last" | "every",
  classes: boolean,
  B: number,
  O: number,
  t0: number,
  t1: number,
): TensorData {
  if (on === "last") return target.data;
  const per = classes ? B : B * O;
  return target.data.subarray(t0 * per, t1 * per);
}
