import { reachableNodes } from "../ir/cell.js";
import { CellcError } from "../../artifact/tensor.js";
import type { InitSpec } from "../check/types.js";
import type { CellIR } from "../ir/cell.js";
import type { NodeId } from "../ir/graph.js";
import type { Dim } from "../../artifact/shape.js";

/**
 * A cell as a self-contained PyTorch module (see the README's contract): `build(dims, layers=1,
 * bidirectional=False)` returns a module whose state_dict keys are `cellc run`'s parameter names and whose
 * `forward(x, seq_lens=None, init=None)` returns `cellc run`'s outputs and final states by name.
 *
 * Only generated identifiers reach the Python code. The cell's own names (parameters, states, outputs,
 * dimensions: identifiers the lexer accepted) appear only inside string literals, as dictionary keys.
 */
export function exportTorch(ir: CellIR): string {
  if (ir.inputs.length !== 1 || ir.inputs[0]!.type.dims.length !== 1)
    throw new CellcError(`cannot export cell '${ir.name}' to PyTorch: it needs exactly one vector input`);
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
        `cannot export cell '${ir.name}' to PyTorch: its ${v.what} '${v.name}' is not a vector`,
      );
  const q = (s: string) => JSON.stringify(s); // a Python string literal (ASCII identifiers only)
  const dim = (d: Dim) => {
    const parts = Object.entries(d.terms).map(([k, m]) => (m === 1 ? "" : `${m} * `) + `sizes[${q(k)}]`);
    if (d.c !== 0 || !parts.length) parts.push(String(d.c));
    return parts.length === 1 ? parts[0]! : `(${parts.join(" + ")})`;
  };
  const num = (v: number) => (Number.isInteger(v) ? `${v}.0` : String(v));

  const init: string[] = [];
  const body: string[] = [];
  const val = new Map<NodeId, string>();
  const pIndex = new Map(ir.params.map((p, i) => [p.name, i]));
  let k = 0;
  const live = reachableNodes(ir);
  for (const n of ir.graph.nodes) {
    if (!live.has(n.id)) continue;
    const a = n.args.map((x) => val.get(x)!);
    const isConst = n.args.map((x) => ir.graph.node(x).op === "const");
    let e: string;
    switch (n.op) {
      case "leaf":
        e =
          n.attrs.role === "input"
            ? "x"
            : n.attrs.role === "state"
              ? `s[${ir.states.findIndex((s) => s.name === n.attrs.name)}]`
              : `self.p${pIndex.get(n.attrs.name!)}`;
        val.set(n.id, e);
        continue;
      case "const":
        val.set(n.id, num(n.attrs.value!));
        continue;
      case "dim":
        init.push(`self.k${k} = float(${dim(n.attrs.dim!)})`);
        val.set(n.id, `self.k${k++}`);
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
      case "matvec":
        init.push(`self.c${k} = int(${dim(n.attrs.c0!)})`, `self.e${k} = int(${dim(n.attrs.c1!)})`);
        e = `torch.matmul(${a[1]}, ${a[0]}[:, self.c${k}:self.e${k}].t())`;
        k++;
        break;
      case "concat":
        e = `torch.cat([${a.join(", ")}], 1)`;
        break;
      default:
        throw new Error(`torch export: ${n.op} in a forward step`);
    }
    const v = `v${n.id}`;
    body.push(`${v} = ${e}`);
    val.set(n.id, v);
  }
  const outs = ir.outputs.map((o) => val.get(o.node)!);
  const nexts = ir.states.map((s) => val.get(ir.next.find((x) => x.state === s.name)!.node)!);

  const params = ir.params.map(
    (p, i) =>
      `self.p${i} = nn.Parameter(torch.empty(${p.type.dims.map(dim).join(", ")}${p.type.dims.length === 1 ? "," : ""}))`,
  );
  const inits = ir.params.map((p, i) => initLine(`self.p${i}`, p.init, num));
  const inDim = ir.inputs[0]!.type.dims[0]!;
  const outDim = ir.graph.node(ir.outputs[0]!.node).type.dims[0]!;
  const ind = (lines: string[], n: number) => lines.map((l) => " ".repeat(n) + l).join("\n");

  return `# Generated by cellc. Needs PyTorch; TorchScript can compile the module build(...) returns.
import math
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

PARAMS = [${ir.params.map((p) => q(p.name)).join(", ")}]
STATES = [${ir.states.map((s) => q(s.name)).join(", ")}]
STATE_INIT = [${ir.states.map((s) => num(s.init)).join(", ")}]
OUTPUTS = [${ir.outputs.map((o) => q(o.name)).join(", ")}]


class Step(nn.Module):
    """One time step of the cell, for one layer and direction: (x [B, D], states) -> (outputs, states)."""

    def __init__(self, sizes: Dict[str, int]):
        super().__init__()
${ind([...params, ...init], 8)}
        self.sizes = [${ir.states.map((s) => `int(${dim(s.type.dims[0]!)})`).join(", ")}]
        self.reset_parameters()

    def reset_parameters(self):
        with torch.no_grad():
${ind(inits.length ? inits : ["pass"], 12)}

    def forward(self, x: torch.Tensor, s: List[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
${ind(body, 8)}
        return [${outs.join(", ")}], [${nexts.join(", ")}]


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


class Sequence(nn.Module):
    """Layers x directions of Step over x [T, B, D], with PyTorch's packed-sequence semantics for seq_lens."""

    def __init__(self, steps: List[Step], layers: int, dirs: int, names: List[str], keys: Dict[str, str]):
        super().__init__()
        self.steps = nn.ModuleList(steps)
        self.layers = layers
        self.dirs = dirs
        self.names = names  # the prefix of each (layer, direction): "", "l0.", "l0.reverse."
        self.keys = keys  # generated state_dict key -> cellc name
        self.state_names: List[str] = list(STATES)
        self.state_init: List[float] = list(STATE_INIT)
        self.output_names: List[str] = list(OUTPUTS)
        self.back = {v: k for k, v in keys.items()}
        self._register_state_dict_hook(_rename_out)
        self._register_load_state_dict_pre_hook(_rename_in, with_module=True)

    def forward(
        self, x: torch.Tensor, seq_lens: Optional[torch.Tensor] = None, init: Optional[Dict[str, torch.Tensor]] = None
    ) -> Dict[str, torch.Tensor]:
        T, B = x.shape[0], x.shape[1]
        if seq_lens is None:
            lens = torch.full([B], T, dtype=torch.long, device=x.device)
        else:
            lens = torch.clamp(seq_lens.to(device=x.device, dtype=torch.long), max=T)
        t = torch.arange(T, device=x.device).unsqueeze(1)
        mask = t < lens.unsqueeze(0)  # [T, B]
        # reversing the valid part of each row: step t reads row position lens - 1 - t
        rev = torch.where(mask, lens.unsqueeze(0) - 1 - t, t.expand(T, B))
        result: Dict[str, torch.Tensor] = {}
        inp = x
        outs: List[List[torch.Tensor]] = []
        for k, step in enumerate(self.steps):
            d = k % self.dirs
            if d == 0:
                outs = []
            xs = _reverse(inp, rev) if d == 1 else inp
            states: List[torch.Tensor] = []
            for i in range(len(self.state_names)):
                key = self.names[k] + self.state_names[i] + ".init"
                if init is not None and key in init:
                    states.append(init[key].to(x.dtype))
                else:
                    states.append(torch.full([B, step.sizes[i]], self.state_init[i], dtype=x.dtype, device=x.device))
            ys: List[List[torch.Tensor]] = [[] for _ in range(len(self.output_names))]
            for ti in range(T):
                y, nxt = step(xs[ti], states)
                m = mask[ti].unsqueeze(1)
                states = [torch.where(m, nxt[i], states[i]) for i in range(len(states))]
                for i in range(len(self.output_names)):
                    ys[i].append(torch.where(m, y[i], torch.zeros_like(y[i])))
            seqs = [torch.stack(y) for y in ys]
            outs.append([_reverse(q, rev) for q in seqs] if d == 1 else seqs)
            for i in range(len(self.state_names)):
                result[self.names[k] + self.state_names[i] + ".final"] = states[i]
            if d == self.dirs - 1:
                merged = [torch.cat([o[i] for o in outs], 2) for i in range(len(self.output_names))]
                inp = merged[0]
                if k == len(self.steps) - 1:
                    for i in range(len(self.output_names)):
                        result[self.output_names[i]] = merged[i]
        return result


def _reverse(x: torch.Tensor, rev: torch.Tensor) -> torch.Tensor:
    return torch.gather(x, 0, rev.unsqueeze(2).expand(x.shape[0], x.shape[1], x.shape[2]))


def _rename_out(module, state_dict, prefix, local_metadata):
    for k in list(state_dict.keys()):
        if k.startswith(prefix) and k[len(prefix):] in module.keys:
            state_dict[prefix + module.keys[k[len(prefix):]]] = state_dict.pop(k)


def _rename_in(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
    for k in list(state_dict.keys()):
        if k.startswith(prefix) and k[len(prefix):] in module.back:
            state_dict[prefix + module.back[k[len(prefix):]]] = state_dict.pop(k)


def build(dims: Dict[str, int], layers: int = 1, bidirectional: bool = False, prefixed: Optional[bool] = None) -> nn.Module:
    """The cell over sequences. dims: the sizes of the first layer's dimensions (e.g. {"D": 8, "H": 16}).
    Parameter and state names carry l<k>. / l<k>.reverse. when layers > 1 or bidirectional (or prefixed)."""
    dirs = 2 if bidirectional else 1
    if prefixed is None:
        prefixed = layers > 1 or bidirectional
    steps: List[Step] = []
    names: List[str] = []
    keys: Dict[str, str] = {}
    sizes = dict(dims)
    for l in range(layers):
        if l > 0:
            sizes = dict(dims)
            for n in ${pyList(Object.keys(inDim.terms).map(q))}:
                sizes.pop(n, None)
            _bind(sizes, ${pyList(Object.entries(inDim.terms).map(([n, m]) => `(${q(n)}, ${m})`))}, ${inDim.c}, prev_out * dirs)
        for d in range(dirs):
            name = ("l%d.%s" % (l, "reverse." if d else "")) if prefixed else ""
            steps.append(Step(sizes))
            names.append(name)
            for i, p in enumerate(PARAMS):
                keys["steps.%d.p%d" % (len(steps) - 1, i)] = name + p
        prev_out = ${dim(outDim)}
    return Sequence(steps, layers, dirs, names, keys)


def _bind(sizes, terms, c, value):
    unknown = [(n, m) for n, m in terms if n not in sizes]
    if len(unknown) != 1:
        raise ValueError("cannot size the input of a stacked layer")
    rest = value - c - sum(m * sizes[n] for n, m in terms if n in sizes)
    sizes[unknown[0][0]] = rest // unknown[0][1]
`;
}

const pyList = (items: string[]) => `[${items.join(", ")}]`;

function initLine(p: string, spec: InitSpec, num: (v: number) => string): string {
  switch (spec.kind) {
    case "const":
      return `${p}.fill_(${num(spec.value)})`;
    case "uniform":
      return spec.lo === undefined
        ? `_uniform(${p}, -1.0 / math.sqrt(_rows(${p})), 1.0 / math.sqrt(_rows(${p})))`
        : `_uniform(${p}, ${num(spec.lo)}, ${num(spec.hi!)})`;
    case "normal":
      return `${p}.normal_(${num(spec.mean)}, ${num(spec.std)})`;
    case "xavier":
      return `_xavier(${p}, ${num(spec.gain)})`;
    case "orthogonal":
      return `_orthogonal(${p}, ${num(spec.gain)})`;
  }
}
