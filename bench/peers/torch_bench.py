#!/usr/bin/python3
"""PyTorch (Debian's python3-torch) on one torchvision model, the second peer
of `make bench`:  torch_bench.py MODEL THREADS RUNS WARMUP

Prints {"times_ms": [...], "peak_rss_mb": N}. torch.set_num_threads(THREADS),
eval mode under torch.inference_mode(), batch 1 at 224x224, seeded weights.
"""
import json
import resource
import sys
import time

import torch
import torchvision


def main():
    name, threads, runs, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    x = torch.rand(1, 3, 224, 224) * 2 - 1
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        for _ in range(runs):
            t0 = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t0) * 1e3)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    print(json.dumps({"times_ms": times, "peak_rss_mb": rss}))


if __name__ == "__main__":
    main()
