# PyTorch side of bench/peers/run.mjs: nn.LSTM / nn.GRU on the CPU.
#   python3 torch_rnn.py blas                             -> one JSON line: the BLAS torch runs on
#   python3 torch_rnn.py time CELL T B D H REPS OMP BLAS  -> one JSON line of timings
#   python3 torch_rnn.py check < JSON                     -> the output sequence for given weights (a tiny case)
# OMP: torch's intra-op (OpenMP) threads; BLAS: OpenBLAS's own threads. OpenBLAS reads its count from
# OPENBLAS_NUM_THREADS when it loads, so run.mjs sets that variable (and OMP_NUM_THREADS) for this process;
# the threads actually in use are read back and reported. A reference (netlib) BLAS is refused: Debian's
# python3-torch links libblas.so.3, which is the reference BLAS unless an optimised one (apt-get install
# libopenblas0-pthread) provides that name, and PyTorch on it is ~20x slower than on OpenBLAS.
import ctypes
import json
import os
import resource
import sys
import time

import torch

# The slowest 1024^3 GEMM accepted from an optimised BLAS on one thread (the reference BLAS does ~5 GFLOP/s;
# OpenBLAS ~95 here on a quiet machine, above 40 under a heavy load).
MIN_GFLOPS = 15


def cpu_ticks():
    """Busy and total jiffies of all cores, from /proc/stat (steal counts as busy), or None."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except OSError:
        return None
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
    return busy, busy + v[3] + v[4]


class Meter:
    """Cores busy with other processes over an interval: all cores' busy time minus this process's."""

    def __init__(self):
        self.t0, self.c0, self.k0 = time.perf_counter(), time.process_time(), cpu_ticks()

    def stop(self):
        wall = time.perf_counter() - self.t0
        own = (time.process_time() - self.c0) / wall
        k1, load = cpu_ticks(), os.getloadavg()[0]
        if self.k0 is None or k1 is None or k1[1] == self.k0[1]:
            return {"wallMs": wall * 1000, "own": own, "foreign": max(0.0, load - own), "loadavg": load, "from": "loadavg"}
        busy = (k1[0] - self.k0[0]) / (k1[1] - self.k0[1]) * os.cpu_count()
        return {"wallMs": wall * 1000, "own": own, "busy": busy, "foreign": max(0.0, busy - own), "loadavg": load, "from": "/proc/stat"}


def blas():
    """The BLAS library this process loaded (from its memory map), its threads, and its 1024^3 GEMM rate."""
    with open("/proc/self/maps") as f:
        libs = sorted({line.split()[-1] for line in f if ".so" in line})
    names = [l for l in libs if any(k in os.path.basename(l).lower() for k in ("blas", "mkl", "blis", "lapack"))]
    info = {"libraries": names, "torchThreads": torch.get_num_threads()}
    openblas = next((l for l in names if "openblas" in os.path.basename(l)), None)
    if openblas:
        lib = ctypes.CDLL(openblas)
        lib.openblas_get_config.restype = ctypes.c_char_p
        lib.openblas_get_corename.restype = ctypes.c_char_p
        info.update(
            name="OpenBLAS",
            config=lib.openblas_get_config().decode(),
            core=lib.openblas_get_corename().decode(),
            blasThreads=lib.openblas_get_num_threads(),
        )
    elif any("mkl" in os.path.basename(l) for l in names) or torch.backends.mkl.is_available():
        info.update(name="MKL")
    elif any("blis" in os.path.basename(l) for l in names):
        info.update(name="BLIS")
    else:
        # Debian's netlib build lives in .../blas/libblas.so.3 (the alternative when nothing better is installed).
        info.update(name="reference (netlib)" if any("/blas/" in l for l in names) else "unknown")
    a = torch.rand(1024, 1024)
    b = torch.rand(1024, 1024)
    a @ b
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    info["gemmGflops"] = 2 * 1024**3 / best / 1e9
    return info


def refuse_reference(info):
    if info["name"] in ("reference (netlib)", "unknown") or info["gemmGflops"] < MIN_GFLOPS:
        sys.stderr.write(
            f"torch runs on a {info['name']} BLAS ({info['gemmGflops']:.1f} GFLOP/s at 1024^3; "
            f"libraries {info['libraries']}): not a fair peer. Install an optimised one, e.g. "
            "`apt-get install libopenblas0-pthread`.\n"
        )
        sys.exit(3)


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
    m = Meter()
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    load = m.stop()
    ms.sort()
    return {"median": ms[len(ms) // 2], "min": ms[0], "max": ms[-1], "n": n, "warm": True, "cores": load["own"], "load": load}


def main():
    if sys.argv[1] == "blas":
        torch.set_num_threads(1)
        print(json.dumps(blas()))
        return
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
    cell, T, B, D, H, reps, omp, nblas = sys.argv[2], *map(int, sys.argv[3:10])
    torch.set_num_threads(omp)
    info = blas()
    refuse_reference(info)
    if info.get("blasThreads", nblas) != nblas:
        sys.stderr.write(f"OpenBLAS runs {info['blasThreads']} threads, not {nblas}: set OPENBLAS_NUM_THREADS\n")
        sys.exit(3)
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

    out = {"fwd": timed(fwd, reps), "train": timed(train, reps), "blas": info}
    out["maxRssMiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["version"] = torch.__version__
    print(json.dumps(out))


main()
