#!/usr/bin/python3
"""Board report: every `eex bench --json` file in a folder -> one markdown table
and one PNG plot, with the published figures of bench/boards/anchors.json beside
them, marked as published.

    report.py RESULTS_DIR [--out DIR] [--anchors FILE]

Writes DIR/board-report.md and DIR/board-report.png (DIR defaults to
RESULTS_DIR). Files that are not eex-bench/1 JSON are listed and skipped. A
result whose machine was read from a redirected sysfs root (EEX_SYSFS_ROOT, the
fake trees of tests/sysfs/) is marked "simulated": its board description is the
tree's, its timing the machine's that ran it. See bench/boards/README.md.
"""
import argparse
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def load_results(folder):
    rows, skipped = [], []
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        try:
            with open(path, encoding="utf-8") as f:
                j = json.load(f)
        except (OSError, ValueError) as e:
            skipped.append((path, f"not JSON ({e.__class__.__name__})"))
            continue
        if not isinstance(j, dict) or j.get("format") != "eex-bench/1":
            skipped.append((path, "not an eex-bench/1 result"))
            continue
        j["_file"] = os.path.basename(path)
        rows.append(j)
    return rows, skipped


def fmt_ms(v):
    return "-" if v is None else (f"{v:.1f}" if v >= 10 else f"{v:.3g}")


def clusters_text(m):
    parts = []
    for c in m.get("clusters", []):
        mhz = f"{c['max_mhz']} MHz" if c.get("max_mhz") is not None else "max ? MHz"
        cap = f", cap {c['capacity']}" if c.get("capacity") is not None else ""
        parts.append(f"{c['cpus']}: {c.get('core', 'unknown')} {mhz}{cap}, {c.get('governor', 'unknown')}")
    return "; ".join(parts) or "unknown"


def temps_text(j):
    rr = j.get("round_results") or []
    if not rr:
        return "unknown"
    b, a = rr[0]["before"].get("max_temp_c"), rr[-1]["after"].get("max_temp_c")
    if b is None and a is None:
        return "unknown"
    return f"{'?' if b is None else b} -> {'?' if a is None else a} C"


def is_simulated(j):
    return j.get("machine", {}).get("sysfs_root", "/") not in ("/", "")


def measured_label(j):
    s = j.get("label", "unknown")
    return s + (" (simulated sysfs)" if is_simulated(j) else "")


def markdown(rows, anchors, skipped, png_name):
    out = ["# eex board report", "",
           f"{len(rows)} measured result(s), {len(anchors)} published figure(s). "
           "\"measured\" rows are `eex bench --json` files; \"published\" rows are other engines' "
           "figures as their projects publish them (bench/boards/anchors.json), not measured here. "
           "\"simulated sysfs\" rows read the board description from a fake /sys tree "
           "(EEX_SYSFS_ROOT): their timing is that of the machine that ran them. "
           "The published figures are for plain MobileNetV2 (about 300 M MACs); "
           "mobilenetv2-ee-224 also runs its three exits for every expert set and the detector "
           "(its MACs are in the table: about the same).", "",
           f"![median latency]({png_name})", "",
           "| kind | board / label | CPU | model | MMACs | threads | cpus | ISA | median ms | min - max ms "
           "| clusters (cpus: core, max freq, capacity, governor) | temp before -> after | throttling |",
           "| --- | --- | --- | --- | ---: | ---: | --- | --- | ---: | --- | --- | --- | --- |"]
    for j in sorted(rows, key=lambda j: (j.get("model_name", ""), j.get("label", ""), j.get("threads", 0))):
        m = j.get("machine", {})
        cpus = j.get("cpus_allowed", "?") + (" (pinned)" if j.get("cpus_requested") else "")
        warn = "; ".join(j.get("warnings") or []) or "none"
        out.append(f"| measured | {measured_label(j)} | {m.get('cpu_model', 'unknown')} ({m.get('arch', '?')}) "
                   f"| {j.get('model_name') or j.get('model')} | {j.get('macs', 0) / 1e6:.0f} | {j.get('threads')} "
                   f"| {cpus} | {j.get('isa')} | {fmt_ms(j.get('median_ms'))} "
                   f"| {fmt_ms(j.get('min_ms'))} - {fmt_ms(j.get('max_ms'))} | {clusters_text(m)} "
                   f"| {temps_text(j)} | {warn} |")
    for a in anchors:
        out.append(f"| **published** ({a['engine']}) | {a['board']} | {a['cpu']} | {a['model']} | ~300 "
                   f"| {a['threads']} | - | - | {fmt_ms(a['ms'])} | - | - | - | source: {a['source']} |")
    if skipped:
        out += ["", "Skipped files:", ""] + [f"- {os.path.basename(p)}: {why}" for p, why in skipped]
    return "\n".join(out) + "\n"


def plot(rows, anchors, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = []  # (label, median, lo, hi, kind, note)
    for j in sorted(rows, key=lambda j: (j.get("model_name", ""), j.get("median_ms") or 0)):
        lab = f"{measured_label(j)}\n{j.get('model_name')}, {j.get('threads')} thr, {j.get('isa')}"
        note = "THROTTLED" if j.get("throttled") else ""
        bars.append((lab, j["median_ms"], j["min_ms"], j["max_ms"], "measured (eex)", note))
    for a in anchors:
        lab = f"{a['board']} [published]\n{a['model']}, {a['threads']} thr, {a['engine']}"
        bars.append((lab, a["ms"], None, None, "published (other engines)", ""))
    fig, ax = plt.subplots(figsize=(11, 0.62 * len(bars) + 1.8))
    colors = {"measured (eex)": "#3b75af", "published (other engines)": "#bbbbbb"}
    seen = set()
    for i, (lab, med, lo, hi, kind, note) in enumerate(bars):
        y = len(bars) - 1 - i
        ax.barh(y, med, color=colors[kind], edgecolor="black", linewidth=0.6,
                hatch="//" if kind.startswith("published") else None,
                label=kind if kind not in seen else None)
        seen.add(kind)
        if lo is not None:
            ax.errorbar(med, y, xerr=[[med - lo], [hi - med]], fmt="none", ecolor="black", capsize=3, lw=1)
        val = f"{med:.0f}" if med >= 100 else f"{med:.3g}"
        ax.text(max(med, hi or med) * 1.12, y, f"{val} ms" + (f"  {note}" if note else ""), va="center",
                fontsize=9, color="#b00000" if note else "black")
    ax.set_yticks(range(len(bars)))
    ax.set_yticklabels([b[0] for b in reversed(bars)], fontsize=8.5)
    ax.set_xscale("log")
    lo = min(b[1] for b in bars)
    hi = max(b[3] or b[1] for b in bars)
    ax.set_xlim(lo / 2, hi * 6)
    ax.set_xlabel("latency per image, ms (median of timed runs; whiskers min-max; log scale)")
    ax.set_ylabel("board / model / threads")
    ax.set_title("eex bench results beside published figures")
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(prog="report.py", description=__doc__.split("\n\n")[0])
    p.add_argument("results", metavar="RESULTS_DIR")
    p.add_argument("--out", metavar="DIR", help="where to write (default RESULTS_DIR)")
    p.add_argument("--anchors", default=os.path.join(HERE, "anchors.json"), metavar="FILE")
    a = p.parse_args(argv)
    if not os.path.isdir(a.results):
        print(f"report.py: {a.results} is not a folder", file=sys.stderr)
        return 2
    rows, skipped = load_results(a.results)
    with open(a.anchors, encoding="utf-8") as f:
        anchors = json.load(f)
    if not rows:
        print(f"report.py: no eex-bench/1 JSON in {a.results}", file=sys.stderr)
        return 1
    out = a.out or a.results
    os.makedirs(out, exist_ok=True)
    png = os.path.join(out, "board-report.png")
    plot(rows, anchors, png)
    md = os.path.join(out, "board-report.md")
    with open(md, "w", encoding="utf-8") as f:
        f.write(markdown(rows, anchors, skipped, os.path.basename(png)))
    print(f"report.py: {len(rows)} results + {len(anchors)} published -> {md}, {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
