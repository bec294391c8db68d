import {
  emitKernelWgsl,
  LINEAR_SPAN,
  TILE,
  WORKGROUP,
  type Dispatch,
  type Extent,
  type WgslKernel,
} from "../../compiler/codegen/wgsl.js";
import { evalDim } from "../../compiler/ir/shape.js";
import type { CompiledCell } from "../cell.js";
import {
  rowSize,
  RowSizes,
  type DirectionRunner,
  type Seq,
  type SequenceGrads,
  type SequenceResult,
} from "../sequence.js";
import { CellcError, type FloatArray } from "../tensor.js";
import type { DeviceSeq, GpuContext } from "./context.js";
import type { Type } from "../../compiler/ir/shape.js";

/** The WGSL kernels of a cell, generated once per compiled cell. */
const wgslCache = new WeakMap<CompiledCell, { forward: WgslKernel; backward: WgslKernel }>();
export function wgslKernels(cell: CompiledCell) {
  let k = wgslCache.get(cell);
  if (!k) {
    k = {
      forward: emitKernelWgsl(cell.kernels.forward, cell.ir.dims),
      backward: emitKernelWgsl(cell.kernels.backward, cell.ir.dims),
    };
    wgslCache.set(cell, k);
  }
  return k;
}

/** A bug in cellc's WGSL (it must always compile): reported with the kernel source and the offending line. */
export class WgslCompileError extends Error {}

interface Pipelines {
  readonly kernel: WgslKernel;
  readonly pipelines: GPUComputePipeline[];
}

const META_STRIDE = 256;
const pipelineCache = new WeakMap<GPUDevice, WeakMap<CompiledCell, Map<string, Promise<Pipelines>>>>();

/** The GPU memory of one run of a direction over a sequence: kept between forward and backward. */
export interface GpuTape {
  readonly T: number;
  readonly mem: GPUBuffer;
  readonly pmem: GPUBuffer;
  readonly meta: GPUBuffer;
  readonly lens: GPUBuffer;
  readonly hasLens: boolean;
  readonly layout: ArenaLayout;
}

interface ArenaLayout {
  readonly memSize: number; // elements
  readonly pmemSize: number;
  readonly fwdOffs: Uint32Array;
  readonly bwdOffs: Uint32Array;
  readonly x: number[];
  readonly states: number[];
  readonly outputs: number[];
  readonly up: number[];
  readonly dS: number[];
  readonly gx: number[];
  readonly params: number[];
  readonly grads: number[];
}

/**
 * Runs one direction of one layer over a whole sequence on WebGPU. It only encodes: inputs, states,
 * parameters and activations stay on the device, results are returned as device references, and the
 * context submits the work of every layer and direction at once when the model reads its results.
 */
export class GpuSequenceRunner extends RowSizes implements DirectionRunner {
  private readonly bindGroupLayout: GPUBindGroupLayout;
  /** Device memory of the last sequence run (arenas), in bytes: for benchmarks. */
  deviceBytes = 0;
  private readonly pipelineLayout: GPUPipelineLayout;

  private readonly device: GPUDevice;

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

  private get ir() {
    return this.cell.ir;
  }

  private pipelines(which: "forward" | "backward"): Promise<Pipelines> {
    // Pipelines depend on the cell, the kernel, the batch size and the dimensions: shared by every runner.
    let byCell = pipelineCache.get(this.device);
    if (!byCell) pipelineCache.set(this.device, (byCell = new WeakMap()));
    let byKey = byCell.get(this.cell);
    if (!byKey) byCell.set(this.cell, (byKey = new Map()));
    const key = `${which}|${this.B}|${this.ir.dims.map((d) => this.sizes[d]).join(",")}`;
    let p = byKey.get(key);
    if (!p) {
      p = this.createPipelines(which);
      byKey.set(key, p);
    }
    return p;
  }

  private async createPipelines(which: "forward" | "backward"): Promise<Pipelines> {
    const kernel = wgslKernels(this.cell)[which];
    const module = this.device.createShaderModule({ code: kernel.code });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === "error");
    if (errors.length) {
      const lines = kernel.code.split("\n");
      const detail = errors
        .map((m) => `line ${m.lineNum}:${m.linePos}: ${m.message}\n  ${lines[m.lineNum - 1] ?? ""}`)
        .join("\n");
      throw new WgslCompileError(
        `cellc bug: the generated WGSL of the ${which} kernel of '${this.ir.name}' does not compile:\n${detail}\n--- kernel source ---\n${kernel.code}`,
      );
    }
    const constants: Record<string, number> = { B: this.B };
    this.ir.dims.forEach((d, i) => (constants[`d${i}`] = this.sizes[d]!));
    const pipelines = await Promise.all(
      kernel.entries.map((e) =>
        this.device
          .createComputePipelineAsync({
            layout: this.pipelineLayout,
            compute: { module, entryPoint: e.name, constants },
          })
          .catch((err: unknown) => {
            throw new CellcError(
              `cannot create the WebGPU pipeline '${e.name}' of '${this.ir.name}': ${(err as Error).message}`,
            );
          }),
      ),
    );
    return { kernel, pipelines };
  }

  private extent(e: Extent): number {
    return (e.batch ? this.B : 1) * (e.dim ? evalDim(e.dim, this.sizes) : 1);
  }
  private groups(d: Dispatch): [number, number] {
    const [x, y] = this.groupCounts(d);
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max)
      throw new CellcError(
        `a kernel of '${this.ir.name}' needs ${x} x ${y} workgroups, above this device's maxComputeWorkgroupsPerDimension (${max})`,
      );
    return [x, y];
  }

  private groupCounts(d: Dispatch): [number, number] {
    if (d.kind === "tiles") return [Math.ceil(this.extent(d.x) / TILE), Math.ceil(this.extent(d.y) / TILE)];
    const n = d.kind === "rows" ? this.extent(d.rows) : Math.ceil(this.extent(d.extent) / WORKGROUP);
    const span = d.kind === "rows" ? 65535 : LINEAR_SPAN / WORKGROUP;
    return [Math.min(n, span), Math.ceil(n / span)];
  }

  private layout(T: number, fk: WgslKernel, bk: WgslKernel): ArenaLayout {
    const B = this.B;
    let mem = 0;
    let pmem = 0;
    const take = (n: number) => ((mem += n), mem - n);
    const takeP = (n: number) => ((pmem += n), pmem - n);
    const ir = this.ir;
    const x = ir.inputs.map((_, i) => take(T * B * this.inputRow(i)));
    const states = ir.states.map((_, s) => take((T + 1) * B * this.stateRow(s)));
    const outputs = ir.outputs.map((_, o) => take(T * B * this.outputRow(o)));
    const size = (t: Type) => (t.batched ? B : 1) * rowSize(t, this.sizes);
    const saved = fk.bindings.filter((b) => b.role === "saved").map((b) => take(T * size(b.type)));
    const fscratch = fk.scratch.map((t) => take(Math.max(1, size(t))));
    const up = ir.outputs.map((_, o) => take(T * B * this.outputRow(o)));
    const dS = ir.states.map((_, s) => take((T + 1) * B * this.stateRow(s)));
    const gx = ir.inputs.map((_, i) => take(T * B * this.inputRow(i)));
    const bscratch = bk.scratch.map((t) => take(Math.max(1, size(t))));
    const params = ir.params.map((p) => takeP(rowSize(p.type, this.sizes)));
    const grads = ir.params.map((p) => takeP(rowSize(p.type, this.sizes)));
    const table = (k: WgslKernel, scratch: number[]) => {
      const offs = new Uint32Array(2 * (k.bindings.length + k.scratch.length));
      k.bindings.forEach((b, i) => {
        const rows = b.type.batched ? B * rowSize(b.type, this.sizes) : 0;
        const n = b.index;
        let base: number;
        let stride = rows;
        switch (b.role) {
          case "output":
            base = outputs[n]!;
            break;
          case "next":
            base = states[n]! + B * this.stateRow(n);
            break;
          case "saved":
            base = saved[n]!;
            stride = size(b.type);
            break;
          case "input":
            base = x[n]!;
            break;
          case "state":
            base = states[n]!;
            break;
          case "param":
            base = params[n]!;
            break;
          case "grad_param":
            base = grads[n]!;
            break;
          case "grad_input":
            base = gx[n]!;
            break;
          case "grad_state":
            base = dS[n]!;
            break;
          case "upstream":
            // Into output n, or into state n: the next state's gradient is the dS slot one step later.
            base = b.name.startsWith("out:") ? up[n]! : dS[n]! + B * this.stateRow(n);
            break;
          default:
            throw new Error(`binding role ${b.role}`);
        }
        offs[2 * i] = base;
        offs[2 * i + 1] = stride;
      });
      scratch.forEach((base, k2) => (offs[2 * (k.bindings.length + k2)] = base));
      return offs;
    };
    return {
      memSize: mem,
      pmemSize: pmem,
      fwdOffs: table(fk, fscratch),
      bwdOffs: table(bk, bscratch),
      x,
      states,
      outputs,
      up,
      dS,
      gx,
      params,
      grads,
    };
  }

  async forward(
    inputs: readonly Seq[],
    T: number,
    inits: readonly FloatArray[],
    params: readonly FloatArray[],
    lens: Int32Array | undefined,
    keep: boolean,
  ): Promise<SequenceResult> {
    const ctx = this.ctx;
    const fp = await this.pipelines("forward");
    const bp = keep ? await this.pipelines("backward") : undefined;
    const L = this.layout(T, fp.kernel, bp?.kernel ?? fp.kernel);
    const S = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    const mem = ctx.buffer(L.memSize * 4, S);
    const pmem = ctx.buffer(L.pmemSize * 4, S);
    this.deviceBytes = (L.memSize + L.pmemSize) * 4;
    const meta = ctx.buffer(Math.max(1, T) * META_STRIDE, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    const metaData = new Uint32Array((Math.max(1, T) * META_STRIDE) / 4);
    for (let t = 0; t < T; t++) metaData[(t * META_STRIDE) / 4] = t;
    ctx.write(meta, 0, metaData);
    const lensBuf = this.device.createBuffer({
      size: Math.max(16, this.B * 4),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    if (lens) ctx.write(lensBuf, 0, lens);
    inputs.forEach((a, i) => ctx.place(a, mem, L.x[i]!));
    inits.forEach((a, s) => ctx.write(mem, L.states[s]!, a));
    params.forEach((a, p) => ctx.write(pmem, L.params[p]!, a));
    const tape: GpuTape = { T, mem, pmem, meta, lens: lensBuf, hasLens: !!lens, layout: L };
    this.encode(
      fp,
      tape,
      L.fwdOffs,
      [...Array(T).keys()],
      (e) => e.phase === "step" || (e.phase === "mask" && !!lens),
    );
    const ir = this.ir;
    const B = this.B;
    const ref = (offset: number, length: number): DeviceSeq => ({
      kind: "device",
      buffer: mem,
      offset,
      length,
    });
    const outputs = ir.outputs.map((_, o) => ref(L.outputs[o]!, T * B * this.outputRow(o)));
    const finals = ir.states.map((_, s) =>
      ref(L.states[s]! + T * B * this.stateRow(s), B * this.stateRow(s)),
    );
    if (!keep) this.release(tape);
    return { outputs, finals, tape: keep ? tape : undefined };
  }

  async backward(
    tapeIn: unknown,
    _params: readonly FloatArray[],
    dOutputs: readonly (Seq | undefined)[],
    dFinals: readonly (FloatArray | undefined)[],
  ): Promise<SequenceGrads> {
    const tape = tapeIn as GpuTape;
    const ctx = this.ctx;
    const bp = await this.pipelines("backward");
    const { T, layout: L, mem, pmem } = tape;
    const ir = this.ir;
    const B = this.B;
    const enc = ctx.encoder();
    ir.outputs.forEach((_, o) => {
      const d = dOutputs[o];
      if (d) ctx.place(d, mem, L.up[o]!);
      else enc.clearBuffer(mem, L.up[o]! * 4, T * B * this.outputRow(o) * 4);
    });
    ir.states.forEach((_, s) => {
      const n = B * this.stateRow(s);
      const d = dFinals[s];
      const at = L.dS[s]! + T * n;
      if (d) ctx.write(mem, at, d);
      else enc.clearBuffer(mem, at * 4, n * 4);
    });
    const gradsStart = L.grads[0] ?? L.pmemSize;
    if (L.pmemSize > gradsStart) enc.clearBuffer(pmem, gradsStart * 4, (L.pmemSize - gradsStart) * 4);
    const steps = [...Array(T).keys()].reverse();
    this.encode(
      bp,
      tape,
      L.bwdOffs,
      steps,
      (e) => e.phase === "step" || (tape.hasLens && (e.phase === "premask" || e.phase === "postmask")),
      true,
    );
    this.release(tape);
    const ref = (buffer: GPUBuffer, offset: number, length: number): DeviceSeq => ({
      kind: "device",
      buffer,
      offset,
      length,
    });
    return {
      inputs: ir.inputs.map((_, i) => ref(mem, L.gx[i]!, T * B * this.inputRow(i))),
      inits: ir.states.map((_, s) => ref(mem, L.dS[s]!, B * this.stateRow(s))),
      params: ir.params.map((p, i) => ref(pmem, L.grads[i]!, rowSize(p.type, this.sizes))),
    };
  }

  private encode(
    p: Pipelines,
    tape: GpuTape,
    offs: Uint32Array,
    steps: number[],
    include: (e: WgslKernel["entries"][number]) => boolean,
    prePost = false,
  ) {
    const dev = this.device;
    const offsBuf = dev.createBuffer({
      size: Math.max(16, offs.byteLength),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    this.ctx.write(offsBuf, 0, offs);
    this.ctx.releaseAfterFlush(offsBuf);
    const bg = dev.createBindGroup({
      layout: this.bindGroupLayout,
      entries: [
        { binding: 0, resource: { buffer: tape.mem } },
        { binding: 1, resource: { buffer: tape.pmem } },
        { binding: 2, resource: { buffer: tape.meta, size: 16 } },
        { binding: 3, resource: { buffer: offsBuf } },
        { binding: 4, resource: { buffer: tape.lens } },
      ],
    });
    const order = p.kernel.entries.map((e, i) => ({ e, i })).filter(({ e }) => include(e));
    if (prePost) order.sort((a, b) => rank(a.e.phase) - rank(b.e.phase));
    // Sizes first: a kernel too large for the device is refused before anything is encoded.
    const dispatches = order.map(({ e, i }) => ({
      pipeline: p.pipelines[i]!,
      groups: this.groups(e.dispatch),
    }));
    const pass = this.ctx.encoder().beginComputePass();
    for (const t of steps) {
      for (const { pipeline, groups } of dispatches) {
        const [x, y] = groups;
        if (x === 0 || y === 0) continue;
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bg, [t * META_STRIDE]);
        pass.dispatchWorkgroups(x, y);
      }
    }
    pass.end();
  }

  /** The tape's buffers go once the work encoded so far has run (their results are read before that). */
  private release(t: GpuTape) {
    this.ctx.releaseAfterFlush(t.mem, t.pmem, t.meta, t.lens);
  }
}

const rank = (p: string) => (p === "premask" ? 0 : p === "step" ? 1 : 2);
