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
  type SequenceGrads,
  type SequenceResult,
} from "../sequence.js";
import { CellcError, floatArray, type FloatArray } from "../tensor.js";

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
 * Runs one direction of one layer over a whole sequence on WebGPU. Inputs, states, parameters and
 * activations stay on the device for the whole sequence: one command submission per forward or backward
 * sequence, pipelines created once per runner, and read-back only of the results.
 */
export class GpuSequenceRunner extends RowSizes implements DirectionRunner {
  private readonly bindGroupLayout: GPUBindGroupLayout;
  /** Device memory of the last sequence run (arenas), in bytes: for benchmarks. */
  deviceBytes = 0;
  private readonly pipelineLayout: GPUPipelineLayout;

  constructor(
    private readonly device: GPUDevice,
    cell: CompiledCell,
    sizes: Readonly<Record<string, number>>,
    readonly B: number,
    private readonly dtype: "f32" | "f64",
  ) {
    super(cell, sizes);
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
    const size = (t: { batched: boolean; dims: readonly import("../../compiler/ir/shape.js").Dim[] }) =>
      (t.batched ? B : 1) * rowSize(t, this.sizes);
    const saved = fk.bindings.map((b) => (b.role === "saved" ? take(T * size(b.type)) : -1));
    const fscratch = fk.scratch.map((t) => take(Math.max(1, size(t))));
    const up = ir.outputs.map((_, o) => take(T * B * this.outputRow(o)));
    const dS = ir.states.map((_, s) => take((T + 1) * B * this.stateRow(s)));
    const gx = ir.inputs.map((_, i) => take(T * B * this.inputRow(i)));
    const bscratch = bk.scratch.map((t) => take(Math.max(1, size(t))));
    const params = ir.params.map((p) => takeP(rowSize(p.type, this.sizes)));
    const grads = ir.params.map((p) => takeP(rowSize(p.type, this.sizes)));
    const idx = (list: readonly { name: string }[], name: string) => list.findIndex((v) => v.name === name);
    const savedBase = new Map(
      fk.bindings.flatMap((b, i) => (b.role === "saved" ? [[b.name, saved[i]!] as const] : [])),
    );
    const table = (k: WgslKernel, scratch: number[]) => {
      const offs = new Uint32Array(2 * (k.bindings.length + k.scratch.length));
      k.bindings.forEach((b, i) => {
        const rows = b.type.batched ? B * rowSize(b.type, this.sizes) : 0;
        const s = idx(ir.states, b.name);
        let base: number;
        let stride = rows;
        switch (b.role) {
          case "output":
            base = outputs[idx(ir.outputs, b.name)]!;
            break;
          case "next":
            base = states[s]! + B * this.stateRow(s);
            break;
          case "saved":
            base = savedBase.get(b.name)!;
            stride = size(b.type);
            break;
          case "input":
            base = x[idx(ir.inputs, b.name)]!;
            break;
          case "state":
            base = states[s]!;
            break;
          case "param":
            base = params[idx(ir.params, b.name)]!;
            break;
          case "grad_param":
            base = grads[idx(ir.params, b.name)]!;
            break;
          case "grad_input":
            base = gx[idx(ir.inputs, b.name)]!;
            break;
          case "grad_state":
            base = dS[s]!;
            break;
          case "upstream":
            if (b.name.startsWith("out:")) base = up[idx(ir.outputs, b.name.slice(4))]!;
            else
              base =
                dS[idx(ir.states, b.name.slice(5))]! + B * this.stateRow(idx(ir.states, b.name.slice(5)));
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

  /** Writes data at an element offset (4-byte elements); float64 data is narrowed to float32. */
  private write(buf: GPUBuffer, at: number, data: FloatArray | Int32Array | Uint32Array): void {
    const a = data instanceof Float64Array ? Float32Array.from(data) : data;
    this.device.queue.writeBuffer(buf, at * 4, a.buffer as ArrayBuffer, a.byteOffset, a.byteLength);
  }

  private buffer(bytes: number, usage: number): GPUBuffer {
    const limit = this.device.limits.maxStorageBufferBindingSize;
    if (bytes > limit)
      throw new CellcError(
        `the sequence needs ${bytes} bytes of device memory in one buffer, above this device's maxStorageBufferBindingSize (${limit} bytes): use fewer time steps per call or a smaller batch`,
      );
    return this.device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage });
  }

  async forward(
    inputs: readonly FloatArray[],
    T: number,
    inits: readonly FloatArray[],
    params: readonly FloatArray[],
    lens: Int32Array | undefined,
    keep: boolean,
  ): Promise<SequenceResult> {
    const dev = this.device;
    const fp = await this.pipelines("forward");
    const bp = keep ? await this.pipelines("backward") : undefined;
    const L = this.layout(T, fp.kernel, bp?.kernel ?? fp.kernel);
    const S = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    const mem = this.buffer(L.memSize * 4, S);
    this.deviceBytes = (L.memSize + L.pmemSize) * 4;
    const pmem = this.buffer(L.pmemSize * 4, S);
    const meta = dev.createBuffer({
      size: Math.max(1, T) * META_STRIDE,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    const metaData = new Uint32Array((Math.max(1, T) * META_STRIDE) / 4);
    for (let t = 0; t < T; t++) metaData[(t * META_STRIDE) / 4] = t;
    this.write(meta, 0, metaData);
    const lensBuf = dev.createBuffer({
      size: Math.max(16, this.B * 4),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    if (lens) this.write(lensBuf, 0, lens);
    inputs.forEach((a, i) => this.write(mem, L.x[i]!, a));
    inits.forEach((a, s) => this.write(mem, L.states[s]!, a));
    params.forEach((a, p) => this.write(pmem, L.params[p]!, a));
    const tape: GpuTape = { T, mem, pmem, meta, lens: lensBuf, hasLens: !!lens, layout: L };
    const enc = dev.createCommandEncoder();
    this.encode(
      enc,
      fp,
      tape,
      L.fwdOffs,
      [...Array(T).keys()],
      (e) => e.phase === "step" || (e.phase === "mask" && !!lens),
    );
    const ir = this.ir;
    const B = this.B;
    const reads = [
      ...ir.outputs.map((_, o) => [L.outputs[o]!, T * B * this.outputRow(o)] as const),
      ...ir.states.map((_, s) => [L.states[s]! + T * B * this.stateRow(s), B * this.stateRow(s)] as const),
    ];
    const data = await this.readBack(enc, mem, reads);
    const outputs = ir.outputs.map((_, o) => this.cast(data[o]!));
    const finals = ir.states.map((_, s) => this.cast(data[ir.outputs.length + s]!));
    if (!keep) this.release(tape);
    return { outputs, finals, tape: keep ? (tape as never) : undefined };
  }

  async backward(
    tapeIn: unknown,
    _params: readonly FloatArray[],
    dOutputs: readonly (FloatArray | undefined)[],
    dFinals: readonly (FloatArray | undefined)[],
  ): Promise<SequenceGrads> {
    const tape = tapeIn as GpuTape;
    const dev = this.device;
    const bp = await this.pipelines("backward");
    const { T, layout: L, mem, pmem } = tape;
    const ir = this.ir;
    const B = this.B;
    const enc = dev.createCommandEncoder();
    ir.outputs.forEach((_, o) => {
      const d = dOutputs[o];
      const n = T * B * this.outputRow(o);
      if (d) this.write(mem, L.up[o]!, d);
      else enc.clearBuffer(mem, L.up[o]! * 4, n * 4);
    });
    ir.states.forEach((_, s) => {
      const n = B * this.stateRow(s);
      const d = dFinals[s];
      const at = L.dS[s]! + T * n;
      if (d) this.write(mem, at, d);
      else enc.clearBuffer(mem, at * 4, n * 4);
    });
    const gradsStart = L.grads[0] ?? L.pmemSize;
    if (L.pmemSize > gradsStart) enc.clearBuffer(pmem, gradsStart * 4, (L.pmemSize - gradsStart) * 4);
    const steps = [...Array(T).keys()].reverse();
    this.encode(
      enc,
      bp,
      tape,
      L.bwdOffs,
      steps,
      (e) => e.phase === "step" || (tape.hasLens && (e.phase === "premask" || e.phase === "postmask")),
      true,
    );
    const reads = [
      ...ir.inputs.map((_, i) => [L.gx[i]!, T * B * this.inputRow(i)] as const),
      ...ir.states.map((_, s) => [L.dS[s]!, B * this.stateRow(s)] as const),
    ];
    const preads = ir.params.map((p, i) => [L.grads[i]!, rowSize(p.type, this.sizes)] as const);
    const data = await this.readBack(enc, mem, reads, pmem, preads);
    this.release(tape);
    const n = ir.inputs.length;
    return {
      inputs: ir.inputs.map((_, i) => this.cast(data[i]!)),
      inits: ir.states.map((_, s) => this.cast(data[n + s]!)),
      params: ir.params.map((_, p) => this.cast(data[n + ir.states.length + p]!)),
    };
  }

  /** The device computes in float32; results are widened when the model's dtype is f64. */
  private cast(a: Float32Array): FloatArray {
    if (this.dtype === "f32") return a;
    const out = floatArray("f64", a.length);
    out.set(a);
    return out;
  }

  private encode(
    enc: GPUCommandEncoder,
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
    this.write(offsBuf, 0, offs);
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
    const pass = enc.beginComputePass();
    for (const t of steps) {
      for (const { e, i } of order) {
        const [x, y] = this.groups(e.dispatch);
        if (x === 0 || y === 0) continue;
        pass.setPipeline(p.pipelines[i]!);
        pass.setBindGroup(0, bg, [t * META_STRIDE]);
        pass.dispatchWorkgroups(x, y);
      }
    }
    pass.end();
  }

  private async readBack(
    enc: GPUCommandEncoder,
    mem: GPUBuffer,
    reads: readonly (readonly [number, number])[],
    pmem?: GPUBuffer,
    preads: readonly (readonly [number, number])[] = [],
  ): Promise<Float32Array[]> {
    const all = [...reads.map((r) => [mem, ...r] as const), ...preads.map((r) => [pmem!, ...r] as const)];
    const total = all.reduce((a, [, , n]) => a + n, 0);
    const staging = this.device.createBuffer({
      size: Math.max(16, total * 4),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    let at = 0;
    for (const [buf, off, n] of all) {
      if (n > 0) enc.copyBufferToBuffer(buf, off * 4, staging, at * 4, n * 4);
      at += n;
    }
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const data = new Float32Array(staging.getMappedRange().slice(0));
    staging.unmap();
    staging.destroy();
    at = 0;
    return all.map(([, , n]) => {
      const out = data.slice(at, at + n);
      at += n;
      return out;
    });
  }

  private release(t: GpuTape) {
    t.mem.destroy();
    t.pmem.destroy();
    t.meta.destroy();
    t.lens.destroy();
  }
}

const rank = (p: string) => (p === "premask" ? 0 : p === "step" ? 1 : 2);
