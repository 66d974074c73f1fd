#!/usr/bin/python3
"""eex at 2 threads against 1 thread while a busy loop holds one core.

    busy_core.py --eex build/eex --model build/parity/mobilenet_v2.eex [--rounds 5]
                 [--busy-cpu 1] [--out bench/results/busy_core.json]

Starts a spinning process pinned to CPU --busy-cpu (taskset), then alternates
`eex bench --threads 1` and `--threads 2` (each a fresh process, order
rotating) for --rounds rounds, and prints the medians and their ratio
(2 threads / 1 thread: <= 1 means the second thread did not hurt). Also runs
the same without the busy loop for reference. A benchmark: on a machine
shared with other work the ratio is only meaningful from one invocation.
"""
import argparse, json, os, statistics, subprocess, sys, time, datetime


def bench(eex, model, threads, runs):
    out = subprocess.run([eex, "bench", model, "--threads", str(threads), "--runs", str(runs), "--warmup", "5",
                          "--json", "--nodes", "0"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["times_ms"]


def rounds(eex, model, n, runs):
    t = {1: [], 2: []}
    for r in range(n):
        for th in ((1, 2) if r % 2 == 0 else (2, 1)):
            t[th] += bench(eex, model, th, runs)
    return {k: statistics.median(v) for k, v in t.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eex", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--busy-cpu", type=int, default=1)
    ap.add_argument("--out")
    a = ap.parse_args()
    quiet = rounds(a.eex, a.model, a.rounds, a.runs)
    busy = subprocess.Popen(["taskset", "-c", str(a.busy_cpu), "sh", "-c", "while :; do :; done"])
    try:
        time.sleep(0.5)
        loaded = rounds(a.eex, a.model, a.rounds, a.runs)
    finally:
        busy.kill()
        busy.wait()
    res = {"model": a.model, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "load_before": os.getloadavg()[0],
           "no_busy_loop": {"t1_ms": quiet[1], "t2_ms": quiet[2], "t2_over_t1": quiet[2] / quiet[1]},
           "busy_loop_on_cpu%d" % a.busy_cpu: {"t1_ms": loaded[1], "t2_ms": loaded[2],
                                               "t2_over_t1": loaded[2] / loaded[1]}}
    print(f"{os.path.basename(a.model)}: no busy loop: 1T {quiet[1]:.2f} ms, 2T {quiet[2]:.2f} ms, 2T/1T {quiet[2]/quiet[1]:.3f}")
    print(f"{os.path.basename(a.model)}: busy loop on CPU {a.busy_cpu}: 1T {loaded[1]:.2f} ms, 2T {loaded[2]:.2f} ms, "
          f"2T/1T {loaded[2]/loaded[1]:.3f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
