#!/usr/bin/python3
"""`eex plan` from the outside (issue 15): the table is the cost model's sum
of its own columns, the best row is the least expected latency of its path,
the idle gap before each timed run defaults to the smallest RTT and is in the
JSON, exit shares from an eval log make early-exiting images cheaper than an
offload, and bad options are refused with a message naming them.

    test_plan_cli.py

BUILD selects the build folder; the model is models/fmnist-ee.eex and, for
the eval log, the Fashion-MNIST test set (skipped with a note when absent).
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402  (tests/checks.py)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("BUILD", "build")
EEX = os.path.join(ROOT, BUILD, "eex")
MODEL = os.path.join(ROOT, "models", "fmnist-ee.eex")
FMNIST = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
TMP = tempfile.mkdtemp(prefix="eex-plan-")



def plan(*args):
    r = subprocess.run([EEX, "plan", MODEL, *args], capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout, r.stderr


def table_is_its_sum():
    rc, out, err = plan("--rtt", "10,100", "--bandwidth", "50,1", "--runs", "3", "--json")
    check(rc == 0, "eex plan --json on two paths", err.strip())
    if rc:
        return
    j = json.loads(out)
    check(j["idle_ms"] == 10, "the idle gap defaults to the smallest RTT", f"idle_ms {j['idle_ms']}")
    for p in j["paths"]:
        rows = p["rows"]
        name = f"{p['mbit']} Mbit/s, {p['rtt_ms']} ms"
        check(len(rows) == 4 * len({r["cut"] for r in rows}) and rows, f"{name}: every cut with every codec",
              f"{len(rows)} rows")
        bad = []
        for r in rows:
            xfer = r["bytes"] * 8 / (p["mbit"] * 1000)
            req = r["edge_ms"] + r["codec_ms"] + p["rtt_ms"] + xfer + r["cloud_ms"]
            if abs(r["transfer_ms"] - xfer) > 1e-3 * max(1, xfer) or abs(r["request_ms"] - req) > 2e-3 * req:
                bad.append((r["cut"], r["wire"], r["transfer_ms"], xfer, r["request_ms"], req))
            if r["expected_ms"] != r["request_ms"]:
                bad.append((r["cut"], r["wire"], "no log, yet expected != request"))
        check(not bad, f"{name}: request = edge + codec + RTT + bytes / bandwidth + cloud in every row", str(bad[:3]))
        least = min(rows, key=lambda r: r["expected_ms"])
        check(abs(p["best"]["expected_ms"] - least["expected_ms"]) < 0.01,
              f"{name}: the best row is the least expected latency",
              f"best {p['best']}, least {least['cut']} {least['wire']} {least['expected_ms']}")
    slow, fast = j["paths"][1]["rows"], j["paths"][0]["rows"]
    by = {(r["cut"], r["wire"]): r for r in fast}
    check(all(r["request_ms"] > by[(r["cut"], r["wire"])]["request_ms"] for r in slow),
          "the 1 Mbit/s, 100 ms path is slower in every row than 50 Mbit/s, 10 ms")


def idle_option():
    rc, out, err = plan("--rtt", "10", "--bandwidth", "50", "--runs", "2", "--idle-ms", "0", "--json")
    check(rc == 0 and json.loads(out)["idle_ms"] == 0, "--idle-ms 0 times back to back", err.strip())
    rc, out, err = plan("--rtt", "10", "--bandwidth", "50", "--idle-ms", "-1")
    check(rc == 2 and "--idle-ms" in err and "'-1'" in err, "--idle-ms -1 is refused and named", err.strip())
    rc, out, err = plan("--rtt", "10,20", "--bandwidth", "50")
    check(rc == 2 and "2 RTTs and 1 bandwidths" in err, "unequal --rtt and --bandwidth lists are refused",
          err.strip())
    rc, out, err = plan("--rtt", "10", "--bandwidth", "50", "--wires", "f64")
    check(rc == 2 and "'f64'" in err, "an unknown codec is refused and named", err.strip())


def with_log():
    if not os.path.exists(os.path.join(FMNIST, "t10k-images-idx3-ubyte")) and \
            not os.path.exists(os.path.join(FMNIST, "t10k-images-idx3-ubyte.gz")):
        print(f"note  no Fashion-MNIST in {FMNIST}: the eval-log case is skipped (make deps installs it)")
        return
    log = os.path.join(TMP, "eval.jsonl")
    r = subprocess.run([EEX, "eval", MODEL, "--dataset", FMNIST, "--limit", "300", "--threshold", "0.8",
                        "--quiet", "--log", log], capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, "eex eval --log for the planner", r.stderr.strip())
    if r.returncode:
        return
    rc, out, err = plan("--rtt", "50", "--bandwidth", "10", "--runs", "3", "--log", log, "--threshold", "0.8",
                        "--json")
    check(rc == 0, "eex plan --log --threshold 0.8", err.strip())
    if rc:
        return
    j = json.loads(out)
    shares = [e["share"] for e in j["exits"]]
    check(shares[0] > 0.3 and sum(shares) <= 1.0 + 1e-9, "exit shares read from the log", str(shares))
    rows = j["paths"][0]["rows"]
    check(all(r["expected_ms"] < r["request_ms"] for r in rows),
          "with exit shares every row's expected latency is below its offload latency",
          str([(r["cut"], r["wire"], r["expected_ms"], r["request_ms"]) for r in rows if r["expected_ms"] >= r["request_ms"]]))


def main():
    if not os.path.exists(EEX):
        print(f"FAIL  {EEX} is not built")
        return 1
    table_is_its_sum()
    idle_option()
    with_log()
    return summary("plan cli")


if __name__ == "__main__":
    sys.exit(main())
