// A network's training step on the device (the network artifact's executor on WebGPU): the batch goes up,
// and everything else stays: the embedding's rows, every layer and direction, the readout, the loss and
// its gradient (the artifact's loss kernels), the backward pass, the gradient norm and the optimiser's
// update (the artifact's optimiser kernels) on parameters that live on the device. Only the loss and the
// squared gradient norm come back, in one read-back, when the caller asks for them.
import type { NetworkArtifact } from "../../artifact/network.js";
import { lossRows, lossScale } from "../loss-plan.js";
import type { Model, ModelTape } from "../model.js";
import type { Seq } from "../sequence.js";
import { CellcError, type FloatArray, type Tensor, type TensorData } from "../tensor.js";
import type { DeviceSeq, GpuContext } from "./context.js";
import type { WebGpuBackend } from "./index.js";

/** The optimiser's settings and this update's learning rate and count (from 1). */
export interface DeviceUpdate {
  readonly lr: number;
  readonly count: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly momentum: number;
  /** Global gradient-norm clipping; 0 for none. */
  readonly clip: number;
}

/** A batch as the device step takes it: the cell's input (token ids for an embedding), targets, lengths. */
export interface DeviceBatch {
  readonly x: Tensor;
  readonly target: Tensor;
  readonly seqLens?: Int32Array;
}

// Adds up the embedding's input gradient into its rows: one invocation per (token v, feature k), over the
// positions that read row v (`order`: V + 1 offsets, then the positions grouped by token, which the host
// sorts), so that the work is the T*B positions times D, and no float atomics are needed.
const EMBED_GRAD = `struct U { V: u32, D: u32, N: u32, dxOff: u32, gOff: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> order: array<u32>;
@group(0) @binding(2) var<storage, read> dx: array<f32>;
@group(0) @binding(3) var<storage, read_write> g: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x + id.y * 4194240u;
  if (i >= u.V * u.D) { return; }
  let v = i / u.D;
  let k = i % u.D;
  var s = 0.0;
  for (var j = order[v]; j < order[v + 1u]; j++) {
    s += dx[u.dxOff + order[u.V + 1u + j] * u.D + k];
  }
  g[u.gOff + i] = s;
}
`;

interface Kernel {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
}
interface Pipelines {
  lossRows: Kernel;
  lossTotal: Kernel;
  update: Kernel;
  sumsq: Kernel;
  total: Kernel;
  embedGrad: Kernel;
}

/** The binding types of each module, in binding order: u uniform, r read-only storage, w storage. */
const LAYOUTS = { loss: "urrrwww", optim: "uwrwwr", norm: "urww", embed: "urrw" } as const;

const bindings = (buffers: readonly GPUBuffer[]): GPUBindGroupEntry[] =>
  buffers.map((buffer, binding) => ({ binding, resource: { buffer } }));

/** Read lazily: the WebGPU globals exist only where WebGPU does. */
const storageUsage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

export class GpuNetworkStep {
  private readonly ctx: GpuContext;
  private readonly device: GPUDevice;
  /** Every parameter, its gradient and the optimiser's two moments, flat, in the artifact's order. */
  private readonly P: GPUBuffer;
  private readonly G: GPUBuffer;
  private readonly M: GPUBuffer;
  private readonly V: GPUBuffer;
  /** [loss, squared gradient norm]. */
  private readonly stats: GPUBuffer;
  private readonly part: GPUBuffer;
  private readonly N: number;
  private readonly at = new Map<string, { offset: number; length: number }>();
  private pipelines?: Promise<Pipelines>;

  constructor(
    backend: WebGpuBackend,
    readonly artifact: NetworkArtifact,
    private readonly cell: Model,
    private readonly readout: Model,
  ) {
    this.ctx = backend.context;
    this.device = backend.device;
    let n = 0;
    for (const p of artifact.params) {
      const length = p.shape.reduce((a, b) => a * b, 1);
      this.at.set(p.name, { offset: n, length });
      n += length;
    }
    this.N = n;
    this.P = this.ctx.buffer(n * 4, storageUsage());
    this.G = this.ctx.buffer(n * 4, storageUsage());
    this.M = this.ctx.buffer(n * 4, storageUsage());
    this.V = this.ctx.buffer(n * 4, storageUsage());
    this.stats = this.ctx.buffer(16, storageUsage());
    this.part = this.ctx.buffer(Math.ceil(n / 4096) * 4, storageUsage());
    // The models read their parameters from P: their runners copy them on the device when they change.
    const refs = new Map<string, Seq>();
    for (const [name, { offset, length }] of this.at) refs.set(name, this.ref(this.P, offset, length));
    cell.deviceParams = refs;
    readout.deviceParams = refs;
  }

  private ref(buffer: GPUBuffer, offset: number, length: number): DeviceSeq {
    return { kind: "device", buffer, offset, length };
  }

  /** Uploads parameter values (by name, every one of the artifact's) to the device. */
  writeParams(params: ReadonlyMap<string, Tensor>): void {
    for (const [name, { offset, length }] of this.at) {
      const t = params.get(name);
      if (!t) throw new CellcError(`no value for parameter '${name}'`);
      if (t.data.length !== length)
        throw new CellcError(`parameter '${name}' has ${t.data.length} values; the network's has ${length}`);
      this.ctx.write(this.P, offset, t.data as FloatArray);
    }
    this.changed();
  }

  /** The parameters' values on the device, by name. */
  async readParams(): Promise<Map<string, Float32Array>> {
    return this.split((await this.ctx.readAll([this.ref(this.P, 0, this.N)], "f32"))[0]!);
  }

  /** The gradients of the last step, by name (to name the one that is not finite). */
  async readGrads(): Promise<Map<string, Float32Array>> {
    return this.split((await this.ctx.readAll([this.ref(this.G, 0, this.N)], "f32"))[0]!);
  }

  /** The optimiser's moments by name: `m` (Adam's first, or momentum's buffer) and `v`. */
  async readMoments(): Promise<{ m: Map<string, Float32Array>; v: Map<string, Float32Array> }> {
    const [m, v] = await this.ctx.readAll([this.ref(this.M, 0, this.N), this.ref(this.V, 0, this.N)], "f32");
    return { m: this.split(m!), v: this.split(v!) };
  }

  writeMoments(m: ReadonlyMap<string, ArrayLike<number>>, v: ReadonlyMap<string, ArrayLike<number>>): void {
    for (const [name, { offset, length }] of this.at)
      for (const [buf, moments] of [
        [this.M, m],
        [this.V, v],
      ] as const) {
        const values = moments.get(name) ?? new Float32Array(length);
        if (values.length !== length)
          throw new CellcError(
            `a moment of '${name}' has ${values.length} values; the parameter has ${length}`,
          );
        this.ctx.write(buf, offset, Float32Array.from(values));
      }
  }

  private split(flat: FloatArray): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const [name, { offset, length }] of this.at)
      out.set(name, Float32Array.from(flat.subarray(offset, offset + length)));
    return out;
  }

  private changed(): void {
    this.cell.paramsChanged();
    this.readout.paramsChanged();
  }

  /**
   * One update on a batch. With `read`, the loss and the squared gradient norm come back (one
   * read-back); otherwise the work is submitted and nothing is read.
   */
  async step(batch: DeviceBatch, update: DeviceUpdate, read: boolean): Promise<[number, number] | undefined> {
    const k = await this.kernels();
    const f = await this.forwardLoss(batch, true, k);
    const ctx = this.ctx;
    const a = this.artifact;
    const F = a.features;
    const { T, B } = f;
    // The readout's backward, then the cell's from the rows the readout read.
    const rb = await this.readout.drive(
      this.readout.layersBackward(f.readoutTape!, [f.dy], () => undefined, false, true),
    );
    let dH = rb.inputs[0]!;
    if (f.lastAt) dH = this.scatterLast(dH as DeviceSeq, f.lastAt, T, B, F);
    const cb = await this.cell.drive(
      this.cell.layersBackward(f.cellTape!, [dH], () => undefined, false, !!a.embed),
    );
    for (const g of [...cb.grads, ...rb.grads])
      if (g.kind === "param") ctx.place(g.seq, this.G, this.at.get(g.name)!.offset);
    if (a.embed) this.embedGrad(k, f.tokens!, cb.inputs[0]! as DeviceSeq, T * B);
    this.norm(k);
    this.update(k, update);
    this.changed();
    if (!read) {
      ctx.submitPending();
      return undefined;
    }
    const [s] = await ctx.readAll([this.ref(this.stats, 0, 2)], "f32");
    return [s![0]!, s![1]!];
  }

  /**
   * The loss of a batch at the current parameters, and for class targets the share of rows whose largest
   * score is the target's (one read-back).
   */
  async loss(batch: DeviceBatch): Promise<{ loss: number; accuracy?: number }> {
    const k = await this.kernels();
    await this.forwardLoss(batch, false, k);
    const [s] = await this.ctx.readAll([this.ref(this.stats, 0, 4)], "f32");
    if (this.artifact.loss.kind !== "cross_entropy") return { loss: s![0]! };
    return { loss: s![0]!, accuracy: s![3]! ? s![2]! / s![3]! : NaN };
  }

  private async forwardLoss(batch: DeviceBatch, train: boolean, k: Pipelines) {
    const a = this.artifact;
    const ctx = this.ctx;
    const [T, B] = batch.x.shape as [number, number];
    const lens = batch.seqLens;
    const F = a.features;
    const O = a.outputSize;
    let x: Seq;
    let tokens: Uint32Array | undefined;
    if (a.embed) {
      const D = a.embed.D;
      tokens = Uint32Array.from(batch.x.data);
      const rows = this.fresh(T * B * D);
      const E = this.at.get(a.embed.param)!;
      ctx.copyRows(this.ref(this.P, E.offset, E.length), rows, {
        R: T * B,
        F: D,
        sStride: D,
        sCol: 0,
        dStride: D,
        dCol: 0,
        acc: false,
        idx: tokens,
      });
      x = rows;
    } else x = batch.x.data as FloatArray;
    const cf = await this.cell.drive(this.cell.layersForward([x], T, B, lens, new Map(), train));
    const H = cf.outputs[0]! as DeviceSeq;
    const plan = lossRows(a.on, T, B, lens);
    let rows: Seq = H;
    if (plan.lastAt) {
      const last = this.fresh(B * F);
      const idx = Uint32Array.from(plan.lastAt, (t, b) => (t >= 0 ? t * B + b : 0));
      ctx.copyRows(H, last, { R: B, F, sStride: F, sCol: 0, dStride: F, dCol: 0, acc: false, idx });
      rows = last;
    }
    const Tr = plan.lastAt ? 1 : T;
    const rf = await this.readout.drive(
      this.readout.layersForward([rows], Tr, B, undefined, new Map(), train),
    );
    const y = rf.outputs[0]! as DeviceSeq;
    const classes = a.loss.kind === "cross_entropy";
    const scale = lossScale(a.on, !classes, T, B, O, lens);
    const dy = this.fresh(plan.rows * O);
    this.lossKernels(k, y, plan.rows, O, scale, batch.target.data, plan.valid, dy);
    return { T, B, y, dy, tokens, lastAt: plan.lastAt, cellTape: cf.tape, readoutTape: rf.tape };
  }

  private fresh(n: number): DeviceSeq {
    const buffer = this.ctx.buffer(Math.max(1, n) * 4, storageUsage());
    this.ctx.releaseAfterFlush(buffer);
    return this.ref(buffer, 0, n);
  }

  /** A small uniform buffer with these 32-bit words, released after the submission. */
  private uniform(words: ArrayLike<number>, floats: readonly number[] = []): GPUBuffer {
    const buf = this.device.createBuffer({
      size: Math.max(16, Math.ceil((words.length + floats.length) / 4) * 16),
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    const data = new ArrayBuffer(buf.size);
    new Uint32Array(data).set(Array.from(words));
    new Float32Array(data, words.length * 4, floats.length).set(floats);
    this.device.queue.writeBuffer(buf, 0, data);
    this.ctx.releaseAfterFlush(buf);
    return buf;
  }

  private storage(data: TensorData | Uint8Array | Uint32Array): GPUBuffer {
    const buf = this.ctx.buffer(Math.max(16, data.length * 4), storageUsage());
    const words =
      data instanceof Uint8Array
        ? Uint32Array.from(data)
        : data instanceof Float64Array
          ? Float32Array.from(data)
          : data;
    this.ctx.write(buf, 0, words);
    this.ctx.releaseAfterFlush(buf);
    return buf;
  }

  private dispatch(p: Kernel, entries: GPUBindGroupEntry[], groups: number): void {
    if (groups === 0) return;
    const bg = this.device.createBindGroup({ layout: p.layout, entries });
    const pass = this.ctx.encoder().beginComputePass();
    pass.setPipeline(p.pipeline);
    pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(Math.min(groups, 65535), Math.ceil(groups / 65535));
    pass.end();
  }

  private lossKernels(
    k: Pipelines,
    y: DeviceSeq,
    rows: number,
    O: number,
    scale: number,
    target: TensorData,
    valid: Uint8Array,
    dy: DeviceSeq,
  ): void {
    const classes = this.artifact.loss.kind === "cross_entropy";
    const u = this.uniform([rows, O, 0, y.offset]);
    this.device.queue.writeBuffer(u, 8, Float32Array.of(scale));
    const t = this.storage(classes ? Int32Array.from(target) : target);
    const entries = bindings([
      u,
      y.buffer,
      t,
      this.storage(valid),
      dy.buffer,
      this.lossPart(rows),
      this.stats,
    ]);
    this.dispatch(k.lossRows, entries, Math.ceil(rows / 64));
    this.dispatch(k.lossTotal, entries, 1);
  }

  private lossPartBuf?: GPUBuffer;
  private lossPart(rows: number): GPUBuffer {
    if (!this.lossPartBuf || this.lossPartBuf.size < rows * 8) {
      this.lossPartBuf?.destroy();
      this.lossPartBuf = this.ctx.buffer(Math.max(16, rows * 8), storageUsage());
    }
    return this.lossPartBuf;
  }

  /** dH [T*B, F]: row (lastAt[b], b) gets row b of dRows, every other row zero (a gather from a zero row). */
  private scatterLast(dRows: DeviceSeq, lastAt: Int32Array, T: number, B: number, F: number): DeviceSeq {
    const src = this.fresh((B + 1) * F);
    this.ctx.encoder().clearBuffer(src.buffer, B * F * 4, F * 4);
    this.ctx.place(dRows, src.buffer, 0);
    const idx = new Uint32Array(T * B).fill(B);
    for (let b = 0; b < B; b++) if (lastAt[b]! >= 0) idx[lastAt[b]! * B + b] = b;
    const dH = this.fresh(T * B * F);
    this.ctx.copyRows(src, dH, { R: T * B, F, sStride: F, sCol: 0, dStride: F, dCol: 0, acc: false, idx });
    return dH;
  }

  private embedGrad(k: Pipelines, tokens: Uint32Array, dx: DeviceSeq, N: number): void {
    const e = this.artifact.embed!;
    const u = this.uniform([e.V, e.D, N, dx.offset, this.at.get(e.param)!.offset, 0, 0, 0]);
    // A counting sort of the positions by token.
    const order = new Uint32Array(e.V + 1 + N);
    for (let n = 0; n < N; n++) order[tokens[n]! + 1]!++;
    for (let v = 0; v < e.V; v++) order[v + 1]! += order[v]!;
    const next = order.slice(0, e.V);
    for (let n = 0; n < N; n++) order[e.V + 1 + next[tokens[n]!]!++] = n;
    this.dispatch(
      k.embedGrad,
      bindings([u, this.storage(order), dx.buffer, this.G]),
      Math.ceil((e.V * e.D) / 64),
    );
  }

  private norm(k: Pipelines): void {
    const parts = Math.ceil(this.N / 4096);
    const u = this.uniform([this.N, parts, 0, 0]);
    const entries = bindings([u, this.G, this.part, this.stats]);
    this.dispatch(k.sumsq, entries, parts);
    this.dispatch(k.total, entries, 1);
  }

  private update(k: Pipelines, o: DeviceUpdate): void {
    const bc1 = 1 - o.beta1 ** o.count;
    const bc2 = 1 - o.beta2 ** o.count;
    // lr, b1, b2, eps, wd, mom, bc1, bc2, clip (f32), then n, first (u32).
    const data = new ArrayBuffer(48);
    new Float32Array(data, 0, 9).set([
      o.lr,
      o.beta1,
      o.beta2,
      o.eps,
      o.weightDecay,
      o.momentum,
      bc1,
      bc2,
      o.clip,
    ]);
    new Uint32Array(data, 36, 2).set([this.N, o.count === 1 ? 1 : 0]);
    const u = this.device.createBuffer({ size: 48, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.device.queue.writeBuffer(u, 0, data);
    this.ctx.releaseAfterFlush(u);
    this.dispatch(
      k.update,
      bindings([u, this.P, this.G, this.M, this.V, this.stats]),
      Math.ceil(this.N / 64),
    );
  }

  private kernels(): Promise<Pipelines> {
    return (this.pipelines ??= (async () => {
      const a = this.artifact;
      const module = async (code: string, what: string) => {
        const m = this.device.createShaderModule({ code });
        const errors = (await m.getCompilationInfo()).messages.filter((x) => x.type === "error");
        if (errors.length)
          throw new CellcError(
            `the ${what} kernels do not compile: ${errors.map((x) => x.message).join("; ")}`,
          );
        return m;
      };
      const [loss, optim, norm, embed] = await Promise.all([
        module(a.loss.wgsl, "loss"),
        module(a.optimizer.wgsl, "optimiser"),
        module(a.optimizer.normWgsl, "gradient norm"),
        module(EMBED_GRAD, "embedding"),
      ]);
      const layouts = Object.fromEntries(
        Object.entries(LAYOUTS).map(([name, kinds]) => [
          name,
          this.device.createBindGroupLayout({
            entries: [...kinds].map((c, binding) => ({
              binding,
              visibility: GPUShaderStage.COMPUTE,
              buffer: { type: c === "u" ? "uniform" : c === "r" ? "read-only-storage" : "storage" },
            })),
          }),
        ]),
      ) as Record<keyof typeof LAYOUTS, GPUBindGroupLayout>;
      const pipe = async (m: GPUShaderModule, which: keyof typeof LAYOUTS, entryPoint: string) => {
        const layout = layouts[which];
        const pipeline = await this.device.createComputePipelineAsync({
          layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
          compute: { module: m, entryPoint },
        });
        return { pipeline, layout };
      };
      const [lossRows, lossTotal, update, sumsq, total, embedGrad] = await Promise.all([
        pipe(loss, "loss", "rows"),
        pipe(loss, "loss", "total"),
        pipe(optim, "optim", "update"),
        pipe(norm, "norm", "sumsq"),
        pipe(norm, "norm", "total"),
        pipe(embed, "embed", "main"),
      ]);
      return { lossRows, lossTotal, update, sumsq, total, embedGrad };
    })());
  }
}

export type { ModelTape };
