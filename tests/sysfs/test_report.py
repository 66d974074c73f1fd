#!/usr/bin/python3
"""bench/boards/report.py on the committed sample results plus a file that is
not a result: the markdown table has every measured row, the three published
anchors marked as published, the simulated and throttled rows marked, the
stray file listed as skipped; the PNG is written. An empty folder fails."""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
REPORT = os.path.join(ROOT, "bench", "boards", "report.py")
SAMPLE = os.path.join(ROOT, "bench", "boards", "sample")
fails = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        fails.append(what)


with tempfile.TemporaryDirectory() as tmp:
    res = os.path.join(tmp, "results")
    os.makedirs(res)
    n = 0
    for f in os.listdir(SAMPLE):
        if f.endswith(".json"):
            shutil.copy(os.path.join(SAMPLE, f), res)
            n += 1
    with open(os.path.join(res, "notes.json"), "w") as f:
        f.write('{"hello": 1}')
    r = subprocess.run([sys.executable, REPORT, res, "--out", os.path.join(tmp, "out")],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"report.py exits 0 ({r.stderr.strip()})")
    md = open(os.path.join(tmp, "out", "board-report.md")).read() if r.returncode == 0 else ""
    rows = [line for line in md.splitlines() if line.startswith("| measured |")]
    check(len(rows) == n, f"{n} measured rows ({len(rows)})")
    check(md.count("| **published** (") == 3, "three published rows")
    for fig in ("75.8", "109.0", "44.0"):
        check(any(fig in line for line in md.splitlines() if "**published**" in line), f"published {fig} ms")
    check("(simulated sysfs)" in md, "simulated rows are marked")
    check("past the 80 C limit" in md, "the throttled row carries its warning")
    check("notes.json: not an eex-bench/1 result" in md, "a stray JSON file is listed as skipped")
    png = os.path.join(tmp, "out", "board-report.png")
    check(os.path.exists(png) and open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n", "the PNG is written")
    empty = os.path.join(tmp, "empty")
    os.makedirs(empty)
    r = subprocess.run([sys.executable, REPORT, empty], capture_output=True, text=True)
    check(r.returncode == 1 and "no eex-bench/1 JSON" in r.stderr, "an empty folder fails with a message")

print(f"test_report: {len(fails)} failed")
sys.exit(1 if fails else 0)
