// A pool of workers over one shared WebAssembly.Memory, each with its own instance of the same kernel
// module. A job (one call divided by rows, a program of calls over the same rows, or such a program over a
// run of steps) is written into a control block in that memory; the caller bumps a generation counter and
// wakes the workers with Atomics.notify. No message per job: messages are used only to start the workers
// and to hand them another module (`load`: a cell's generated kernels), whose exports join the same table.
// The platform (Node worker_threads or Web Workers) is behind `Platform`.
//
// Work is claimed, not assigned: a job's rows are cut into chunks that every thread (the caller included)
// takes with a compare-and-swap until none are left, so a thread that is late (asleep, or descheduled by
// another program on its core) takes less and the others take the rest. A run of steps (`runSteps`) is cut
// into chains of rows, a few per thread, each run through all the steps by the thread that claims it: rows
// do not depend on other rows from step to step, so the threads need no barrier until the end, and a
// thread that finishes its chains claims the ones left. Every division gives the same results bit for
// bit: each row is computed the same way whoever computes it.
//
// Waiting threads poll briefly, then sleep in Atomics.wait (a core the pool does not have is not spun on).
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
  /** Threads in all, the caller included (1 to MAX_THREADS). */
  threads: number;
  /** Byte offset of CONTROL_BYTES of the memory reserved for the pool (8-byte aligned). */
  control: number;
  platform?: Platform;
  /** Polls of a shared counter before sleeping in Atomics.wait (low latency between short jobs). */
  spin?: number;
  /** Chains of rows per thread in a run of steps (runSteps), at most; 2 by default. */
  chains?: number;
}

/**
 * One call of a row program (`runRows`, `program`): an export, its arguments, the argument that receives
 * the number of rows, and [argument, bytes per row] of the pointers advanced to a thread's first row.
 */
export interface RowCall {
  readonly fn: string;
  readonly args: readonly number[];
  readonly count: number;
  readonly shifts: readonly (readonly [number, number])[];
}

export const CONTROL_BYTES = 8192;
export const MAX_THREADS = 256;
const MAX_ARGS = 16;
// Int32 words of the control block.
const [GEN, STOP, READY, ERR, KIND, ACK, FINISHED, TOTAL, ALIGN, UNITS, CHUNK, NSLICES, STEPS, NCALLS] =
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]; // prettier-ignore
const [FN, NARGS, COUNT, NSHIFT, ARGS, SHIFTS] = [16, 17, 18, 19, 20, 36]; // a divided call (8 shift pairs)
const SLICES = 1100; // a run of steps: chain i is rows [SLICES + i, SLICES + i + 1)
const IMAGE = 1408; // a program's calls: [fn, nargs, count, nshift, ...args, ...step deltas, ...shift pairs]
// BigUint64 words: the chunk counter (generation << 32 | units left), and per chain generation << 1 | taken.
const CLAIM = 32;
const SLICE_CLAIMS = 40;
/** Chains of a run of steps per thread (at most): a thread that finishes early takes another's. */
const CHAINS_PER_THREAD = 2;
const MAX_CHAINS = 256;
// Kinds of job.
const [CALL, ROWS, STEPPED, LOAD] = [1, 2, 3, 4];
const DEFAULT_SPIN = 4096;

// What every thread runs of a job, the caller included (it builds the same source with new Function):
// claims chunks or slices of the job whose generation it saw, until none are left. A claim names the
// generation, so a thread that saw a job late cannot take part of a later one; a job's parameters are read
// only under a claim, so they are the parameters of the job being claimed (the caller changes them only
// after every claimed chunk is finished). Returns the first exception a chunk threw (the chunk still
// counts as finished).
const ENGINE = `
const rowArgs = Array.from({ length: ${MAX_ARGS} + 1 }, (_, n) => new Array(n));
const big = new BigUint64Array(c.buffer, c.byteOffset, ${CONTROL_BYTES / 8});
function finish(n, target) {
  if (Atomics.add(c, ${FINISHED}, n) + n >= target) Atomics.notify(c, ${FINISHED});
}
// One divided call over rows (or columns) [start, end).
function call(start, end) {
  const n = c[${NARGS}], a = rowArgs[n];
  for (let i = 0; i < n; i++) a[i] = c[${ARGS} + i];
  a[c[${COUNT}]] = end - start;
  for (let s = 0; s < c[${NSHIFT}]; s++) a[c[${SHIFTS} + 2 * s]] += start * c[${SHIFTS} + 2 * s + 1];
  fns[c[${FN}]].apply(null, a);
}
// The program's calls over rows [start, end) at step s: arguments advanced by s times their deltas.
function rows(start, end, s) {
  for (let k = 0, p = ${IMAGE}, nc = c[${NCALLS}]; k < nc; k++) {
    const fn = c[p], n = c[p + 1], count = c[p + 2], ns = c[p + 3];
    p += 4;
    const a = rowArgs[n];
    for (let i = 0; i < n; i++) a[i] = c[p + i] + s * c[p + n + i];
    p += 2 * n;
    a[count] = end - start;
    for (let j = 0; j < ns; j++) a[c[p + 2 * j]] += start * c[p + 2 * j + 1];
    p += 2 * ns;
    fns[fn].apply(null, a);
  }
}
// CALL and ROWS: units of ALIGN rows, in chunks of what is left / (2 threads), at least CHUNK units. The
// claim word counts the units left, so a job with none left is seen to be over from the word alone (its
// parameters may already be the next job's); while some are left the job is current, and a claim that
// succeeds proves it stayed so while its parameters were read.
function chunks(g) {
  const tag = BigInt(g);
  let error;
  for (;;) {
    const w = Atomics.load(big, ${CLAIM});
    if (w >> 32n !== tag) return error;
    const left = Number(w & 0xffffffffn);
    if (left <= 0) return error;
    const units = c[${UNITS}];
    const size = Math.min(left, Math.max(c[${CHUNK}], Math.ceil(left / (2 * threads))));
    if (Atomics.compareExchange(big, ${CLAIM}, w, w - BigInt(size)) !== w) continue;
    const align = c[${ALIGN}], total = c[${TOTAL}], next = units - left;
    const start = next * align, end = Math.min(total, (next + size) * align);
    try {
      if (c[${KIND}] === ${ROWS}) rows(start, end, 0);
      else call(start, end);
    } catch (e) {
      error ??= e;
    }
    finish(size, units);
  }
}
// STEPPED: chain i of the rows through every step; true if this thread took it (or what it threw).
function slice(g, i) {
  const free = BigInt(g) << 1n;
  if (Atomics.load(big, ${SLICE_CLAIMS} + i) !== free) return false;
  if (Atomics.compareExchange(big, ${SLICE_CLAIMS} + i, free, free | 1n) !== free) return false;
  const start = c[${SLICES} + i], end = c[${SLICES} + i + 1], steps = c[${STEPS}];
  let error = true;
  try {
    if (end > start) for (let s = 0; s < steps; s++) rows(start, end, s);
  } catch (e) {
    error = e;
  }
  finish(1, c[${NSLICES}]);
  return error;
}
// Its own chain first (the chain of its index, while there are as many), then any chain not yet taken.
function stepped(g) {
  const n = c[${NSLICES}];
  let error;
  for (let k = 0; k < n; k++) {
    const r = slice(g, (index + k) % n);
    if (r !== true && r !== false) error ??= r;
  }
  return error;
}
return { chunks, stepped };
`;

// The worker's body, shared by the platforms (each prepends how `__message` receives its messages).
const WORKER_BODY = `
let d, fns, c, seen, eng;
const engine = new Function("c", "fns", "threads", "index", ${JSON.stringify(ENGINE)});
function __message(m) {
  if (d === undefined) {
    d = m;
    const inst = new WebAssembly.Instance(d.module, { env: { memory: d.memory } });
    fns = d.names.map((n) => inst.exports[n]);
    c = new Int32Array(d.memory.buffer, d.control, ${CONTROL_BYTES / 4});
    eng = engine(c, fns, d.threads, d.index);
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
    if (Atomics.add(c, ${ACK}, 1) + 1 === d.threads - 1) Atomics.notify(c, ${ACK});
  }
  // "seen" stays the generation of the LOAD that sent this thread here: reading GEN again could skip a
  // LOAD the caller posted since this thread acknowledged, and its module would never be taken.
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
    const kind = Atomics.load(c, ${KIND});
    if (kind === ${LOAD}) return; // the module comes as a message: back to the event loop for it
    const e = kind === ${STEPPED} ? eng.stepped(seen >>> 0) : eng.chunks(seen >>> 0);
    if (e !== undefined) Atomics.store(c, ${ERR}, 1);
  }
}
`;

export function workerSource(prelude: string): string {
  return prelude + WORKER_BODY;
}

type Kernel = (...args: number[]) => unknown;
interface Engine {
  chunks(gen: number): unknown;
  stepped(gen: number): unknown;
}

export class Pool {
  private readonly ctl: Int32Array;
  private readonly big: BigUint64Array;
  private readonly fns: Kernel[];
  private readonly index = new Map<string, number>();
  private readonly engine: Engine;
  private readonly spin: number;
  private modules = 0;
  private closed = false;

  constructor(
    private readonly opts: PoolOptions,
    private readonly workers: WorkerHandle[],
    names: string[],
  ) {
    this.ctl = new Int32Array(opts.memory.buffer, opts.control, CONTROL_BYTES / 4);
    this.big = new BigUint64Array(opts.memory.buffer, opts.control, CONTROL_BYTES / 8);
    const inst = new WebAssembly.Instance(opts.module, { env: { memory: opts.memory } });
    this.fns = names.map((n) => inst.exports[n] as Kernel);
    names.forEach((n, i) => this.index.set(n, i));
    this.engine = new Function("c", "fns", "threads", "index", ENGINE)(this.ctl, this.fns, opts.threads, 0);
    this.spin = opts.spin ?? DEFAULT_SPIN;
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
    Atomics.store(c, KIND, LOAD);
    Atomics.store(c, ACK, 0);
    Atomics.store(c, ERR, 0);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    const deadline = Date.now() + 30000;
    for (let d = Atomics.load(c, ACK); d !== this.threads - 1; d = Atomics.load(c, ACK)) {
      if (Date.now() > deadline) throw new Error("pool: the workers did not take the module");
      Atomics.wait(c, ACK, d, 100);
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
    const total = args[split.count]!;
    const units = Math.ceil(total / split.align);
    if (this.threads === 1 || units <= 1) {
      this.fns[fn]!.apply(null, args as number[]);
      return;
    }
    const c = this.ctl;
    c[FN] = fn;
    c[NARGS] = args.length;
    for (let i = 0; i < args.length; i++) c[ARGS + i] = args[i]!;
    c[COUNT] = split.count;
    c[NSHIFT] = split.shifts.length;
    for (let s = 0; s < split.shifts.length; s++) {
      c[SHIFTS + 2 * s] = split.shifts[s]![0];
      c[SHIFTS + 2 * s + 1] = split.shifts[s]![1];
    }
    this.chunked(CALL, total, split.align, fn);
  }

  /**
   * A job of `total` rows in units of `align`, claimed in chunks. Few units (a step's rows): one chunk
   * per thread and no smaller, so a GEMM's panels are read once per thread; many: chunks that shrink
   * to a quarter of a thread's share, so that the threads finish together.
   */
  private chunked(kind: number, total: number, align: number, what: number): void {
    const units = Math.ceil(total / align);
    const c = this.ctl;
    c[KIND] = kind;
    c[TOTAL] = total;
    c[ALIGN] = align;
    c[UNITS] = units;
    c[CHUNK] = Math.ceil(units / (units < 16 * this.threads ? this.threads : 4 * this.threads));
    const gen = this.begin();
    Atomics.store(this.big, CLAIM, (BigInt(gen) << 32n) | BigInt(units));
    this.wake(gen);
    this.finish(this.engine.chunks(gen), units, what);
  }

  /** Resets the counters of a job; returns its generation (not yet published). */
  private begin(): number {
    const c = this.ctl;
    Atomics.store(c, FINISHED, 0);
    Atomics.store(c, ERR, 0);
    return (Atomics.load(c, GEN) + 1) >>> 0;
  }

  private wake(gen: number): void {
    Atomics.store(this.ctl, GEN, gen | 0);
    Atomics.notify(this.ctl, GEN);
  }

  /** Waits until `target` parts of the job are finished (polling briefly, then asleep); reports errors. */
  private finish(mine: unknown, target: number, what: number): void {
    const c = this.ctl;
    let spins = this.spin;
    for (let d = Atomics.load(c, FINISHED); d !== target; d = Atomics.load(c, FINISHED)) {
      // More finished than the job has: a part counted twice (a bug), reported rather than waited on.
      if (d > target) throw new Error(`pool: ${d} parts of a job of ${target} finished`);
      if (--spins < 0) Atomics.wait(c, FINISHED, d);
    }
    if (mine !== undefined) throw mine;
    if (Atomics.load(c, ERR)) {
      const name = what < 0 ? "a row program" : `"${[...this.index].find(([, i]) => i === what)?.[0]}"`;
      throw new Error(`pool: ${name} failed in a worker (out-of-bounds arguments?)`);
    }
  }

  /** Runs `calls` in order over `total` rows (see `program` and `runProgram`, for calls run repeatedly). */
  runRows(calls: readonly RowCall[], total: number, align: number): void {
    this.runProgram(this.program(calls), total, align);
  }

  /**
   * Row calls prepared to run repeatedly: their exports resolved and their control-block image laid out
   * once; between runs the caller rewrites the arguments that change (`RowProgram.args`, and for a run of
   * steps `RowProgram.deltas`) in place.
   */
  program(calls: readonly RowCall[]): RowProgram {
    if (this.closed) throw new Error("pool: closed");
    const fns = calls.map((call) => {
      const fn = this.index.get(call.fn);
      if (fn === undefined) throw new Error(`pool: the module has no export "${call.fn}"`);
      return fn;
    });
    const room = CONTROL_BYTES / 4 - IMAGE;
    const words = calls.reduce((n, c) => n + 4 + 2 * c.args.length + 2 * c.shifts.length, 0);
    const image = new Int32Array(words);
    const args: Int32Array[] = [];
    const deltas: Int32Array[] = [];
    // Chunks of calls that fit the control block: [first call, end call, first word, end word].
    const chunks: [number, number, number, number][] = [];
    let p = 0;
    calls.forEach(({ args: a, count, shifts }, k) => {
      if (a.length > MAX_ARGS) throw new Error("pool: too many arguments");
      const n = 4 + 2 * a.length + 2 * shifts.length;
      if (n > room) throw new Error("pool: a call too large for the control block");
      const last = chunks[chunks.length - 1];
      if (!last || p + n - last[2] > room) chunks.push([k, k + 1, p, p + n]);
      else [last[1], last[3]] = [k + 1, p + n];
      image.set([fns[k]!, a.length, count, shifts.length, ...a, ...a.map(() => 0), ...shifts.flat()], p);
      args.push(image.subarray(p + 4, p + 4 + a.length));
      deltas.push(image.subarray(p + 4 + a.length, p + 4 + 2 * a.length));
      p += n;
    });
    const parts = chunks.map(([from, to, w0, w1]) => ({ from, to, words: image.subarray(w0, w1) }));
    return new RowProgram(
      this,
      this.fns,
      fns,
      calls.map((c) => c.count),
      args,
      deltas,
      parts,
    );
  }

  /** Runs a program over `total` rows once: chunks of rows (multiples of `align`) claimed by the threads. */
  runProgram(prog: RowProgram, total: number, align: number): void {
    if (this.closed) throw new Error("pool: closed");
    if (prog.pool !== this) throw new Error("pool: a program of another pool");
    if (this.threads === 1 || total <= align) return prog.runLocal(total, 0);
    const c = this.ctl;
    for (const chunk of prog.chunks) {
      c.set(chunk.words, IMAGE);
      c[NCALLS] = chunk.to - chunk.from;
      this.chunked(ROWS, total, align, -1);
    }
  }

  /**
   * Runs a program over `total` rows for `steps` steps, step s with each argument advanced by s times its
   * delta (`RowProgram.deltas`). Its calls must read, at every step, only the rows they write (as a cell's
   * step kernel does: a batch row depends on no other): then the rows are cut into chains (multiples of
   * `align`, up to CHAINS_PER_THREAD per thread) that the threads claim and run through all the steps,
   * with no barrier between the steps.
   */
  runSteps(prog: RowProgram, total: number, align: number, steps: number): void {
    if (this.closed) throw new Error("pool: closed");
    if (prog.pool !== this) throw new Error("pool: a program of another pool");
    if (prog.chunks.length !== 1) throw new Error("pool: a program of steps must fit the control block");
    const units = Math.ceil(total / align);
    const n = Math.min(units, (this.opts.chains ?? CHAINS_PER_THREAD) * this.threads, MAX_CHAINS);
    if (this.threads === 1 || n <= 1 || steps <= 0) {
      for (let s = 0; s < steps; s++) prog.runLocal(total, s);
      return;
    }
    const c = this.ctl;
    c.set(prog.chunks[0]!.words, IMAGE);
    c[NCALLS] = prog.fns.length;
    c[KIND] = STEPPED;
    c[STEPS] = steps;
    c[NSLICES] = n;
    for (let i = 0; i <= n; i++) c[SLICES + i] = Math.min(total, Math.round((i * units) / n) * align);
    const gen = this.begin();
    for (let i = 0; i < n; i++) Atomics.store(this.big, SLICE_CLAIMS + i, BigInt(gen) << 1n);
    this.wake(gen);
    this.finish(this.engine.stepped(gen), n, -1);
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

/** Row calls resolved for one pool (Pool.program): run with Pool.runProgram or Pool.runSteps. */
export class RowProgram {
  private readonly local: number[][];

  constructor(
    readonly pool: Pool,
    /** The pool's functions on the calling thread (the array grows as modules load). */
    private readonly kernels: readonly Kernel[],
    readonly fns: readonly number[],
    private readonly counts: readonly number[],
    /** Per call, its arguments in the control-block image: rewrite those that change between runs. */
    readonly args: readonly Int32Array[],
    /** Per call, what each argument advances by from one step to the next (runSteps). */
    readonly deltas: readonly Int32Array[],
    /** Calls [from, to) that fit the control block at once, and their words of the image. */
    readonly chunks: readonly { readonly from: number; readonly to: number; readonly words: Int32Array }[],
  ) {
    this.local = args.map((a) => new Array<number>(a.length).fill(0));
  }

  /** The calls on the calling thread alone over all `rows` rows, at step s. */
  runLocal(rows: number, s: number): void {
    const kernels = this.kernels;
    for (let k = 0; k < this.fns.length; k++) {
      const a = this.local[k]!;
      const src = this.args[k]!;
      const d = this.deltas[k]!;
      for (let i = 0; i < a.length; i++) a[i] = src[i]! + s * d[i]!;
      a[this.counts[k]!] = rows;
      kernels[this.fns[k]!]!.apply(null, a);
    }
  }
}

/** Starts threads - 1 workers and waits until each has instantiated the module. */
export async function createPool(opts: PoolOptions, platform?: Platform): Promise<Pool> {
  const threads = Math.floor(opts.threads);
  if (!(threads >= 1 && threads <= MAX_THREADS))
    throw new RangeError(`pool: threads must be from 1 to ${MAX_THREADS}, got ${opts.threads}`);
  if (opts.control % 8 !== 0) throw new RangeError("pool: the control block must be 8-byte aligned");
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
    const data = { ...opts, platform: undefined, index, threads, names, spin: opts.spin ?? DEFAULT_SPIN };
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
