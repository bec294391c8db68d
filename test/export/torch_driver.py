"""Runs a cellc-generated PyTorch module for test/export/torch.test.ts.

argv: jobs.json, a list of jobs, each with module (path of the generated .py), dims, layers, bidirectional, dtype ("f32"|"f64"),
params, inputs (safetensors: x, <state>.init, seq_lens, upstream.<output>, upstream.<state>.final), out.
Writes to `out` the outputs, final states and gradients under `cellc run --grad`'s names, after checking
that state_dict() and named_parameters() use the parameters' names, that the module's load_safetensors reads
the parameters, and that TorchScript compiles the module and gives the same outputs.
"""
import importlib.util
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from st_io import read_safetensors, write_safetensors  # noqa: E402


def main():
    for job in json.load(open(sys.argv[1])):
        run(job)


def run(job):
    spec = importlib.util.spec_from_file_location("cell", job["module"])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    dtype = torch.float64 if job["dtype"] == "f64" else torch.float32
    model = mod.build(job["dims"], layers=job["layers"], bidirectional=job["bidirectional"], prefixed=True).to(dtype)
    fresh = model.state_dict()
    for name, value in job["consts"].items():
        if not torch.all(fresh[name] == value):
            raise SystemExit("build() did not initialise %s to %s" % (name, value))
    # the module's own reader (no safetensors package), and every name the user sees is cellc's
    params = mod.load_safetensors(job["params"])
    keys = sorted(model.state_dict().keys())
    named = sorted(dict(model.named_parameters()).keys())
    if keys != sorted(params.keys()) or named != keys:
        raise SystemExit("state_dict keys %s, named_parameters %s, parameters %s differ" % (keys, named, sorted(params)))
    model.load_state_dict({k: v.to(dtype) for k, v in params.items()})
    inputs = read_safetensors(job["inputs"])
    x = inputs["x"].to(dtype).requires_grad_()
    init = {k: v.to(dtype).requires_grad_() for k, v in inputs.items() if k.endswith(".init")}
    lens = inputs.get("seq_lens")
    out = model(x, lens, init)
    loss = 0
    for k, v in out.items():
        up = inputs.get("upstream." + k)
        if up is not None:
            loss = loss + (v * up.to(dtype)).sum()
    loss.backward()
    result = {k: v for k, v in out.items()}
    for name, p in model.named_parameters():
        result["grad." + name] = p.grad
    result["grad.x"] = x.grad
    for k, v in init.items():
        result["grad." + k] = v.grad
    scripted = torch.jit.script(model)
    again = scripted(x.detach(), lens, {k: v.detach() for k, v in init.items()})
    for k, v in out.items():
        if not torch.equal(again[k], v.detach()):
            raise SystemExit("TorchScript output %s differs from eager" % k)
    write_safetensors(job["out"], result)


if __name__ == "__main__":
    main()
