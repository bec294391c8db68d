// Per-dispatch timings of the WebGPU kernels, for benchmarks (bench/gpu.mjs): while a profile is set on the
// backend's context, every kernel launch of the runners is encoded in a compute pass of its own and timed.
// With the `timestamp-query` feature the device writes a timestamp at the start and the end of each pass
// (GPU time); without it, each launch is its own submission, submitted one after another at read-back
// time, and timed by the wall clock from submission to completion (an upper bound: it includes the
// submission and the wait).

/** One timed launch: its label (cell.kernel.entry), its duration and its multiply-adds (GEMMs; else 0). */
export interface DispatchTiming {
  readonly label: string;
  readonly ms: number;
  readonly flops: number;
}

/** Timestamps per query set (its size limit is 4096 in WebGPU): two per launch. */
const QUERIES = 4096;

export class GpuProfile {
  /** "timestamps": GPU time per launch; "wall": the wall clock per launch, each its own submission. */
  readonly mode: "timestamps" | "wall";
  private readonly labels: { label: string; flops: number }[] = [];
  private readonly sets: GPUQuerySet[] = [];
  /** Wall-clock mode: the work so far, in order; a labelled entry is one launch. */
  private readonly held: { cmd: GPUCommandBuffer; at?: number }[] = [];
  private readonly wall: number[] = [];

  constructor(
    private readonly device: GPUDevice,
    mode?: "timestamps" | "wall",
  ) {
    this.mode = mode ?? (device.features.has("timestamp-query") ? "timestamps" : "wall");
    if (this.mode === "timestamps" && !device.features.has("timestamp-query"))
      throw new Error("this device has no 'timestamp-query' feature");
  }

  /**
   * Encodes one launch in a pass of its own: `pending` gives the work encoded so far (ended into a command
   * buffer, in wall-clock mode) and `encoder` the encoder to use.
   */
  dispatch(
    label: string,
    flops: number,
    encoder: () => GPUCommandEncoder,
    pending: () => GPUCommandBuffer | undefined,
    encode: (pass: GPUComputePassEncoder) => void,
  ): void {
    const i = this.labels.push({ label, flops }) - 1;
    if (this.mode === "timestamps") {
      const set = Math.floor((2 * i) / QUERIES);
      this.sets[set] ??= this.device.createQuerySet({ type: "timestamp", count: QUERIES });
      const pass = encoder().beginComputePass({
        timestampWrites: {
          querySet: this.sets[set]!,
          beginningOfPassWriteIndex: (2 * i) % QUERIES,
          endOfPassWriteIndex: ((2 * i) % QUERIES) + 1,
        },
      });
      encode(pass);
      pass.end();
      return;
    }
    const before = pending();
    if (before) this.held.push({ cmd: before });
    const enc = this.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    encode(pass);
    pass.end();
    this.held.push({ cmd: enc.finish(), at: i });
  }

  /**
   * Submits command buffers: in wall-clock mode the held work first, one submission after another, each
   * launch timed; in timestamp mode at once.
   */
  async submit(queue: GPUQueue, cmds: readonly GPUCommandBuffer[]): Promise<void> {
    if (this.mode === "timestamps") return queue.submit(cmds);
    const all = [
      ...this.held.splice(0),
      ...cmds.map((cmd) => ({ cmd }) as { cmd: GPUCommandBuffer; at?: number }),
    ];
    for (const h of all) {
      const t0 = performance.now();
      queue.submit([h.cmd]);
      if (h.at === undefined) continue;
      await queue.onSubmittedWorkDone();
      this.wall[h.at] = performance.now() - t0;
    }
  }

  /** Holds work that would have been submitted (a long sequence's intermediate submissions). */
  hold(cmd: GPUCommandBuffer): boolean {
    if (this.mode === "timestamps") return false;
    this.held.push({ cmd });
    return true;
  }

  /** The timings of every launch so far (after the work has been submitted and read back). */
  async timings(): Promise<DispatchTiming[]> {
    const n = this.labels.length;
    if (this.mode === "wall") return this.labels.map((l, i) => ({ ...l, ms: this.wall[i] ?? NaN }));
    const bytes = QUERIES * 8;
    const resolved = this.device.createBuffer({
      size: bytes * this.sets.length,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const read = this.device.createBuffer({
      size: bytes * this.sets.length,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = this.device.createCommandEncoder();
    this.sets.forEach((s, k) => {
      const used = Math.min(QUERIES, 2 * n - k * QUERIES);
      enc.resolveQuerySet(s, 0, used, resolved, k * bytes);
    });
    enc.copyBufferToBuffer(resolved, 0, read, 0, bytes * this.sets.length);
    this.device.queue.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const ts = new BigUint64Array(read.getMappedRange().slice(0));
    read.unmap();
    read.destroy();
    resolved.destroy();
    return this.labels.map((l, i) => ({ ...l, ms: Number(ts[2 * i + 1]! - ts[2 * i]!) / 1e6 }));
  }

  /** Forgets the launches timed so far. */
  reset(): void {
    this.labels.length = 0;
    this.wall.length = 0;
    this.held.length = 0;
  }

  destroy(): void {
    for (const s of this.sets) s.destroy();
    this.sets.length = 0;
  }
}
