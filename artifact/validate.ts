// Checks that a value read from JSON (an artifact file, a run folder's network.json, a checkpoint's state)
// has the shape its type says, before anything uses it: each field's type and range, and the references
// between fields. A failure is a CellcError that names the field by its path (`cell.signature.inputs[0].name`).
// The schema helpers are small on purpose: a schema is a function of (value, path) that returns the value
// typed, or throws.
import { KERNEL_NAMES, type KernelName } from "./schedule.js";
import type { Artifact, WgslDispatch } from "./artifact.js";
import type { WasmStep } from "./wasm.js";
import type { Dim, Type } from "./shape.js";
import { CellcError } from "./tensor.js";
import type { InitSpec } from "./init.js";
import { MAX_LAYERS, type NetworkArtifact } from "./network.js";

export type Check<T> = (v: unknown, path: string) => T;

/** A value as an error shows it: short, whatever it is. */
export function shown(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return "null";
  if (typeof v === "object") return "an object";
  return typeof v === "function" ? "a function" : typeof v === "symbol" ? "a symbol" : String(v);
}

export function bad(path: string, want: string, v: unknown): never {
  throw new CellcError(`'${path}' must be ${want}, got ${shown(v)}`);
}
const badField = bad;

/** Prefixes a schema's error with where the value came from. */
export function within<T>(where: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof CellcError) throw new CellcError(`${where}: ${e.message}`);
    throw e;
  }
}

export const str =
  (max = 1 << 20): Check<string> =>
  (v, p) =>
    typeof v === "string" && v.length <= max ? v : bad(p, `text of at most ${max} characters`, v);
export const name: Check<string> = (v, p) =>
  typeof v === "string" && /^[A-Za-z_][A-Za-z0-9_]{0,199}$/.test(v) ? v : bad(p, "a name", v);
export const int =
  (lo: number, hi: number): Check<number> =>
  (v, p) =>
    Number.isSafeInteger(v) && (v as number) >= lo && (v as number) <= hi
      ? (v as number)
      : bad(p, `a whole number from ${lo} to ${hi}`, v);
export const finite: Check<number> = (v, p) =>
  typeof v === "number" && Number.isFinite(v) ? v : bad(p, "a finite number", v);
export const bool: Check<boolean> = (v, p) => (typeof v === "boolean" ? v : bad(p, "true or false", v));
export const oneOf =
  <T extends string | number>(...values: T[]): Check<T> =>
  (v, p) =>
    values.includes(v as T)
      ? (v as T)
      : bad(p, `one of ${values.map((x) => JSON.stringify(x)).join(", ")}`, v);
export const arr =
  <T>(item: Check<T>, max = 1 << 20): Check<T[]> =>
  (v, p) => {
    if (!Array.isArray(v) || v.length > max) bad(p, `an array of at most ${max} items`, v);
    // A loop, not map(): map skips the holes of a sparse array, which must fail as missing items.
    const out: T[] = [];
    for (let i = 0; i < (v as unknown[]).length; i++) out.push(item((v as unknown[])[i], `${p}[${i}]`));
    return out;
  };
export const opt =
  <T>(c: Check<T>): Check<T | undefined> =>
  (v, p) =>
    v === undefined ? undefined : c(v, p);
/** A WebAssembly module in base64 (checked as WebAssembly where it is instantiated). */
const base64Module = (v: unknown, p: string): string =>
  typeof v === "string" && v.length <= 256 << 20 && /^[A-Za-z0-9+/]*={0,2}$/.test(v)
    ? v
    : bad(p, "a WebAssembly module in base64", v);
export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
/** An object with these fields (own properties only; others are ignored). */
export const obj =
  <T>(fields: { readonly [K in keyof T]-?: Check<T[K]> }): Check<T> =>
  (v, p) => {
    if (!isObject(v)) bad(p, "an object", v);
    const o = v as Record<string, unknown>;
    for (const [k, c] of Object.entries(fields) as [string, Check<unknown>][])
      (c as Check<unknown>)(Object.hasOwn(o, k) ? o[k] : undefined, p ? `${p}.${k}` : k);
    return v as T;
  };
/** An object used as a map from names to values (no prototype lookups). */
export const record =
  <T>(value: Check<T>, key: Check<string> = name, max = 1000): Check<Record<string, T>> =>
  (v, p) => {
    if (!isObject(v)) bad(p, "an object", v);
    const keys = Object.keys(v as object);
    if (keys.length > max) bad(p, `an object of at most ${max} fields`, v);
    for (const k of keys) {
      key(k, `${p} key`);
      value((v as Record<string, unknown>)[k], `${p}.${k}`);
    }
    return v as Record<string, T>;
  };

/** Sizes and coefficients far past anything real, small enough that their products stay exact. */
const BIG = 2 ** 32;
export const dim: Check<Dim> = obj<Dim>({ terms: record(int(-BIG, BIG)), c: int(-BIG, BIG) });
export const type: Check<Type> = obj<Type>({ dims: arr(dim, 2), batched: bool });
export const initSpec: Check<InitSpec> = (v, p) => {
  const kind = obj<{ kind: string }>({ kind: oneOf("const", "uniform", "normal", "xavier", "orthogonal") })(
    v,
    p,
  ).kind;
  const o = opt(finite);
  if (kind === "const") obj({ kind: str(), value: finite })(v, p);
  else if (kind === "uniform") obj({ kind: str(), lo: o, hi: o })(v, p);
  else if (kind === "normal") obj({ kind: str(), mean: finite, std: finite })(v, p);
  else obj({ kind: str(), gain: finite })(v, p);
  return v as InitSpec;
};

const extent = obj({ rows: bool, dim: opt(dim) });
const dispatch: Check<WgslDispatch> = (v, p) => {
  const kind = obj({ kind: oneOf("linear", "tiles", "rows") })(v, p).kind;
  if (kind === "linear") obj({ kind: str(), extent })(v, p);
  else if (kind === "tiles")
    obj({
      kind: str(),
      x: extent,
      y: extent,
      tile: int(1, 256),
      tileY: int(1, 256),
      threads: (t, q) => {
        const a = arr(int(1, 1024), 2)(t, q);
        return a.length === 2 ? (a as [number, number]) : bad(q, "[x, y] invocations", t);
      },
    })(v, p);
  else obj({ kind: str(), rows: extent })(v, p);
  return v as WgslDispatch;
};
const operand = obj({ slot: int(0, 1 << 16), col: dim, ld: dim });
const wasmStep: Check<WasmStep> = (v, p) => {
  const kind = obj({ kind: oneOf("call", "gemm", "tn") })(v, p).kind;
  const rows = oneOf("all", "one");
  if (kind === "call")
    obj({ kind: str(), fn: name, rows, split: bool, width: dim, slots: arr(int(0, 1 << 16), 1 << 16) })(v, p);
  else
    obj({
      kind: str(),
      form: kind === "gemm" ? oneOf("nt", "nn") : opt(str()),
      out: operand,
      left: operand,
      right: operand,
      M: dim,
      K: dim,
      rows,
    })(v, p);
  return v as WasmStep;
};
const kernelsOf = <T>(c: Check<T>): Check<Record<KernelName, T>> =>
  obj(Object.fromEntries(KERNEL_NAMES.map((k) => [k, c])) as Record<KernelName, Check<T>>);

const signature = obj({
  name: str(1000),
  dims: arr(name, 1000),
  inputs: arr(obj({ name: name, type }), 1000),
  states: arr(obj({ name: name, type, init: finite }), 1000),
  params: arr(obj({ name: name, type, init: initSpec }), 10000),
  outputs: arr(obj({ name: name, type, state: opt(int(0, 1000)) }), 1000),
  unusedParams: opt(arr(name, 10000)),
});

const artifactSchema = obj<Artifact>({
  format: oneOf("cellc-artifact"),
  version: oneOf(1),
  signature,
  buffers: arr(
    obj({
      kind: oneOf("input", "state", "output", "param", "pack", "tape", "grad_output", "grad_state", "grad_input", "grad_param", "grad_pack", "gtape", "carry", "coef"), // prettier-ignore
      index: int(0, 1 << 20),
      name: str(1000),
      type,
      extent: oneOf("seq", "seq1", "batch", "one"),
      arena: oneOf("mem", "pmem"),
    }),
    1 << 16,
  ),
  packs: arr(
    obj({
      rows: dim,
      cols: dim,
      blocks: arr(obj({ param: int(0, 1 << 20), row0: dim, rows: dim, c0: dim, c1: dim }), 1 << 16),
      phase: oneOf("before", "step"),
    }),
    1 << 16,
  ),
  kernels: kernelsOf(
    obj({
      rows: oneOf("B", "TB"),
      bindings: arr(obj({ buffer: int(0, 1 << 16), shift: oneOf(0, 1) }), 1 << 16),
      masks: bool,
    }),
  ),
  scans: opt(
    arr(
      obj({
        state: int(0, 1000),
        buffer: int(0, 1 << 16),
        grad: int(0, 1 << 16),
        coef: int(0, 1 << 16),
      }),
      1000,
    ),
  ),
  js: opt(str(64 << 20)),
  wgsl: opt(
    kernelsOf(
      obj({
        code: str(64 << 20),
        codeSubgroups: opt(str(64 << 20)),
        codeF16: opt(str(64 << 20)),
        codeF16Subgroups: opt(str(64 << 20)),
        entries: arr(
          obj({
            name: name,
            dispatch,
            phase: oneOf("run", "premask", "postmask"),
            gemm: opt(obj({ x: extent, y: extent, inner: extent })),
          }),
          1000,
        ),
        scratch: arr(type, 1 << 16),
      }),
    ),
  ),
  wasm: opt(
    obj({
      module: base64Module,
      relaxed: opt(base64Module),
      kernels: kernelsOf((v, p) =>
        isObject(v) && Object.hasOwn(v, "fallback")
          ? obj({ fallback: str() })(v, p)
          : obj({ scratch: arr(type, 1 << 16), steps: arr(wasmStep, 1 << 16) })(v, p),
      ),
    }),
  ),
});

/** A cell artifact's structure, and the references between its parts (`where` names it in errors). */
export function checkArtifact(a: unknown, where = "the artifact"): Artifact {
  return within(where, () => artifactFields(a, ""));
}

/** checkArtifact's checks, for the artifact at `base` of a larger value (a network's `cell`). */
function artifactFields(a: unknown, base: string): Artifact {
  const bad = (path: string, want: string, v: unknown): never =>
    badField(base ? `${base}.${path}` : path, want, v);
  const art = artifactSchema(a, base);
  const sig = art.signature;
  const dims = new Set(sig.dims);
  if (dims.size !== sig.dims.length) bad("signature.dims", "distinct names", sig.dims.join(", "));
  // Every dimension anywhere (types, packs, the wasm steps, the WGSL dispatches) is over the signature's.
  (function walk(v: unknown, path: string): void {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`));
    else if (isObject(v)) {
      if (Object.hasOwn(v, "terms") && Object.hasOwn(v, "c")) {
        if (!isObject(v.terms)) bad(`${path}.terms`, "a dimension's terms", v.terms);
        for (const n of Object.keys(v.terms as object))
          if (!dims.has(n)) bad(`${path}.terms`, "over the signature's dimensions", n);
      } else for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
    }
  })({ ...art, js: undefined, wasm: art.wasm && { ...art.wasm, module: undefined } }, "");
  sig.outputs.forEach((o, i) => {
    if (o.state !== undefined && o.state >= sig.states.length)
      bad(`signature.outputs[${i}].state`, `a state's index (below ${sig.states.length})`, o.state);
  });
  const counts: Record<string, number> = {
    input: sig.inputs.length,
    state: sig.states.length,
    output: sig.outputs.length,
    param: sig.params.length,
    pack: art.packs.length,
  };
  // The buffers of the signature's tensors and of the packs have their types; each (kind, index) is one
  // buffer, and every input, state, output, parameter and pack has its own.
  const typeOf = (kind: string, index: number): Type | undefined => {
    const base = kind.replace(/^grad_/, "");
    if (base === "input") return sig.inputs[index]?.type;
    if (base === "state" || base === "carry") return sig.states[index]?.type;
    if (base === "output") return sig.outputs[index]?.type;
    if (base === "param") return sig.params[index]?.type;
    if (base === "pack") {
      const pk = art.packs[index];
      return pk && { dims: [pk.rows, pk.cols], batched: false };
    }
    return undefined;
  };
  const seen = new Set<string>();
  art.buffers.forEach((b, i) => {
    const n = counts[b.kind.replace(/^grad_/, "").replace("carry", "state")];
    if (n !== undefined && b.index >= n) bad(`buffers[${i}].index`, `below ${n} (the ${b.kind}s)`, b.index);
    const key = `${b.kind}/${b.index}`;
    if (seen.has(key)) bad(`buffers[${i}]`, `the only ${b.kind} buffer ${b.index}`, key);
    seen.add(key);
    const want = typeOf(b.kind, b.index);
    if (want && !sameType(b.type, want)) bad(`buffers[${i}].type`, `the type of ${b.kind} ${b.index} in the signature`, b.type); // prettier-ignore
  });
  for (const [kind, n] of [
    ["input", sig.inputs.length],
    ["state", sig.states.length],
    ["output", sig.outputs.length],
    ["param", sig.params.length],
    ["pack", art.packs.length],
    ["grad_param", sig.params.length],
    ["grad_pack", art.packs.length],
  ] as const)
    // prettier-ignore
    for (let k = 0; k < n; k++) if (!seen.has(`${kind}/${k}`)) bad("buffers", `a ${kind} buffer ${k}`, undefined);
  art.packs.forEach((pk, i) =>
    pk.blocks.forEach((bl, j) => {
      if (bl.param >= sig.params.length)
        bad(`packs[${i}].blocks[${j}].param`, `a parameter's index (below ${sig.params.length})`, bl.param);
      if (sig.params[bl.param]!.type.dims.length !== 2)
        bad(`packs[${i}].blocks[${j}].param`, "a matrix parameter", bl.param);
    }),
  );
  for (const k of KERNEL_NAMES)
    art.kernels[k].bindings.forEach((b, i) => {
      if (b.buffer >= art.buffers.length)
        bad(`kernels.${k}.bindings[${i}].buffer`, `a buffer's index (below ${art.buffers.length})`, b.buffer);
    });
  // A scan state's buffers: the state's own, its gradient's, and a coefficient buffer.
  (art.scans ?? []).forEach((sc, i) => {
    if (sc.state >= sig.states.length) bad(`scans[${i}].state`, `a state's index (below ${sig.states.length})`, sc.state); // prettier-ignore
    for (const [field, kind] of [
      ["buffer", "state"],
      ["grad", "grad_state"],
      ["coef", "coef"],
    ] as const) {
      const b = art.buffers[sc[field]];
      if (!b || b.kind !== kind || (kind !== "coef" && b.index !== sc.state))
        bad(`scans[${i}].${field}`, `the ${kind} buffer of state ${sc.state}`, sc[field]);
    }
  });
  return art;
}

const size = int(1, BIG);
const sizes = record(size);

const networkSchema = obj<NetworkArtifact>({
  format: oneOf("cellc-network"),
  version: oneOf(1),
  name: str(1000),
  model: opt(str(1000)),
  input: obj({ name: name, kind: oneOf("real", "tokens"), size }),
  embed: opt(obj({ param: name, V: size, D: size })),
  cell: (v, p) => artifactFields(v, p),
  layers: int(1, MAX_LAYERS),
  bidirectional: bool,
  sizes: arr(sizes, MAX_LAYERS),
  features: size,
  readout: (v, p) => artifactFields(v, p),
  readoutSizes: sizes,
  outputSize: size,
  on: oneOf("last", "every"),
  loss: obj({
    kind: oneOf("mse", "cross_entropy", "binary_cross_entropy"),
    js: str(1 << 20),
    wgsl: str(1 << 20),
  }),
  optimizer: obj({
    kind: oneOf("sgd", "momentum", "adam", "adamw"),
    js: str(1 << 20),
    wgsl: str(1 << 20),
    normWgsl: str(1 << 20),
  }),
  params: arr(
    obj({
      name: (v, p) =>
        typeof v === "string" && /^[A-Za-z0-9_.]{1,300}$/.test(v) ? v : bad(p, "a parameter name", v),
      part: oneOf("embed", "cell", "readout"),
      layer: int(0, MAX_LAYERS - 1),
      direction: oneOf(0, 1),
      index: int(0, 1 << 20),
      shape: arr(size, 2),
      init: initSpec,
    }),
    1 << 20,
  ),
  classes: opt(arr(str(64), 1 << 24)),
  source: opt(
    obj({
      file: str(4096),
      // Paths as the compiler read them (any text), each file at most what a source host reads.
      files: record(str(1 << 20), str(4096), 10_000),
      choice: obj({
        cell: opt(name),
        model: opt(name),
        layers: opt(int(1, MAX_LAYERS)),
        bidirectional: opt(bool),
      }),
      dims: sizes,
      sha256: (v, p) =>
        typeof v === "string" && /^[0-9a-f]{64}$/.test(v) ? v : bad(p, "a SHA-256 digest", v),
    }),
  ),
});

/**
 * A network artifact's structure (each field's type) and what its fields say about each other: the
 * layers' sizes, the parameters of each part, the embedding and the classes. `where` names it in errors.
 */
export function checkNetworkData(a: unknown, where = "the network"): NetworkArtifact {
  return within(where, () => {
    const n = networkSchema(a, "");
    const dirs = n.bidirectional ? 2 : 1;
    if (n.sizes.length !== n.layers) bad("sizes", `one entry per layer (${n.layers})`, n.sizes);
    if (!!n.embed !== (n.input.kind === "tokens"))
      bad("embed", n.input.kind === "tokens" ? "set for token inputs" : "absent for real inputs", n.embed);
    if (n.embed && n.embed.V !== n.input.size) bad("embed.V", `the input's size ${n.input.size}`, n.embed.V);
    if (n.classes && n.classes.length !== n.outputSize)
      bad("classes", `one name per output (${n.outputSize})`, n.classes);
    const seen = new Set<string>();
    n.params.forEach((p, i) => {
      if (seen.has(p.name)) bad(`params[${i}].name`, "a name not used before", p.name);
      seen.add(p.name);
      if (p.part === "cell" && (p.layer >= n.layers || p.direction >= dirs))
        bad(`params[${i}].layer`, `a layer below ${n.layers} in ${dirs} direction(s)`, p.layer);
    });
    if (n.embed) {
      const e = n.params.find((p) => p.name === n.embed!.param);
      if (!e || e.part !== "embed") bad("embed.param", "a parameter of part 'embed'", n.embed.param);
      if (e.shape.length !== 2 || e.shape[0] !== n.embed.V || e.shape[1] !== n.embed.D)
        bad("embed", `the shape of '${e.name}' [${e.shape.join(", ")}]`, n.embed);
    }
    const count = (part: string) => n.params.filter((p) => p.part === part).length;
    const cellParams = n.cell.signature.params.length * n.layers * dirs;
    if (count("cell") !== cellParams)
      bad(
        "params",
        `${cellParams} cell parameters (${n.layers} layer(s), ${dirs} direction(s))`,
        count("cell"),
      );
    if (count("readout") !== n.readout.signature.params.length)
      bad("params", `${n.readout.signature.params.length} readout parameters`, count("readout"));
    for (const p of n.params) {
      const sig =
        p.part === "cell" ? n.cell.signature : p.part === "readout" ? n.readout.signature : undefined;
      if (sig && p.index >= sig.params.length)
        bad(`params '${p.name}'.index`, `below ${sig.params.length}`, p.index);
    }
    const cs = n.cell.signature;
    const rs = n.readout.signature;
    if (cs.inputs.length < 1) bad("cell.signature.inputs", "at least one input", 0);
    if (cs.outputs.length < 1 || cs.outputs[0]!.type.dims.length !== 1)
      bad("cell.signature.outputs", "a first output that is a vector", cs.outputs[0]?.type.dims.length);
    if (rs.inputs.length !== 1 || rs.outputs.length !== 1 || rs.states.length)
      bad("readout.signature", "a stateless cell with one input and one output", rs.name);
    // The sizes the runtime slices rows by must be what the cells compute.
    const at = (d: Dim | undefined, s: Readonly<Record<string, number>>, path: string): number => {
      if (!d) return bad(path, "a vector", "a scalar");
      let v = d.c;
      for (const [k, c] of Object.entries(d.terms)) {
        if (!Object.hasOwn(s, k)) bad(path.replace(/\.type.*/, ""), `a size for dimension ${k}`, undefined);
        v += c * s[k]!;
      }
      return v;
    };
    const cellIn = at(cs.inputs[0]!.type.dims[0], n.sizes[0]!, "cell.signature.inputs[0].type");
    const fed = n.embed ? n.embed.D : n.input.size;
    if (cellIn !== fed) bad(n.embed ? "embed.D" : "input.size", `the cell's input size ${cellIn}`, fed);
    const last = n.sizes[n.layers - 1]!;
    const out = at(cs.outputs[0]!.type.dims[0], last, "cell.signature.outputs[0].type") * dirs;
    if (n.features !== out) bad("features", `the cell's output size ${out}`, n.features);
    const rIn = at(rs.inputs[0]!.type.dims[0], n.readoutSizes, "readout.signature.inputs[0].type");
    if (rIn !== n.features) bad("readoutSizes", `sizes that give the readout ${n.features} inputs`, rIn);
    const rOut = at(rs.outputs[0]!.type.dims[0], n.readoutSizes, "readout.signature.outputs[0].type");
    if (rOut !== n.outputSize) bad("outputSize", `the readout's output size ${rOut}`, n.outputSize);
    return n;
  });
}

function sameType(a: Type, b: Type): boolean {
  const key = (d: Dim) => `${Object.entries(d.terms).sort().join(",")}+${d.c}`;
  return (
    a.batched === b.batched &&
    a.dims.length === b.dims.length &&
    a.dims.every((d, i) => key(d) === key(b.dims[i]!))
  );
}
