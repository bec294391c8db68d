import { reachableNodes, type CellIR } from "../ir/cell.js";
import { CellcError, type Tensor } from "../../artifact/tensor.js";
import { layerParamName } from "../../artifact/network.js";
import type { NetworkIR } from "./network.js";
import type { NodeId } from "../ir/graph.js";
import { evalDim } from "../../artifact/shape.js";
import { OnnxGraph, type AttrValue } from "./onnx-graph.js";
import { DT, ModelProto } from "./proto.js";
import { recognise, type Activation, type Gate, type Native } from "./recognise.js";

/** A cell instantiated in layers and directions (the runtime's Model is one): sizes and parameters. */
export interface OnnxLayout {
  /** Dimension sizes of each layer. */
  readonly sizes: readonly Readonly<Record<string, number>>[];
  /** Every parameter, by `cellc run` name. */
  readonly params: ReadonlyMap<string, Tensor>;
  /** The `cellc run` name of a parameter of a layer and direction. */
  name(layer: number, direction: number, base: string): string;
}

/**
 * How the model takes `sequence_lens` or the initial states: `optional` (an input with a default, as an
 * initialiser of the same name: the model runs on X alone, every row T steps long, the states at their
 * declared values, and a runtime that feeds the input overrides the default), `required` (a plain input),
 * or `none` (not an input: the default always applies).
 */
export type InputMode = "optional" | "required" | "none";

export interface OnnxOptions {
  /** The parameters' values become initialisers; false: they are graph inputs. Default true. */
  readonly weights?: boolean;
  readonly bidirectional?: boolean;
  /** Emit ONNX's LSTM / GRU / RNN when the cell is one (default); false: always a Scan. */
  readonly native?: boolean;
  /** Input `sequence_lens [B]`; default optional. */
  readonly sequenceLens?: InputMode;
  /** Inputs `initial_<state> [layers * directions, B, n]`; default optional. */
  readonly initialStates?: InputMode;
}

export interface OnnxExport {
  readonly bytes: Uint8Array;
  /** The operator each layer became. */
  readonly op: "LSTM" | "GRU" | "RNN" | "Scan";
  /** Parameters whose name is an interface name, by their ONNX name (`X` is `param.X`). */
  readonly renamed: ReadonlyMap<string, string>;
}

const OPSET = 17;
/** The default of an optional `sequence_lens`: longer than any sequence, so cut to T. */
const ALL_STEPS = 2 ** 31 - 1;

/**
 * Exports a cell over a whole sequence as an ONNX model with the inputs and outputs of ONNX's recurrent
 * operators: `X [T, B, D]`, `sequence_lens [B]` and `initial_<state> [layers * directions, B, n]`
 * (optional by default), `Y [T, directions, B, H]` and `Y_<state> [directions, B, n]` of the last layer.
 */
export function exportOnnx(ir: CellIR, model: OnnxLayout, opts: OnnxOptions = {}): OnnxExport {
  refuseUnsupported(ir, "cell", true);
  const dirs = opts.bidirectional ? 2 : 1;
  const L = model.sizes.length;
  const reserved = [
    "X",
    "Y",
    "sequence_lens",
    ...ir.states.flatMap((s) => [`initial_${s.name}`, `Y_${s.name}`]),
  ];
  const g = new OnnxGraph();
  const names = new ParamNames(reserved);
  const inDim = ir.inputs[0]!.type.dims[0]!;
  g.inputs.push({
    name: "X",
    elem: DT.float,
    shape: ["T", "B", evalDim(inDim, model.sizes[0]!)],
    doc: "the inputs [T, B, D], time-major",
  });
  const pname = (l: number, d: number, p: string) => names.of(model.name(l, d, p));
  for (let l = 0; l < L; l++)
    for (let d = 0; d < dirs; d++)
      for (const p of ir.params) {
        const name = model.name(l, d, p.name);
        const t = model.params.get(name)!;
        if (opts.weights !== false) g.tensor(names.of(name), DT.float, t.shape, t.data);
        else g.inputs.push({ name: names.of(name), elem: DT.float, shape: t.shape });
      }
  const seq = prelude(g, "X", opts.sequenceLens ?? "optional");
  const inits = initialStates(g, ir, model.sizes, dirs, seq.shapeB, opts.initialStates ?? "optional");
  const native = opts.native === false ? undefined : recognise(ir);
  const r = recurrent(g, ir, model.sizes, dirs, native, pname, "X", seq, inits);
  const outDim = evalDim(ir.graph.node(ir.outputs[0]!.node).type.dims[0]!, model.sizes[L - 1]!);
  g.rename(r.Y, "Y");
  g.outputs.push({
    name: "Y",
    elem: DT.float,
    shape: ["T", dirs, "B", outDim],
    doc: "the last layer's output at every step [T, directions, B, H]; 0 past a row's length",
  });
  ir.states.forEach((s, si) => {
    g.rename(r.finals[si]!, `Y_${s.name}`);
    g.outputs.push({
      name: `Y_${s.name}`,
      elem: DT.float,
      shape: [dirs, "B", evalDim(s.type.dims[0]!, model.sizes[L - 1]!)],
      doc: `the last layer's state at each row's last valid step [directions, B, n]`,
    });
  });
  return { bytes: encode(g), op: native ? native.op : "Scan", renamed: names.renamed };
}

/**
 * Exports a whole network with its parameters as initialisers: `X [T, B, D]` (token ids, int64 `[T, B]`,
 * when it has an embedding) and an optional `sequence_lens [B]` in; the readout's `y` out, `[B, O]` at
 * each row's last valid step (on last) or `[T, B, O]` (on every). The embedding is a Gather; the cell as in
 * `exportOnnx`, its states starting at their declared values; the readout, a stateless cell, is its
 * expression graph in ONNX primitives applied to every row.
 */
export function exportOnnxNetwork(
  net: NetworkIR,
  params: ReadonlyMap<string, Tensor>,
  opts: Pick<OnnxOptions, "native" | "sequenceLens"> = {},
): OnnxExport {
  const a = net.artifact;
  refuseUnsupported(net.cell, "cell", false);
  refuseUnsupported(net.readout, "readout", true);
  if (net.readout.states.length)
    throw new CellcError(`cannot export '${a.name}' to ONNX: its readout has states`);
  const dirs = a.bidirectional ? 2 : 1;
  const g = new OnnxGraph();
  const names = new ParamNames(["X", "y", "sequence_lens"]);
  for (const p of a.params) {
    const t = params.get(p.name);
    if (!t) throw new CellcError(`cannot export '${a.name}': the parameters have no '${p.name}'`);
    const want = p.shape.join(",");
    if (t.shape.join(",") !== want)
      throw new CellcError(
        `cannot export '${a.name}': parameter '${p.name}' has shape [${t.shape.join(", ")}]; the network's is [${p.shape.join(", ")}]`,
      );
    g.tensor(names.of(p.name), DT.float, t.shape, t.data);
  }
  const prefixed = a.layers > 1 || dirs > 1;
  const cellName = (l: number, d: number, p: string) => names.of(layerParamName(prefixed, l, d, p));
  let x = "X";
  if (a.embed) {
    g.inputs.push({ name: "X", elem: DT.int64, shape: ["T", "B"], doc: "token ids [T, B], time-major" });
    x = g.o("Gather", [names.of(a.embed.param), "X"], { axis: { int: 0 } });
  } else
    g.inputs.push({
      name: "X",
      elem: DT.float,
      shape: ["T", "B", a.input.size],
      doc: "the inputs [T, B, D], time-major",
    });
  const seq = prelude(g, "X", opts.sequenceLens ?? "optional");
  const inits = initialStates(g, net.cell, a.sizes, dirs, seq.shapeB, "none");
  const native = opts.native === false ? undefined : recognise(net.cell);
  const r = recurrent(g, net.cell, a.sizes, dirs, native, cellName, x, seq, inits);
  const F = a.features;
  const rows2 = g.o("Reshape", [r.out, g.i64([-1, F])]); // [T * B, F]
  let rows: string;
  if (a.on === "last") {
    // Row b of the last valid step, lens[b] - 1 (a row of zeros where a row is empty, as cellc predicts).
    const last = g.o("Cast", [g.o("Max", [g.o("Sub", [seq.lens, seq.one32]), seq.zero32])], {
      to: { int: DT.int64 },
    });
    const B64 = g.o("Squeeze", [seq.shapeB, g.i64([0])]);
    const batch = g.o("Range", [g.constant(DT.int64, [], [0]), B64, g.constant(DT.int64, [], [1])]);
    const at = g.o("Add", [g.o("Mul", [last, B64]), batch]);
    const picked = g.o("Gather", [rows2, at], { axis: { int: 0 } });
    const some = g.o("Unsqueeze", [g.o("Greater", [seq.lens, seq.zero32]), g.i64([1])]);
    rows = g.o("Where", [some, picked, g.f32(0)]);
  } else rows = rows2;
  const val = emitStep(g, g, net.readout, a.readoutSizes, (n) =>
    n.attrs.role === "input" ? rows : names.of(n.attrs.name!),
  );
  let y = val.get(net.readout.outputs[0]!.node)!;
  if (a.on === "every")
    y = g.o("Reshape", [
      y,
      g.o("Concat", [g.o("Slice", [seq.shapeX, g.i64([0]), g.i64([2])]), g.i64([a.outputSize])], {
        axis: { int: 0 },
      }),
    ]);
  g.rename(y, "y");
  g.outputs.push({
    name: "y",
    elem: DT.float,
    shape: a.on === "last" ? ["B", a.outputSize] : ["T", "B", a.outputSize],
    doc:
      a.on === "last"
        ? "the readout at each row's last valid step [B, O] (of a row of zeros where a row is empty)"
        : "the readout at every step [T, B, O]",
  });
  return { bytes: encode(g), op: native ? native.op : "Scan", renamed: names.renamed };
}

function encode(g: OnnxGraph): Uint8Array {
  return ModelProto.encode(
    ModelProto.fromObject({
      ir_version: 8,
      producer_name: "cellc",
      opset_import: [{ domain: "", version: OPSET }],
      graph: g.proto("cellc"),
    }),
  ).finish();
}

/**
 * ONNX names of parameters: their `cellc run` names, except where one is an interface name (a parameter
 * called `X` or `initial_h`): that one is `param.<name>`, which no contract name can be (a parameter's
 * name is an identifier or `l<k>.[reverse.]<identifier>`).
 */
class ParamNames {
  readonly renamed = new Map<string, string>();
  private readonly reserved: ReadonlySet<string>;
  constructor(reserved: readonly string[]) {
    this.reserved = new Set(reserved);
  }
  of(name: string): string {
    if (!this.reserved.has(name)) return name;
    const to = `param.${name}`;
    this.renamed.set(name, to);
    return to;
  }
}

/** What every layer reads of the sequence: its lengths (cut to T), as int32, int64 and a [T, B, 1] mask. */
interface Prelude {
  readonly shapeX: string;
  /** [B] as a 1-element int64 vector. */
  readonly shapeB: string;
  readonly lens: string;
  readonly lens64: string;
  readonly mask: string;
  readonly zero32: string;
  readonly one32: string;
}

function prelude(g: OnnxGraph, X: string, mode: InputMode): Prelude {
  const shapeX = g.o("Shape", [X]);
  const shapeB = g.o("Slice", [shapeX, g.i64([1]), g.i64([2])]);
  const T32 = g.o("Cast", [g.o("Gather", [shapeX, g.constant(DT.int64, [], [0])])], {
    to: { int: DT.int32 },
  });
  if (mode !== "none") {
    g.inputs.push({
      name: "sequence_lens",
      elem: DT.int32,
      shape: [mode === "required" ? "B" : null],
      doc: `each row's length [B] (longer ones are cut to T)${mode === "optional" ? "; optional: every row T steps long unless fed" : ""}`,
    });
    if (mode === "optional") g.tensor("sequence_lens", DT.int32, [1], [ALL_STEPS]);
  }
  // Lengths longer than T are cut to T; a default of one entry is expanded to every row.
  const lens = g.o("Expand", [mode !== "none" ? g.o("Min", ["sequence_lens", T32]) : T32, shapeB]);
  const lens64 = g.o("Cast", [lens], { to: { int: DT.int64 } });
  const zero32 = g.constant(DT.int32, [], [0]);
  const one32 = g.constant(DT.int32, [], [1]);
  const steps = g.o("Range", [zero32, T32, one32]);
  const mask = g.o("Unsqueeze", [
    g.o("Less", [g.o("Unsqueeze", [steps, g.i64([1])]), g.o("Unsqueeze", [lens, g.i64([0])])]),
    g.i64([2]),
  ]); // [T, B, 1]: step t of row b is valid
  return { shapeX, shapeB, lens, lens64, mask, zero32, one32 };
}

/** Each state's initial values for every layer and direction, [L * dirs, B, n]. */
function initialStates(
  g: OnnxGraph,
  ir: CellIR,
  sizes: readonly Readonly<Record<string, number>>[],
  dirs: number,
  shapeB: string,
  mode: InputMode,
): string[] {
  const rows = sizes.length * dirs;
  return ir.states.map((s) => {
    const n = evalDim(s.type.dims[0]!, sizes[0]!);
    for (const sz of sizes)
      if (evalDim(s.type.dims[0]!, sz) !== n)
        throw new CellcError(
          `cannot export '${ir.name}' to ONNX with these layers: state '${s.name}' changes size between layers, so initial_${s.name} has no single shape`,
        );
    const name = `initial_${s.name}`;
    const fill = new Array<number>(rows * n).fill(s.init);
    let value: string;
    if (mode === "none") value = g.constant(DT.float, [rows, 1, n], fill);
    else {
      value = name;
      g.inputs.push({
        name,
        elem: DT.float,
        shape: [rows, mode === "required" ? "B" : null, n],
        doc: `the initial ${s.name} of every layer and direction [layers * directions, B, n]${mode === "optional" ? `; optional: ${s.init} unless fed` : ""}`,
      });
      // The default has one row, expanded to B; a fed [rows, B, n] passes the Expand unchanged.
      if (mode === "optional") g.tensor(name, DT.float, [rows, 1, n], fill);
    }
    return g.o("Expand", [value, g.o("Concat", [g.i64([rows]), shapeB, g.i64([n])], { axis: { int: 0 } })]);
  });
}

/**
 * The cell over `x` [T, B, D] in layers and directions: `out` [T, B, dirs * H] (the last layer's output,
 * directions concatenated), `Y` [T, dirs, B, H] and each state's final values [dirs, B, n].
 */
function recurrent(
  g: OnnxGraph,
  ir: CellIR,
  sizesOf: readonly Readonly<Record<string, number>>[],
  dirs: number,
  native: Native | undefined,
  pname: (l: number, d: number, p: string) => string,
  x0: string,
  seq: Prelude,
  inits: readonly string[],
): { out: string; Y: string; finals: string[] } {
  let x = x0;
  let Y = "";
  let finals: string[] = [];
  for (let l = 0; l < sizesOf.length; l++) {
    const sizes = sizesOf[l]!;
    if (native) {
      const r = nativeLayer(
        g,
        native,
        x,
        seq.lens,
        inits,
        ir.states.map((s) => s.name),
        l,
        dirs,
        (d, p) => pname(l, d, p),
        evalDim(ir.states[0]!.type.dims[0]!, sizes),
      );
      Y = r.Y;
      finals = r.finals;
      x = g.o("Reshape", [g.o("Transpose", [Y], { perm: { ints: [0, 2, 1, 3] } }), g.i64([0, 0, -1])]);
      continue;
    }
    const ys: string[] = [];
    const fin: string[][] = [];
    for (let d = 0; d < dirs; d++) {
      const k = g.constant(DT.int64, [], [l * dirs + d]);
      const init = inits.map((s) => g.o("Gather", [s, k], { axis: { int: 0 } }));
      const rev = { batch_axis: { int: 1 }, time_axis: { int: 0 } };
      const xs = d ? g.o("ReverseSequence", [x, seq.lens64], rev) : x;
      const body = scanBody(g, ir, sizes, (p) => pname(l, d, p));
      const outs = g.op(
        "Scan",
        [...init, xs, seq.mask],
        { body, num_scan_inputs: { int: 2 } },
        ir.states.length + 1,
      );
      const y = outs[ir.states.length]!;
      ys.push(d ? g.o("ReverseSequence", [y, seq.lens64], rev) : y);
      fin.push(outs.slice(0, ir.states.length));
    }
    x = dirs === 1 ? ys[0]! : g.o("Concat", ys, { axis: { int: 2 } });
    Y =
      dirs === 1
        ? g.o("Unsqueeze", [ys[0]!, g.i64([1])])
        : g.o(
            "Concat",
            ys.map((y) => g.o("Unsqueeze", [y, g.i64([1])])),
            { axis: { int: 1 } },
          );
    finals = ir.states.map((_, si) =>
      g.o(
        "Concat",
        fin.map((f) => g.o("Unsqueeze", [f[si]!, g.i64([0])])),
        { axis: { int: 0 } },
      ),
    );
  }
  return { out: x, Y, finals };
}

function refuseUnsupported(ir: CellIR, what: "cell" | "readout", oneOutput: boolean): void {
  const out0 = ir.outputs[0] && ir.graph.node(ir.outputs[0].node);
  const why =
    ir.inputs.length !== 1
      ? `it has ${ir.inputs.length} inputs (ONNX's recurrent form has one, X)`
      : ir.outputs.length === 0 || (oneOutput && ir.outputs.length !== 1)
        ? `it has ${ir.outputs.length} outputs (ONNX's recurrent form has one, Y)`
        : ir.inputs[0]!.type.dims.length !== 1
          ? `its input '${ir.inputs[0]!.name}' is not a vector`
          : out0!.type.dims.length !== 1
            ? `its output '${ir.outputs[0]!.name}' is not a vector`
            : ir.states.find((s) => s.type.dims.length !== 1)?.name;
  if (why === undefined) return;
  throw new CellcError(
    `cannot export ${what === "cell" ? "cell" : "the readout"} '${ir.name}' to ONNX: ${why.includes(" ") ? why : `its state '${why}' is not a vector`}`,
  );
}

/**
 * The ONNX values of a step's expression graph over rows [N, ...] (a Scan body's batch, or every row of a
 * sequence). `leaf` names the value of each input, state and parameter leaf; weights are sliced and
 * transposed once, in `outer` (outside a Scan's loop).
 */
function emitStep(
  b: OnnxGraph,
  outer: OnnxGraph,
  ir: CellIR,
  sizes: Readonly<Record<string, number>>,
  leaf: (n: CellIR["graph"]["nodes"][number]) => string,
): Map<NodeId, string> {
  const val = new Map<NodeId, string>();
  const weights = new Map<string, string>();
  const weightT = (p: string, c0: number, c1: number) => {
    const key = `${c0}|${c1}|${p}`;
    if (!weights.has(key))
      weights.set(
        key,
        outer.o("Transpose", [outer.o("Slice", [p, outer.i64([c0]), outer.i64([c1]), outer.i64([1])])]),
      );
    return weights.get(key)!;
  };
  const get = (id: NodeId) => val.get(id)!;
  const live = reachableNodes(ir);
  for (const n of ir.graph.nodes) {
    if (!live.has(n.id)) continue;
    const a = n.args.map(get);
    let v: string;
    switch (n.op) {
      case "leaf":
        v = leaf(n);
        break;
      case "const":
        v = b.f32(n.attrs.value!);
        break;
      case "dim":
        v = b.f32(evalDim(n.attrs.dim!, sizes));
        break;
      case "gt":
        v = b.o("Cast", [b.o("Greater", a)], { to: { int: DT.float } });
        break;
      case "sum":
        v = b.o("ReduceSum", [a[0]!, b.i64([1])], { keepdims: { int: 1 } });
        break;
      case "matvec":
        v = b.o("MatMul", [a[1]!, weightT(a[0]!, evalDim(n.attrs.c0!, sizes), evalDim(n.attrs.c1!, sizes))]);
        break;
      case "concat":
        v = b.o("Concat", a, { axis: { int: 1 } });
        break;
      case "slice": {
        const s = evalDim(n.attrs.start!, sizes);
        v = b.o("Slice", [a[0]!, b.i64([s]), b.i64([s + evalDim(n.attrs.len!, sizes)]), b.i64([1])]);
        break;
      }
      default: {
        const op = ELEMENTWISE[n.op];
        if (!op) throw new Error(`ONNX export: ${n.op} in a forward step`);
        v = b.o(op, a);
      }
    }
    val.set(n.id, v);
  }
  return val;
}

/** The cell's step as a Scan body: states and (x_t, mask_t) in, masked next states and output out. */
function scanBody(
  outer: OnnxGraph,
  ir: CellIR,
  sizes: Readonly<Record<string, number>>,
  pname: (p: string) => string,
): OnnxGraph {
  const b = outer.sub();
  const stateIn = new Map<string, string>();
  for (const s of ir.states) {
    const v = b.fresh();
    stateIn.set(s.name, v);
    b.inputs.push({ name: v, elem: DT.float, shape: ["B", evalDim(s.type.dims[0]!, sizes)] });
  }
  const xt = b.fresh();
  b.inputs.push({ name: xt, elem: DT.float, shape: ["B", evalDim(ir.inputs[0]!.type.dims[0]!, sizes)] });
  const mt = b.fresh();
  b.inputs.push({ name: mt, elem: DT.bool, shape: ["B", 1] });
  const val = emitStep(b, outer, ir, sizes, (n) =>
    n.attrs.role === "input"
      ? xt
      : n.attrs.role === "state"
        ? stateIn.get(n.attrs.name!)!
        : pname(n.attrs.name!),
  );
  for (const s of ir.states) {
    const next = val.get(ir.next.find((x) => x.state === s.name)!.node)!;
    const out = b.o("Where", [mt, next, stateIn.get(s.name)!]);
    b.outputs.push({ name: out, elem: DT.float, shape: ["B", evalDim(s.type.dims[0]!, sizes)] });
  }
  const y = b.o("Where", [mt, val.get(ir.outputs[0]!.node)!, b.f32(0)]);
  const outDim = evalDim(ir.graph.node(ir.outputs[0]!.node).type.dims[0]!, sizes);
  b.outputs.push({ name: y, elem: DT.float, shape: ["B", outDim] });
  return b;
}

const ELEMENTWISE: Readonly<Record<string, string>> = {
  add: "Add",
  sub: "Sub",
  mul: "Mul",
  div: "Div",
  neg: "Neg",
  sigmoid: "Sigmoid",
  tanh: "Tanh",
  relu: "Relu",
  exp: "Exp",
  log: "Log",
  sqrt: "Sqrt",
  softplus: "Softplus",
  softsign: "Softsign",
  abs: "Abs",
  min: "Min",
  max: "Max",
};
/** ONNX's LSTM, GRU or RNN for one layer, both directions, weights packed in ONNX's gate order. */
function nativeLayer(
  g: OnnxGraph,
  nat: Native,
  x: string,
  lens: string,
  inits: readonly string[],
  stateNames: readonly string[],
  l: number,
  dirs: number,
  pname: (d: number, p: string) => string,
  H: number,
): { Y: string; finals: string[] } {
  const gates: Gate[] =
    nat.op === "LSTM"
      ? [nat.gates.i, nat.gates.o, nat.gates.f, nat.gates.c]
      : nat.op === "GRU"
        ? [nat.gates.z, nat.gates.r, nat.gates.h]
        : [nat.gate];
  const zeros = g.constant(DT.float, [H], new Array<number>(H).fill(0));
  const sum = (d: number, ps: readonly string[] | undefined) =>
    (ps ?? []).reduce((acc, p) => (acc === zeros ? pname(d, p) : g.o("Add", [acc, pname(d, p)])), zeros);
  const stack = (per: (d: number) => string[]) =>
    g.o(
      "Concat",
      Array.from({ length: dirs }, (_, d) =>
        g.o("Unsqueeze", [g.o("Concat", per(d), { axis: { int: 0 } }), g.i64([0])]),
      ),
      { axis: { int: 0 } },
    );
  const W = stack((d) => gates.map((q) => pname(d, q.W)));
  const R = stack((d) => gates.map((q) => pname(d, q.U)));
  const B = stack((d) => [...gates.map((q) => sum(d, q.biases)), ...gates.map((q) => sum(d, q.inner))]);
  const rows = g.i64([l * dirs]);
  const rowsEnd = g.i64([(l + 1) * dirs]);
  // `inits` and the result follow the cell's state order; the operator's is h, then c.
  const stateOrder = nat.op === "LSTM" ? [nat.h, nat.c] : [nat.h];
  const init = stateOrder.map((s) =>
    g.o("Slice", [inits[stateNames.indexOf(s)]!, rows, rowsEnd, g.i64([0])]),
  );
  const inputs = [x, W, R, B, lens, ...init];
  if (nat.op === "LSTM" && gates.slice(0, 3).some((q) => q.peephole)) {
    const P = stack((d) => gates.slice(0, 3).map((q) => (q.peephole ? pname(d, q.peephole) : zeros)));
    inputs.push(P);
  }
  const acts: Activation[] = [];
  for (let d = 0; d < dirs; d++) acts.push(...nat.acts);
  const attrs: Record<string, AttrValue> = {
    hidden_size: { int: H },
    direction: { str: dirs === 2 ? "bidirectional" : "forward" },
    activations: { strings: acts.map((a) => a.name) },
  };
  const alphas = acts.filter((a) => a.alpha !== undefined).map((a) => a.alpha!);
  const betas = acts.filter((a) => a.beta !== undefined).map((a) => a.beta!);
  if (alphas.length) attrs.activation_alpha = { floats: alphas };
  if (betas.length) attrs.activation_beta = { floats: betas };
  if (nat.op === "GRU") attrs.linear_before_reset = { int: nat.linearBeforeReset };
  const outs = g.op(nat.op, inputs, attrs, 1 + stateOrder.length);
  return { Y: outs[0]!, finals: stateNames.map((s) => outs[1 + stateOrder.indexOf(s)]!) };
}
