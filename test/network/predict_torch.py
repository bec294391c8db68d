"""An independent recomputation of `cellc predict`: the trained network of a run folder rebuilt from
PyTorch's own nn.GRU / nn.LSTM, nn.Embedding and a plain affine readout, with the weights read from the
run's params.safetensors (test/st_io.py: no safetensors package), run on the inputs file.

usage: predict_torch.py KIND PARAMS.safetensors INPUTS.safetensors OUT.json
  KIND: gru | lstm | gru-bi2 (2 layers, bidirectional) | lstm-tagger2 (embedding E, 2 layers, every step)
Writes {"y": [...], "shape": [...]} with rows past a sequence's length set to 0."""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from st_io import read_safetensors  # noqa: E402


GATES = {"gru": ["r", "z", "n"], "lstm": ["i", "f", "g", "o"]}


def load_rnn(kind, p, layers, dirs):
    D = p[("l0." if layers > 1 or dirs > 1 else "") + "W" + GATES[kind][0]].shape[1]
    H = p[("l0." if layers > 1 or dirs > 1 else "") + "U" + GATES[kind][0]].shape[0]
    cls = torch.nn.GRU if kind == "gru" else torch.nn.LSTM
    m = cls(D, H, num_layers=layers, bidirectional=dirs == 2).double()
    with torch.no_grad():
        for l in range(layers):
            for d in range(dirs):
                pre = (f"l{l}." + ("reverse." if d else "")) if layers > 1 or dirs > 1 else ""
                sfx = f"_l{l}" + ("_reverse" if d else "")
                g = GATES[kind]
                getattr(m, "weight_ih" + sfx).copy_(torch.cat([p[pre + "W" + x] for x in g]))
                getattr(m, "weight_hh" + sfx).copy_(torch.cat([p[pre + "U" + x] for x in g]))
                if kind == "gru":
                    bih = torch.cat([p[pre + "br"], p[pre + "bz"], p[pre + "bin"]])
                    bhh = torch.cat([torch.zeros(H), torch.zeros(H), p[pre + "bhn"]])
                else:
                    bih = torch.cat([p[pre + "b" + x] for x in g])
                    bhh = torch.zeros(4 * H)
                getattr(m, "bias_ih" + sfx).copy_(bih)
                getattr(m, "bias_hh" + sfx).copy_(bhh)
    return m


def main():
    kind, params_path, inputs_path, out_path = sys.argv[1:5]
    p = {k: v.double() for k, v in read_safetensors(params_path).items()}
    inp = read_safetensors(inputs_path)
    lens = inp.get("seq_lens")
    if kind == "lstm-tagger2":
        tokens = inp["tokens"].long()
        T, B = tokens.shape
        x = p["E"][tokens]
        rnn, on = load_rnn("lstm", p, 2, 1), "every"
    else:
        x = inp["x"].double()
        T, B = x.shape[:2]
        layers, dirs = (2, 2) if kind == "gru-bi2" else (1, 1)
        rnn, on = load_rnn(kind.split("-")[0], p, layers, dirs), "last"
    lens = lens.long() if lens is not None else torch.full((B,), T, dtype=torch.long)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lens, enforce_sorted=False)
    out, _ = rnn(packed)
    h, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)  # [T, B, F], zeros past a length
    y = h @ p["Wy"].T + p["by"]
    valid = torch.arange(T)[:, None] < lens[None, :]
    y = y * valid[..., None]
    if on == "last":
        y = torch.stack([y[lens[b] - 1, b] for b in range(B)])
    with open(out_path, "w") as f:
        json.dump({"y": y.flatten().tolist(), "shape": list(y.shape)}, f)


main()
