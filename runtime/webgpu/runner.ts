import {
  WGSL_ROW_ALIGN,
  wgslArena,
  type WgslDispatch,
  type WgslExtent,
  type WgslKernelText,
} from "../../artifact/artifact.js";
import { KERNEL_NAMES, type KernelName } from "../../artifact/schedule.js";
import { evalDim } from "../../artifact/shape.js";
import type { CompiledCell } from "../cell.js";
import { bufferIndex, packCopies, planLayout, rowStride, type BlockCopy, type Layout } from "../layout.js";
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
  /** The float16 tape (f16 storage), or the context's placeholder. */
  readonly hmem: GPUBuffer;
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
  /** The packed weights in float16 (f16 storage). */
  private hpmem?: GPUBuffer;
  private uploaded?: { arrays: readonly Seq[]; version: number };

  constructor(
    private readonly ctx: GpuContext,
    cell: CompiledCell,
    sizes: Readonly<Record<string, number>>,
    readonly B: number,
    /** f16: the tape and the packed weights stored as float16 (the kernels' `codeF16`), computed in float32. */
    readonly precision: "f32" | "f16" = "f32",
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
        { binding: 5, ...storage("storage") },
        { binding: 6, ...storage("storage") },
      ],
    });
    this.pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [this.bindGroupLayout] });
  }

  private get a() {
    return this.cell.artifact;
  }
  private get f16() {
    return this.precision === "f16";
  }

  private pipelines(): Promise<KernelPipelines[]> {
    // Pipelines depend on the cell and the dimensions only (rows are a uniform): shared by every runner.
    let byCell = pipelineCache.get(this.device);
    if (!byCell) pipelineCache.set(this.device, (byCell = new WeakMap()));
    let byKey = byCell.get(this.cell);
    if (!byKey) byCell.set(this.cell, (byKey = new Map()));
    const key = `${this.a.signature.dims.map((d) => this.sizes[d]).join(",")}|${this.precision}`;
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
    const half = this.a.kernels[which].bindings.some((b) => {
      const buf = this.a.buffers[b.buffer]!;
      return wgslArena(buf, true) !== buf.arena;
    });
    if (this.f16 && half && !text.codeF16)
      throw new CellcError(
        `the artifact of '${this.a.signature.name}' has no f16 WGSL kernels (an older cellc made it): compile it again for precision f16`,
      );
    const sub = this.ctx.subgroups;
    const code =
      (this.f16 && ((sub && text.codeF16Subgroups) || text.codeF16)) ||
      (sub && text.codeSubgroups) ||
      text.code;
    const module = this.device.createShaderModule({ code });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === "error");
    if (errors.length) {
      const lines = code.split("\n");
      const detail = errors
        .map((m) => `line ${m.lineNum}:${m.linePos}: ${m.message}\n  ${lines[m.lineNum - 1] ?? ""}`)
        .join("\n");
      throw new WgslCompileError(
        `the WGSL of the ${which} kernel of '${this.a.signature.name}' does not compile (an edited artifact, or a cellc bug):\n${detail}\n--- kernel source ---\n${code}`,
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
      [x, y] = [Math.ceil(this.extent(d.x, rows) / d.tile), Math.ceil(this.extent(d.y, rows) / d.tileY)];
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
      extra[k] = kp[i]!.text.scratch.map(
        (t) => (t.batched ? rowsOf(k) : 1) * rowStride(t, this.sizes, WGSL_ROW_ALIGN),
      );
    });
    const L = planLayout(this.a, this.sizes, B, T, extra, WGSL_ROW_ALIGN, this.f16);
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
    if (this.f16 && !this.hpmem) {
      this.hpmem = ctx.buffer(p.L.hpmemSize * 2, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
      this.uploaded = undefined;
    }
    if (!same) {
      // Host arrays are uploaded; values already on the device (a device training step's) are copied.
      params.forEach((w, i) => ctx.place(w, this.pmem!, p.L.base[bufferIndex(this.a, "param", i)]!));
      // With f16 storage the packs are float16 copies of the parameters.
      this.copy(this.pmem, p.pack, false, this.hpmem);
      this.uploaded = { arrays: params.slice(), version };
    }
    return this.pmem;
  }

  /** Block copies within a buffer, or to a float16 one (`half`: packing with f16 storage). */
  private copy(buf: GPUBuffer, copies: readonly BlockCopy[], add: boolean, half?: GPUBuffer) {
    const ref = (offset: number, b = buf): DeviceSeq => ({ kind: "device", buffer: b, offset, length: 0 });
    for (const c of copies)
      this.ctx.copyRows(ref(c.from), ref(c.to, half), {
        half: !!half,
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
    hmem: GPUBuffer,
  ) {
    const T = p.L.T;
    const hpmem = this.hpmem ?? this.ctx.placeholder(1);
    const bindGroups = KERNEL_NAMES.map((k) =>
      this.device.createBindGroup({
        layout: this.bindGroupLayout,
        entries: [
          { binding: 0, resource: { buffer: mem } },
          { binding: 1, resource: { buffer: pmem } },
          { binding: 2, resource: { buffer: p.meta, size: 16 } },
          { binding: 3, resource: { buffer: p.offs, offset: p.offsAt[k].offset, size: p.offsAt[k].size } },
          { binding: 4, resource: { buffer: lens } },
          { binding: 5, resource: { buffer: hmem } },
          { binding: 6, resource: { buffer: hpmem } },
        ],
      }),
    );
    let pass = this.ctx.encoder().beginComputePass();
    let count = 0;
    const dispatch = (k: KernelName, t: number, phase: string) => {
      const ki = KERNEL_NAMES.indexOf(k);
      const slot = this.a.kernels[k].rows === "B" ? t : T;
      const rows = this.a.kernels[k].rows === "B" ? this.B : T * this.B;
      kp[ki]!.text.entries.forEach((e, i) => {
        if (e.phase !== phase) return;
        const [x, y] = p.groups[k][i]!;
        if (x === 0 || y === 0) return;
        const prof = this.ctx.profile;
        if (prof) {
          // Timed: a pass of its own (benchmarks only).
          pass.end();
          const flops = e.gemm
            ? 2 * ["x", "y", "inner"].reduce((m, a) => m * this.extent(e.gemm![a as "x"], rows), 1)
            : 0;
          prof.dispatch(
            `${this.a.signature.name}.${k}.${e.name}`,
            flops,
            () => this.ctx.encoder(),
            () => this.ctx.takePending(),
            (q) => {
              q.setPipeline(kp[ki]!.pipelines[i]!);
              q.setBindGroup(0, bindGroups[ki]!, [slot * META_STRIDE]);
              q.dispatchWorkgroups(x, y);
            },
          );
          pass = this.ctx.encoder().beginComputePass();
          return;
        }
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
    return { base: L.base[b]!, size: L.size[b]!, stride: L.stride[b]! };
  }
  /** Puts `rows` rows of F floats at row `row0` of a buffer, into its padded rows. */
  private placeRows(
    x: Seq,
    mem: GPUBuffer,
    L: Layout,
    kind: Parameters<typeof bufferIndex>[1],
    i: number,
    rows: number,
    F: number,
    row0 = 0,
  ) {
    const b = this.at(L, kind, i);
    this.ctx.placeRows(x, mem, b.base + row0 * b.stride, rows, F, b.stride);
  }
  /** `rows` rows of F floats from row `row0` of a buffer, contiguous (a copy where its rows are padded). */
  private rows(
    mem: GPUBuffer,
    L: Layout,
    kind: Parameters<typeof bufferIndex>[1],
    i: number,
    row0: number,
    rows: number,
    F: number,
  ): DeviceSeq {
    const b = this.at(L, kind, i);
    return this.ctx.rowsOf(mem, b.base + row0 * b.stride, rows, F, b.stride);
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
    const hmem = this.f16
      ? ctx.buffer(L.hmemSize * 2, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST)
      : ctx.placeholder();
    this.deviceBytes = (L.memSize + L.pmemSize) * 4 + (L.hmemSize + L.hpmemSize) * 2;
    const pmem = this.params(p, params, paramVersion);
    const lensBuf = this.device.createBuffer({
      size: Math.max(16, this.B * 4),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    if (lens) ctx.write(lensBuf, 0, lens);
    // Rows in the device's layout are padded (artifact.ts WGSL_ROW_ALIGN): placed and read row by row.
    inputs.forEach((a, i) => this.placeRows(a, mem, L, "input", i, T * this.B, this.inputRow(i)));
    inits.forEach((a, s) => this.placeRows(a, mem, L, "state", s, this.B, this.stateRow(s)));
    const ex = this.executor(kp, p, mem, pmem, lensBuf, !!lens, hmem);
    walkForward(ex.x, walkPlan(this.a), T, !!lens);
    ex.end();
    const B = this.B;
    const outputs = this.a.signature.outputs.map((_, o) =>
      this.rows(mem, L, "output", o, 0, T * B, this.outputRow(o)),
    );
    const finals = this.a.signature.states.map((_, s) =>
      this.rows(mem, L, "state", s, T * B, B, this.stateRow(s)),
    );
    const tape: GpuTape = { T, mem, hmem, lens: lensBuf, hasLens: !!lens, plan: p };
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
      if (d) this.placeRows(d, mem, L, "grad_output", o, T * B, this.outputRow(o));
      else if (g.size) enc.clearBuffer(mem, g.base * 4, g.size * 4);
    });
    sig.states.forEach((_, s) => {
      const g = this.at(L, "grad_state", s);
      const n = B * g.stride;
      const d = dFinals[s];
      if (d) this.placeRows(d, mem, L, "grad_state", s, B, this.stateRow(s), T * B);
      else if (n) enc.clearBuffer(mem, (g.base + T * n) * 4, n * 4);
    });
    const ex = this.executor(kp, p, mem, pmem, tape.lens, tape.hasLens, tape.hmem);
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
      inputs: sig.inputs.map((_, i) => this.rows(mem, L, "grad_input", i, 0, T * B, this.inputRow(i))),
      inits: sig.states.map((_, s) => this.rows(mem, L, "grad_state", s, 0, B, this.stateRow(s))),
      params: sig.params.map((_, i) => {
        const g = this.at(L, "grad_param", i);
        return ref(pmem, g.base, g.size);
      }),
      ...(stateSteps ? { stateSteps: sig.states.map((_, s) => this.stepGrads(L, mem, T, s)) } : {}),
    };
  }

  /** As the CPU runner's: the state's gradient buffer from t + 1, plus an output that is its next value. */
  private stepGrads(L: Layout, mem: GPUBuffer, T: number, s: number): Seq {
    const B = this.B;
    const F = this.stateRow(s);
    let seq: Seq = this.rows(mem, L, "grad_state", s, B, T * B, F);
    this.a.signature.outputs.forEach((o, k) => {
      if (o.state === s && T * B * F > 0)
        seq = this.ctx.ops.add(seq, this.rows(mem, L, "grad_output", k, 0, T * B, F));
    });
    return seq;
  }

  /** The tape's buffers go once the work encoded so far has run (their results are read before that). */
  private release(t: GpuTape) {
    this.ctx.releaseAfterFlush(t.mem, t.lens);
    if (this.f16) this.ctx.releaseAfterFlush(t.hmem);
  }
}
