"""Imports cellc-generated PyTorch modules of the export corpus (test/export/corpus.test.ts) and runs them.

argv: jobs.json, a list of jobs, each with module, dims, params (cellc's parameters, by cellc's names), inputs
(x, seq_lens) and out. Checks that state_dict() and named_parameters() use exactly cellc's names, loads the
parameters with the module's own load_safetensors, and writes the forward's outputs and final states.
"""
import importlib.util
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from st_io import write_safetensors  # noqa: E402


def run(job):
    spec = importlib.util.spec_from_file_location("cell", job["module"])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = mod.build(job["dims"], prefixed=True).to(torch.float64)
    params = mod.load_safetensors(job["params"])
    keys = sorted(model.state_dict().keys())
    named = sorted(dict(model.named_parameters()).keys())
    if keys != sorted(params) or named != keys:
        raise SystemExit("%s: state_dict %s / named_parameters %s differ from cellc's %s" % (job["module"], keys, named, sorted(params)))
    model.load_state_dict(params)
    inputs = mod.load_safetensors(job["inputs"])
    with torch.no_grad():
        out = model(inputs["x"], inputs["seq_lens"])
    write_safetensors(job["out"], out)


if __name__ == "__main__":
    for job in json.load(open(sys.argv[1])):
        run(job)
