#!/usr/bin/python3
"""Pareto frontiers from `eex thresholds --frontier FILE.json`: accuracy against
P(offload) and, when the file has latencies, against expected latency; the
choosing log's points, and the report log's figures for the same vectors.

    plot_frontier.py FRONTIER.json OUT.png [--single SINGLE.json]

SINGLE.json (optional): `eex eval --json` output on the choosing log, whose
single-p_tar sweep is drawn for comparison.
"""
import argparse
import json

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("frontier")
    ap.add_argument("out")
    ap.add_argument("--single")
    ap.add_argument("--budget", type=float)
    a = ap.parse_args()
    f = json.load(open(a.frontier))
    panels = [("offload", "p_offload", "P(offload)")] + ([("latency", "latency_ms", "expected latency (ms)")]
                                                          if f["latency"] else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, (key, x, label) in zip(axes[0], panels):
        pts = f[key]
        ax.step([p[x] for p in pts], [100 * p["accuracy"] for p in pts], where="post", color="tab:blue",
                label="per-exit, choosing log")
        if f.get("report"):
            ax.plot([p["report_" + x] for p in pts], [100 * p["report_accuracy"] for p in pts], ".", ms=3,
                    color="tab:orange", label="same vectors, report log")
        if a.single and key == "offload":
            s = json.load(open(a.single))
            r = sorted(s["results"], key=lambda q: q["p_offload"])
            ax.plot([q["p_offload"] for q in r], [100 * q["overall_accuracy"] for q in r], "s-", ms=3,
                    color="tab:green", label="single p_tar, choosing log")
        if a.budget is not None and key == "offload":
            ax.axvline(a.budget, color="0.5", ls="--", lw=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel("overall accuracy (%)")
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Pareto frontier, {f['images']} images, {f['exits']} exits", fontsize=10)
    fig.tight_layout()
    fig.savefig(a.out, dpi=120)


if __name__ == "__main__":
    main()
