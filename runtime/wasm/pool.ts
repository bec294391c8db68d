// A pool of workers over one shared WebAssembly.Memory, each with its own instance of the same kernel
// module. A call writes its export's index and arguments into a control block in that memory, bumps a
// generation counter and wakes the workers with Atomics.notify; every thread (the caller included) runs
// its slice of the range and the caller waits on a done counter. No message per call: messages are used
// only to start the workers and to hand them another module (`load`: a cell's generated kernels), whose
// exports join the same table. The platform (Node worker_threads or Web Workers) is behind `Platform`.
//
// The caller blocks in Atomics.wait, which a browser's main thread may not do: on the web, run the pool
// from a worker (the pool's own workers are fine).

/** What the pool needs from a platform: a worker running workerSource(prelude), given `data` first. */
export interface Platform {
  /** Starts a worker whose prelude passes each message (`data` first) to `__message`. */
  spawn(data: unknown): WorkerHandle;
}
export interface WorkerHandle {
  post(data: unknown): void;
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

/**
 * One call of a row sequence (`runRows`): an export, its arguments, the argument that receives the number
 * of rows, and [argument, bytes per row] of the pointers advanced to a thread's first row.
 */
export interface RowCall {
  readonly fn: string;
  readonly args: readonly number[];
  readonly count: number;
  readonly shifts: readonly (readonly [number, number])[];
}

export const CONTROL_BYTES = 1024;
const [GEN, DONE, STOP, READY, FN, NARGS, COUNT, ALIGN, NSHIFT, ERR] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
const [NCALLS, TOTAL] = [10, 11]; // a row sequence: its calls and rows (ALIGN too)
const SEQ = 64; // where a row sequence's calls start: [fn, nargs, count, nshift, ...args, ...shift pairs]
const ARGS = 16;
const LOAD = -1; // FN of a call that hands the workers a module
const ROWS = -2; // FN of a row sequence
const SHIFTS = 32; // pairs, up to 8
const MAX_ARGS = 16;

// The worker's body, shared by the platforms (each prepends how `__message` receives its messages). It
// is plain JS source because a worker is started from text; its slices mirror `run` and `runRows` exactly.
const WORKER_BODY = `
let d, fns, c, seen;
const args = new Array(${MAX_ARGS});
const rowArgs = Array.from({ length: ${MAX_ARGS} + 1 }, (_, n) => new Array(n)); // by count: no allocation per call
function __message(m) {
  if (d === undefined) {
    d = m;
    const inst = new WebAssembly.Instance(d.module, { env: { memory: d.memory } });
    fns = d.names.map((n) => inst.exports[n]);
    c = new Int32Array(d.memory.buffer, d.control, ${CONTROL_BYTES / 4});
    seen = Atomics.load(c, ${GEN});
    Atomics.add(c, ${READY}, 1);
    Atomics.notify(c, ${READY});
  } else {
    try {
      const inst = new WebAssembly.Instance(m.module, { env: { memory: d.memory } });
      for (const n of m.names) fns.push(inst.exports[n]);
    } catch (e) {
      Atomics.store(c, ${ERR}, 1);
    }
    if (Atomics.add(c, ${DONE}, 1) + 1 === d.threads - 1) Atomics.notify(c, ${DONE});
  }
  serve();
}
function serve() {
  for (;;) {
    let spins = d.spin;
    while (Atomics.load(c, ${GEN}) === seen) {
      if (--spins < 0) Atomics.wait(c, ${GEN}, seen);
    }
    seen = Atomics.load(c, ${GEN});
    if (Atomics.load(c, ${STOP})) return;
    if (c[${FN}] === ${LOAD}) return; // the module comes as a message: back to the event loop for it
    try {
      if (c[${FN}] === ${ROWS}) rows();
      else call();
    } catch (e) {
      Atomics.store(c, ${ERR}, 1);
    }
    if (Atomics.add(c, ${DONE}, 1) + 1 === d.threads - 1) Atomics.notify(c, ${DONE});
  }
}
// This thread's slice of a row sequence: the same rows in every call, so that each call reads only rows
// this thread has written (or read-only data).
function rows() {
  const total = c[${TOTAL}], align = c[${ALIGN}];
  const per = Math.ceil(Math.ceil(total / align) / d.threads) * align;
  const start = Math.min(total, d.index * per), end = Math.min(total, start + per);
  if (end <= start) return;
  for (let k = 0, p = ${SEQ}; k < c[${NCALLS}]; k++) {
    const fn = c[p], n = c[p + 1], count = c[p + 2], ns = c[p + 3];
    p += 4;
    const a = rowArgs[n];
    for (let i = 0; i < n; i++) a[i] = c[p + i];
    p += n;
    a[count] = end - start;
    for (let s = 0; s < ns; s++) a[c[p + 2 * s]] += start * c[p + 2 * s + 1];
    p += 2 * ns;
    fns[fn].apply(null, a);
  }
}
function call() {
  const n = c[${NARGS}];
  for (let i = 0; i < n; i++) args[i] = c[${ARGS} + i];
  const total = args[c[${COUNT}]], align = c[${ALIGN}];
  const per = Math.ceil(Math.ceil(total / align) / d.threads) * align;
  const start = Math.min(total, d.index * per), end = Math.min(total, start + per);
  if (end > start) {
    args[c[${COUNT}]] = end - start;
    for (let s = 0; s < c[${NSHIFT}]; s++) args[c[${SHIFTS} + 2 * s]] += start * c[${SHIFTS} + 2 * s + 1];
    const a = rowArgs[n];
    for (let i = 0; i < n; i++) a[i] = args[i];
    fns[c[${FN}]].apply(null, a);
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
  private modules = 0;
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

  /**
   * Instantiates another module (over the same memory) on every thread; its exports run as
   * `<prefix><name>`. Blocks until the workers have it (messages reach them while the caller waits).
   */
  load(module: WebAssembly.Module): string {
    if (this.closed) throw new Error("pool: closed");
    const prefix = `m${++this.modules}.`;
    const names = WebAssembly.Module.exports(module)
      .filter((e) => e.kind === "function")
      .map((e) => e.name);
    const inst = new WebAssembly.Instance(module, { env: { memory: this.opts.memory } });
    for (const n of names) {
      this.index.set(prefix + n, this.fns.length);
      this.fns.push(inst.exports[n] as Kernel);
    }
    if (this.threads === 1) return prefix;
    const c = this.ctl;
    for (const w of this.workers) w.post({ module, names });
    c[FN] = LOAD;
    Atomics.store(c, DONE, 0);
    Atomics.store(c, ERR, 0);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    const deadline = Date.now() + 30000;
    for (let d = Atomics.load(c, DONE); d !== this.threads - 1; d = Atomics.load(c, DONE)) {
      if (Date.now() > deadline) throw new Error("pool: the workers did not take the module");
      Atomics.wait(c, DONE, d, 100);
    }
    if (Atomics.load(c, ERR)) throw new Error("pool: a worker could not instantiate the module");
    return prefix;
  }

  /** Runs export `name` over `args`, its range divided by `split` across all threads; returns when done. */
  run(name: string, args: readonly number[], split: Split): void {
    this.runAt(this.indexOf(name), args, split);
  }

  /** The number of export `name` (of the kernel module, or `<prefix><name>` of a loaded one), for runAt. */
  indexOf(name: string): number {
    const fn = this.index.get(name);
    if (fn === undefined) throw new Error(`pool: the module has no export "${name}"`);
    return fn;
  }

  /** `run` by the export's number: nothing allocated or looked up, for calls made at every step. */
  runAt(fn: number, args: readonly number[], split: Split): void {
    if (this.closed) throw new Error("pool: closed");
    if (args.length > MAX_ARGS || split.shifts.length > 8) throw new Error("pool: too many arguments");
    const kernel = this.fns[fn]!;
    const total = args[split.count]!;
    const per = Math.ceil(Math.ceil(total / split.align) / this.threads) * split.align;
    if (this.threads === 1 || total <= per) {
      kernel.apply(null, args as number[]);
      return;
    }
    const c = this.ctl;
    const mine = this.mine;
    mine.length = args.length;
    c[FN] = fn;
    c[NARGS] = args.length;
    for (let i = 0; i < args.length; i++) c[ARGS + i] = mine[i] = args[i]!;
    c[COUNT] = split.count;
    c[ALIGN] = split.align;
    c[NSHIFT] = split.shifts.length;
    for (let s = 0; s < split.shifts.length; s++) {
      c[SHIFTS + 2 * s] = split.shifts[s]![0];
      c[SHIFTS + 2 * s + 1] = split.shifts[s]![1];
    }
    mine[split.count] = Math.min(total, per);
    this.current = kernel;
    this.dispatch(fn, this.runCurrent);
  }
  /** The calling thread's part of a `runAt` (kept here: no closure per call). */
  private readonly mine: number[] = [];
  private current: Kernel = () => undefined;
  private readonly runCurrent = (): void => void this.current.apply(null, this.mine);

  /** Runs `calls` in order over `total` rows (see `program` and `runProgram`, for calls run repeatedly). */
  runRows(calls: readonly RowCall[], total: number, align: number): void {
    this.runProgram(this.program(calls), total, align);
  }

  /**
   * Row calls prepared to run repeatedly: their exports resolved and their control-block image laid out
   * once; between runs the caller rewrites the arguments that change (`RowProgram.args`) in place.
   */
  program(calls: readonly RowCall[]): RowProgram {
    if (this.closed) throw new Error("pool: closed");
    const fns = calls.map((call) => {
      const fn = this.index.get(call.fn);
      if (fn === undefined) throw new Error(`pool: the module has no export "${call.fn}"`);
      return fn;
    });
    const words = calls.reduce((n, c) => n + 4 + c.args.length + 2 * c.shifts.length, 0);
    const image = new Int32Array(words);
    const args: Int32Array[] = [];
    // Chunks of calls that fit the control block: [first call, end call, first word, end word].
    const chunks: [number, number, number, number][] = [];
    let p = 0;
    calls.forEach(({ args: a, count, shifts }, k) => {
      if (a.length > MAX_ARGS) throw new Error("pool: too many arguments");
      const n = 4 + a.length + 2 * shifts.length;
      if (SEQ + n > CONTROL_BYTES / 4) throw new Error("pool: a call too large for the control block");
      const last = chunks[chunks.length - 1];
      if (!last || SEQ + (p + n - last[2]) > CONTROL_BYTES / 4) chunks.push([k, k + 1, p, p + n]);
      else [last[1], last[3]] = [k + 1, p + n];
      image.set([fns[k]!, a.length, count, shifts.length, ...a, ...shifts.flat()], p);
      args.push(image.subarray(p + 4, p + 4 + a.length));
      p += n;
    });
    const local = calls.map((c) => new Array<number>(c.args.length).fill(0));
    const parts = chunks.map(([from, to, w0, w1]) => ({ from, to, words: image.subarray(w0, w1) }));
    return new RowProgram(
      this,
      this.fns,
      fns,
      calls.map((c) => c.count),
      args,
      parts,
      local,
    );
  }

  /** Runs a program over `total` rows, each thread the same slice of rows (multiples of `align`) in every call. */
  runProgram(prog: RowProgram, total: number, align: number): void {
    if (this.closed) throw new Error("pool: closed");
    if (prog.pool !== this) throw new Error("pool: a program of another pool");
    const per = Math.ceil(Math.ceil(total / align) / this.threads) * align;
    prog.mine = Math.min(total, per);
    if (this.threads === 1 || total <= per) return prog.runLocal(0, prog.fns.length);
    const c = this.ctl;
    for (let k = 0; k < prog.chunks.length; k++) {
      const chunk = prog.chunks[k]!;
      c.set(chunk.words, SEQ);
      c[FN] = ROWS;
      c[NCALLS] = chunk.to - chunk.from;
      c[TOTAL] = total;
      c[ALIGN] = align;
      prog.from = chunk.from;
      prog.to = chunk.to;
      this.dispatch(ROWS, prog.runMine);
    }
  }

  /** Wakes the workers for the call set up in the control block, runs `mine`, waits for them. */
  private dispatch(what: number, mine: () => void): void {
    const c = this.ctl;
    Atomics.store(c, DONE, 0);
    Atomics.store(c, ERR, 0);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    let error: unknown;
    try {
      mine();
    } catch (e) {
      error = e;
    }
    let spins = this.opts.spin ?? 20000;
    for (let d = Atomics.load(c, DONE); d !== this.threads - 1; d = Atomics.load(c, DONE)) {
      if (--spins < 0) Atomics.wait(c, DONE, d);
    }
    if (error !== undefined) throw error;
    if (Atomics.load(c, ERR)) {
      const name = what === ROWS ? "a row sequence" : `"${[...this.index].find(([, i]) => i === what)?.[0]}"`;
      throw new Error(`pool: ${name} failed in a worker (out-of-bounds arguments?)`);
    }
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

/** Row calls resolved for one pool (Pool.program): run with Pool.runProgram. */
export class RowProgram {
  /** Rows of each call the calling thread runs, and the calls of the chunk being run (set per run). */
  mine = 0;
  from = 0;
  to = 0;
  /** The calling thread's slice of the current chunk (bound once: no closure per run). */
  readonly runMine = (): void => this.runLocal(this.from, this.to);

  constructor(
    readonly pool: Pool,
    /** The pool's functions on the calling thread (the array grows as modules load). */
    private readonly kernels: readonly Kernel[],
    readonly fns: readonly number[],
    private readonly counts: readonly number[],
    /** Per call, its arguments in the control-block image: rewrite those that change between runs. */
    readonly args: readonly Int32Array[],
    /** Calls [from, to) that fit the control block at once, and their words of the image. */
    readonly chunks: readonly { readonly from: number; readonly to: number; readonly words: Int32Array }[],
    private readonly local: number[][],
  ) {}

  /** Calls [from, to) on the calling thread over its first `mine` rows. */
  runLocal(from: number, to: number): void {
    const kernels = this.kernels;
    for (let k = from; k < to; k++) {
      const a = this.local[k]!;
      const src = this.args[k]!;
      for (let i = 0; i < a.length; i++) a[i] = src[i]!;
      a[this.counts[k]!] = this.mine;
      kernels[this.fns[k]!]!.apply(null, a);
    }
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
