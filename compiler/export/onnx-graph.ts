import { AT, DT } from "./proto.js";

/** Attribute values as the exporter writes them; the ONNX attribute type follows from the JS type. */
export type AttrValue =
  | number
  | { int: number }
  | { ints: number[] }
  | { floats: number[] }
  | { strings: string[] }
  | { str: string }
  | { tensor: object }
  | OnnxGraph;

export interface ValueInfo {
  readonly name: string;
  readonly elem: number;
  /** A size, a symbolic name (`T`, `B`), or null for a size the graph does not fix. */
  readonly shape: readonly (number | string | null)[];
  /** What it is, for a reader of the model (a viewer shows it). */
  readonly doc?: string;
}

/**
 * A graph under construction. Value and node names are generated (`%<n>`, `%n<n>`), shared with subgraphs
 * through one counter so that a Scan body never shadows an outer name; `%` is in no cellc identifier, so no
 * generated name is ever a parameter's, a state's or an interface name. Only the graph's own inputs, outputs
 * and initialisers carry the contract names (`X`, `Y_h`, `l0.Wi`).
 */
export class OnnxGraph {
  readonly nodes: object[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  readonly initializers: object[] = [];
  private readonly consts = new Map<string, string>();

  constructor(private readonly counter: { n: number } = { n: 0 }) {}

  fresh(): string {
    return `%${this.counter.n++}`;
  }
  sub(): OnnxGraph {
    return new OnnxGraph(this.counter);
  }

  op(type: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, nOut = 1): string[] {
    const outputs = Array.from({ length: nOut }, () => this.fresh());
    this.nodes.push({
      input: inputs,
      output: outputs,
      name: `%n${this.counter.n++}`,
      op_type: type,
      attribute: Object.entries(attrs).map(([name, v]) => attribute(name, v)),
    });
    return outputs;
  }
  /** One-output node. */
  o(type: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}): string {
    return this.op(type, inputs, attrs)[0]!;
  }

  /** Gives a value a contract name (a graph output). */
  rename(from: string, to: string): void {
    this.nodes.push({
      input: [from],
      output: [to],
      name: `%n${this.counter.n++}`,
      op_type: "Identity",
      attribute: [],
    });
  }

  tensor(name: string, elem: number, dims: readonly number[], data: ArrayLike<number>): void {
    this.initializers.push(tensorProto(name, elem, dims, data));
  }
  /** A constant (f32 scalar, or int64/int32 vector), stored once per graph as a Constant node. */
  constant(elem: number, dims: readonly number[], data: readonly number[]): string {
    const key = `${elem}|${dims.join(",")}|${data.join(",")}`;
    const hit = this.consts.get(key);
    if (hit) return hit;
    const out = this.o("Constant", [], { value: { tensor: tensorProto("", elem, dims, data) } });
    this.consts.set(key, out);
    return out;
  }
  f32(v: number): string {
    return this.constant(DT.float, [], [v]);
  }
  i64(vs: readonly number[]): string {
    return this.constant(DT.int64, [vs.length], vs);
  }

  proto(name: string): object {
    return {
      name,
      node: this.nodes,
      initializer: this.initializers,
      input: this.inputs.map(valueInfo),
      output: this.outputs.map(valueInfo),
    };
  }
}

function valueInfo(v: ValueInfo): object {
  return {
    name: v.name,
    ...(v.doc ? { doc_string: v.doc } : {}),
    type: {
      tensor_type: {
        elem_type: v.elem,
        shape: {
          dim: v.shape.map((d) =>
            typeof d === "number" ? { dim_value: d } : d === null ? {} : { dim_param: d },
          ),
        },
      },
    },
  };
}

export function tensorProto(
  name: string,
  elem: number,
  dims: readonly number[],
  data: ArrayLike<number>,
): object {
  const n = data.length;
  let raw: Uint8Array;
  if (elem === DT.float) raw = new Uint8Array(Float32Array.from(data).buffer);
  else if (elem === DT.int32) raw = new Uint8Array(Int32Array.from(data).buffer);
  else if (elem === DT.int64)
    raw = new Uint8Array(BigInt64Array.from(Array.from(data, (x) => BigInt(x))).buffer);
  else if (elem === DT.bool) raw = Uint8Array.from(data);
  else throw new Error(`tensorProto: element type ${elem}`);
  if (n !== dims.reduce((a, b) => a * b, 1)) throw new Error("tensorProto: size does not match dims");
  return { name, data_type: elem, dims, raw_data: raw };
}

function attribute(name: string, v: AttrValue): object {
  if (v instanceof OnnxGraph) return { name, type: AT.graph, g: v.proto(name) };
  if (typeof v === "number") return { name, type: AT.float, f: v };
  if ("int" in v) return { name, type: AT.int, i: v.int };
  if ("ints" in v) return { name, type: AT.ints, ints: v.ints };
  if ("floats" in v) return { name, type: AT.floats, floats: v.floats };
  if ("str" in v) return { name, type: AT.string, s: new TextEncoder().encode(v.str) };
  if ("strings" in v)
    return { name, type: AT.strings, strings: v.strings.map((x) => new TextEncoder().encode(x)) };
  return { name, type: AT.tensor, t: v.tensor };
}
