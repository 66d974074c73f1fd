#!/usr/bin/python3
"""`make bench-exits`: `eex bench --exits` on MobileNetV2-EE-224 with its side heads'
weights stored as float16 (the default model) and as float32, alternating the two
in every round of one invocation so that drift on a shared machine hits both alike.

    run.py --eex build/eex --model F16.eex --f32-model F32.eex [--rounds 5] [--runs 50]
           [--threads 1] [--out bench/results/exits.json]

Per model: medians over rounds of each exit's measured latency, the profile's
backbone-up-to-k plus head, their ratio, and the side heads' share of the backbone.
Prints a Markdown table (docs/performance.md keeps one) and writes the raw rounds to
the JSON file.
"""
import argparse
import json
import os
import platform
import statistics as st
import subprocess
import sys
import time


def one(eex, model, runs, threads):
    r = subprocess.run([eex, "bench", model, "--exits", "--json", "--runs", str(runs),
                        "--threads", str(threads)], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"bench-exits: {eex} bench {model} failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


def summary(rounds):
    n_exits = len(rounds[0]["exits"])
    med = lambda f: st.median(f(d) for d in rounds)  # noqa: E731
    return {
        "backbone_ms": med(lambda d: d["backbone_ms"]),
        "heads_ms": med(lambda d: d["heads_ms"]),
        "heads_share": med(lambda d: d["heads_share"]),
        "heads_share_per_round": [round(d["heads_share"], 5) for d in rounds],
        "exits": [{k: med(lambda d: d["exits"][i][k]) for k in
                   ("measured_ms", "backbone_ms", "head_ms", "predicted_ms", "ratio")}
                  for i in range(n_exits)],
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--eex", default="build/eex")
    p.add_argument("--model", required=True, help="side heads stored as float16")
    p.add_argument("--f32-model", required=True, help="the same model, float32 side heads")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="bench/results/exits.json")
    a = p.parse_args(argv)
    models = {"float16 side heads": a.model, "float32 side heads": a.f32_model}
    raw = {k: [] for k in models}
    t0 = time.time()
    for r in range(a.rounds):
        for name, path in models.items():
            raw[name].append(one(a.eex, path, a.runs, a.threads))
        print(f"bench-exits: round {r + 1}/{a.rounds} ({time.time() - t0:.0f} s): "
              + ", ".join(f"{k} {100 * v[-1]['heads_share']:.2f}%" for k, v in raw.items()),
              file=sys.stderr, flush=True)
    res = {"machine": platform.machine(), "loadavg_after": os.getloadavg(), "threads": a.threads,
           "runs": a.runs, "rounds": a.rounds,
           "models": {k: {"path": models[k], **summary(v)} for k, v in raw.items()},
           "raw": raw}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    for name, s in res["models"].items():
        print(f"\n{name} ({a.threads} thread{'s' if a.threads > 1 else ''}, medians of "
              f"{a.rounds} rounds x {a.runs} runs)\n")
        print("| exit | measured ms | backbone up to k | head ms | backbone + head | ratio |")
        print("|---|---|---|---|---|---|")
        for i, e in enumerate(s["exits"]):
            label = f"exit {i + 1}" if i < len(s["exits"]) - 1 else "final"
            print(f"| {label} | {e['measured_ms']:.3f} | {e['backbone_ms']:.3f} | "
                  f"{e['head_ms']:.3f} | {e['predicted_ms']:.3f} | {e['ratio']:.3f} |")
        print(f"\nside-exit heads: {s['heads_ms']:.3f} ms = {100 * s['heads_share']:.2f}% of "
              f"the backbone ({s['backbone_ms']:.3f} ms); per round: "
              + ", ".join(f"{100 * x:.2f}%" for x in s["heads_share_per_round"]))
    print(f"\nbench-exits: wrote {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
