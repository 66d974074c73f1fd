#!/usr/bin/python3
"""eex against the engines its users would pick instead, in one run.

    run.py --eex build/eex --models-dir build/parity [--threads 1,2] [--rounds 5]
           [--models mobilenet_v2,resnet18,mobilenet_v3_small] [--out bench/results/peers.json]
           [--eex-base OTHER/eex --base-models-dir DIR]

For each model and thread count, `rounds` rounds run every engine once each in
a fresh process, the engine order rotating from round to round, so that
whatever else the machine is doing falls on all engines alike. An engine's
median is taken over the timed runs of all its rounds; its peak RSS is the
largest its process reached. Engines:
  eex          build/eex bench MODEL.eex --threads N --json
  onnxruntime  bench/peers/ort_bench.js (onnxruntime-node, CPU provider,
               intra-op threads N, all graph optimizations)
  pytorch      bench/peers/torch_bench.py (torch.set_num_threads(N))
  eex_winograd with --winograd: the same eex with EEX_WINOGRAD=1 (Winograd F(4x4,3x3)
               for the 3x3 convs where it pays; off by default, as its rounding error
               compounds over deep networks: docs/performance.md)
  eex_base     with --eex-base: another eex build (say main's, for a before/after
               in the same rounds) on the .eex files of --base-models-dir (made by
               that build's converter)
With --winograd, on models where Winograd applies to no conv the eex and
eex_winograd columns time the same code: the run prints (and writes as
same_code_spread) how far apart their medians came out, the noise floor of
that run's ratios.
Also measures OpenBLAS sgemm 1024^3 on one thread (numpy, best of 5, at the
start, the middle and the end of the run; the best is kept) and gives each
model's FLOP limit at N threads: 2 * MACs (`eex info --json`) / (N * that
rate), and eex's median over it. Writes the JSON (rows of model, threads,
engine, median_ms, peak_rss_mb; the eex/ORT and eex/PyTorch ratios; the
limits; the ISA eex ran and the CPU's SIMD flags; machine; date) and prints
the table.
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ENGINES = ("eex", "onnxruntime", "pytorch")
# timed runs per round and warm-up runs per process, by engine (PyTorch is
# several times slower; fewer runs keep the whole benchmark a few minutes)
RUNS = {"eex": 20, "eex_winograd": 20, "eex_base": 20, "onnxruntime": 20, "pytorch": 8}
WARMUP = {"eex": 5, "eex_winograd": 5, "eex_base": 5, "onnxruntime": 5, "pytorch": 3}


def machine():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


SGEMM = """
import time, numpy as np
a = np.random.rand(1024, 1024).astype(np.float32); b = np.random.rand(1024, 1024).astype(np.float32)
a @ b
best = min((lambda t0: (a @ b, time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(5))
print(2 * 1024 ** 3 / best / 1e9)
"""


def sgemm_gflops():
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    out = subprocess.run(["/usr/bin/python3", "-c", SGEMM], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip())


def simd_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [x for x in ("avx512f", "avx512vl", "avx512dq", "avx2", "fma", "f16c", "asimd") if x in have]
    except OSError:
        pass
    return []


def model_macs(eex, path):
    out = subprocess.run([eex, "info", path, "--json"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["macs"]


def winograd_nodes(eex, path):
    """How many nodes run the Winograd kernel with EEX_WINOGRAD=1 (0: the
    eex_winograd column times the same code as the eex one)."""
    env = dict(os.environ, EEX_WINOGRAD="1")
    out = subprocess.run([eex, "bench", path, "--runs", "1", "--warmup", "0", "--json"], capture_output=True,
                         text=True, check=True, env=env).stdout
    return sum(1 for n in json.loads(out)["nodes"] if n["kernel"].startswith("winograd"))


def run_engine(engine, model, models_dir, eex, threads, base=None):
    runs, warmup = str(RUNS[engine]), str(WARMUP[engine])
    if engine in ("eex", "eex_winograd", "eex_base"):
        exe, mdir = (eex, models_dir) if engine != "eex_base" else base
        cmd = [exe, "bench", os.path.join(mdir, model + ".eex"), "--threads", str(threads),
               "--runs", runs, "--warmup", warmup, "--json"]
    elif engine == "onnxruntime":
        cmd = ["node", os.path.join(HERE, "ort_bench.js"), os.path.join(models_dir, model + ".onnx"),
               str(threads), runs, warmup]
    else:
        cmd = ["/usr/bin/python3", os.path.join(HERE, "torch_bench.py"), model, str(threads), runs, warmup]
    env = dict(os.environ)
    # OpenBLAS and OpenMP pools must not add threads beyond N in any engine
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    env["OMP_NUM_THREADS"] = str(threads)
    if engine == "eex_winograd":
        env["EEX_WINOGRAD"] = "1"
    else:
        env.pop("EEX_WINOGRAD", None)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()[-500:]}")
    last = [line for line in out.stdout.splitlines() if line.startswith("{")]
    # eex bench --json prints one object spread over lines (the node table)
    doc = json.loads(out.stdout if engine.startswith("eex") else last[-1])
    if engine == "eex":
        run_engine.isa = doc.get("isa", "?")
    return doc["times_ms"], doc["peak_rss_mb"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eex", default="build/eex")
    ap.add_argument("--models-dir", default="build/parity")
    ap.add_argument("--models", default="mobilenet_v2,resnet18,mobilenet_v3_small")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--out", default="bench/results/peers.json")
    ap.add_argument("--winograd", action="store_true", help="also time eex with EEX_WINOGRAD=1 (engine eex_winograd)")
    ap.add_argument("--eex-base", help="a second eex build, timed in the same rounds as engine eex_base")
    ap.add_argument("--base-models-dir", help="its .eex files (default: --models-dir)")
    a = ap.parse_args()
    engines = [e for e in a.engines.split(",") if e]
    load0 = os.getloadavg()
    base = None
    if a.winograd:
        engines.append("eex_winograd")
    if a.eex_base:
        base = (a.eex_base, a.base_models_dir or a.models_dir)
        engines.append("eex_base")
    rows, ratios = [], []
    sgemm = [sgemm_gflops()]
    n_models = len(a.models.split(","))
    for mi, model in enumerate(a.models.split(",")):
        if mi == n_models // 2 and mi > 0:
            sgemm.append(sgemm_gflops())
        macs = model_macs(a.eex, os.path.join(a.models_dir, model + ".eex"))
        wino = winograd_nodes(a.eex, os.path.join(a.models_dir, model + ".eex")) if a.winograd else None
        for threads in (int(t) for t in a.threads.split(",")):
            times = {e: [] for e in engines}
            rss = {e: 0.0 for e in engines}
            for r in range(a.rounds):
                order = engines[r % len(engines):] + engines[:r % len(engines)]
                for e in order:
                    t, m = run_engine(e, model, a.models_dir, a.eex, threads, base)
                    times[e] += t
                    rss[e] = max(rss[e], m)
            med = {e: statistics.median(times[e]) for e in engines}
            for e in engines:
                rows.append({"model": model, "threads": threads, "engine": e, "median_ms": round(med[e], 4),
                             "min_ms": round(min(times[e]), 4), "peak_rss_mb": round(rss[e], 2)})
            ratio = {"model": model, "threads": threads, "macs": macs}
            if "eex" in med and "onnxruntime" in med:
                ratio["eex_over_onnxruntime"] = round(med["eex"] / med["onnxruntime"], 4)
            if "eex" in med and "pytorch" in med:
                ratio["eex_over_pytorch"] = round(med["eex"] / med["pytorch"], 4)
            if "eex_winograd" in med and "onnxruntime" in med:
                ratio["eex_winograd_over_onnxruntime"] = round(med["eex_winograd"] / med["onnxruntime"], 4)
            if "eex_winograd" in med:
                ratio["winograd_nodes"] = wino
                if wino == 0:
                    # the same code timed twice, in the same rounds: how far
                    # apart two medians of one thing come out in this run
                    ratio["same_code_spread"] = round(max(med["eex"], med["eex_winograd"]) /
                                                      min(med["eex"], med["eex_winograd"]) - 1, 4)
            if "eex_base" in med and "onnxruntime" in med:
                ratio["eex_base_over_onnxruntime"] = round(med["eex_base"] / med["onnxruntime"], 4)
                ratio["eex_over_eex_base"] = round(med["eex"] / med["eex_base"], 4)
                # on a loaded machine the fastest run is the least disturbed one
                mins = {e: min(times[e]) for e in ("eex", "eex_base", "onnxruntime")}
                ratio["by_min"] = {"eex_over_onnxruntime": round(mins["eex"] / mins["onnxruntime"], 4),
                                   "eex_base_over_onnxruntime": round(mins["eex_base"] / mins["onnxruntime"], 4),
                                   "eex_over_eex_base": round(mins["eex"] / mins["eex_base"], 4)}
            ratios.append(ratio)
            line = "  ".join(f"{e} {med[e]:7.2f} ms {rss[e]:6.1f} MB" for e in engines)
            print(f"{model:20s} threads {threads}: {line}", flush=True)
    sgemm.append(sgemm_gflops())
    rate = max(sgemm)
    for x in ratios:
        x["flop_limit_ms"] = round(2 * x["macs"] / (rate * 1e9 * x["threads"]) * 1e3, 4)
        eexr = next(r for r in rows if r["model"] == x["model"] and r["threads"] == x["threads"]
                    and r["engine"] == "eex") if "eex" in engines else None
        if eexr:
            x["eex_over_flop_limit"] = round(eexr["median_ms"] / x["flop_limit_ms"], 4)
    isa = getattr(run_engine, "isa", "?")
    doc = {"rows": rows, "ratios": ratios, "machine": machine(), "eex_isa": isa, "cpu_simd_flags": simd_flags(),
           "sgemm_1024_gflops_1thread": [round(g, 2) for g in sgemm],
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "rounds": a.rounds, "runs_per_round": {e: RUNS[e] for e in engines},
           "load_average_start_end": [[round(v, 2) for v in load0], [round(v, 2) for v in os.getloadavg()]]}
    if base:
        doc["eex_base"] = {"binary": base[0], "models_dir": base[1]}
    spread = [x for x in ratios if "same_code_spread" in x]
    worst = max(spread, key=lambda x: x["same_code_spread"]) if spread else None
    if worst:
        doc["same_code_spread_max"] = worst["same_code_spread"]
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")

    print(f"\neex kernels {isa}; CPU flags {' '.join(simd_flags())}; OpenBLAS sgemm 1024^3, 1 thread: "
          + ", ".join(f"{g:.1f}" for g in sgemm) + f" GFLOP/s (limit uses {rate:.1f} per thread)")
    print(f"\n{'model':20s} {'N':>2s} " + " ".join(f"{e + ' ms':>15s} {'RSS MB':>7s}" for e in engines)
          + "  eex/ORT  eex/PyT  limit ms  eex/limit" + ("  wino/ORT" if a.winograd else "")
          + ("  base/ORT eex/base" if base else ""))
    for model in a.models.split(","):
        for threads in (int(t) for t in a.threads.split(",")):
            sel = {r["engine"]: r for r in rows if r["model"] == model and r["threads"] == threads}
            x = next(x for x in ratios if x["model"] == model and x["threads"] == threads)
            fmt = lambda k: f"  {x[k]:7.3f}" if k in x else "        -"
            print(f"{model:20s} {threads:2d} " + " ".join(
                f"{sel[e]['median_ms']:15.2f} {sel[e]['peak_rss_mb']:7.1f}" for e in engines)
                + fmt("eex_over_onnxruntime") + fmt("eex_over_pytorch")
                + f"  {x['flop_limit_ms']:8.2f}" + fmt("eex_over_flop_limit")
                + (fmt("eex_winograd_over_onnxruntime") if a.winograd else "")
                + (fmt("eex_base_over_onnxruntime") + fmt("eex_over_eex_base") if base else ""))
    if worst:
        rows_s = f"{len(spread)} row" + ("s" if len(spread) != 1 else "")
        th_s = f"{worst['threads']} thread" + ("s" if worst["threads"] != 1 else "")
        print(f"\nnoise: on {rows_s} Winograd applies to no conv, so eex and eex_winograd ran the same "
              f"code; their medians came out up to {100 * worst['same_code_spread']:.1f}% apart "
              f"({worst['model']}, {th_s}): ratios closer than that to a target are not "
              "resolved by this run")
    for x in ratios:
        if "by_min" in x:
            print(f"{x['model']:20s} {x['threads']:2d} by the fastest run: " +
                  "  ".join(f"{k} {v:.3f}" for k, v in x["by_min"].items()))
    print(f"\nload average (1, 5, 15 min) at the start {doc['load_average_start_end'][0]}, "
          f"at the end {doc['load_average_start_end'][1]}")
    print(f"\nwritten {a.out} ({doc['machine']}, {doc['date']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
