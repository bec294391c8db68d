import { reachableNodes } from "../ir/cell.js";
import { CellcError } from "../../artifact/tensor.js";
import { layerParamName } from "../../artifact/network.js";
import type { InitSpec } from "../check/types.js";
import type { CellIR } from "../ir/cell.js";
import type { NodeId } from "../ir/graph.js";
import type { Dim } from "../../artifact/shape.js";
import type { NetworkIR } from "./network.js";

/**
 * PyTorch export: a cell (`exportTorch`) or a whole trained network (`exportTorchNetwork`) as a
 * self-contained Python file that needs only `torch`, with a pure-Python `load_safetensors(path)`.
 *
 * Every parameter is registered under its `cellc run` name (`Wi`, `l0.reverse.Wi`: the module tree has a
 * group per prefix), so that `named_parameters()`, `state_dict()`, optimiser groups and PyTorch's own
 * messages all use those names. Only generated identifiers reach the Python code: the cell's own names
 * (parameters, states, outputs, dimensions: identifiers the lexer accepted) appear only inside string
 * literals.
 */

const q = (s: string) => JSON.stringify(s); // a Python string literal (ASCII identifiers only)
const ind = (lines: readonly string[], n: number) => lines.map((l) => " ".repeat(n) + l).join("\n");

/** A Python float literal for any number: `1.0`, `1e+21`, `-0.0`, `float("nan")`, `float("-inf")`. */
export function pyFloat(v: number): string {
  if (Number.isNaN(v)) return `float("nan")`;
  if (!Number.isFinite(v)) return v > 0 ? `float("inf")` : `float("-inf")`;
  if (Object.is(v, -0)) return "-0.0";
  const s = String(v);
  return /^-?\d+$/.test(s) ? `${s}.0` : s;
}

/** A dimension as a Python int expression over `sizes`, a dict of the dimension names. */
function pyDim(d: Dim): string {
  const parts = Object.entries(d.terms).map(([k, m]) => (m === 1 ? "" : `${m} * `) + `sizes[${q(k)}]`);
  if (d.c !== 0 || !parts.length) parts.push(String(d.c));
  return parts.length === 1 ? parts[0]! : `(${parts.join(" + ")})`;
}

function refuse(ir: CellIR, what: string): void {
  if (ir.inputs.length !== 1 || ir.inputs[0]!.type.dims.length !== 1)
    throw new CellcError(`cannot export ${what} '${ir.name}' to PyTorch: it needs exactly one vector input`);
  for (const v of [
    ...ir.states.map((s) => ({ what: "state", name: s.name, rank: s.type.dims.length })),
    ...ir.outputs.map((o) => ({
      what: "output",
      name: o.name,
      rank: ir.graph.node(o.node).type.dims.length,
    })),
  ])
    if (v.rank !== 1)
      throw new CellcError(
        `cannot export ${what} '${ir.name}' to PyTorch: its ${v.what} '${v.name}' is not a vector`,
      );
}

/**
 * A cell's step as Python functions named `_<fn>_...`: `step(x, s, p, k, c)` (x [B, D], the states, the
 * parameters in declaration order, the dimension values and matvec column bounds of `consts(sizes)`),
 * `shapes(sizes)`, `state_sizes(sizes)` and `reset(p)` (the declared initialisers).
 */
function stepCode(ir: CellIR, fn: string): string {
  const consts: string[] = []; // float(...) of each `dim` node
  const cols: string[] = []; // int(...) bounds of each matvec's columns
  const body: string[] = [];
  const val = new Map<NodeId, string>();
  const pIndex = new Map(ir.params.map((p, i) => [p.name, i]));
  const live = reachableNodes(ir);
  for (const n of ir.graph.nodes) {
    if (!live.has(n.id)) continue;
    const a = n.args.map((x) => val.get(x)!);
    const isConst = n.args.map((x) => ir.graph.node(x).op === "const");
    let e: string;
    switch (n.op) {
      case "leaf":
        val.set(
          n.id,
          n.attrs.role === "input"
            ? "x"
            : n.attrs.role === "state"
              ? `s[${ir.states.findIndex((s) => s.name === n.attrs.name)}]`
              : `p[${pIndex.get(n.attrs.name!)}]`,
        );
        continue;
      case "const":
        val.set(n.id, `(${pyFloat(n.attrs.value!)})`);
        continue;
      case "dim":
        val.set(n.id, `k[${consts.length}]`);
        consts.push(`float(${pyDim(n.attrs.dim!)})`);
        continue;
      case "add":
      case "sub":
      case "mul":
      case "div":
        e = `${a[0]} ${{ add: "+", sub: "-", mul: "*", div: "/" }[n.op]} ${a[1]}`;
        break;
      case "neg":
        e = `-${a[0]}`;
        break;
      case "sigmoid":
      case "tanh":
      case "relu":
      case "exp":
      case "log":
      case "sqrt":
      case "abs":
        e = `torch.${n.op}(${a[0]})`;
        break;
      case "softplus":
        e = `torch.clamp(${a[0]}, min=0.0) + torch.log1p(torch.exp(-torch.abs(${a[0]})))`;
        break;
      case "softsign":
        e = `${a[0]} / (1.0 + torch.abs(${a[0]}))`;
        break;
      case "min":
      case "max": {
        // as cellc: ties give the gradient to the first argument
        const [x, y] = a.map((v, i) => (isConst[i] ? `torch.full_like(${a[1 - i]}, ${v})` : v));
        e = n.op === "min" ? `torch.where(${x} > ${y}, ${y}, ${x})` : `torch.where(${y} > ${x}, ${y}, ${x})`;
        break;
      }
      case "gt":
        e = `(${a[0]} > ${a[1]}).to(x.dtype)`;
        break;
      case "sum":
        e = `torch.sum(${a[0]}, 1, keepdim=True)`;
        break;
      case "matvec": {
        const j = cols.length;
        cols.push(`int(${pyDim(n.attrs.c0!)})`, `int(${pyDim(n.attrs.c1!)})`);
        e = `torch.matmul(${a[1]}, ${a[0]}[:, c[${j}]:c[${j + 1}]].t())`;
        break;
      }
      case "concat":
        e = `torch.cat([${a.join(", ")}], 1)`;
        break;
      case "slice": {
        const j = cols.length;
        cols.push(`int(${pyDim(n.attrs.start!)})`, `int(${pyDim(n.attrs.start!)} + ${pyDim(n.attrs.len!)})`);
        e = `${a[0]}[:, c[${j}]:c[${j + 1}]]`;
        break;
      }
      default:
        throw new Error(`torch export: ${n.op} in a forward step`);
    }
    const v = `v${n.id}`;
    body.push(`${v} = ${e}`);
    val.set(n.id, v);
  }
  const outs = ir.outputs.map((o) => val.get(o.node)!);
  const nexts = ir.states.map((s) => val.get(ir.next.find((x) => x.state === s.name)!.node)!);
  const shapes = ir.params.map((p) => `[${p.type.dims.map((d) => `int(${pyDim(d)})`).join(", ")}]`);
  const inits = ir.params.map((p, i) => initLine(`p[${i}]`, p.init));
  return `def _${fn}_step(
    x: torch.Tensor, s: List[torch.Tensor], p: List[torch.Tensor], k: List[float], c: List[int]
) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """One step of '${fn}' for one layer and direction: x [B, D] and the states -> (outputs, next states)."""
${ind(body.length ? body : ["pass"], 4)}
    return [${outs.join(", ")}], [${nexts.join(", ")}]


def _${fn}_consts(sizes: Dict[str, int]) -> Tuple[List[float], List[int]]:
    return [${consts.join(", ")}], [${cols.join(", ")}]


def _${fn}_shapes(sizes: Dict[str, int]) -> List[List[int]]:
    return [${shapes.join(", ")}]


def _${fn}_state_sizes(sizes: Dict[str, int]) -> List[int]:
    return [${ir.states.map((s) => `int(${pyDim(s.type.dims[0]!)})`).join(", ")}]


def _${fn}_reset(p: List[torch.Tensor]) -> None:
    with torch.no_grad():
${ind(inits.length ? inits : ["pass"], 8)}
`;
}

function initLine(p: string, spec: InitSpec): string {
  switch (spec.kind) {
    case "const":
      return `${p}.fill_(${pyFloat(spec.value)})`;
    case "uniform":
      return spec.lo === undefined
        ? `_uniform(${p}, -1.0 / math.sqrt(_rows(${p})), 1.0 / math.sqrt(_rows(${p})))`
        : `_uniform(${p}, ${pyFloat(spec.lo)}, ${pyFloat(spec.hi!)})`;
    case "normal":
      return `${p}.normal_(${pyFloat(spec.mean)}, ${pyFloat(spec.std)})`;
    case "xavier":
      return `_xavier(${p}, ${pyFloat(spec.gain)})`;
    case "orthogonal":
      return `_orthogonal(${p}, ${pyFloat(spec.gain)})`;
  }
}

const pyList = (items: readonly string[]) => `[${items.join(", ")}]`;

/** Imports, the safetensors reader, the parameter registry and the initialisers: the same in every file. */
const HEADER = (
  what: string,
) => `# Generated by cellc: ${what}. Needs PyTorch only; TorchScript can compile the module build(...) returns.
import json
import math
import struct
import sys
from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import nn
`;

const COMMON = `
_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def load_safetensors(path: str) -> Dict[str, torch.Tensor]:
    """The tensors of a .safetensors file, by name, read here (no safetensors package needed)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError("%s: not a safetensors file (shorter than its 8-byte header length)" % path)
    n = struct.unpack("<Q", data[:8])[0]
    if 8 + n > len(data):
        raise ValueError("%s: not a safetensors file (header of %d bytes past the end)" % (path, n))
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    if sys.byteorder != "little":
        raise ValueError("load_safetensors reads little-endian machines only")
    out: Dict[str, torch.Tensor] = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(h.get("dtype"))
        if dtype is None:
            raise ValueError("%s: tensor %r has unsupported dtype %r" % (path, name, h.get("dtype")))
        shape = [int(d) for d in h["shape"]]
        a, b = (int(o) for o in h["data_offsets"])
        count = 1
        for d in shape:
            count *= d
        size = torch.empty(0, dtype=dtype).element_size()
        if a < 0 or b != a + count * size or 8 + n + b > len(data):
            raise ValueError("%s: tensor %r: its offsets do not fit its shape %s" % (path, name, shape))
        if count == 0:
            out[name] = torch.zeros(shape, dtype=dtype)
        else:
            buf = bytearray(data[8 + n + a : 8 + n + b])
            out[name] = torch.frombuffer(buf, dtype=dtype).reshape(shape)
    return out


def _repr_params(m: nn.Module) -> str:
    return ", ".join("%s: %s" % (n, list(p.shape)) for n, p in m._parameters.items() if p is not None)


class Group(nn.Module):
    """The parameters under one name prefix (\`l0\`, \`reverse\`): it holds them, it computes nothing."""

    def extra_repr(self) -> str:
        return _repr_params(self)


def _register(root: nn.Module, name: str, p: nn.Parameter) -> None:
    """Registers p under its cellc name, \`Wi\` on root or \`l0.reverse.Wi\` in groups l0 and reverse.

    By name in the module's table, so a name such as \`forward\` or \`training\` is just a name."""
    parts = name.split(".")
    m = root
    for part in parts[:-1]:
        if part not in m._modules:
            m._modules[part] = Group()
        m = m._modules[part]
    m._parameters[parts[-1]] = p


def _lookup(root: nn.Module, name: str) -> torch.Tensor:
    parts = name.split(".")
    m = root
    for part in parts[:-1]:
        m = m._modules[part]
    p = m._parameters[parts[-1]]
    assert p is not None
    return p


def _load(model: nn.Module, params: Union[str, Dict[str, torch.Tensor], None]) -> nn.Module:
    if params is not None:
        model.load_state_dict(load_safetensors(params) if isinstance(params, str) else params)
    return model


def _uniform(p, lo, hi):
    p.uniform_(lo, hi)


def _rows(p):
    return p.shape[0] if p.dim() > 0 else 1


def _xavier(p, gain):
    fan_in = p.shape[1] if p.dim() > 1 else _rows(p)
    a = gain * math.sqrt(6.0 / (fan_in + _rows(p)))
    p.uniform_(-a, a)


def _orthogonal(p, gain):
    if p.dim() == 1:
        nn.init.orthogonal_(p.view(1, -1), gain)
    else:
        nn.init.orthogonal_(p, gain)


def _reverse(x: torch.Tensor, rev: torch.Tensor) -> torch.Tensor:
    return torch.gather(x, 0, rev.unsqueeze(2).expand(x.shape[0], x.shape[1], x.shape[2]))


def _lengths(x: torch.Tensor, seq_lens: Optional[torch.Tensor]) -> torch.Tensor:
    T, B = x.shape[0], x.shape[1]
    if seq_lens is None:
        return torch.full([B], T, dtype=torch.long, device=x.device)
    return torch.clamp(seq_lens.to(device=x.device, dtype=torch.long), max=T)


def _recur(
    x: torch.Tensor,
    lens: torch.Tensor,
    plist: List[List[torch.Tensor]],
    consts: List[List[float]],
    cols: List[List[int]],
    init: List[List[torch.Tensor]],
    dirs: int,
    n_out: int,
) -> Tuple[List[torch.Tensor], List[List[torch.Tensor]]]:
    """Layers x directions of the cell's step over x [T, B, D], with PyTorch's packed-sequence semantics for
    lens: the last layer's outputs [T, B, dirs * n], and the final states of each layer and direction."""
    T, B = x.shape[0], x.shape[1]
    t = torch.arange(T, device=x.device).unsqueeze(1)
    mask = t < lens.unsqueeze(0)  # [T, B]
    # reversing the valid part of each row: step t reads row position lens - 1 - t
    rev = torch.where(mask, lens.unsqueeze(0) - 1 - t, t.expand(T, B))
    inp = x
    finals: List[List[torch.Tensor]] = []
    merged: List[torch.Tensor] = []
    outs: List[List[torch.Tensor]] = []
    for k in range(len(plist)):
        d = k % dirs
        if d == 0:
            outs = []
        xs = _reverse(inp, rev) if d == 1 else inp
        states = init[k]
        ys: List[List[torch.Tensor]] = [[] for _ in range(n_out)]
        for ti in range(T):
            y, nxt = _cell_step(xs[ti], states, plist[k], consts[k], cols[k])
            m = mask[ti].unsqueeze(1)
            states = [torch.where(m, nxt[i], states[i]) for i in range(len(states))]
            for i in range(n_out):
                ys[i].append(torch.where(m, y[i], torch.zeros_like(y[i])))
        seqs = [torch.stack(q) for q in ys]
        outs.append([_reverse(q, rev) for q in seqs] if d == 1 else seqs)
        finals.append(states)
        if d == dirs - 1:
            merged = [torch.cat([o[i] for o in outs], 2) for i in range(n_out)]
            inp = merged[0]
    return merged, finals
`;

/**
 * A cell as a self-contained PyTorch module (see docs/export.md): `build(dims, layers=1,
 * bidirectional=False, prefixed=None, params=None)` returns a module whose parameters are named as
 * `cellc run`'s and whose `forward(x, seq_lens=None, init=None)` returns `cellc run`'s outputs and final
 * states by name.
 */
export function exportTorch(ir: CellIR): string {
  refuse(ir, "cell");
  const inDim = ir.inputs[0]!.type.dims[0]!;
  const outDim = ir.graph.node(ir.outputs[0]!.node).type.dims[0]!;
  return `${HEADER(`cell '${ir.name}'`)}
PARAMS = ${pyList(ir.params.map((p) => q(p.name)))}
STATES = ${pyList(ir.states.map((s) => q(s.name)))}
STATE_INIT = ${pyList(ir.states.map((s) => pyFloat(s.init)))}
OUTPUTS = ${pyList(ir.outputs.map((o) => q(o.name)))}


${stepCode(ir, "cell")}
${COMMON}

class Sequence(nn.Module):
    """Layers x directions of the cell over x [T, B, D]; parameters named as cellc's (\`Wi\`, \`l0.reverse.Wi\`)."""

    _plist: List[List[torch.Tensor]]
    _consts: List[List[float]]
    _cols: List[List[int]]
    _state_sizes: List[List[int]]
    _prefixes: List[str]

    def __init__(self, sizes: List[Dict[str, int]], dirs: int, prefixed: bool):
        super().__init__()
        # Attributes first: a parameter registered later may have any name, even one of these.
        self._dirs = dirs
        self._prefixes = []  # of each (layer, direction): "", "l0.", "l0.reverse."
        self._plist = []
        self._consts = []
        self._cols = []
        self._state_sizes = []
        self._state_names: List[str] = list(STATES)
        self._state_init: List[float] = list(STATE_INIT)
        self._output_names: List[str] = list(OUTPUTS)
        for l, at in enumerate(sizes):
            for d in range(dirs):
                self._prefixes.append(("l%d.%s" % (l, "reverse." if d else "")) if prefixed else "")
                self._plist.append([nn.Parameter(torch.empty(s)) for s in _cell_shapes(at)])
                k, c = _cell_consts(at)
                self._consts.append(k)
                self._cols.append(c)
                self._state_sizes.append(_cell_state_sizes(at))
        for pre, ps in zip(self._prefixes, self._plist):
            for name, p in zip(PARAMS, ps):
                _register(self, pre + name, p)
        self.reset_parameters()

    def reset_parameters(self):
        for ps in self._params():
            _cell_reset(ps)

    def extra_repr(self) -> str:
        return _repr_params(self)

    @torch.jit.unused
    def _params(self) -> List[List[torch.Tensor]]:
        """The registered parameters (to() and load_state_dict(assign=True) may have replaced them)."""
        for pre, ps in zip(self._prefixes, self._plist):
            for i, name in enumerate(PARAMS):
                ps[i] = _lookup(self, pre + name)
        return self._plist

    def forward(
        self, x: torch.Tensor, seq_lens: Optional[torch.Tensor] = None, init: Optional[Dict[str, torch.Tensor]] = None
    ) -> Dict[str, torch.Tensor]:
        if torch.jit.is_scripting():
            plist = self._plist
        else:
            plist = self._params()
        B = x.shape[1]
        inits: List[List[torch.Tensor]] = []
        for k in range(len(plist)):
            states: List[torch.Tensor] = []
            for i in range(len(self._state_names)):
                key = self._prefixes[k] + self._state_names[i] + ".init"
                if init is not None and key in init:
                    states.append(init[key].to(x.dtype))
                else:
                    size = [B, self._state_sizes[k][i]]
                    states.append(torch.full(size, self._state_init[i], dtype=x.dtype, device=x.device))
            inits.append(states)
        n_out = len(self._output_names)
        outs, finals = _recur(x, _lengths(x, seq_lens), plist, self._consts, self._cols, inits, self._dirs, n_out)
        result: Dict[str, torch.Tensor] = {}
        for k in range(len(finals)):
            for i in range(len(self._state_names)):
                result[self._prefixes[k] + self._state_names[i] + ".final"] = finals[k][i]
        for i in range(n_out):
            result[self._output_names[i]] = outs[i]
        return result


def build(
    dims: Dict[str, int],
    layers: int = 1,
    bidirectional: bool = False,
    prefixed: Optional[bool] = None,
    params: Union[str, Dict[str, torch.Tensor], None] = None,
) -> nn.Module:
    """The cell over sequences. dims: the sizes of the first layer's dimensions (e.g. {"D": 8, "H": 16}).
    Parameter and state names carry l<k>. / l<k>.reverse. when layers > 1 or bidirectional (or prefixed).
    params: a .safetensors file (cellc init's, or a run's) or a state dict to load."""
    dirs = 2 if bidirectional else 1
    if prefixed is None:
        prefixed = layers > 1 or bidirectional
    all_sizes: List[Dict[str, int]] = []
    sizes = dict(dims)
    prev_out = 0
    for l in range(layers):
        if l > 0:
            sizes = dict(dims)
            for n in ${pyList(Object.keys(inDim.terms).map(q))}:
                sizes.pop(n, None)
            _bind(sizes, ${pyList(Object.entries(inDim.terms).map(([n, m]) => `(${q(n)}, ${m})`))}, ${inDim.c}, prev_out * dirs)
        all_sizes.append(sizes)
        prev_out = ${pyDim(outDim)}
    return _load(Sequence(all_sizes, dirs, prefixed), params)


def _bind(sizes, terms, c, value):
    unknown = [(n, m) for n, m in terms if n not in sizes]
    if len(unknown) != 1:
        raise ValueError("cannot size the input of a stacked layer")
    rest = value - c - sum(m * sizes[n] for n, m in terms if n in sizes)
    sizes[unknown[0][0]] = rest // unknown[0][1]
`;
}

/**
 * A trained network as a self-contained PyTorch file: `build(params=None)` (the run's sizes; `params` a
 * .safetensors file or a state dict) returns a module whose `forward(x, seq_lens=None)` gives the readout's
 * `y`, `[B, O]` at each row's last valid step or `[T, B, O]`, and whose state_dict keys are the names in
 * the run's `params.safetensors`.
 */
export function exportTorchNetwork(net: NetworkIR): string {
  const a = net.artifact;
  refuse(net.cell, "cell");
  refuse(net.readout, "readout");
  if (net.readout.states.length)
    throw new CellcError(`cannot export '${a.name}' to PyTorch: its readout has states`);
  const dirs = a.bidirectional ? 2 : 1;
  const prefixed = a.layers > 1 || dirs > 1;
  // Every parameter with where it goes: (name, part, step, index, shape).
  const table = a.params.map((p) => {
    const step = p.part === "cell" ? p.layer * dirs + p.direction : 0;
    if (
      p.part === "cell" &&
      p.name !== layerParamName(prefixed, p.layer, p.direction, net.cell.params[p.index]!.name)
    )
      throw new CellcError(`cannot export '${a.name}': parameter '${p.name}' is not where the network says`);
    return `(${q(p.name)}, ${q(p.part)}, ${step}, ${p.index}, ${pyList(p.shape.map(String))})`;
  });
  const embed = a.params.find((p) => p.part === "embed");
  const sizes = (s: Readonly<Record<string, number>>) =>
    `{${Object.keys(s)
      .map((k) => `${q(k)}: ${s[k]}`)
      .join(", ")}}`;
  return `${HEADER(`network '${a.name}', trained`)}
STATES = ${pyList(net.cell.states.map((s) => q(s.name)))}
STATE_INIT = ${pyList(net.cell.states.map((s) => pyFloat(s.init)))}
SIZES = ${pyList(a.sizes.map(sizes))}  # of each layer
READOUT_SIZES = ${sizes(a.readoutSizes)}
DIRECTIONS = ${dirs}
ON_LAST = ${a.on === "last" ? "True" : "False"}  # read out at each row's last valid step (else at every step)
# (name, part, layer * directions + direction, index in its part, shape) of every parameter
PARAMS = [
${ind(
  table.map((t) => t + ","),
  4,
)}
]


${stepCode(net.cell, "cell")}

${stepCode(net.readout, "readout")}
${COMMON}

def _embed_reset(p: List[torch.Tensor]) -> None:
    with torch.no_grad():
        ${embed ? initLine("p[0]", embed.init) : "pass"}


class Network(nn.Module):
    """The trained network: ${a.embed ? "token ids [T, B] through the embedding, " : ""}the cell in ${a.layers} layer(s)${dirs > 1 ? ", both directions" : ""}, and the readout."""

    _plist: List[List[torch.Tensor]]
    _consts: List[List[float]]
    _cols: List[List[int]]
    _state_sizes: List[List[int]]
    _rlist: List[torch.Tensor]
    _rconsts: List[float]
    _rcols: List[int]
    _elist: List[torch.Tensor]

    def __init__(self):
        super().__init__()
        # Attributes first: a parameter registered later may have any name, even one of these.
        self._dirs = DIRECTIONS
        self._last = ON_LAST
        self._state_init: List[float] = list(STATE_INIT)
        self._plist = [[] for _ in range(len(SIZES) * DIRECTIONS)]
        self._consts = []
        self._cols = []
        self._state_sizes = []
        for at in SIZES:
            for d in range(DIRECTIONS):
                k, c = _cell_consts(at)
                self._consts.append(k)
                self._cols.append(c)
                self._state_sizes.append(_cell_state_sizes(at))
        self._rconsts, self._rcols = _readout_consts(READOUT_SIZES)
        self._rlist = []
        self._elist = []
        self._names: List[str] = [t[0] for t in PARAMS]
        for name, part, step, index, shape in PARAMS:
            into = self._plist[step] if part == "cell" else self._rlist if part == "readout" else self._elist
            assert len(into) == index
            into.append(nn.Parameter(torch.empty(shape)))
        for name, part, step, index, shape in PARAMS:
            into = self._plist[step] if part == "cell" else self._rlist if part == "readout" else self._elist
            _register(self, name, into[index])
        self.reset_parameters()

    def reset_parameters(self):
        self._params()
        for ps in self._plist:
            _cell_reset(ps)
        _readout_reset(self._rlist)
        _embed_reset(self._elist)

    def extra_repr(self) -> str:
        return _repr_params(self)

    @torch.jit.unused
    def _params(self) -> Tuple[List[List[torch.Tensor]], List[torch.Tensor], List[torch.Tensor]]:
        """The registered parameters (to() and load_state_dict(assign=True) may have replaced them)."""
        for name, part, step, index, shape in PARAMS:
            into = self._plist[step] if part == "cell" else self._rlist if part == "readout" else self._elist
            into[index] = _lookup(self, name)
        return self._plist, self._rlist, self._elist

    def forward(self, x: torch.Tensor, seq_lens: Optional[torch.Tensor] = None) -> torch.Tensor:
        """y: [B, O] at each row's last valid step (a row of length 0 reads zeros), or [T, B, O]."""
        if torch.jit.is_scripting():
            plist, rlist, elist = self._plist, self._rlist, self._elist
        else:
            plist, rlist, elist = self._params()
        if len(elist) > 0:
            if x.dim() == 3:  # one-hot rows (as the chars task gives them): their token ids
                x = torch.argmax(x, 2)
            x = torch.nn.functional.embedding(x.long(), elist[0])
        T, B = x.shape[0], x.shape[1]
        lens = _lengths(x, seq_lens)
        inits: List[List[torch.Tensor]] = []
        for k in range(len(plist)):
            states: List[torch.Tensor] = []
            for i in range(len(self._state_init)):
                size = [B, self._state_sizes[k][i]]
                states.append(torch.full(size, self._state_init[i], dtype=x.dtype, device=x.device))
            inits.append(states)
        outs, _ = _recur(x, lens, plist, self._consts, self._cols, inits, self._dirs, 1)
        h = outs[0]  # [T, B, F]
        if self._last:
            at = torch.clamp(lens - 1, min=0)
            rows = h[at, torch.arange(B, device=h.device)]
            rows = torch.where((lens > 0).unsqueeze(1), rows, torch.zeros_like(rows))
        else:
            rows = h.reshape(T * B, h.shape[2])
        none: List[torch.Tensor] = []
        y = _readout_step(rows, none, rlist, self._rconsts, self._rcols)[0][0]
        if not self._last:
            y = y.reshape(T, B, y.shape[1])
        return y


def build(params: Union[str, Dict[str, torch.Tensor], None] = None) -> nn.Module:
    """The network with the run's sizes, initialised as cellc initialises it; params: the run's
    params.safetensors (or a state dict) to load its trained weights."""
    return _load(Network(), params)
`;
}
