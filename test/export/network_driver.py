"""Runs cellc-exported networks for test/export/network.test.ts, with no safetensors package installed.

argv: jobs.json, a list of jobs, each with module (the .py `cellc compile RUN --target torch` wrote), params (the
run's params.safetensors), inputs (safetensors: x, seq_lens) and out. Checks that state_dict() and
named_parameters() name the parameters as params.safetensors does, that TorchScript gives the same y, and writes
to `out` y (full lengths) and y.lens (with seq_lens).
"""
import importlib.util
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from st_io import write_safetensors  # noqa: E402


def run(job):
    spec = importlib.util.spec_from_file_location("network", job["module"])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    names = sorted(mod.load_safetensors(job["params"]).keys())
    model = mod.build(params=job["params"])
    keys = sorted(model.state_dict().keys())
    named = sorted(dict(model.named_parameters()).keys())
    if keys != names or named != names:
        raise SystemExit("state_dict %s / named_parameters %s differ from the run's parameters %s" % (keys, named, names))
    inputs = mod.load_safetensors(job["inputs"])
    x = inputs["x"]
    x = x.long() if x.dtype == torch.int32 else x
    lens = inputs["seq_lens"]
    with torch.no_grad():
        y = model(x)
        y_lens = model(x, lens)
        scripted = torch.jit.script(model)
        if not torch.equal(scripted(x, lens), y_lens) or not torch.equal(scripted(x, None), y):
            raise SystemExit("TorchScript's y differs from eager")
    write_safetensors(job["out"], {"y": y, "y.lens": y_lens})


if __name__ == "__main__":
    if importlib.util.find_spec("safetensors") is not None:
        raise SystemExit("this check is for a Python without the safetensors package")
    for job in json.load(open(sys.argv[1])):
        run(job)
