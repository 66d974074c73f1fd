#!/usr/bin/python3
"""The split planner's plot: expected latency against cut point, one panel per
path, one line per wire codec (`eex plan --json`), with the medians measured by
`eex plan --measure --json` on each path as markers when given.

    plan_plot.py OUT.png PLAN.json [MEASURED.json ...]
"""
import json
import sys


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out, plan = sys.argv[1], json.load(open(sys.argv[2]))
    measured = {}
    for f in sys.argv[3:]:
        try:
            m = json.load(open(f))
        except (OSError, ValueError):
            continue
        for p in m["paths"]:
            measured[(p["rtt_ms"], p["mbit"])] = p["rows"]
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    paths = plan["paths"]
    fig, axes = plt.subplots(1, len(paths), figsize=(4.2 * len(paths), 3.8), squeeze=False)
    wires = []
    for r in paths[0]["rows"]:
        if r["wire"] not in wires:
            wires.append(r["wire"])
    for ax, p in zip(axes[0], paths):
        cuts = sorted({r["cut"] for r in p["rows"]})
        names = {r["cut"]: r["cut_name"] for r in p["rows"]}
        for i, wname in enumerate(wires):
            rows = sorted((r for r in p["rows"] if r["wire"] == wname), key=lambda r: r["cut"])
            ax.plot([r["cut"] for r in rows], [r["expected_ms"] for r in rows], "-o", color=f"C{i}",
                    label=f"{wname} predicted")
            mrows = measured.get((p["rtt_ms"], p["mbit"]))
            if mrows:
                mr = sorted((r for r in mrows if r["wire"] == wname and "measured" in r), key=lambda r: r["cut"])
                ax.plot([r["cut"] for r in mr], [r["measured"]["total_ms"] for r in mr], "x", color=f"C{i}", ms=9,
                        label=f"{wname} measured median")
        b = p["best"]
        ax.axvline(b["cut"], color="gray", ls=":", lw=1)
        ax.set_xticks(cuts)
        ax.set_xticklabels([f"{c}\n{names[c]}" for c in cuts], fontsize=8)
        ax.set_xlabel("cut point")
        ax.set_ylabel("expected latency per image (ms)")
        ax.set_title(f"{p['mbit']:g} Mbit/s, {p['rtt_ms']:g} ms RTT: best cut {b['cut']} {b['wire']}", fontsize=9)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"plan_plot: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
