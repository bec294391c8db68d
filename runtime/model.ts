import { evalDim, printDim, type Type } from "../artifact/shape.js";
import { LAYER_PREFIX, layerParamName, MAX_LAYERS } from "../artifact/network.js";
import { bindDim, bindShape, checkDims, checkShape, resolveShape, shapeText } from "../artifact/sizes.js";
import { shown } from "../artifact/validate.js";
import type { CompiledCell } from "./cell.js";
import { hostOps, jsBackend, type Backend } from "./backend.js";
export { hostOps, jsBackend, type Backend } from "./backend.js";
import { createWasmBackend } from "./cpu/wasm.js";
import { initialise, Rng } from "./init.js";
import { type DirectionRunner, type Seq, type SequenceGrads, type SequenceResult } from "./sequence.js";
import {
  asFloat,
  CellcError,
  checkAllocation,
  checkMemory,
  floatArray,
  showShape,
  tensor,
  tensorMap,
  type FloatArray,
  type Tensor,
} from "./tensor.js";

export interface ModelOptions {
  /**
   * Where sequences run. Default: `defaultBackend(dtype)`, WebAssembly SIMD on the calling thread for
   * float32 where the engine has it, the JS kernels otherwise and for float64.
   */
  readonly backend?: Backend;
  /** Stacked layers: the output of layer l is the input of layer l + 1. Default 1. */
  readonly layers?: number;
  /** A second direction over the reversed valid part of each row; outputs concatenated (forward first). */
  readonly bidirectional?: boolean;
  /** Compute precision. Default "f32". */
  readonly dtype?: "f32" | "f64";
  /**
   * Storage precision on WebGPU: "f16" keeps the tape and the packed weights in float16 (half the memory
   * traffic of the GEMMs and the tape; every value computed and accumulated in float32), where the adapter
   * has the `shader-f16` feature. Default "f32", the reference.
   */
  readonly precision?: "f32" | "f16";
  /** Parameter tensors by name (`Wi`, or `l0.Wi` / `l0.reverse.Wi` for several layers or directions). */
  readonly params?: ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>;
  /** Dimension sizes not given by the parameters (needed to initialise parameters from a seed). */
  readonly dims?: Readonly<Record<string, number>>;
  /** Seed for initialising parameters that are not given. Default 0. */
  readonly seed?: number;
  /** Name parameters and states `l<k>.`... even for one layer in one direction (as `--layers` does). */
  readonly prefixed?: boolean;
}

export interface ForwardOptions {
  /** Initial states `[B, ...]` by name (`h`, or `l0.h`, `l1.reverse.c`); zero (or the declared value) by default. */
  readonly initialStates?: ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>;
  /** Valid length of each batch row, `[B]`. */
  readonly seqLens?: Int32Array | readonly number[];
  /** Keep what backward() needs. Default true. */
  readonly train?: boolean;
}

export interface ForwardResult {
  /** Each output sequence `[T, B, ...]` by the cell's output name. */
  readonly outputs: Map<string, Tensor>;
  /** Each final state `[B, ...]` by (prefixed) state name. */
  readonly finalStates: Map<string, Tensor>;
  /** @internal what backward() reads */
  readonly tape?: ModelTape;
}

export interface Gradients {
  readonly params: Map<string, Tensor>;
  readonly inputs: Map<string, Tensor>;
  readonly initialStates: Map<string, Tensor>;
  /**
   * With `stateGrads`: per (prefixed) state name, `[T, B, ...]`, the gradient of the loss with respect to
   * the state after step t (a reverse direction's in forward time). It counts what the later steps and the
   * final state take from it, and the output at t where that output is the state's next value itself
   * (`output h'`); 0 past a row's length.
   */
  readonly stateSteps?: Map<string, Tensor>;
}

export interface BackwardOptions {
  /** Also return every step's state gradient (`Gradients.stateSteps`): the gradient-flow picture. */
  readonly stateGrads?: boolean;
  /**
   * false: the inputs need no gradient (PyTorch's `requires_grad=False` on the data): `Gradients.inputs`
   * comes back empty, and the wasm backend skips the GEMM that computes them (about a sixth of an LSTM's
   * training FLOPs). Default true.
   */
  readonly inputGrads?: boolean;
}

export type Inputs = ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>;

export interface Upstream {
  readonly outputs?: ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>;
  readonly finalStates?: ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>;
}

/** @internal What backward() reads of a forward pass. */
export interface ModelTape {
  readonly T: number;
  readonly B: number;
  readonly lens?: Int32Array;
  readonly runs: { runner: DirectionRunner; tape: unknown }[][]; // [layer][direction]
}

let defaultCpu: Backend | undefined;

/**
 * The backend of a Model given none: float32 runs on WebAssembly SIMD on the calling thread
 * (`createWasmBackend()`, one for the process, made on first use) where the engine has WebAssembly SIMD and
 * shared memory, else on the JS backend; float64 runs on the JS backend (`jsBackend`, the readable
 * reference). More threads: pass `await createThreadedWasmBackend(n)`.
 */
export function defaultBackend(dtype: "f32" | "f64" = "f32"): Backend {
  if (dtype === "f64") return jsBackend;
  if (!defaultCpu) {
    try {
      defaultCpu = createWasmBackend();
    } catch {
      defaultCpu = jsBackend; // no WebAssembly, no SIMD, or no SharedArrayBuffer (a page not isolated)
    }
  }
  return defaultCpu;
}

/** Spare arrays a model keeps per length (see Model.spare). */
const MAX_SPARE = 4;

/** A cell instantiated with its dimensions and parameters: stacked, optionally bidirectional. */
export class Model {
  readonly layers: number;
  readonly directions: number;
  readonly dtype: "f32" | "f64";
  /** Storage precision of the tape and weights (WebGPU): see ModelOptions.precision. */
  readonly precision: "f32" | "f16";
  readonly params: Map<string, Tensor>;
  /** Given parameters that the cell declares but never uses: accepted, and not used. */
  readonly ignoredParams: string[];
  /** Dimension sizes of each layer (the input dimension changes after the first). */
  readonly sizes: Record<string, number>[];
  private readonly prefixed: boolean;
  private readonly runners = new Map<string, DirectionRunner>();
  /** The tapes of this model's forward passes: backward() takes no other model's. */
  private readonly tapes = new WeakSet<ModelTape>();
  private paramVersion = 0;
  readonly backend: Backend;
  /**
   * Host arrays free to be written again, by length (a backend on the host only): a layer's outputs once
   * the next layer has read them, a layer's input gradients once the layer below has, and what dispose()
   * is given. A pass writes its sequences into them instead of allocating: a fresh [T, B, H] array costs
   * the first touch of every page and a collection later, more than the copy into it.
   */
  private readonly spare = new Map<number, FloatArray[]>();

  constructor(
    readonly cell: CompiledCell,
    opts: ModelOptions = {},
  ) {
    checkModelArgs(cell, opts);
    const ir = cell.signature;
    this.backend = opts.backend ?? defaultBackend(opts.dtype ?? "f32");
    this.layers = opts.layers ?? 1;
    if (!Number.isInteger(this.layers) || this.layers < 1)
      throw new CellcError(`layers must be a positive integer, got ${shown(this.layers)}`);
    if (this.layers > MAX_LAYERS)
      throw new CellcError(`${this.layers} layers asked for; the limit is ${MAX_LAYERS}`);
    this.directions = opts.bidirectional ? 2 : 1;
    this.dtype = opts.dtype ?? "f32";
    this.precision = opts.precision ?? "f32";
    if (this.precision !== "f32" && this.precision !== "f16")
      throw new CellcError(`precision must be "f32" or "f16", got '${String(this.precision)}'`);
    if (this.precision === "f16") {
      if (this.backend.name !== "webgpu")
        throw new CellcError(
          `precision f16 (float16 tape and weights) runs on the webgpu backend, not on ${this.backend.name}`,
        );
      if (!this.backend.f16)
        throw new CellcError(
          "precision f16 needs the WebGPU adapter's 'shader-f16' feature, which this adapter does not have: use precision f32",
        );
      if (this.dtype !== "f32") throw new CellcError("precision f16 goes with dtype f32");
    }
    this.prefixed = opts.prefixed || this.layers > 1 || this.directions > 1;
    if (this.layers > 1 || this.directions > 1) {
      if (ir.outputs.some((o) => o.type.dims.length !== 1))
        throw new CellcError(`stacked or bidirectional '${ir.name}' needs vector outputs`);
    }
    if (this.layers > 1 && (ir.inputs.length !== 1 || ir.outputs.length !== 1))
      throw new CellcError(
        `stacking layers needs a cell with one input and one output; '${ir.name}' has ${ir.inputs.length} and ${ir.outputs.length}`,
      );

    const given = tensorMap(opts.params, "params", "parameter");
    // Names first: a file made for another layout (one layer for two, say) is reported as such, not as
    // the unknown dimension that would follow from it.
    const known = new Set<string>();
    const unused = new Set<string>();
    for (let l = 0; l < this.layers; l++)
      for (let d = 0; d < this.directions; d++) {
        for (const p of ir.params) known.add(this.name(l, d, p.name));
        for (const n of ir.unusedParams ?? []) unused.add(this.name(l, d, n));
      }
    this.ignoredParams = [...given.keys()].filter((n) => unused.has(n));
    if (opts.params !== undefined) checkParamNames(ir, known, unused, given, opts.dims, this.prefixed);
    this.params = new Map();
    this.sizes = [];
    const rng = new Rng(opts.seed ?? 0);
    const bytes = this.dtype === "f64" ? 8 : 4;
    for (let l = 0; l < this.layers; l++) {
      // Keyed by dimension names from the .cell file: no prototype, so `constructor` is just a name.
      const sizes = Object.assign(Object.create(null) as Record<string, number>, opts.dims);
      if (l > 0) {
        for (const d of ir.inputs[0]!.type.dims) for (const n of Object.keys(d.terms)) delete sizes[n];
        // The input of this layer is the output of the previous one.
        const prev = this.sizes[l - 1]!;
        const outDim = ir.outputs[0]!.type.dims[0]!;
        bindDim(
          sizes,
          ir.inputs[0]!.type.dims[0]!,
          evalDim(outDim, prev) * this.directions,
          `the input of layer ${l}`,
        );
      }
      // Twice: a compound dimension (H + D) is solved once the other names are known.
      for (let pass = 0; pass < 2; pass++)
        for (let d = 0; d < this.directions; d++)
          for (const p of ir.params) {
            const t = given.get(this.name(l, d, p.name));
            if (t) bindShape(sizes, p.type, t.shape, `parameter '${this.name(l, d, p.name)}'`);
          }
      for (let d = 0; d < this.directions; d++)
        for (const p of ir.params) {
          const name = this.name(l, d, p.name);
          const t = given.get(name);
          const shape = resolveShape(p.type, sizes, `parameter '${name}'`);
          if (t) {
            checkShape(t.shape, shape, `parameter '${name}'`, p.type);
            this.params.set(name, {
              dtype: this.dtype,
              shape,
              data: asFloat(t, this.dtype, `parameter '${name}'`),
            });
          } else {
            const count = shape.reduce((a, b) => a * b, 1);
            checkAllocation(count, bytes, `parameter '${name}' of shape ${shapeText(p.type, shape)}`);
            const data = floatArray(this.dtype, count);
            initialise(p.init, shape, data, rng);
            this.params.set(name, { dtype: this.dtype, shape, data });
          }
        }
      // A state too large for any batch is refused here, before a runner allocates it (a state whose
      // size comes from the inputs is checked with the sequence).
      for (const s of ir.states) {
        if (s.type.dims.some((d) => Object.keys(d.terms).some((n) => sizes[n] === undefined))) continue;
        const shape = resolveShape(s.type, sizes, `state '${s.name}'`);
        checkAllocation(
          shape.reduce((a, b) => a * b, 1),
          bytes,
          `state '${s.name}' of shape ${shapeText(s.type, shape)} (one batch row)`,
        );
      }
      this.sizes.push(sizes);
    }
  }

  /**
   * Says that parameter values were changed in place (by an optimiser, say): a device backend uploads
   * parameters only when they change, and learns of in-place changes only from this.
   */
  paramsChanged(): void {
    this.paramVersion++;
  }

  /** `Wi`, `l0.Wi` or `l1.reverse.Wi`. */
  name(layer: number, direction: number, base: string): string {
    return layerParamName(this.prefixed, layer, direction, base);
  }

  private runner(l: number, d: number, B: number): DirectionRunner {
    const key = `${l}/${d}/${B}`;
    let r = this.runners.get(key);
    if (!r)
      this.runners.set(
        key,
        (r = this.backend.runner(this.cell, this.sizes[l]!, B, this.dtype, this.precision)),
      );
    return r;
  }

  private sync<T>(g: Generator<unknown, T, unknown>, what: string): T {
    if (this.backend.async)
      throw new CellcError(`the ${this.backend.name} backend is asynchronous: use ${what}Async()`);
    try {
      let r = g.next();
      while (!r.done) r = g.next(r.value);
      return r.value;
    } catch (e) {
      throw this.trapped(e);
    }
  }

  /** @internal Drives one of the generator passes on any backend, awaiting each runner call. */
  async drive<T>(g: Generator<unknown, T, unknown>): Promise<T> {
    try {
      let r = g.next();
      while (!r.done) r = g.next(await r.value);
      return r.value;
    } catch (e) {
      this.backend.ops.discard?.();
      throw this.trapped(e);
    }
  }

  /**
   * A WebAssembly trap (an access outside the memory) comes from a kernel plan that does not fit its
   * buffers: an edited artifact, which is refused as such, rather than a crash.
   */
  private trapped(e: unknown): unknown {
    if (typeof WebAssembly !== "undefined" && e instanceof WebAssembly.RuntimeError)
      return new CellcError(
        `the wasm kernels of '${this.cell.signature.name}' stopped: ${e.message} (an edited artifact, or a cellc bug)`,
      );
    return e;
  }

  private layerParams(l: number, d: number): Seq[] {
    const dev = this.deviceParams;
    return this.cell.signature.params.map((p) => {
      const name = this.name(l, d, p.name);
      return dev?.get(name) ?? (this.params.get(name)!.data as FloatArray);
    });
  }

  /**
   * @internal Parameters that live on the backend's device (a device training step owns them there):
   * runners read these instead of `params`, copying them on the device when paramsChanged() says so.
   */
  deviceParams?: ReadonlyMap<string, Seq>;

  /** Runs the whole sequence through every layer and direction (synchronous backends). */
  forward(inputs: Inputs, opts: ForwardOptions = {}): ForwardResult {
    return this.sync(this.forwardSteps(inputs, opts), "forward");
  }

  /** forward() for any backend. */
  forwardAsync(inputs: Inputs, opts: ForwardOptions = {}): Promise<ForwardResult> {
    return this.drive(this.forwardSteps(inputs, opts));
  }

  /** The orchestration, written once: each runner call is yielded, so a driver can await it or not. */
  private *forwardSteps(inputs: Inputs, opts: ForwardOptions): Generator<unknown, ForwardResult, unknown> {
    const ir = this.cell.signature;
    const given = tensorMap(inputs, "inputs", "input");
    if (typeof opts !== "object" || opts === null)
      throw new CellcError("forward()'s options must be an object { initialStates, seqLens, train }");
    if (ir.inputs.length === 0) throw new CellcError(`'${ir.name}' has no inputs: use stream() to step it`);
    const first = given.get(ir.inputs[0]!.name);
    if (!first)
      throw new CellcError(
        `missing input '${ir.inputs[0]!.name}' of shape ${showShape(["T", "B", ...ir.inputs[0]!.type.dims.map(printDim)])}`,
      );
    if (first.shape.length < 2)
      throw new CellcError(
        `input '${ir.inputs[0]!.name}' has shape ${showShape(first.shape)}; expected [T, B, ...]`,
      );
    const [T, B] = first.shape as [number, number];
    for (const n of given.keys())
      if (!ir.inputs.some((i) => i.name === n))
        throw new CellcError(
          `unexpected input '${n}': '${ir.name}' takes ${ir.inputs.map((i) => `'${i.name}'`).join(", ")}`,
        );
    for (const inp of ir.inputs) {
      const t = given.get(inp.name);
      // A dimension no parameter has (the width of an extra input, say) is bound from the input itself.
      if (t && t.shape.length === 2 + inp.type.dims.length)
        inp.type.dims.forEach((d, i) => {
          const names = Object.keys(d.terms);
          if (names.length === 1 && this.sizes[0]![names[0]!] === undefined)
            bindDim(this.sizes[0]!, d, t.shape[2 + i]!, `input '${inp.name}'`);
        });
    }
    const layerInputs: Seq[] = ir.inputs.map((inp) => {
      const t = given.get(inp.name);
      const feat = resolveShape(inp.type, this.sizes[0]!, `input '${inp.name}'`);
      if (!t) throw new CellcError(`missing input '${inp.name}' of shape ${showShape(["T", "B", ...feat])}`);
      checkShape(t.shape, [T, B, ...feat], `input '${inp.name}'`, inp.type, ["T", "B"]);
      return asFloat(t, this.dtype, `input '${inp.name}'`);
    });
    this.checkSequenceMemory(T, B, opts.train ?? true);
    const lens = this.lens(opts.seqLens, T, B);
    const train = opts.train ?? true;
    const { outputs, finals, tape } = yield* this.layersForward(
      layerInputs,
      T,
      B,
      lens,
      tensorMap(opts.initialStates, "initialStates", "initial state"),
      train,
    );
    // One read-back of everything the caller gets (for a device backend, one submission of all layers).
    const values = (yield this.backend.ops.readAll(
      [...outputs, ...finals.map((f) => f.seq)],
      this.dtype,
    )) as FloatArray[];
    const finalStates = new Map<string, Tensor>();
    finals.forEach((f, k) =>
      finalStates.set(f.name, { dtype: this.dtype, shape: f.shape, data: values[outputs.length + k]! }),
    );
    const outMap = new Map<string, Tensor>();
    ir.outputs.forEach((o, i) =>
      outMap.set(o.name, { dtype: this.dtype, shape: [T, ...this.outputShape(i, B)], data: values[i]! }),
    );
    return { outputs: outMap, finalStates, tape };
  }

  /**
   * Every layer and direction over sequences already where the backend keeps them: the outputs of the
   * last layer and every final state, not read back. forward() reads them back; a device training step
   * (runtime/webgpu/network.ts) keeps them on the device.
   */
  *layersForward(
    layerInputs: Seq[],
    T: number,
    B: number,
    lens: Int32Array | undefined,
    inits: ReadonlyMap<string, Tensor>,
    train: boolean,
  ): Generator<
    unknown,
    { outputs: Seq[]; finals: { name: string; shape: number[]; seq: Seq }[]; tape?: ModelTape },
    unknown
  > {
    const ir = this.cell.signature;
    const knownInits = new Set<string>();
    const runs: ModelTape["runs"] = [];
    const finals: { name: string; shape: number[]; seq: Seq }[] = [];
    const ops = this.backend.ops;
    let outputs: Seq[] = [];
    for (let l = 0; l < this.layers; l++) {
      const dirOut: Seq[][] = [];
      runs.push([]);
      for (let d = 0; d < this.directions; d++) {
        const runner = this.runner(l, d, B);
        const states = ir.states.map((_, si) => {
          knownInits.add(this.name(l, d, ir.states[si]!.name));
          return this.initialState(l, d, si, B, inits);
        });
        const xs = d
          ? layerInputs.map((x, i) => ops.reverseValid(x, T, B, runner.inputRow(i), lens))
          : layerInputs;
        const r = (yield runner.forward(
          xs,
          T,
          states,
          this.layerParams(l, d),
          lens,
          train,
          this.paramVersion,
          ir.outputs.map((_, i) => this.takeSpare(T * B * runner.outputRow(i))),
        )) as SequenceResult;
        if (d) this.giveSpare(xs);
        runs[l]!.push({ runner, tape: r.tape });
        ir.states.forEach((s, si) => {
          const shape = [B, ...resolveShape(s.type, this.sizes[l]!, "")];
          finals.push({ name: this.name(l, d, s.name), shape, seq: r.finals[si]! });
        });
        dirOut.push(
          d ? r.outputs.map((o, i) => ops.reverseValid(o, T, B, runner.outputRow(i), lens)) : r.outputs,
        );
        if (d) this.giveSpare(r.outputs);
      }
      const runner0 = runs[l]![0]!.runner;
      outputs = ir.outputs.map((_, i) =>
        this.directions === 1
          ? dirOut[0]![i]!
          : ops.concatFeatures(
              dirOut.map((o) => o[i]!),
              T * B,
              runner0.outputRow(i),
              this.dtype,
            ),
      );
      if (this.directions > 1) dirOut.forEach((o) => this.giveSpare(o));
      // This layer's inputs were copied in by its runners: the first layer's are the caller's.
      if (l > 0) this.giveSpare(layerInputs);
      layerInputs = outputs;
    }
    for (const n of inits.keys())
      if (!knownInits.has(n))
        throw new CellcError(
          `unexpected initial state '${n}': expected ${[...knownInits].map((k) => `'${k}'`).join(", ")}`,
        );
    const tape = train ? { T, B, lens, runs } : undefined;
    if (tape) this.tapes.add(tape);
    return { outputs, finals, tape };
  }

  /**
   * Backpropagation through time. `upstream.outputs` are the gradients flowing into each output sequence,
   * `upstream.finalStates` into each final state; with neither, the loss is the sum of all output elements.
   */
  backward(fwd: ForwardResult, upstream: Upstream = {}, opts: BackwardOptions = {}): Gradients {
    return this.sync(this.backwardSteps(fwd, upstream, opts), "backward");
  }

  /** backward() for any backend. */
  backwardAsync(fwd: ForwardResult, upstream: Upstream = {}, opts: BackwardOptions = {}): Promise<Gradients> {
    return this.drive(this.backwardSteps(fwd, upstream, opts));
  }

  private *backwardSteps(
    fwd: ForwardResult,
    upstream: Upstream,
    opts: BackwardOptions,
  ): Generator<unknown, Gradients, unknown> {
    if (typeof fwd !== "object" || fwd === null)
      throw new CellcError("backward() takes the result of this model's forward()");
    if (typeof upstream !== "object" || upstream === null)
      throw new CellcError("backward()'s upstream gradients must be an object { outputs, finalStates }");
    const tape = fwd.tape;
    if (!tape) throw new CellcError("backward() needs a forward() run with train: true");
    if (!this.tapes.has(tape))
      throw new CellcError("backward() was given the forward result of another model: pass this model's own");
    const ir = this.cell.signature;
    const { T, B } = tape;
    const upOut = tensorMap(upstream.outputs, "upstream.outputs", "upstream gradient of output");
    const upFin = tensorMap(upstream.finalStates, "upstream.finalStates", "upstream gradient of final state");
    const defaultLoss = upstream.outputs === undefined && upstream.finalStates === undefined;
    for (const n of upOut.keys())
      if (!fwd.outputs.has(n)) throw new CellcError(`upstream gradient for unknown output '${n}'`);
    for (const n of upFin.keys())
      if (!fwd.finalStates.has(n)) throw new CellcError(`upstream gradient for unknown final state '${n}'`);
    // Gradients into the last layer's outputs, [T, B, F * directions].
    const dOut: (Seq | undefined)[] = ir.outputs.map((o) => {
      const out = fwd.outputs.get(o.name)!;
      const u = upOut.get(o.name);
      if (u) {
        checkShape(u.shape, out.shape, `upstream gradient of output '${o.name}'`);
        return asFloat(u, this.dtype, `upstream gradient of output '${o.name}'`);
      }
      if (!defaultLoss) return undefined;
      return (this.takeSpare(out.data.length) ?? floatArray(this.dtype, out.data.length)).fill(1);
    });
    const stateGrads = opts.stateGrads ?? false;
    const wantInputs = opts.inputGrads ?? true;
    const finalUpstream = (l: number, d: number, s: number): FloatArray | undefined => {
      const name = this.name(l, d, ir.states[s]!.name);
      const u = upFin.get(name);
      if (!u) return undefined;
      checkShape(u.shape, fwd.finalStates.get(name)!.shape, `upstream gradient of final state '${name}'`);
      return asFloat(u, this.dtype, `upstream gradient of final state '${name}'`);
    };
    const { grads, inputs: dIn } = yield* this.layersBackward(
      tape,
      dOut,
      finalUpstream,
      stateGrads,
      wantInputs,
    );
    // The sum-of-outputs loss's gradients were this pass's own.
    if (defaultLoss) this.giveSpare(dOut);
    let dInputs = dIn;
    if (!wantInputs) dInputs = [];
    const values = (yield this.backend.ops.readAll(
      [...dInputs, ...grads.map((g) => g.seq)],
      this.dtype,
    )) as FloatArray[];
    const params = new Map<string, Tensor>();
    const initialStates = new Map<string, Tensor>();
    const stateSteps = new Map<string, Tensor>();
    const into = { param: params, init: initialStates, step: stateSteps };
    grads.forEach((g, k) =>
      into[g.kind].set(g.name, { dtype: this.dtype, shape: g.shape, data: values[dInputs.length + k]! }),
    );
    const inputs = new Map<string, Tensor>();
    const r0 = tape.runs[0]![0]!.runner;
    if (wantInputs)
      ir.inputs.forEach((inp, i) =>
        inputs.set(inp.name, {
          dtype: this.dtype,
          shape: [T, B, ...(inp.type.dims.length ? [r0.inputRow(i)] : [])],
          data: values[i]!,
        }),
      );
    return stateGrads ? { params, inputs, initialStates, stateSteps } : { params, inputs, initialStates };
  }

  /**
   * Backpropagation through every layer and direction from gradients already where the backend keeps
   * them: each parameter's, initial state's and (with stateGrads) per-step state gradient, and the
   * inputs', not read back (see layersForward).
   */
  *layersBackward(
    tape: ModelTape,
    dOutputs: readonly (Seq | undefined)[],
    finalUpstream: (layer: number, direction: number, state: number) => FloatArray | undefined,
    stateGrads: boolean,
    wantInputs: boolean,
  ): Generator<
    unknown,
    {
      grads: { kind: "param" | "init" | "step"; name: string; shape: readonly number[]; seq: Seq }[];
      inputs: Seq[];
    },
    unknown
  > {
    const ir = this.cell.signature;
    const { T, B, lens } = tape;
    let dOut = dOutputs;
    const ops = this.backend.ops;
    const grads: { kind: "param" | "init" | "step"; name: string; shape: readonly number[]; seq: Seq }[] = [];
    let dInputs: Seq[] = [];
    for (let l = this.layers - 1; l >= 0; l--) {
      const perDir: Seq[][] = [];
      for (let d = 0; d < this.directions; d++) {
        const { runner, tape: t } = tape.runs[l]![d]!;
        const dOutDir = dOut.map((g, i) => {
          if (!g) return undefined;
          const F = runner.outputRow(i);
          const part =
            this.directions === 1 ? g : ops.sliceFeatures(g, T * B, F, d, this.directions, this.dtype);
          return d ? ops.reverseValid(part, T, B, F, lens) : part;
        });
        const dFin = ir.states.map((_, s) => finalUpstream(l, d, s));
        const g = (yield runner.backward(
          t,
          this.layerParams(l, d),
          dOutDir,
          dFin,
          this.paramVersion,
          stateGrads,
          l > 0 || wantInputs,
          ir.inputs.map((_, i) => this.takeSpare(T * B * runner.inputRow(i))),
        )) as SequenceGrads;
        if (this.directions > 1) this.giveSpare(dOutDir);
        ir.params.forEach((p, i) => {
          const name = this.name(l, d, p.name);
          grads.push({ kind: "param", name, shape: this.params.get(name)!.shape, seq: g.params[i]! });
        });
        ir.states.forEach((s, i) => {
          const name = this.name(l, d, s.name);
          const shape = [B, ...resolveShape(s.type, this.sizes[l]!, "")];
          grads.push({ kind: "init", name, shape, seq: g.inits[i]! });
        });
        if (stateGrads) grads.push(...this.stateStepGrads(g, l, d, T, B, lens, runner));
        perDir.push(
          d ? g.inputs.map((x, i) => ops.reverseValid(x, T, B, runner.inputRow(i), lens)) : g.inputs,
        );
      }
      dInputs = perDir[0]!.map((x, i) => perDir.slice(1).reduce((acc, p) => ops.add(acc, p[i]!), x));
      if (this.directions > 1) perDir.slice(1).forEach((p) => this.giveSpare(p));
      // The gradients this layer was given were copied in by its runners: the last layer's are the caller's.
      if (l < this.layers - 1) this.giveSpare(dOut);
      dOut = dInputs;
    }
    return { grads, inputs: dInputs };
  }

  /**
   * Gives back the sequences of a result the caller is done with (a forward result's outputs, the input
   * gradients of backward()'s): a later pass may write into their arrays, so they must not be read after.
   * A training loop calls it once a step's gradients are taken, as the network trainer does, and saves an
   * allocation of every output sequence per step. Optional; a no-op on a device backend.
   */
  dispose(result: ForwardResult | Gradients): void {
    if (typeof result !== "object" || result === null)
      throw new CellcError("dispose() takes a result of this model's forward() or backward()");
    const seqs = "outputs" in result ? result.outputs : result.inputs;
    if (!(seqs instanceof Map))
      throw new CellcError("dispose() takes a result of this model's forward() or backward()");
    this.giveSpare([...seqs.values()].map((t) => t.data));
  }

  /** A spare host array of n elements, or none (then the runner allocates). */
  private takeSpare(n: number): FloatArray | undefined {
    return this.spare.get(n)?.pop();
  }

  /** Arrays free to be written again: host arrays of this model's dtype, a few of each length kept. */
  private giveSpare(xs: readonly (Seq | ArrayLike<number> | undefined)[]): void {
    if (this.backend.ops !== hostOps) return;
    const F = this.dtype === "f32" ? Float32Array : Float64Array;
    for (const x of xs) {
      if (!(x instanceof F) || x.length === 0) continue;
      const list = this.spare.get(x.length) ?? [];
      if (list.length >= MAX_SPARE || list.includes(x)) continue;
      list.push(x);
      this.spare.set(x.length, list);
    }
  }

  /** Each state's per-step gradients of one layer and direction, the reverse direction's in forward time. */
  private stateStepGrads(
    g: SequenceGrads,
    l: number,
    d: number,
    T: number,
    B: number,
    lens: Int32Array | undefined,
    runner: DirectionRunner,
  ): { kind: "step"; name: string; shape: readonly number[]; seq: Seq }[] {
    if (!g.stateSteps)
      throw new CellcError(
        `per-step state gradients (stateGrads) are not available on the ${this.backend.name} backend`,
      );
    return this.cell.signature.states.map((s, i) => {
      const name = this.name(l, d, s.name);
      const F = runner.stateRow(i);
      const shape = [B, ...resolveShape(s.type, this.sizes[l]!, "")];
      const steps = g.stateSteps![i]!;
      const seq = d ? this.backend.ops.reverseValid(steps, T, shape[0]!, F, lens) : steps;
      return { kind: "step" as const, name, shape: [T, ...shape], seq };
    });
  }

  /** Steps one time step at a time, carrying the state: for streaming inference. */
  stream(B: number, initialStates?: ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>): Stream {
    if (!Number.isSafeInteger(B) || B < 1)
      throw new CellcError(`stream() takes the batch size B, a whole number from 1, got ${shown(B)}`);
    // The states of every layer, and what a runner for B rows allocates, before any is.
    const bytes = this.dtype === "f64" ? 8 : 4;
    let total = 0;
    for (let l = 0; l < this.layers; l++)
      for (const s of this.cell.signature.states) {
        const n = B * resolveShape(s.type, this.sizes[l]!, `state '${s.name}'`).reduce((a, b) => a * b, 1);
        checkAllocation(n, bytes, `state '${s.name}' of layer ${l} for B = ${B}`);
        total += n;
      }
    this.checkSequenceMemory(1, B, false);
    checkMemory(total * bytes, `the states of a stream of B = ${B}`);
    if (this.directions > 1)
      throw new CellcError(
        "a bidirectional model cannot stream: its reverse direction needs the whole sequence",
      );
    if (this.backend.async)
      throw new CellcError(`stream() runs on the js backend only, not on ${this.backend.name}`);
    return new Stream(this, B, tensorMap(initialStates, "initialStates", "initial state"));
  }

  /** @internal */
  stepOnce(
    l: number,
    B: number,
    inputs: FloatArray[],
    states: FloatArray[],
  ): { outputs: FloatArray[]; states: FloatArray[] } {
    const r = this.runner(l, 0, B).forward(inputs, 1, states, this.layerParams(l, 0), undefined, false);
    if (r instanceof Promise) throw new CellcError("stream() runs on the js backend only");
    return { outputs: r.outputs as FloatArray[], states: r.finals as FloatArray[] };
  }

  /** State si of layer l, direction d, at the start of a sequence: given (checked) or its declared value. */
  initialState(l: number, d: number, si: number, B: number, given: ReadonlyMap<string, Tensor>): FloatArray {
    const s = this.cell.signature.states[si]!;
    const name = this.name(l, d, s.name);
    const shape = [B, ...resolveShape(s.type, this.sizes[l]!, `state '${name}'`)];
    const t = given.get(name);
    if (t) {
      checkShape(t.shape, shape, `initial state '${name}'`, s.type, ["B"]);
      return asFloat(t, this.dtype, `initial state '${name}'`).slice();
    }
    return floatArray(
      this.dtype,
      shape.reduce((a, b) => a * b, 1),
    ).fill(s.init);
  }

  /** The shape of output i of the last layer at one step, `[B, ...]` (directions concatenated). */
  outputShape(i: number, B: number): number[] {
    const feat = resolveShape(
      this.cell.signature.outputs[i]!.type,
      this.sizes[this.layers - 1]!,
      `output '${this.cell.signature.outputs[i]!.name}'`,
    );
    return [B, ...feat.map((f) => f * this.directions)];
  }

  private lens(seqLens: ForwardOptions["seqLens"], T: number, B: number): Int32Array | undefined {
    if (seqLens === undefined) return undefined;
    if (!Array.isArray(seqLens) && !ArrayBuffer.isView(seqLens))
      throw new CellcError("seq_lens must be an array (or an Int32Array) of lengths, one per batch row");
    if (seqLens.length !== B)
      throw new CellcError(`seq_lens has ${seqLens.length} entries; expected one per batch row, [${B}]`);
    // Checked before the conversion to Int32Array, which would truncate 2.5 and wrap 2^32.
    for (let i = 0; i < seqLens.length; i++) {
      const v = seqLens[i]!;
      if (!Number.isInteger(v) || v < 0 || v > T)
        throw new CellcError(
          `seq_lens[${i}] = ${shown(v)} is out of range: lengths must be integers between 0 and T = ${T}`,
        );
    }
    return Int32Array.from(seqLens);
  }

  /** Refuses a sequence whose outputs (and, when training, saved states) cannot be allocated. */
  private checkSequenceMemory(T: number, B: number, train: boolean): void {
    const ir = this.cell.signature;
    const bytes = this.dtype === "f64" ? 8 : 4;
    const row = (t: Type, l: number, what: string) =>
      resolveShape(t, this.sizes[l]!, what).reduce((a, b) => a * b, 1);
    let total = 0;
    for (let l = 0; l < this.layers; l++) {
      for (const o of ir.outputs) {
        const n = T * B * row(o.type, l, `output '${o.name}'`);
        checkAllocation(n, bytes, `output '${o.name}' of layer ${l} for T = ${T}, B = ${B}`);
        total += n * this.directions;
      }
      // Initial and final states, and with train every step's.
      for (const s of ir.states) {
        const n = B * row(s.type, l, `state '${s.name}'`);
        checkAllocation(n, bytes, `state '${s.name}' of layer ${l} for B = ${B}`);
        total += n * (train ? T + 2 : 2) * this.directions;
      }
    }
    checkMemory(total * bytes, `a sequence of T = ${T}, B = ${B}`);
  }
}

export class Stream {
  private states: FloatArray[][];
  constructor(
    private readonly model: Model,
    readonly B: number,
    inits: Map<string, Tensor>,
  ) {
    this.states = Array.from({ length: model.layers }, (_, l) =>
      model.cell.signature.states.map((_, si) => model.initialState(l, 0, si, B, inits)),
    );
  }

  /** One time step: inputs `[B, ...]` by name; returns the outputs `[B, ...]` of the last layer. */
  step(inputs: ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>): Map<string, Tensor> {
    const ir = this.model.cell.signature;
    const given = tensorMap(inputs, "inputs", "input");
    let xs = ir.inputs.map((inp) => {
      const t = given.get(inp.name);
      const shape = [this.B, ...resolveShape(inp.type, this.model.sizes[0]!, `input '${inp.name}'`)];
      if (!t) throw new CellcError(`missing input '${inp.name}' of shape ${showShape(shape)}`);
      checkShape(t.shape, shape, `input '${inp.name}'`, inp.type, ["B"]);
      return asFloat(t, this.model.dtype, `input '${inp.name}'`);
    });
    for (let l = 0; l < this.model.layers; l++) {
      const r = this.model.stepOnce(l, this.B, xs, this.states[l]!);
      this.states[l] = r.states;
      xs = r.outputs;
    }
    const out = new Map<string, Tensor>();
    ir.outputs.forEach((o, i) =>
      out.set(o.name, tensor(this.model.dtype, this.model.outputShape(i, this.B), xs[i]!)),
    );
    return out;
  }

  /** The current states `[B, ...]` by (prefixed) name. */
  currentStates(): Map<string, Tensor> {
    const ir = this.model.cell.signature;
    const out = new Map<string, Tensor>();
    this.states.forEach((layer, l) =>
      ir.states.forEach((s, i) => {
        const shape = [this.B, ...resolveShape(s.type, this.model.sizes[l]!, `state '${s.name}'`)];
        out.set(this.model.name(l, 0, s.name), tensor(this.model.dtype, shape, layer[i]!.slice()));
      }),
    );
    return out;
  }
}

/** Missing and unexpected parameters, all at once, with a hint when only the layer prefix differs. */
function checkParamNames(
  ir: CompiledCell["signature"],
  known: ReadonlySet<string>,
  unused: ReadonlySet<string>,
  given: ReadonlyMap<string, Tensor>,
  dims: Readonly<Record<string, number>> | undefined,
  prefixed: boolean,
): void {
  const missing = [...known].filter((n) => !given.has(n));
  const unexpected = [...given.keys()].filter((n) => !known.has(n) && !unused.has(n));
  if (!missing.length && !unexpected.length) return;
  // Sizes from whatever fits, only to show a missing parameter's shape in numbers.
  const probe: Record<string, number> = { ...(dims ?? {}) };
  const types = new Map(ir.params.map((p) => [p.name, p.type]));
  for (const [n, t] of given) {
    const type = types.get(n.replace(/^l0\./, ""));
    try {
      if (type && !n.startsWith("l0.reverse.")) bindShape(probe, type, t.shape, "");
    } catch {
      // a shape error is reported later, once the names are right
    }
  }
  const list = (ns: string[]) =>
    ns
      .slice(0, 8)
      .map((n) => `'${n}'`)
      .join(", ") + (ns.length > 8 ? ` and ${ns.length - 8} more` : "");
  const parts: string[] = [];
  if (missing.length === 1) {
    const n = missing[0]!;
    const type = types.get(n.replace(LAYER_PREFIX, ""))!;
    let shape = showShape(type.dims.map(printDim));
    if (!/^l[1-9]/.test(n))
      try {
        shape = shapeText(type, resolveShape(type, probe, ""));
      } catch {
        // not every dimension is known: the symbolic shape alone
      }
    parts.push(`missing parameter '${n}' of shape ${shape}`);
  } else if (missing.length) parts.push(`missing parameters ${list(missing)}`);
  if (unexpected.length)
    parts.push(
      `unexpected parameter${unexpected.length > 1 ? "s" : ""} ${list(unexpected)}: '${ir.name}' has ${list([...known])}`,
    );
  const bare = missing.map((n) => n.replace(LAYER_PREFIX, "")).find((n) => given.has(n));
  const extra = unexpected.find((n) => LAYER_PREFIX.test(n) && known.has(n.replace(LAYER_PREFIX, "")));
  if (prefixed && bare)
    parts.push(
      `the file has '${bare}': for several layers or directions parameters are named l<k>.[reverse.]<name>`,
    );
  else if (!prefixed && extra)
    parts.push(
      `the file has '${extra}': names with a layer prefix l<k>.[reverse.] are for several layers or directions`,
    );
  throw new CellcError(parts.join("; "));
}

/** The constructor's arguments, checked before anything is read from them. */
function checkModelArgs(cell: CompiledCell, opts: ModelOptions): void {
  if (typeof cell !== "object" || cell === null || typeof cell.signature !== "object" || !cell.kernels)
    throw new CellcError("Model needs a compiled cell: compileCell(source) or loadArtifact(artifact)");
  if (typeof opts !== "object" || opts === null) throw new CellcError("Model's options must be an object");
  if (opts.dtype !== undefined && opts.dtype !== "f32" && opts.dtype !== "f64")
    throw new CellcError(`dtype must be "f32" or "f64", got ${shown(opts.dtype)}`);
  if (opts.dims !== undefined) checkDims(opts.dims, "dims");
  const be = opts.backend as { runner?: unknown; ops?: unknown } | undefined;
  if (
    be !== undefined &&
    (typeof be !== "object" || be === null || typeof be.runner !== "function" || !be.ops)
  )
    throw new CellcError("backend must be a backend (jsBackend, createWasmBackend(), ...), or left out");
  if (opts.seed !== undefined && !Number.isSafeInteger(opts.seed))
    throw new CellcError(`the seed must be a whole number, got ${shown(opts.seed)}`);
}
