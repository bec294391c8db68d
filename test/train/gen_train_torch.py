#!/usr/bin/env python3
"""Writes test/train/fixtures/train_torch.json: PyTorch training trajectories for the trainer's tests.

Each case is a tiny nn.RNN (tanh) or nn.LSTM with an nn.Linear readout, fixed weights, and 5 fixed batches,
trained in float32 with one torch.optim optimiser (SGD, SGD with momentum, Adam, AdamW), optionally with
torch.nn.utils.clip_grad_norm_. The weights are stored under cellc's names (LSTM gates i, f, g, o; the
readout Wy, by); the recurrent bias b_hh is zero and frozen so that cellc's single bias is b_ih. Stored:
the initial weights, the batches, the loss of each batch before its update, and the final weights.
Run: /usr/bin/python3 test/train/gen_train_torch.py (Debian's python3-torch), then
npx prettier --write test/train/fixtures/train_torch.json
"""
import json
import os

import torch

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "train_torch.json")
T, B, D, H, O = 5, 3, 3, 4, 2
STEPS = 5

CASES = [
    dict(name="rnn-sgd-last-mse", cell="rnn", on="last", loss="mse", optim="sgd", lr=0.1),
    dict(name="rnn-sgd-wd-every-ce", cell="rnn", on="every", loss="cross_entropy", optim="sgd", lr=0.2, weight_decay=0.01),
    dict(name="rnn-momentum-every-ce", cell="rnn", on="every", loss="cross_entropy", optim="momentum", lr=0.1, momentum=0.9),
    dict(name="lstm-adam-last-mse-clip", cell="lstm", on="last", loss="mse", optim="adam", lr=0.01, clip=0.05),
    dict(name="lstm-adam-wd-every-mse", cell="lstm", on="every", loss="mse", optim="adam", lr=0.02, weight_decay=0.1),
    dict(name="lstm-adamw-every-ce", cell="lstm", on="every", loss="cross_entropy", optim="adamw", lr=0.02, weight_decay=0.05, clip=1.0),
]


def cellc_names(case, rnn, lin):
    out = {}
    if case["cell"] == "rnn":
        out["W"] = rnn.weight_ih_l0
        out["U"] = rnn.weight_hh_l0
        out["b"] = rnn.bias_ih_l0
    else:
        for k, g in enumerate("ifgo"):
            out["W" + g] = rnn.weight_ih_l0[k * H:(k + 1) * H]
            out["U" + g] = rnn.weight_hh_l0[k * H:(k + 1) * H]
            out["b" + g] = rnn.bias_ih_l0[k * H:(k + 1) * H]
    out["Wy"] = lin.weight
    out["by"] = lin.bias
    return {n: {"shape": list(t.shape), "data": t.detach().flatten().tolist()} for n, t in out.items()}


def run(case, seed):
    torch.manual_seed(seed)
    rnn = (torch.nn.RNN if case["cell"] == "rnn" else torch.nn.LSTM)(D, H)
    lin = torch.nn.Linear(H, O)
    with torch.no_grad():
        rnn.bias_hh_l0.zero_()
    rnn.bias_hh_l0.requires_grad_(False)
    init = cellc_names(case, rnn, lin)
    batches = []
    for _ in range(STEPS):
        x = torch.randn(T, B, D)
        if case["loss"] == "mse":
            y = torch.randn(B, O) if case["on"] == "last" else torch.randn(T, B, O)
        else:
            y = torch.randint(0, O, (B,) if case["on"] == "last" else (T, B), dtype=torch.int64)
        batches.append((x, y))
    params = [p for p in list(rnn.parameters()) + list(lin.parameters()) if p.requires_grad]
    wd = case.get("weight_decay", 0.0)
    if case["optim"] == "sgd":
        opt = torch.optim.SGD(params, lr=case["lr"], weight_decay=wd)
    elif case["optim"] == "momentum":
        opt = torch.optim.SGD(params, lr=case["lr"], momentum=case["momentum"], weight_decay=wd)
    elif case["optim"] == "adam":
        opt = torch.optim.Adam(params, lr=case["lr"], weight_decay=wd)
    else:
        opt = torch.optim.AdamW(params, lr=case["lr"], weight_decay=wd)
    losses, norms = [], []
    for x, y in batches:
        opt.zero_grad()
        hs, _ = rnn(x)
        out = lin(hs[-1] if case["on"] == "last" else hs)
        if case["loss"] == "mse":
            loss = torch.nn.functional.mse_loss(out, y)
        else:
            loss = torch.nn.functional.cross_entropy(out.reshape(-1, O), y.reshape(-1))
        loss.backward()
        if "clip" in case:
            norms.append(float(torch.nn.utils.clip_grad_norm_(params, case["clip"])))
        opt.step()
        losses.append(float(loss))
    return {
        **case,
        "T": T, "B": B, "D": D, "H": H, "O": O,
        "init": init,
        "batches": [
            {"x": x.flatten().tolist(), "target": y.flatten().tolist()} for x, y in batches
        ],
        "losses": losses,
        "grad_norms": norms,
        "final": cellc_names(case, rnn, lin),
    }


def main():
    torch.set_default_dtype(torch.float32)
    cases = [run(c, seed) for seed, c in enumerate(CASES)]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f)
        f.write("\n")


if __name__ == "__main__":
    main()
