// A pool of workers over one shared WebAssembly.Memory, each with its own instance of the same kernel
// module. A call writes its export's index and arguments into a control block in that memory, bumps a
// generation counter and wakes the workers with Atomics.notify; every thread (the caller included) runs
// its slice of the range and the caller waits on a done counter. No message per call: messages are used
// only to start the workers. The platform (Node worker_threads or Web Workers) is behind `Platform`.
//
// The caller blocks in Atomics.wait, which a browser's main thread may not do: on the web, run the pool
// from a worker (the pool's own workers are fine).

/** What the pool needs from a platform: a worker running workerSource(prelude), given `data` first. */
export interface Platform {
  /** Starts a worker whose prelude passes its first message, `data`, to `__init`. */
  spawn(data: unknown): WorkerHandle;
}
export interface WorkerHandle {
  onError(cb: (e: unknown) => void): void;
  terminate(): Promise<unknown> | void;
}

/** How a call's range is divided: the argument holding the count, the unit, and pointer arguments. */
export interface Split {
  /** Index of the argument that is the count to divide (rows or columns). */
  count: number;
  /** Slices are multiples of this many units (except the last). */
  align: number;
  /** [argument index, bytes per unit]: pointers advanced to each slice's start. */
  shifts: readonly (readonly [number, number])[];
}

export interface PoolOptions {
  module: WebAssembly.Module;
  /** Shared; the module imports it as env.memory. */
  memory: WebAssembly.Memory;
  /** Threads in all, the caller included (>= 1). */
  threads: number;
  /** Byte offset of CONTROL_BYTES of the memory reserved for the pool (4-byte aligned). */
  control: number;
  platform?: Platform;
  /** Polls of the generation counter before sleeping in Atomics.wait (low latency for short calls). */
  spin?: number;
}

export const CONTROL_BYTES = 256;
const [GEN, DONE, STOP, READY, FN, NARGS, COUNT, ALIGN, NSHIFT, ERR] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
const ARGS = 16;
const SHIFTS = 32; // pairs, up to 8
const MAX_ARGS = 16;

// The worker's body, shared by the platforms (each prepends how `__init` receives its data). It is
// plain JS source because a worker is started from text, and it mirrors `slice` below exactly.
const WORKER_BODY = `
function __init(d) {
  const inst = new WebAssembly.Instance(d.module, { env: { memory: d.memory } });
  const fns = d.names.map((n) => inst.exports[n]);
  const c = new Int32Array(d.memory.buffer, d.control, ${CONTROL_BYTES / 4});
  const args = new Array(${MAX_ARGS});
  Atomics.add(c, ${READY}, 1);
  Atomics.notify(c, ${READY});
  let seen = Atomics.load(c, ${GEN});
  for (;;) {
    let spins = d.spin;
    while (Atomics.load(c, ${GEN}) === seen) {
      if (--spins < 0) Atomics.wait(c, ${GEN}, seen);
    }
    seen = Atomics.load(c, ${GEN});
    if (Atomics.load(c, ${STOP})) return;
    try {
      const n = c[${NARGS}];
      for (let i = 0; i < n; i++) args[i] = c[${ARGS} + i];
      const total = args[c[${COUNT}]], align = c[${ALIGN}];
      const per = Math.ceil(Math.ceil(total / align) / d.threads) * align;
      const start = Math.min(total, d.index * per), end = Math.min(total, start + per);
      if (end > start) {
        args[c[${COUNT}]] = end - start;
        for (let s = 0; s < c[${NSHIFT}]; s++) args[c[${SHIFTS} + 2 * s]] += start * c[${SHIFTS} + 2 * s + 1];
        fns[c[${FN}]].apply(null, args.slice(0, n));
      }
    } catch (e) {
      Atomics.store(c, ${ERR}, 1);
    }
    if (Atomics.add(c, ${DONE}, 1) + 1 === d.threads - 1) Atomics.notify(c, ${DONE});
  }
}
`;

export function workerSource(prelude: string): string {
  return prelude + WORKER_BODY;
}

type Kernel = (...args: number[]) => unknown;

export class Pool {
  private readonly ctl: Int32Array;
  private readonly fns: Kernel[];
  private readonly index = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly opts: PoolOptions,
    private readonly workers: WorkerHandle[],
    names: string[],
  ) {
    this.ctl = new Int32Array(opts.memory.buffer, opts.control, CONTROL_BYTES / 4);
    const inst = new WebAssembly.Instance(opts.module, { env: { memory: opts.memory } });
    this.fns = names.map((n) => inst.exports[n] as Kernel);
    names.forEach((n, i) => this.index.set(n, i));
  }

  get threads(): number {
    return this.opts.threads;
  }

  /** Runs export `name` over `args`, its range divided by `split` across all threads; returns when done. */
  run(name: string, args: readonly number[], split: Split): void {
    const fn = this.index.get(name);
    if (fn === undefined) throw new Error(`pool: the module has no export "${name}"`);
    if (this.closed) throw new Error("pool: closed");
    if (args.length > MAX_ARGS || split.shifts.length > 8) throw new Error("pool: too many arguments");
    const total = args[split.count]!;
    const per = Math.ceil(Math.ceil(total / split.align) / this.threads) * split.align;
    if (this.threads === 1 || total <= per) {
      this.fns[fn]!(...args);
      return;
    }
    const c = this.ctl;
    c[FN] = fn;
    c[NARGS] = args.length;
    args.forEach((a, i) => (c[ARGS + i] = a));
    c[COUNT] = split.count;
    c[ALIGN] = split.align;
    c[NSHIFT] = split.shifts.length;
    split.shifts.forEach(([i, b], s) => ((c[SHIFTS + 2 * s] = i), (c[SHIFTS + 2 * s + 1] = b)));
    Atomics.store(c, DONE, 0);
    Atomics.store(c, ERR, 0);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    const mine = [...args];
    mine[split.count] = Math.min(total, per);
    let error: unknown;
    try {
      this.fns[fn]!(...mine);
    } catch (e) {
      error = e;
    }
    let spins = this.opts.spin ?? 20000;
    for (let d = Atomics.load(c, DONE); d !== this.threads - 1; d = Atomics.load(c, DONE)) {
      if (--spins < 0) Atomics.wait(c, DONE, d);
    }
    if (error !== undefined) throw error;
    if (Atomics.load(c, ERR))
      throw new Error(`pool: "${name}" failed in a worker (out-of-bounds arguments?)`);
  }

  /** Stops the workers (they leave their wait loop) and releases them. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctl, STOP, 1);
    Atomics.add(this.ctl, GEN, 1);
    Atomics.notify(this.ctl, GEN);
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Starts threads - 1 workers and waits until each has instantiated the module. */
export async function createPool(opts: PoolOptions, platform?: Platform): Promise<Pool> {
  const threads = Math.floor(opts.threads);
  if (!(threads >= 1)) throw new RangeError(`pool: threads must be >= 1, got ${opts.threads}`);
  if (opts.control % 4 !== 0) throw new RangeError("pool: the control block must be 4-byte aligned");
  if (!(opts.memory.buffer instanceof SharedArrayBuffer))
    throw new TypeError("pool: the memory must be shared");
  const names = WebAssembly.Module.exports(opts.module)
    .filter((e) => e.kind === "function")
    .map((e) => e.name);
  const ctl = new Int32Array(opts.memory.buffer, opts.control, CONTROL_BYTES / 4);
  ctl.fill(0);
  const p = platform ?? opts.platform;
  if (threads > 1 && p === undefined) throw new Error("pool: more than one thread needs a platform");
  const workers: WorkerHandle[] = [];
  let failure: unknown;
  for (let index = 1; index < threads; index++) {
    const data = { ...opts, platform: undefined, index, threads, names, spin: opts.spin ?? 20000 };
    const w = p!.spawn(data);
    w.onError((e) => (failure ??= e));
    workers.push(w);
  }
  for (let r = Atomics.load(ctl, READY); r < threads - 1; r = Atomics.load(ctl, READY)) {
    if (failure !== undefined) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw new Error(`pool: a worker failed to start: ${String(failure)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return new Pool({ ...opts, threads }, workers, names);
}
