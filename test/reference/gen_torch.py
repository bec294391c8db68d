#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures under test/fixtures/torch/ (needs Debian's python3-torch).

For nn.RNN (tanh), nn.LSTM and nn.GRU, each case stores:
  params.safetensors    the module's weights sliced into cellc's per-gate names (LSTM gates i, f, g, o;
                        GRU r, z, n; the two bias halves summed, except GRU's bin / bhn), prefixed
                        l<k>. / l<k>.reverse. for several layers or directions
  inputs.safetensors    x [T, B, D], and where the case has them <state>.init, seq_lens, upstream.*
  expected.safetensors  outputs, <state>.final and grad.* exactly as `cellc run --grad` names them

Values are computed in float64 from float32-representable inputs. Run: python3 test/reference/gen_torch.py
"""
import json
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "torch")
T, B, D, H = 5, 3, 3, 4


def write_safetensors(path, tensors):
    """The safetensors layout, written by hand so that this script needs torch alone."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        if t.dtype == torch.int32:
            code, fmt = "I32", "<%di"
        else:
            t = t.to(torch.float64)
            code, fmt = "F64", "<%dd"
        vals = t.flatten().tolist()
        blob = struct.pack(fmt % len(vals), *vals)
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def f32(t):
    """Round to float32 so that an F32 run of cellc sees the same inputs."""
    return t.to(torch.float32).to(torch.float64)


GATES = {"rnn": ["W"], "lstm": ["i", "f", "g", "o"], "gru": ["r", "z", "n"]}
STATES = {"rnn": ["h"], "lstm": ["h", "c"], "gru": ["h"]}


def split_params(kind, mod, layers, dirs, get, grads=False):
    """cellc's names for the module's parameters; `get` maps a torch tensor to the value stored.

    A summed bias b = b_ih + b_hh has the gradient of either half (they are equal), not their sum."""
    out = {}
    for l in range(layers):
        for d in range(dirs):
            sfx = f"_l{l}" + ("_reverse" if d else "")
            pre = (f"l{l}." + ("reverse." if d else "")) if (layers > 1 or dirs > 1) else ""
            wih, whh = get(getattr(mod, "weight_ih" + sfx)), get(getattr(mod, "weight_hh" + sfx))
            bih, bhh = get(getattr(mod, "bias_ih" + sfx)), get(getattr(mod, "bias_hh" + sfx))
            add = (lambda a, b: a) if grads else (lambda a, b: a + b)
            if kind == "rnn":
                out[pre + "W"], out[pre + "U"], out[pre + "b"] = wih, whh, add(bih, bhh)
                continue
            for k, g in enumerate(GATES[kind]):
                rows = slice(k * H, (k + 1) * H)
                out[pre + "W" + g], out[pre + "U" + g] = wih[rows], whh[rows]
                if kind == "gru" and g == "n":
                    out[pre + "bin"], out[pre + "bhn"] = bih[rows], bhh[rows]
                else:
                    out[pre + "b" + g] = add(bih[rows], bhh[rows])
    return out


def state_name(l, d, s, layers, dirs):
    return (f"l{l}." + ("reverse." if d else "") if (layers > 1 or dirs > 1) else "") + s


def case(kind, name, layers=1, bidirectional=False, init=False, lens=None, upstream=False, seed=0):
    torch.manual_seed(seed)
    dirs = 2 if bidirectional else 1
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    mod = cls(D, H, num_layers=layers, bidirectional=bidirectional).double()
    with torch.no_grad():
        for p in mod.parameters():
            p.copy_(f32(p * 1.5))  # a little larger than the default, so gates saturate somewhat
    x = f32(torch.randn(T, B, D, dtype=torch.float64)).requires_grad_()
    h0 = {s: f32(0.5 * torch.randn(layers * dirs, B, H, dtype=torch.float64)) if init else torch.zeros(layers * dirs, B, H, dtype=torch.float64) for s in STATES[kind]}
    for t in h0.values():
        t.requires_grad_()
    hx = (h0["h"], h0["c"]) if kind == "lstm" else h0["h"]
    if lens is not None:
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lens), enforce_sorted=False)
        out, hn = mod(packed, hx)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)
    else:
        out, hn = mod(x, hx)
    finals = {"h": hn[0], "c": hn[1]} if kind == "lstm" else {"h": hn}

    inputs = {"x": x}
    expected = {"h": out}
    for s in STATES[kind]:
        for l in range(layers):
            for d in range(dirs):
                n = state_name(l, d, s, layers, dirs)
                if init:
                    inputs[n + ".init"] = h0[s][l * dirs + d]
                expected[n + ".final"] = finals[s][l * dirs + d]
    if lens is not None:
        inputs["seq_lens"] = torch.tensor(lens, dtype=torch.int32)
    if upstream:
        up_out = f32(torch.randn_like(out))
        loss = (out * up_out).sum()
        inputs["upstream.h"] = up_out
        for s in STATES[kind]:
            n = state_name(layers - 1, 0, s, layers, dirs)
            up = f32(torch.randn(B, H, dtype=torch.float64))
            inputs["upstream." + n + ".final"] = up
            loss = loss + (finals[s][(layers - 1) * dirs] * up).sum()
    else:
        loss = out.sum()
    loss.backward()

    params = split_params(kind, mod, layers, dirs, lambda t: t.detach())
    grads = split_params(kind, mod, layers, dirs, lambda t: t.grad, grads=True)
    for n, g in grads.items():
        expected["grad." + n] = g
    expected["grad.x"] = x.grad
    for s in STATES[kind]:
        for l in range(layers):
            for d in range(dirs):
                expected["grad." + state_name(l, d, s, layers, dirs) + ".init"] = h0[s].grad[l * dirs + d]

    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "params.safetensors"), params)
    write_safetensors(os.path.join(folder, "inputs.safetensors"), {k: v.detach() if v.dtype != torch.int32 else v for k, v in inputs.items()})
    write_safetensors(os.path.join(folder, "expected.safetensors"), expected)
    return {"name": name, "cell": kind, "layers": layers, "bidirectional": bidirectional}


def main():
    cases = []
    for i, kind in enumerate(["rnn", "lstm", "gru"]):
        cases.append(case(kind, f"{kind}_basic", seed=10 + i))
        cases.append(case(kind, f"{kind}_init_lens_upstream", init=True, lens=[5, 2, 4], upstream=True, seed=20 + i))
        cases.append(case(kind, f"{kind}_layers2", layers=2, init=True, lens=[3, 5, 1], seed=30 + i))
        cases.append(case(kind, f"{kind}_bidirectional", bidirectional=True, init=True, lens=[4, 5, 2], upstream=True, seed=40 + i))
        cases.append(case(kind, f"{kind}_layers2_bidirectional", layers=2, bidirectional=True, lens=[2, 5, 3], seed=50 + i))
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(cases, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
