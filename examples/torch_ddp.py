#!/usr/bin/env python3
"""Trains a cellc cell exported to PyTorch with DistributedDataParallel on 2 CPU processes (gloo).

    node bin/cellc.js compile examples/cells/lstm.cell --target torch --out /tmp/lstm_cell.py
    python3 examples/torch_ddp.py /tmp/lstm_cell.py

Each process sees its own batches (packed, with random lengths); DDP averages the gradients, so both
replicas stay identical. The task: after each step, output the running mean of the input's first feature.
"""
import importlib.util
import os
import socket
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP

D, H, T, B, STEPS = 4, 8, 6, 16, 60


def load(path):
    spec = importlib.util.spec_from_file_location("cell", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Regressor(torch.nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.cell = cell
        self.head = torch.nn.Linear(H, 1)

    def forward(self, x, lens):
        return self.head(self.cell(x, lens)["h"])


def worker(rank, world, path, port):
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)  # the same initial weights in every process
    model = DDP(Regressor(load(path).build({"D": D, "H": H})))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    gen = torch.Generator().manual_seed(100 + rank)  # different data in each process
    losses = []
    for _ in range(STEPS):
        x = torch.randn(T, B, D, generator=gen)
        lens = torch.randint(1, T + 1, (B,), generator=gen)
        target = torch.cumsum(x[:, :, :1], 0) / torch.arange(1, T + 1).view(T, 1, 1)
        mask = (torch.arange(T).view(T, 1) < lens.view(1, B)).unsqueeze(2)
        out = model(x, lens)
        loss = (((out - target) ** 2) * mask).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    if rank == 0:
        same = all(torch.equal(gathered[0], g) for g in gathered)
        first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
        print(f"replicas identical: {same}; loss {first:.4f} -> {last:.4f}")
        if not same or not last < 0.7 * first:
            sys.exit(1)
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    mp.spawn(worker, args=(2, sys.argv[1], free_port()), nprocs=2, join=True)
