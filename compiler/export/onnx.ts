import { reachableNodes } from "../ir/cell.js";
import { CellcError, type Tensor } from "../../artifact/tensor.js";
import type { CellIR } from "../ir/cell.js";
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

export interface OnnxOptions {
  /** The parameters' values become initialisers; false: they are graph inputs. Default true. */
  readonly weights?: boolean;
  readonly bidirectional?: boolean;
  /** Emit ONNX's LSTM / GRU / RNN when the cell is one (default); false: always a Scan. */
  readonly native?: boolean;
  /** Input `sequence_lens` (default); false: every row is T steps long. */
  readonly sequenceLens?: boolean;
  /** Inputs `initial_<state>` (default); false: the states start at their declared values. */
  readonly initialStates?: boolean;
}

export interface OnnxExport {
  readonly bytes: Uint8Array;
  /** The operator each layer became. */
  readonly op: "LSTM" | "GRU" | "RNN" | "Scan";
}

const OPSET = 17;

/**
 * Exports a cell over a whole sequence as an ONNX model with the inputs and outputs of ONNX's recurrent
 * operators: `X [T, B, D]`, `sequence_lens [B]` , `initial_<state> [layers *
 * directions, B, n]`, `Y [T, directions, B, H]` and `Y_<state>
 * [directions, B, n]` of the last layer.
 */
export function exportOnnx(ir: CellIR, model: OnnxLayout, opts: OnnxOptions = {}): OnnxExport {
  refuseUnsupported(ir);
  const L = model.sizes.length;
  const dirs = opts.bidirectional ? 2 : 1;
  const native = opts.native === false ? undefined : recognise(ir);
  const g = new OnnxGraph();
  const inDim = ir.inputs[0]!.type.dims[0]!;
  g.inputs.push({ name: "X", elem: DT.float, shape: ["T", "B", evalDim(inDim, model.sizes[0]!)] });
  for (let l = 0; l < L; l++)
    for (let d = 0; d < dirs; d++)
      for (const p of ir.params) {
        const name = model.name(l, d, p.name);
        const t = model.params.get(name)!;
        if (opts.weights !== false) g.tensor(name, DT.float, t.shape, t.data);
        else g.inputs.push({ name, elem: DT.float, shape: t.shape });
      }

  // Lengths longer than T are cut to T.
  const shapeX = g.o("Shape", ["X"]);
  const shapeB = g.o("Slice", [shapeX, g.i64([1]), g.i64([2])]);
  const T32 = g.o("Cast", [g.o("Gather", [shapeX, g.constant(DT.int64, [], [0])])], {
    to: { int: DT.int32 },
  });
  if (opts.sequenceLens !== false) g.inputs.push({ name: "sequence_lens", elem: DT.int32, shape: ["B"] });
  const lens = g.o("Expand", [
    opts.sequenceLens !== false ? g.o("Min", ["sequence_lens", T32]) : T32,
    shapeB,
  ]);
  const lens64 = g.o("Cast", [lens], { to: { int: DT.int64 } });
  const steps = g.o("Range", [g.constant(DT.int32, [], [0]), T32, g.constant(DT.int32, [], [1])]);
  const mask = g.o("Unsqueeze", [
    g.o("Less", [g.o("Unsqueeze", [steps, g.i64([1])]), g.o("Unsqueeze", [lens, g.i64([0])])]),
    g.i64([2]),
  ]); // [T, B, 1]: step t of row b is valid

  const inits = ir.states.map((s) => {
    const n = evalDim(s.type.dims[0]!, model.sizes[0]!);
    for (const sz of model.sizes)
      if (evalDim(s.type.dims[0]!, sz) !== n)
        throw new CellcError(
          `cannot export '${ir.name}' to ONNX with these layers: state '${s.name}' changes size between layers, so initial_${s.name} has no single shape`,
        );
    const name = `initial_${s.name}`;
    if (opts.initialStates !== false) {
      g.inputs.push({ name, elem: DT.float, shape: [L * dirs, "B", n] });
      return name;
    }
    // Not an overridable initialiser: ONNX Runtime folds those as constants here, ignoring what is fed.
    const value = g.constant(DT.float, [L * dirs, 1, n], new Array<number>(L * dirs * n).fill(s.init));
    return g.o("Expand", [
      value,
      g.o("Concat", [g.i64([L * dirs]), shapeB, g.i64([n])], { axis: { int: 0 } }),
    ]);
  });

  let x = "X";
  let Y = "";
  let finals: string[] = [];
  for (let l = 0; l < L; l++) {
    const sizes = model.sizes[l]!;
    const pname = (d: number, p: string) => model.name(l, d, p);
    if (native) {
      const r = nativeLayer(
        g,
        native,
        x,
        lens,
        inits,
        ir.states.map((s) => s.name),
        l,
        dirs,
        pname,
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
      const xs = d
        ? g.o("ReverseSequence", [x, lens64], { batch_axis: { int: 1 }, time_axis: { int: 0 } })
        : x;
      const body = scanBody(g, ir, sizes, (p) => pname(d, p));
      const outs = g.op(
        "Scan",
        [...init, xs, mask],
        { body, num_scan_inputs: { int: 2 } },
        ir.states.length + 1,
      );
      const y = outs[ir.states.length]!;
      ys.push(d ? g.o("ReverseSequence", [y, lens64], { batch_axis: { int: 1 }, time_axis: { int: 0 } }) : y);
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
  const outDim = evalDim(ir.graph.node(ir.outputs[0]!.node).type.dims[0]!, model.sizes[L - 1]!);
  g.rename(Y, "Y");
  g.outputs.push({ name: "Y", elem: DT.float, shape: ["T", dirs, "B", outDim] });
  ir.states.forEach((s, si) => {
    g.rename(finals[si]!, `Y_${s.name}`);
    g.outputs.push({
      name: `Y_${s.name}`,
      elem: DT.float,
      shape: [dirs, "B", evalDim(s.type.dims[0]!, model.sizes[L - 1]!)],
    });
  });
  const bytes = ModelProto.encode(
    ModelProto.fromObject({
      ir_version: 8,
      producer_name: "cellc",
      opset_import: [{ domain: "", version: OPSET }],
      graph: g.proto("cellc"),
    }),
  ).finish();
  return { bytes, op: native ? native.op : "Scan" };
}

function refuseUnsupported(ir: CellIR): void {
  const why =
    ir.inputs.length !== 1
      ? `it has ${ir.inputs.length} inputs (ONNX's recurrent form has one, X)`
      : ir.outputs.length !== 1
        ? `it has ${ir.outputs.length} outputs (ONNX's recurrent form has one, Y)`
        : ir.inputs[0]!.type.dims.length !== 1
          ? `its input '${ir.inputs[0]!.name}' is not a vector`
          : ir.graph.node(ir.outputs[0]!.node).type.dims.length !== 1
            ? `its output '${ir.outputs[0]!.name}' is not a vector`
            : ir.states.find((s) => s.type.dims.length !== 1)?.name;
  if (why === undefined) return;
  throw new CellcError(
    `cannot export cell '${ir.name}' to ONNX: ${why.includes(" ") ? why : `its state '${why}' is not a vector`}`,
  );
}

/** The cell's step as a Scan body: states and (x_t, mask_t) in, masked next states and output out. */
function scanBody(
  outer: OnnxGraph,
  ir: CellIR,
  sizes: Readonly<Record<string, number>>,
  pname: (p: string) => string,
): OnnxGraph {
  const b = outer.sub();
  const val = new Map<NodeId, string>();
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
  // Weights are sliced and transposed once, outside the loop.
  const weights = new Map<string, string>();
  const weightT = (p: string, c0: number, c1: number) => {
    const key = `${p}|${c0}|${c1}`;
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
        v =
          n.attrs.role === "input"
            ? xt
            : n.attrs.role === "state"
              ? stateIn.get(n.attrs.name!)!
              : pname(n.attrs.name!);
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
        v = b.o("MatMul", [
          a[1]!,
          weightT(
            pname(ir.graph.node(n.args[0]!).attrs.name!),
            evalDim(n.attrs.c0!, sizes),
            evalDim(n.attrs.c1!, sizes),
          ),
        ]);
        break;
      case "concat":
        v = b.o("Concat", a, { axis: { int: 1 } });
        break;
      case "slice": {
        const s = evalDim(n.attrs.start!, sizes);
        v = b.o("Slice", [a[0]!, b.i64([s]), b.i64([s + evalDim(n.attrs.len!, sizes)]), b.i64([1])]);
        break;
      }
      case "sumbatch":
        throw new Error("sumbatch in a forward step");
      default:
        v = b.o(ELEMENTWISE[n.op]!, a);
    }
    val.set(n.id, v);
  }
  for (const s of ir.states) {
    const next = get(ir.next.find((x) => x.state === s.name)!.node);
    const out = b.o("Where", [mt, next, stateIn.get(s.name)!]);
    b.outputs.push({ name: out, elem: DT.float, shape: ["B", evalDim(s.type.dims[0]!, sizes)] });
  }
  const y = b.o("Where", [mt, get(ir.outputs[0]!.node), b.f32(0)]);
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
