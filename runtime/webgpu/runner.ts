import type { WgslDispatch, WgslExtent, WgslKernelText } from "../../artifact/artifact.js";
import { KERNEL_NAMES, type KernelName } from "../../artifact/schedule.js";
import { evalDim } from "../../artifact/shape.js";
import type { CompiledCell } from "../cell.js";
import { bufferIndex, packCopies, planLayout, rowSize, type BlockCopy, type Layout } from "../layout.js";
import {
  RowSizes,
  type DirectionRunner,
  type Seq,
  type SequenceGrads,
  type SequenceResult,
} from "../sequence.js";
import { CellcError, type FloatArray } from "../tensor.js";
import { walkBackward, walkForward, walkPlan, type KernelExecutor } from "../walk.js";
import type { DeviceSeq, GpuContext } from "./context.js";
import { scanLanes } from "../scan.js";
import { GpuScans } from "./scan.js";

/** A bug in cellc's WGSL (it must always compile): reported with the kernel source and the offending line. */
/** WGSL of an artifact that does not compile: refused before any pipeline is made from it. */
export class WgslCompileError extends CellcError {}

/** Workgroup sizes and spans the WGSL emitter uses (see compiler/codegen/wgsl.ts). */
const WORKGROUP = 64;
const LINEAR_SPAN = 65535 * WORKGROUP;
const META_STRIDE = 256;
/** Dispatches per submission: very long sequences are split, since a driver may fail on one huge one. */
const DISPATCHES_PER_SUBMIT = 8192;

interface KernelPipelines {
  readonly text: WgslKernelText;
  readonly pipelines: readonly GPUComputePipeline[];
}
const pipelineCache = new WeakMap<
  GPUDevice,
  WeakMap<CompiledCell, Map<string, Promise<KernelPipelines[]>>>
>();

/** What is planned once per sequence length: layout, offsets tables, dispatch sizes, pack copies. */
interface CallPlan {
  readonly L: Layout;
  readonly offs: GPUBuffer; // every kernel's table, 256-byte aligned
  readonly offsAt: Readonly<Record<KernelName, { offset: number; size: number }>>;
  readonly meta: GPUBuffer; // slot t: {t, B}; slot T: {0, T*B}
  readonly groups: Readonly<Record<KernelName, (readonly [number, number])[]>>;
  readonly pack: readonly BlockCopy[];
  readonly unpack: readonly BlockCopy[];
  readonly scans?: GpuScans;
}

/** The GPU memory of one run over a sequence, kept between forward and backward. */
interface GpuTape {
  readonly T: number;
  readonly mem: GPUBuffer;
  readonly lens: GPUBuffer;
  readonly hasLens: boolean;
  readonly plan: CallPlan;
}

/**
 * Runs one direction of one layer over a whole sequence on WebGPU: an executor of the compiled schedule
 * with the generated WGSL kernels, the time loop being runtime/walk.ts. It only encodes: inputs, states
 * and activations stay on the device, results are returned as device references, and the context submits
 * the work of every layer and direction at once when the model reads its results. Parameters and their
 * packs stay on the device between calls; they are uploaded when they change.
 */
export class GpuSequenceRunner extends RowSizes implements DirectionRunner {
  /** Device memory of the last sequence run (both arenas), in bytes: for benchmarks. */
  deviceBytes = 0;
  /** Compute dispatches encoded so far, scans included (for tests and benchmarks). */
  dispatches = 0;
  private readonly device: GPUDevice;
  private readonly bindGroupLayout: GPUBindGroupLayout;
  private readonly pipelineLayout: GPUPipelineLayout;
  private readonly plans = new Map<number, CallPlan>();
  private pmem?: GPUBuffer;
  private uploaded?: { arrays: readonly Seq[]; version: number };

  constructor(
    private readonly ctx: GpuContext,
    cell: CompiledCell,
    sizes: Readonly<Record<string, number>>,
    readonly B: number,
  ) {
    super(cell, sizes);
    const device = (this.device = ctx.device);
    const storage = (type: GPUBufferBindingType) => ({
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type },
    });
    this.bindGroupLayout = device.createBindGroupLayout({
      entries: [
        { binding: 0, ...storage("storage") },
        { binding: 1, ...storage("storage") },
        {
          binding: 2,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: "uniform", hasDynamicOffset: true },
        },
        { binding: 3, ...storage("read-only-storage") },
        { binding: 4, ...storage("read-only-storage") },
      ],
    });
    this.pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [this.bindGroupLayout] });
  }

  private get a() {
    return this.cell.artifact;
  }

  private pipelines(): Promise<KernelPipelines[]> {
    // Pipelines depend on the cell and the dimensions only (rows are a uniform): shared by every runner.
    let byCell = pipelineCache.get(this.device);
    if (!byCell) pipelineCache.set(this.device, (byCell = new WeakMap()));
    let byKey = byCell.get(this.cell);
    if (!byKey) byCell.set(this.cell, (byKey = new Map()));
    const key = this.a.signature.dims.map((d) => this.sizes[d]).join(",");
    let p = byKey.get(key);
    if (!p) {
      p = Promise.all(KERNEL_NAMES.map((k) => this.createPipelines(k)));
      byKey.set(key, p);
    }
    return p;
  }

  private async createPipelines(which: KernelName): Promise<KernelPipelines> {
    const text = this.a.wgsl?.[which];
    if (!text) throw new CellcError("the artifact has no WGSL kernels");
    const module = this.device.createShaderModule({ code: text.code });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === "error");
    if (errors.length) {
      const lines = text.code.split("\n");
      const detail = errors
        .map((m) => `line ${m.lineNum}:${m.linePos}: ${m.message}\n  ${lines[m.lineNum - 1] ?? ""}`)
        .join("\n");
      throw new WgslCompileError(
        `the WGSL of the ${which} kernel of '${this.a.signature.name}' does not compile (an edited artifact, or a cellc bug):\n${detail}\n--- kernel source ---\n${text.code}`,
      );
    }
    const constants: Record<string, number> = {};
    this.a.signature.dims.forEach((d, i) => (constants[`d${i}`] = this.sizes[d]!));
    const pipelines = await Promise.all(
      text.entries.map((e) =>
        this.device
          .createComputePipelineAsync({
            layout: this.pipelineLayout,
            compute: { module, entryPoint: e.name, constants },
          })
          .catch((err: unknown) => {
            throw new CellcError(
              `cannot create the WebGPU pipeline '${which}.${e.name}' of '${this.a.signature.name}': ${(err as Error).message}`,
            );
          }),
      ),
    );
    return { text, pipelines };
  }

  private extent(e: WgslExtent, rows: number): number {
    return (e.rows ? rows : 1) * (e.dim ? evalDim(e.dim, this.sizes) : 1);
  }
  private groups(d: WgslDispatch, rows: number): [number, number] {
    let x: number, y: number;
    if (d.kind === "tiles")
      [x, y] = [Math.ceil(this.extent(d.x, rows) / d.tile), Math.ceil(this.extent(d.y, rows) / d.tile)];
    else {
      const n =
        d.kind === "rows" ? this.extent(d.rows, rows) : Math.ceil(this.extent(d.extent, rows) / WORKGROUP);
      const span = d.kind === "rows" ? 65535 : LINEAR_SPAN / WORKGROUP;
      [x, y] = [Math.min(n, span), Math.ceil(n / span)];
    }
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max)
      throw new CellcError(
        `a kernel of '${this.a.signature.name}' needs ${x} x ${y} workgroups, above this device's maxComputeWorkgroupsPerDimension (${max})`,
      );
    return [x, y];
  }

  private plan(T: number, kp: KernelPipelines[]): CallPlan {
    let p = this.plans.get(T);
    if (p) return p;
    const ctx = this.ctx;
    const B = this.B;
    const rowsOf = (k: KernelName) => (this.a.kernels[k].rows === "B" ? B : T * B);
    const extra = {} as Record<KernelName, number[]>;
    KERNEL_NAMES.forEach((k, i) => {
      extra[k] = kp[i]!.text.scratch.map((t) => (t.batched ? rowsOf(k) : 1) * rowSize(t, this.sizes));
    });
    const L = planLayout(this.a, this.sizes, B, T, extra);
    const align = Math.max(256, this.device.limits.minStorageBufferOffsetAlignment);
    let total = 0;
    const offsAt = {} as Record<KernelName, { offset: number; size: number }>;
    for (const k of KERNEL_NAMES) {
      const size = Math.max(16, L.offs[k].length * 4);
      offsAt[k] = { offset: total, size };
      total += Math.ceil(size / align) * align;
    }
    const offs = ctx.buffer(total, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
    for (const k of KERNEL_NAMES) {
      const table = L.offs[k];
      if (table.some((v) => v > 0xffffffff))
        throw new CellcError(
          `the sequence needs more than 2^32 floats of device memory: use fewer time steps per call`,
        );
      ctx.write(offs, offsAt[k].offset / 4, Uint32Array.from(table));
    }
    const meta = ctx.buffer((T + 1) * META_STRIDE, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    const metaData = new Uint32Array(((T + 1) * META_STRIDE) / 4);
    for (let t = 0; t < T; t++)
      [metaData[(t * META_STRIDE) / 4], metaData[(t * META_STRIDE) / 4 + 1]] = [t, B];
    // Slot T (the kernels over all T*B rows) also holds B, for their masks (row r is step r / B).
    [metaData[(T * META_STRIDE) / 4], metaData[(T * META_STRIDE) / 4 + 1]] = [0, T * B];
    metaData[(T * META_STRIDE) / 4 + 2] = B;
    ctx.write(meta, 0, metaData);
    const groups = {} as Record<KernelName, (readonly [number, number])[]>;
    KERNEL_NAMES.forEach(
      (k, i) => (groups[k] = kp[i]!.text.entries.map((e) => this.groups(e.dispatch, rowsOf(k)))),
    );
    p = {
      L,
      offs,
      offsAt,
      meta,
      groups,
      pack: packCopies(this.a, L, this.sizes, false),
      unpack: packCopies(this.a, L, this.sizes, true),
      ...(this.a.scans?.length ? { scans: new GpuScans(ctx, scanLanes(this.a, L, this.sizes), T, B) } : {}),
    };
    this.plans.set(T, p);
    return p;
  }

  /** The parameter arena, with the parameters uploaded and packed when they changed since the last call. */
  private params(p: CallPlan, params: readonly Seq[], version: number): GPUBuffer {
    const ctx = this.ctx;
    if (!this.pmem) {
      this.pmem = ctx.buffer(
        p.L.pmemSize * 4,
        GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
      );
      this.uploaded = undefined;
    }
    const same = this.uploaded?.version === version && this.uploaded.arrays.every((a, i) => a === params[i]);
    if (!same) {
      // Host arrays are uploaded; values already on the device (a device training step's) are copied.
      params.forEach((w, i) => ctx.place(w, this.pmem!, p.L.base[bufferIndex(this.a, "param", i)]!));
      this.copy(this.pmem, p.pack, false);
      this.uploaded = { arrays: params.slice(), version };
    }
    return this.pmem;
  }

  private copy(buf: GPUBuffer, copies: readonly BlockCopy[], add: boolean) {
    const ref = (offset: number): DeviceSeq => ({ kind: "device", buffer: buf, offset, length: 0 });
    for (const c of copies)
      this.ctx.copyRows(ref(c.from), ref(c.to), {
        R: c.rows,
        F: c.len,
        sStride: c.fromStride,
        sCol: 0,
        dStride: c.toStride,
        dCol: 0,
        acc: add,
      });
  }

  /** Encodes kernels into one compute pass (split into several submissions on very long sequences). */
  private executor(
    kp: KernelPipelines[],
    p: CallPlan,
    mem: GPUBuffer,
    pmem: GPUBuffer,
    lens: GPUBuffer,
    masked: boolean,
  ) {
    const T = p.L.T;
    const bindGroups = KERNEL_NAMES.map((k) =>
      this.device.createBindGroup({
        layout: this.bindGroupLayout,
        entries: [
          { binding: 0, resource: { buffer: mem } },
          { binding: 1, resource: { buffer: pmem } },
          { binding: 2, resource: { buffer: p.meta, size: 16 } },
          { binding: 3, resource: { buffer: p.offs, offset: p.offsAt[k].offset, size: p.offsAt[k].size } },
          { binding: 4, resource: { buffer: lens } },
        ],
      }),
    );
    let pass = this.ctx.encoder().beginComputePass();
    let count = 0;
    const dispatch = (k: KernelName, t: number, phase: string) => {
      const ki = KERNEL_NAMES.indexOf(k);
      const slot = this.a.kernels[k].rows === "B" ? t : T;
      kp[ki]!.text.entries.forEach((e, i) => {
        if (e.phase !== phase) return;
        const [x, y] = p.groups[k][i]!;
        if (x === 0 || y === 0) return;
        if (++count % DISPATCHES_PER_SUBMIT === 0) {
          pass.end();
          this.ctx.submitPending();
          pass = this.ctx.encoder().beginComputePass();
        }
        this.dispatches++;
        pass.setPipeline(kp[ki]!.pipelines[i]!);
        pass.setBindGroup(0, bindGroups[ki]!, [slot * META_STRIDE]);
        pass.dispatchWorkgroups(x, y);
      });
    };
    const x: KernelExecutor = {
      run: (k, t) => dispatch(k, t, "run"),
      mask: (k, which, t) => dispatch(k, t, which),
      scan: (direction) => {
        this.dispatches += 3 * (this.a.scans?.length ?? 0);
        p.scans!.encode(pass, mem, lens, masked, direction === "backward");
      },
    };
    return { x, end: () => pass.end() };
  }

  private at(L: Layout, kind: Parameters<typeof bufferIndex>[1], i: number) {
    const b = bufferIndex(this.a, kind, i);
    return { base: L.base[b]!, size: L.size[b]! };
  }

  async forward(
    inputs: readonly Seq[],
    T: number,
    inits: readonly FloatArray[],
    params: readonly Seq[],
    lens: Int32Array | undefined,
    keep: boolean,
    paramVersion = 0,
  ): Promise<SequenceResult> {
    const ctx = this.ctx;
    const kp = await this.pipelines();
    const p = this.plan(T, kp);
    const L = p.L;
    const mem = ctx.buffer(
      L.memSize * 4,
      GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    );
    this.deviceBytes = (L.memSize + L.pmemSize) * 4;
    const pmem = this.params(p, params, paramVersion);
    const lensBuf = this.device.createBuffer({
      size: Math.max(16, this.B * 4),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    if (lens) ctx.write(lensBuf, 0, lens);
    inputs.forEach((a, i) => ctx.place(a, mem, this.at(L, "input", i).base));
    inits.forEach((a, s) => ctx.write(mem, this.at(L, "state", s).base, a));
    const ex = this.executor(kp, p, mem, pmem, lensBuf, !!lens);
    walkForward(ex.x, walkPlan(this.a), T, !!lens);
    ex.end();
    const B = this.B;
    const ref = (offset: number, length: number): DeviceSeq => ({
      kind: "device",
      buffer: mem,
      offset,
      length,
    });
    const outputs = this.a.signature.outputs.map((_, o) =>
      ref(this.at(L, "output", o).base, T * B * this.outputRow(o)),
    );
    const finals = this.a.signature.states.map((_, s) => {
      const n = B * this.stateRow(s);
      return ref(this.at(L, "state", s).base + T * n, n);
    });
    const tape: GpuTape = { T, mem, lens: lensBuf, hasLens: !!lens, plan: p };
    if (!keep) this.release(tape);
    return { outputs, finals, tape: keep ? tape : undefined };
  }

  async backward(
    tapeIn: unknown,
    params: readonly Seq[],
    dOutputs: readonly (Seq | undefined)[],
    dFinals: readonly (FloatArray | undefined)[],
    paramVersion = 0,
    stateSteps = false,
    _inputGrads = true, // computed anyway: one dispatch list for both
  ): Promise<SequenceGrads> {
    const tape = tapeIn as GpuTape;
    const ctx = this.ctx;
    const kp = await this.pipelines();
    const { T, plan: p, mem } = tape;
    const L = p.L;
    const pmem = this.params(p, params, paramVersion);
    const sig = this.a.signature;
    const B = this.B;
    const enc = ctx.encoder();
    this.a.buffers.forEach((b, i) => {
      if ((b.kind === "grad_param" || b.kind === "grad_pack") && L.size[i]! > 0)
        enc.clearBuffer(pmem, L.base[i]! * 4, L.size[i]! * 4);
    });
    sig.outputs.forEach((_, o) => {
      const g = this.at(L, "grad_output", o);
      const d = dOutputs[o];
      if (d) ctx.place(d, mem, g.base);
      else if (g.size) enc.clearBuffer(mem, g.base * 4, g.size * 4);
    });
    sig.states.forEach((_, s) => {
      const n = B * this.stateRow(s);
      const at = this.at(L, "grad_state", s).base + T * n;
      const d = dFinals[s];
      if (d) ctx.write(mem, at, d);
      else if (n) enc.clearBuffer(mem, at * 4, n * 4);
    });
    const ex = this.executor(kp, p, mem, pmem, tape.lens, tape.hasLens);
    walkBackward(ex.x, walkPlan(this.a), T, tape.hasLens);
    ex.end();
    this.copy(pmem, p.unpack, true);
    this.release(tape);
    const ref = (buffer: GPUBuffer, offset: number, length: number): DeviceSeq => ({
      kind: "device",
      buffer,
      offset,
      length,
    });
    return {
      inputs: sig.inputs.map((_, i) => ref(mem, this.at(L, "grad_input", i).base, T * B * this.inputRow(i))),
      inits: sig.states.map((_, s) => ref(mem, this.at(L, "grad_state", s).base, B * this.stateRow(s))),
      params: sig.params.map((_, i) => {
        const g = this.at(L, "grad_param", i);
        return ref(pmem, g.base, g.size);
      }),
      ...(stateSteps ? { stateSteps: sig.states.map((_, s) => this.stepGrads(L, mem, T, s, ref)) } : {}),
    };
  }

  /** As the CPU runner's: the state's gradient buffer from t + 1, plus an output that is its next value. */
  private stepGrads(
    L: Layout,
    mem: GPUBuffer,
    T: number,
    s: number,
    ref: (buffer: GPUBuffer, offset: number, length: number) => DeviceSeq,
  ): Seq {
    const n = this.B * this.stateRow(s);
    let seq: Seq = ref(mem, this.at(L, "grad_state", s).base + n, T * n);
    this.a.signature.outputs.forEach((o, k) => {
      if (o.state === s && T * n > 0)
        seq = this.ctx.ops.add(seq, ref(mem, this.at(L, "grad_output", k).base, T * n));
    });
    return seq;
  }

  /** The tape's buffers go once the work encoded so far has run (their results are read before that). */
  private release(t: GpuTape) {
    this.ctx.releaseAfterFlush(t.mem, t.lens);
  }
}
