#!/usr/bin/python3
"""Reliability diagrams from `eex calibrate --diagram FILE.json`: one panel per exit
of one expert set, accuracy against mean confidence per bin, before (T = 1) and
after calibration, on the held-out split when the file has it.

    plot_reliability.py DIAGRAM.json OUT.png [--expert pristine]
"""
import argparse
import json

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("diagram")
    ap.add_argument("out")
    ap.add_argument("--expert", default="pristine")
    a = ap.parse_args()
    d = json.load(open(a.diagram))
    exits = [e for e in d["exits"] if e["expert"] == a.expert]
    if not exits:
        raise SystemExit(f"plot_reliability: no expert set '{a.expert}' in {a.diagram}")
    split = "report" if d.get("report_split", "none") != "none" else "fit"
    where = d["report_split"] if split == "report" else d["split"]
    fig, axes = plt.subplots(1, len(exits), figsize=(3.2 * len(exits), 3.4), sharey=True)
    for ax, e in zip(axes, exits):
        ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
        for key, label, color in ((f"{split}_before", "T = 1", "tab:red"), (f"{split}_after", "fitted T", "tab:blue")):
            bins = [b for b in e[key] if b[0] > 0]
            ece = sum(n * abs(acc - conf) for n, conf, acc in bins) / sum(n for n, _, _ in bins)
            ax.plot([b[1] for b in bins], [b[2] for b in bins], "o-", ms=3, color=color,
                    label=f"{label} (ECE {ece:.3f})")
        ax.set_title(("final" if e["final"] else f"exit {e['exit']}") + f", T = {e['temperature']:.3f}", fontsize=9)
        ax.set_xlabel("confidence")
        ax.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel(f"accuracy ({where} split)")
    fig.suptitle(f"reliability, expert set {a.expert}, {d['bins']} bins", fontsize=10)
    fig.tight_layout()
    fig.savefig(a.out, dpi=120)


if __name__ == "__main__":
    main()
