#!/usr/bin/python3
"""What a threshold sweep costs in `eex eval`: one threshold against ten, on the same
images, alternating in rounds of one invocation (the machine is shared: the ratio
of neighbouring runs is what counts). The per-threshold decisions are made from the
confidences of one pass, so ten thresholds should cost about what one does.

    thresholds.py [--eex build/eex] [--model models/fmnist-ee.eex]
                  [--dataset /usr/share/datasets/fashion-mnist] [--rounds 9]
                  [--distortion noise:20] [--expert auto] [--out bench/results/eval_thresholds.json]

Prints one line per run and the median ratios ten / one of wall time and of the
process's CPU time (user + system, which other work on the machine disturbs less);
writes the JSON.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ONE = "0.8"
TEN = ",".join(f"{0.5 + 0.05 * i:.2f}" for i in range(10))


def run(a, thresholds):
    cmd = [a.eex, "eval", a.model, "--dataset", a.dataset, "--split", "test", "--distortion",
           a.distortion, "--expert", a.expert, "--threshold", thresholds, "--json", "--quiet"]
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    if r.returncode:
        sys.exit(f"thresholds: {' '.join(cmd)} failed: {r.stderr.strip()}")
    res = json.loads(r.stdout)
    n = len(res["results"])
    if n != len(thresholds.split(",")):
        sys.exit(f"thresholds: asked for {thresholds}, got {n} results")
    return dt, cpu, res["images"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--eex", default=os.path.join(ROOT, "build", "eex"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "fmnist-ee.eex"))
    ap.add_argument("--dataset", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--distortion", default="noise:20")
    ap.add_argument("--expert", default="auto")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "eval_thresholds.json"))
    a = ap.parse_args()
    run(a, ONE)  # warm the page cache
    times = {"one": [], "ten": []}
    cpus = {"one": [], "ten": []}
    images = 0
    for rd in range(a.rounds):
        order = ("one", "ten") if rd % 2 == 0 else ("ten", "one")
        for k in order:
            dt, cpu, images = run(a, ONE if k == "one" else TEN)
            times[k].append(dt)
            cpus[k].append(cpu)
            print(f"round {rd + 1}/{a.rounds}: {k:3s} threshold(s) {dt:.3f} s wall, {cpu:.3f} s CPU",
                  flush=True)
    ratios = [t / o for t, o in zip(times["ten"], times["one"])]
    cpu_ratios = [t / o for t, o in zip(cpus["ten"], cpus["one"])]
    med = statistics.median(ratios)
    cpu_med = statistics.median(cpu_ratios)
    print(f"eex eval, {images} images, {a.distortion}, expert {a.expert}: one threshold "
          f"{statistics.median(times['one']):.3f} s, ten {statistics.median(times['ten']):.3f} s; "
          f"ten / one = {med:.3f} wall (rounds: {', '.join(f'{r:.3f}' for r in ratios)}), "
          f"{cpu_med:.3f} CPU time (rounds: {', '.join(f'{r:.3f}' for r in cpu_ratios)})")
    out = {"model": os.path.relpath(a.model, ROOT), "images": images, "distortion": a.distortion,
           "expert": a.expert, "one": ONE, "ten": TEN, "seconds": times, "ratios": ratios,
           "ratio_median": med, "cpu_seconds": cpus, "cpu_ratios": cpu_ratios,
           "cpu_ratio_median": cpu_med, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "loadavg": open("/proc/loadavg").read().split()[:3]}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
