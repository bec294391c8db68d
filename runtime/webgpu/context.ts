import { CellcError, floatArray, type FloatArray } from "../tensor.js";
import type { DeviceSeq as DeviceSeqBase, Seq, SeqOps } from "../sequence.js";
import type { GpuProfile } from "./profile.js";

/** A sequence (or any float array) that lives in a device buffer, `length` floats from `offset`. */
export interface DeviceSeq extends DeviceSeqBase {
  readonly buffer: GPUBuffer;
  readonly offset: number; // in f32 elements
  readonly length: number;
}

const ROWCOPY = `struct P { R: u32, F: u32, sOff: u32, sStride: u32, sCol: u32, dOff: u32, dStride: u32, dCol: u32, acc: u32, useIdx: u32, p0: u32, p1: u32 }
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<uniform> p: P;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  let i = g.x + g.y * 4194240u;
  if (i >= p.R * p.F) { return; }
  let r = i / p.F;
  let j = i % p.F;
  var sr = r;
  if (p.useIdx == 1u) { sr = idx[r]; }
  let v = src[p.sOff + sr * p.sStride + p.sCol + j];
  let at = p.dOff + r * p.dStride + p.dCol + j;
  if (p.acc == 1u) { dst[at] = dst[at] + v; } else { dst[at] = v; }
}
`;

const ROWCOPY_IN_PLACE = ROWCOPY.replace(/^@group\(0\) @binding\(0\).*\n/m, "").replace("src[", "dst[");
/** Into a float16 buffer (f16 storage's packed weights), assigning only. */
const ROWCOPY_HALF = `enable f16;\n${ROWCOPY.replace(
  "var<storage, read_write> dst: array<f32>",
  "var<storage, read_write> dst: array<f16>",
).replace("if (p.acc == 1u) { dst[at] = dst[at] + v; } else { dst[at] = v; }", "dst[at] = f16(v);")}`;

/**
 * What the runners of one WebGPU backend share: the device, one pending command encoder (so that a whole
 * forward or backward pass over every layer and direction is one submission), the buffers to release once
 * it has run, and the sequence operations between layers and directions, done on the device.
 */
export class GpuContext {
  private pending?: GPUCommandEncoder;
  private readonly afterFlush: GPUBuffer[] = [];
  private rowcopy?: GPUComputePipeline;
  private rowcopyInPlace?: GPUComputePipeline;
  private rowcopyHalf?: GPUComputePipeline;
  private readonly dummy: GPUBuffer[] = [];

  /** A device error (a bug in cellc, not in the user's input), reported at the next read-back. */
  failure?: string;
  /** Read-backs so far (each a submission and a wait for the device): for tests and benchmarks. */
  readBacks = 0;
  /** While set, every kernel launch is timed (profile.ts; benchmarks). */
  profile?: GpuProfile;

  /** Whether kernels use subgroup operations (the device has the `subgroups` feature, not turned off). */
  readonly subgroups: boolean;

  constructor(
    readonly device: GPUDevice,
    opts: { subgroups?: boolean } = {},
  ) {
    this.subgroups = (opts.subgroups ?? true) && device.features.has("subgroups");
  }

  encoder(): GPUCommandEncoder {
    return (this.pending ??= this.device.createCommandEncoder());
  }

  /** Buffers released once the pending work has been submitted and has finished. */
  releaseAfterFlush(...bufs: GPUBuffer[]): void {
    this.afterFlush.push(...bufs);
  }

  /** A buffer, refused with an error naming the limit when the device cannot have or bind one that large. */
  buffer(bytes: number, usage: number): GPUBuffer {
    const lim = this.device.limits;
    const check = (limit: number, name: string) => {
      if (bytes > limit)
        throw new CellcError(
          `the sequence needs ${bytes} bytes of device memory in one buffer, above this device's ${name} (${limit} bytes): use fewer time steps per call or a smaller batch`,
        );
    };
    if (usage & GPUBufferUsage.STORAGE) check(lim.maxStorageBufferBindingSize, "maxStorageBufferBindingSize");
    check(lim.maxBufferSize, "maxBufferSize");
    return this.device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage });
  }

  /** Writes data at an element offset (4-byte elements); float64 data is narrowed to float32. */
  write(buf: GPUBuffer, at: number, data: FloatArray | Int32Array | Uint32Array): void {
    const a = data instanceof Float64Array ? Float32Array.from(data) : data;
    this.device.queue.writeBuffer(buf, at * 4, a.buffer as ArrayBuffer, a.byteOffset, a.byteLength);
  }

  /** Puts a sequence at an element offset of a buffer: uploaded from the host, or copied on the device. */
  place(x: Seq, buf: GPUBuffer, at: number): void {
    if (isDevice(x)) this.encoder().copyBufferToBuffer(x.buffer, x.offset * 4, buf, at * 4, x.length * 4);
    else this.write(buf, at, x as FloatArray);
  }

  /**
   * Puts `rows` rows of F floats (contiguous in x) at an element offset of a buffer whose rows are `stride`
   * floats apart (an aligned layout's padded rows); the padding is left as it is.
   */
  placeRows(x: Seq, buf: GPUBuffer, at: number, rows: number, F: number, stride: number): void {
    if (stride === F || rows === 0) return this.place(x, buf, at);
    if (isDevice(x)) {
      const o = { R: rows, F, sStride: F, sCol: 0, dStride: stride, dCol: 0, acc: false };
      this.copyRows(x, { kind: "device", buffer: buf, offset: at, length: 0 }, o);
      return;
    }
    const padded = new Float32Array(rows * stride);
    const host = x as FloatArray;
    for (let r = 0; r < rows; r++) padded.set(host.subarray(r * F, (r + 1) * F), r * stride);
    this.write(buf, at, padded);
  }

  /** `rows` rows of F floats, `stride` apart from an element offset of a buffer, as one contiguous sequence. */
  rowsOf(buf: GPUBuffer, at: number, rows: number, F: number, stride: number): DeviceSeq {
    if (stride === F || rows === 0) return { kind: "device", buffer: buf, offset: at, length: rows * F };
    const out = this.fresh(rows * F);
    const o = { R: rows, F, sStride: stride, sCol: 0, dStride: F, dCol: 0, acc: false };
    this.copyRows({ kind: "device", buffer: buf, offset: at, length: 0 }, out, o);
    return out;
  }

  private fresh(n: number): DeviceSeq {
    const buffer = this.buffer(
      n * 4,
      GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    );
    this.releaseAfterFlush(buffer);
    return { kind: "device", buffer, offset: 0, length: n };
  }

  private asDevice(x: Seq): DeviceSeq {
    if (isDevice(x)) return x;
    const d = this.fresh(x.length);
    this.write(d.buffer, 0, x as FloatArray);
    return d;
  }

  /** dst rows r (of F floats, at column dCol of rows dStride wide) = (or +=) src rows idx[r] (at column sCol). */
  copyRows(
    src: DeviceSeq,
    dst: DeviceSeq,
    o: {
      R: number;
      F: number;
      sStride: number;
      sCol: number;
      dStride: number;
      dCol: number;
      acc: boolean;
      idx?: Uint32Array;
      /** dst is a float16 buffer (f16 storage); assigning only. */
      half?: boolean;
    },
  ): void {
    const dev = this.device;
    // Within one buffer (packing parameters, say) a buffer cannot be bound twice: read and write `dst`.
    const inPlace = src.buffer === dst.buffer;
    const module = (code: string) => dev.createShaderModule({ code });
    const pipeline = o.half
      ? (this.rowcopyHalf ??= dev.createComputePipeline({
          layout: "auto",
          compute: { module: module(ROWCOPY_HALF), entryPoint: "main" },
        }))
      : inPlace
        ? (this.rowcopyInPlace ??= dev.createComputePipeline({
            layout: "auto",
            compute: { module: dev.createShaderModule({ code: ROWCOPY_IN_PLACE }), entryPoint: "main" },
          }))
        : (this.rowcopy ??= dev.createComputePipeline({
            layout: "auto",
            compute: { module: dev.createShaderModule({ code: ROWCOPY }), entryPoint: "main" },
          }));
    const params = dev.createBuffer({ size: 48, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    const idx = dev.createBuffer({
      size: Math.max(16, (o.idx?.length ?? 0) * 4),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    this.write(
      params,
      0,
      Uint32Array.from([
        o.R,
        o.F,
        src.offset,
        o.sStride,
        o.sCol,
        dst.offset,
        o.dStride,
        o.dCol,
        o.acc ? 1 : 0,
        o.idx ? 1 : 0,
        0,
        0,
      ]),
    );
    if (o.idx) this.write(idx, 0, o.idx);
    this.releaseAfterFlush(params, idx);
    const bg = dev.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        ...(inPlace ? [] : [{ binding: 0, resource: { buffer: src.buffer } }]),
        { binding: 1, resource: { buffer: dst.buffer } },
        { binding: 2, resource: { buffer: idx } },
        { binding: 3, resource: { buffer: params } },
      ],
    });
    const groups = Math.ceil((o.R * o.F) / 64);
    if (groups === 0) return;
    const pass = this.encoder().beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(Math.min(groups, 65535), Math.ceil(groups / 65535));
    pass.end();
  }

  /**
   * Small buffers bound where a kernel has nothing to bind (the f16 arenas without f16 storage): one per
   * binding, since a writable binding may not alias another.
   */
  placeholder(which: 0 | 1 = 0): GPUBuffer {
    return (this.dummy[which] ??= this.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE }));
  }

  /** Submits the work encoded so far (a long sequence is split into several submissions). */
  submitPending(): void {
    if (!this.pending) return;
    const cmd = this.pending.finish();
    this.pending = undefined;
    if (!this.profile?.hold(cmd)) this.device.queue.submit([cmd]);
  }

  /** The work encoded so far as a command buffer, no longer pending (a profile submits it). */
  takePending(): GPUCommandBuffer | undefined {
    const cmd = this.pending?.finish();
    this.pending = undefined;
    return cmd;
  }

  /** Drops the pending (unsubmitted) work and the buffers that were to go after it. */
  discard(): void {
    this.pending = undefined;
    for (const b of this.afterFlush.splice(0)) b.destroy();
  }

  /** Submits the pending work, reads the values back (device ones; host ones as they are), releases. */
  async readAll(xs: readonly Seq[], dtype: "f32" | "f64"): Promise<FloatArray[]> {
    const dev = this.device;
    this.readBacks++;
    const device = xs.filter(isDevice);
    const total = device.reduce((a, x) => a + x.length, 0);
    const staging = dev.createBuffer({
      size: Math.max(16, total * 4),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = this.encoder();
    let at = 0;
    for (const x of device) {
      if (x.length) enc.copyBufferToBuffer(x.buffer, x.offset * 4, staging, at * 4, x.length * 4);
      at += x.length;
    }
    this.pending = undefined;
    if (this.profile) await this.profile.submit(dev.queue, [enc.finish()]);
    else dev.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    if (this.failure !== undefined) {
      const message = this.failure;
      this.failure = undefined;
      staging.unmap();
      staging.destroy();
      throw new Error(`WebGPU error: ${message}`);
    }
    const data = new Float32Array(staging.getMappedRange().slice(0));
    staging.unmap();
    staging.destroy();
    for (const b of this.afterFlush.splice(0)) b.destroy();
    at = 0;
    return xs.map((x) => {
      if (!isDevice(x)) return x as FloatArray;
      const part = data.subarray(at, at + x.length);
      at += x.length;
      if (dtype === "f32") return part.slice();
      const wide = floatArray("f64", part.length);
      wide.set(part);
      return wide;
    });
  }

  readonly ops: SeqOps = {
    reverseValid: (x, T, B, F, lens) => {
      const src = this.asDevice(x);
      const out = this.fresh(T * B * F);
      this.copyRows(src, out, {
        R: T * B,
        F,
        sStride: F,
        sCol: 0,
        dStride: F,
        dCol: 0,
        acc: false,
        idx: reversedRows(T, B, lens),
      });
      return out;
    },
    concatFeatures: (parts, rows, F) => {
      const out = this.fresh(rows * F * parts.length);
      parts.forEach((p, d) =>
        this.copyRows(this.asDevice(p), out, {
          R: rows,
          F,
          sStride: F,
          sCol: 0,
          dStride: F * parts.length,
          dCol: d * F,
          acc: false,
        }),
      );
      return out;
    },
    sliceFeatures: (x, rows, F, d, n) => {
      const out = this.fresh(rows * F);
      this.copyRows(this.asDevice(x), out, {
        R: rows,
        F,
        sStride: F * n,
        sCol: d * F,
        dStride: F,
        dCol: 0,
        acc: false,
      });
      return out;
    },
    add: (a, b) => {
      const out = this.fresh(a.length);
      const whole = { R: 1, F: a.length, sStride: 0, sCol: 0, dStride: 0, dCol: 0 };
      this.copyRows(this.asDevice(a), out, { ...whole, acc: false });
      this.copyRows(this.asDevice(b), out, { ...whole, acc: true });
      return out;
    },
    readAll: (xs, dtype) => this.readAll(xs, dtype),
    discard: () => this.discard(),
  };
}

export function isDevice(x: Seq): x is DeviceSeq {
  return (x as DeviceSeq).kind === "device";
}

/** The row permutation that reverses each batch row's first lens[b] steps ([T, B] rows, time-major). */
function reversedRows(T: number, B: number, lens: Int32Array | undefined): Uint32Array {
  const idx = new Uint32Array(T * B);
  for (let t = 0; t < T; t++)
    for (let b = 0; b < B; b++) {
      const n = lens ? lens[b]! : T;
      idx[t * B + b] = (t < n ? n - 1 - t : t) * B + b;
    }
  return idx;
}
