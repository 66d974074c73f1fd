#!/usr/bin/python3
"""The batching factor of two eex builds in the same rounds (issue 19, acceptance 5).

    ab_batching.py --before OTHER/build --after build [--clients 64] [--rounds 3]
                   [--models mobilenetv2-ee-224,alexnet-ee-224] [--json OUT]

For each model and round, both builds serve the same load (`eex serve --threads 2`,
`loadgen --send-only`, K clients) with --no-batch and with --batch 32, the builds and
modes in an order that rotates from round to round, so that whatever else the machine
does falls on both alike. Prints per build the throughputs, the factor (batch / no
batch, median of the per-round ratios) and the server CPU per request. Every reply is
checked bit for bit against a local run, as in `make bench-load` (bench/load/run.py,
whose server and load generator this uses).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as load  # noqa: E402

MODELS = {"mobilenetv2-ee-224": (load.MOBILENET, 8), "alexnet-ee-224": (load.ALEXNET, 8),
          "tiny-ee-fathead": (load.FATHEAD, 40)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="build directory of the first build (eex, bench/offload/loadgen)")
    ap.add_argument("--after", required=True, help="build directory of the second build")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="mobilenetv2-ee-224,alexnet-ee-224")
    ap.add_argument("--json")
    a = ap.parse_args()
    names = [m for m in a.models.split(",") if m]
    for m in names:
        if m not in MODELS:
            sys.exit(f"ab_batching: unknown model '{m}' (known: {', '.join(MODELS)})")
        if not os.path.exists(MODELS[m][0]):
            sys.exit(f"ab_batching: {MODELS[m][0]} is missing (make bench-load builds it)")
    for b in (a.before, a.after):
        for tool in ("eex", os.path.join("bench", "offload", "loadgen")):
            if not os.access(os.path.join(b, tool), os.X_OK):
                sys.exit(f"ab_batching: {os.path.join(b, tool)} is missing (make all offload-tools in that tree)")
    builds = {"before": a.before, "after": a.after}
    out = {"clients": a.clients, "rounds": a.rounds, "builds": builds, "load_before": os.getloadavg(), "rows": []}
    with tempfile.TemporaryDirectory(prefix="eex-ab-batching-") as tmp:
        for m in names:
            model, reqs = MODELS[m]
            res = {b: {"no-batch": [], "batch": [], "cpu_no": [], "cpu_b": []} for b in builds}
            for rd in range(a.rounds):
                order = [(b, mode) for b in builds for mode in ("no-batch", "batch")]
                k = rd % len(order)
                for b, mode in order[k:] + order[:k]:
                    args = ["--no-batch"] if mode == "no-batch" else ["--batch", "32"]
                    s = load.one_load(builds[b], tmp, model, args, a.clients, reqs, ["--send-only"], f"ab-{b}-{mode}")
                    if s["lost"] or s["wrong"]:
                        sys.exit(f"ab_batching: {b} {mode} lost or wrong answers: {s}")
                    res[b][mode].append(s["throughput_rps"])
                    res[b]["cpu_no" if mode == "no-batch" else "cpu_b"].append(s["server_cpu_us_per_request"])
                    print(f"  round {rd + 1} {m} {b} {mode}: {s['throughput_rps']:.0f}/s", flush=True)
            for b in builds:
                r = res[b]
                ratios = [x / y for x, y in zip(r["batch"], r["no-batch"])]
                row = {"model": m, "build": b, "no_batch_rps": r["no-batch"], "batch_rps": r["batch"],
                       "ratios": ratios, "factor_median": statistics.median(ratios),
                       "no_batch_cpu_us": r["cpu_no"], "batch_cpu_us": r["cpu_b"]}
                out["rows"].append(row)
                print(f"{m} K={a.clients} {b}: no batching {statistics.median(r['no-batch']):.0f}/s, batching "
                      f"{statistics.median(r['batch']):.0f}/s, factor {row['factor_median']:.2f} (rounds "
                      f"{', '.join(f'{x:.2f}' for x in ratios)}), server CPU per request "
                      f"{statistics.median(r['cpu_no']):.0f} -> {statistics.median(r['cpu_b']):.0f} us", flush=True)
    out["load_after"] = os.getloadavg()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"written {a.json}")


if __name__ == "__main__":
    main()
