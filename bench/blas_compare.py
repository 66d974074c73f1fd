#!/usr/bin/python3
"""The BLAS=none build against the OpenBLAS build on one model, interleaved:

    blas_compare.py --openblas build/eex --none build-noblas/eex --model M.eex
                    [--threads 1,2] [--rounds 5] [--out bench/results/blas.json]

Each round runs `eex bench --json` of both binaries in turn (order
alternating); medians are over all timed runs of all rounds.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess


def run(binary, model, threads):
    out = subprocess.run([binary, "bench", model, "--threads", str(threads), "--runs", "20", "--warmup", "5",
                          "--json"], capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout)["times_ms"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--openblas", default="build/eex")
    ap.add_argument("--none", default="build-noblas/eex")
    ap.add_argument("--model", default="build/parity/mobilenet_v2.eex")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="bench/results/blas.json")
    a = ap.parse_args()
    rows = []
    for t in (int(x) for x in a.threads.split(",")):
        times = {"openblas": [], "none": []}
        for r in range(a.rounds):
            for k in (("openblas", "none") if r % 2 == 0 else ("none", "openblas")):
                times[k] += run(a.openblas if k == "openblas" else a.none, a.model, t)
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append({"model": os.path.basename(a.model), "threads": t, "openblas_median_ms": round(med["openblas"], 4),
                     "none_median_ms": round(med["none"], 4), "none_over_openblas": round(med["none"] / med["openblas"], 4)})
        print(f"{os.path.basename(a.model)} threads {t}: OpenBLAS build {med['openblas']:.2f} ms, "
              f"BLAS=none build {med['none']:.2f} ms, ratio {med['none'] / med['openblas']:.3f}")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"rows": rows, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
                  f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
