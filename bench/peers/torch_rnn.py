# PyTorch side of bench/peers/run.mjs: nn.LSTM / nn.GRU on the CPU.
#   python3 torch_rnn.py time CELL T B D H REPS THREADS   -> one JSON line of timings
#   python3 torch_rnn.py check < JSON             -> the output sequence for given weights (a tiny case)
import json
import resource
import sys
import time

import torch


def make(cell, D, H):
    return (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(D, H)


def timed(fn, reps):
    # Same rule as run.mjs: warm-up runs (three, or as many as fit in a second), then `reps` runs;
    # fewer when one run takes over 10 s.
    t0 = time.perf_counter()
    fn()
    w = (time.perf_counter() - t0) * 1000
    spent, k = w, 1
    while k < 3 and spent + w < 1000:
        t1 = time.perf_counter()
        fn()
        spent += (time.perf_counter() - t1) * 1000
        k += 1
    if w > 30000:
        return {"median": w, "min": w, "max": w, "n": 1, "warm": False}
    n = 2 if w > 10000 else reps
    ms = []
    cpu0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    cores = (time.process_time() - cpu0) * 1000 / sum(ms)
    ms.sort()
    return {"median": ms[len(ms) // 2], "min": ms[0], "max": ms[-1], "n": n, "warm": True, "cores": cores}


def main():
    if sys.argv[1] == "check":
        torch.set_num_threads(1)
        q = json.load(sys.stdin)
        m = make(q["cell"], q["D"], q["H"])
        with torch.no_grad():
            for name, v in q["params"].items():
                getattr(m, name).copy_(torch.tensor(v).reshape(getattr(m, name).shape))
            x = torch.tensor(q["x"]).reshape(q["T"], q["B"], q["D"])
            print(json.dumps(m(x)[0].reshape(-1).tolist()))
        return
    cell, T, B, D, H, reps, threads = sys.argv[2], *map(int, sys.argv[3:9])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    m = make(cell, D, H)
    x = torch.sin(torch.arange(T * B * D, dtype=torch.float32) * 0.37).reshape(T, B, D)
    opt = torch.optim.SGD(m.parameters(), lr=1e-5)

    def fwd():
        with torch.no_grad():
            m(x)

    def train():
        opt.zero_grad()
        m(x)[0].sum().backward()
        opt.step()

    out = {"fwd": timed(fwd, reps), "train": timed(train, reps)}
    out["maxRssMiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["version"] = torch.__version__
    print(json.dumps(out))


main()
