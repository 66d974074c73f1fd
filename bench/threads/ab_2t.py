#!/usr/bin/python3
"""Two eex builds at 1 and 2 threads, interleaved in one invocation.

    ab_2t.py --old /tmp/eex-old --new build/eex --models-dir build/parity
             --models mobilenet_v2,resnet18 [--rounds 5] [--runs 20] [--out FILE]

Per model and round, the four (build, threads) settings run as fresh
`eex bench` processes in an order that rotates each round, so drift in the
machine's load falls on all four alike. Reports per model the median over
all runs of each setting, 2T/1T speedup of each build and new/old at each
thread count, plus the load average and the busiest other process seen
between runs (the machine is shared: figures are only comparable within one
invocation).
"""
import argparse, datetime, json, os, statistics, subprocess, sys


def bench(eex, model, threads, runs, env):
    out = subprocess.run([eex, "bench", model, "--threads", str(threads), "--runs", str(runs), "--warmup", "5",
                          "--json", "--nodes", "0"], capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out)["times_ms"]


def busiest():
    """The other process with the highest %CPU (ps: over its lifetime), not this script or its children."""
    out = subprocess.run(["ps", "-eo", "pid,ppid,pcpu,comm", "--sort=-pcpu", "--no-headers"], capture_output=True,
                         text=True).stdout.splitlines()
    me = os.getpid()
    for line in out:
        pid, ppid, pc, comm = line.split(None, 3)
        if me not in (int(pid), int(ppid)) and comm != "ps":
            return f"{comm} {pc}%"
    return ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--models-dir", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--busy-cpu", type=int, help="run everything beside a busy loop pinned to this cpu")
    ap.add_argument("--out")
    a = ap.parse_args()
    env = dict(os.environ)
    env.pop("EEX_POOL_STATS", None)
    settings = [("old", 1), ("new", 1), ("old", 2), ("new", 2)]
    res = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "old": a.old, "new": a.new, "rounds": a.rounds, "runs": a.runs, "models": {}}
    loads, others = [], []
    busy = None
    if a.busy_cpu is not None:
        busy = subprocess.Popen(["taskset", "-c", str(a.busy_cpu), "sh", "-c", "while :; do :; done"])
        res["busy_loop_on_cpu"] = a.busy_cpu
    try:
        run_all(a, env, settings, res, loads, others)
    finally:
        if busy:
            busy.kill()
            busy.wait()
    res["loadavg_1m_between_rounds"] = loads
    res["busiest_other_process_between_rounds"] = others
    print("load:", " ".join(f"{x:.2f}" for x in loads))
    print("busiest other:", sorted(set(others)))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)


def run_all(a, env, settings, res, loads, others):
    for m in a.models.split(","):
        path = os.path.join(a.models_dir, m + ".eex")
        t = {s: [] for s in settings}
        per_round = {b: [] for b in ("old", "new")}  # 1T median / 2T median within one round
        for r in range(a.rounds):
            order = settings[r % 4:] + settings[:r % 4]
            if r % 2:
                order = order[::-1]
            rt = {}
            for b, th in order:
                rt[(b, th)] = bench(a.old if b == "old" else a.new, path, th, a.runs, env)
                t[(b, th)] += rt[(b, th)]
            for b in per_round:
                per_round[b].append(statistics.median(rt[(b, 1)]) / statistics.median(rt[(b, 2)]))
            loads.append(os.getloadavg()[0])
            others.append(busiest())
        med = {f"{b}_{th}t_ms": statistics.median(v) for (b, th), v in t.items()}
        row = dict(med)
        row.update({f"{b}_{th}t_min_ms": min(v) for (b, th), v in t.items()})
        row["old_speedup_2t"] = med["old_1t_ms"] / med["old_2t_ms"]
        row["new_speedup_2t"] = med["new_1t_ms"] / med["new_2t_ms"]
        row["new_over_old_1t"] = med["new_1t_ms"] / med["old_1t_ms"]
        row["new_over_old_2t"] = med["new_2t_ms"] / med["old_2t_ms"]
        row["old_speedup_2t_per_round"] = per_round["old"]
        row["new_speedup_2t_per_round"] = per_round["new"]
        row["old_speedup_2t_median_of_rounds"] = statistics.median(per_round["old"])
        row["new_speedup_2t_median_of_rounds"] = statistics.median(per_round["new"])
        res["models"][m] = row
        print(f"{m}: old 1T {med['old_1t_ms']:.2f} 2T {med['old_2t_ms']:.2f} ms (x{row['old_speedup_2t']:.2f}); "
              f"new 1T {med['new_1t_ms']:.2f} 2T {med['new_2t_ms']:.2f} ms (x{row['new_speedup_2t']:.2f}); "
              f"new/old 1T {row['new_over_old_1t']:.3f} 2T {row['new_over_old_2t']:.3f}; per-round 1T/2T median "
              f"old {row['old_speedup_2t_median_of_rounds']:.2f} new {row['new_speedup_2t_median_of_rounds']:.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
