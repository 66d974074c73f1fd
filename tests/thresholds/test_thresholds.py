#!/usr/bin/env python3
"""`eex thresholds` against a brute-force search on small synthetic logs, and its
one-line errors on malformed logs.

Each log has a few dozen images with confidences on a coarse grid (so that
ties and equal values occur); the brute force tries every vector of
candidate thresholds (every observed value, plus 0 and 1) with the policy
written out independently here, and the C search (--grid 0: exact) must find
an optimum of the same value for each objective, and the same best single
p_tar value.

usage: test_thresholds.py BUILD_DIR"""
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile

EEX = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "build", "eex")
failures = 0


def check(cond, what):
    global failures
    print(("ok    " if cond else "FAIL  ") + what)
    failures += not cond


def outcome(rec, t):
    """(correct, offloaded, exit index) of one image under vector t (len E)."""
    conf, pred, label = rec["confidences"], rec["predictions"], rec["label"]
    E = len(conf) - 1
    for k in range(E):
        if conf[k] > t[k]:
            return pred[k] == label, 0, k
    if conf[E] > t[E - 1]:
        return pred[E] == label, 1, E
    # the exit rule's fallback: the most confident, the earliest on a tie
    best = max(range(E + 1), key=lambda k: (conf[k], -k))
    return pred[best] == label, 1, E


def figures(recs, t, ms, off_ms):
    c = o = 0
    lat = 0.0
    for r in recs:
        ok, off, k = outcome(r, t)
        c += ok
        o += off
        if ms:
            lat += ms[k] if k < len(ms) else ms[-1] + off_ms
    return c, o, lat / len(recs)


def brute(recs, objective, limit, ms, off_ms):
    N, E = len(recs), len(recs[0]["confidences"]) - 1
    cands = []
    for k in range(E):
        v = {r["confidences"][k] for r in recs} | {0.0, 1.0}
        if k == E - 1:
            v |= {r["confidences"][E] for r in recs}
        cands.append(sorted(v))
    best = None
    single_vals = sorted({c for r in recs for c in r["confidences"]} | {0.0, 1.0})
    best_single = None

    def key(f):
        c, o, lat = f
        if objective == "max-accuracy":
            return (-c, o, lat)
        if objective == "min-offload":
            return (o, -c, lat)
        return (round(lat, 6), -c, o)

    def feasible(f):
        c, o, _ = f
        return o <= limit * N + 1e-9 if objective == "max-accuracy" else c >= limit * N - 1e-9

    for t in itertools.product(*cands):
        f = figures(recs, t, ms, off_ms)
        if feasible(f) and (best is None or key(f) < key(best)):
            best = f
    for s in single_vals:
        f = figures(recs, [s] * E, ms, off_ms)
        if feasible(f) and (best_single is None or key(f) < key(best_single)):
            best_single = f
    return best, best_single


def write_log(path, recs, broken=None):
    with open(path, "w") as f:
        for i, r in enumerate(recs):
            line = json.dumps(r)
            if broken is not None and i == broken[0]:
                line = broken[1](line)
            f.write(line + "\n")


def run(args):
    p = subprocess.run([EEX, "thresholds"] + args, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


rng = random.Random(7)
tmp = tempfile.mkdtemp()
cases = 0
for case in range(12):
    E = 2 if case % 2 else 3
    N = rng.randint(12, 30) if E == 3 else rng.randint(20, 40)
    recs = []
    for i in range(N):
        label = rng.randrange(3)
        conf = [round(rng.choice([0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0]) * rng.uniform(0.9, 1.0), 2) for _ in range(E + 1)]
        pred = [label if rng.random() < 0.4 + 0.5 * c else rng.randrange(3) for c in conf]
        recs.append({"index": i, "label": label, "detector": None, "expert": "pristine",
                     "confidences": conf, "predictions": pred, "exit": {}, "answer": {}})
    log = os.path.join(tmp, f"log{case}.jsonl")
    write_log(log, recs)
    ms = [round(rng.uniform(0.1, 1.0) * (k + 1), 3) for k in range(E)]
    off_ms = round(rng.uniform(1, 20), 3)
    for objective in ("max-accuracy", "min-offload", "min-latency"):
        if objective == "max-accuracy":
            limit = rng.choice([0.0, 0.1, 0.25, 0.5])
            args = ["--offload-budget", str(limit)]
        else:
            base = figures(recs, [1.0] * E, None, 0)[0] / N  # everything offloaded
            limit = round(max(0.0, base - rng.choice([0.0, 0.05, 0.15])), 3)
            args = ["--accuracy-floor", str(limit)]
        use_ms = objective == "min-latency" or case % 3 == 0
        if use_ms:
            args += ["--exit-ms", ",".join(map(str, ms)), "--offload-ms", str(off_ms)]
        rc, out, err = run([log, "--objective", objective, "--grid", "0", "--bootstrap", "0", "--json"] + args)
        want, want_single = brute(recs, objective, limit, ms if use_ms else None, off_ms)
        if want is None:
            check(rc == 1 and "no threshold vector" in err, f"case {case} {objective}: infeasible is an error ({err.strip()})")
            continue
        if rc != 0:
            check(False, f"case {case} {objective}: exit {rc}: {err.strip()}")
            continue
        j = json.loads(out)
        got = j["per_exit"]["choose"]
        gc, go = round(got["accuracy"] * N), round(got["p_offload"] * N)
        t = j["per_exit"]["thresholds"]
        # the reported vector must really have the figures it claims
        f = figures(recs, t, ms if use_ms else None, off_ms)
        same = (gc, go) == (want[0], want[1]) and (not use_ms or abs(got["latency_ms"] - want[2]) < 1e-3)
        if objective == "min-latency":
            same = abs(got["latency_ms"] - want[2]) < 1e-3 and gc == want[0]
        check(same and (f[0], f[1]) == (gc, go) and j["exact"],
              f"case {case} E={E} N={N} {objective} {limit}: C {gc}/{go}"
              f"{' %.4f' % got['latency_ms'] if use_ms else ''} brute {want[0]}/{want[1]}"
              f"{' %.4f' % want[2] if use_ms else ''} at {t}")
        s = j["single"]
        sc = round(s["choose"]["accuracy"] * N) if s else None
        check(want_single is None and s is None or s is not None and (sc, round(s["choose"]["p_offload"] * N)) ==
              (want_single[0], want_single[1]) or (objective == "min-latency" and s is not None and sc == want_single[0]),
              f"case {case} {objective}: best single p_tar {sc} vs brute {want_single and want_single[0]}")
        cases += 1

# the quantile grid is an approximation but never below the single p_tar
rc, out, err = run([os.path.join(tmp, "log0.jsonl"), "--objective", "max-accuracy", "--offload-budget", "0.2",
                    "--grid", "2", "--bootstrap", "50", "--json"])
j = json.loads(out) if rc == 0 else None
check(j is not None and not j["exact"] and j["per_exit"]["choose"]["accuracy"] >= j["single"]["choose"]["accuracy"],
      "a coarse grid says it is not exact and is never worse than the single p_tar")
check(j is not None and j["per_exit"]["choose"]["accuracy_ci95"][0] <= j["per_exit"]["choose"]["accuracy"]
      <= j["per_exit"]["choose"]["accuracy_ci95"][1], "the bootstrap interval holds the point estimate")

# malformed and truncated lines name their line number
recs = [json.loads(l) for l in open(os.path.join(tmp, "log0.jsonl"))]
bad = os.path.join(tmp, "bad.jsonl")
for what, mod, want in [
        ("truncated line", lambda l: l[: len(l) // 2], ":3: "),
        ("missing confidences", lambda l: l.replace('"confidences"', '"conf"'), ":3: missing \"confidences\""),
        ("garbage after the object", lambda l: l + " x", ":3: text after the object"),
        ("a confidence above 1", lambda l: l.replace('"confidences": [', '"confidences": [7, '), ":3: "),
        ("a wrong exit count", lambda l: l.replace('"confidences": [', '"confidences": [0.5, '), ":3: ")]:
    write_log(bad, recs, (2, mod))
    rc, out, err = run([bad, "--objective", "max-accuracy", "--offload-budget", "0.1"])
    check(rc == 1 and want in err and err.count("\n") == 1, f"{what}: exit {rc}, {err.strip()}")
with open(bad, "w") as f:
    f.write(json.dumps(recs[0]) + "\n" + json.dumps(recs[1])[:-3])  # the last line cut, no newline
rc, out, err = run([bad, "--objective", "max-accuracy", "--offload-budget", "0.1"])
check(rc == 1 and ":2: " in err, f"file cut inside its last line: {err.strip()}")
rc, out, err = run([bad, "--objective", "max-accuracy"])
check(rc == 2 and "--offload-budget" in err, "a missing constraint is a usage error")
rc, out, err = run(["--help"])
check(rc == 0 and "usage: eex thresholds" in out and "--grid 0" in out, "--help")
rc, out, err = run(["/nonexistent.jsonl", "--objective", "min-offload", "--accuracy-floor", "0.9"])
check(rc == 1 and "cannot open" in err, "a missing log")

# random damage to one line: never a crash; a rejection is one line naming that line
lines = open(os.path.join(tmp, "log0.jsonl")).read().splitlines()
frng = random.Random(3)
wrong = rejected = 0
for it in range(120):
    L = list(lines)
    i = frng.randrange(len(L))
    s, op = L[i], frng.randrange(4)
    p = frng.randrange(len(s))
    if op == 0:
        s = s[:p]
    elif op == 1:
        s = s[:p] + chr(frng.randrange(1, 256)) + s[p + 1:]
    elif op == 2:
        s = s[:p] + s[p:p + frng.randrange(1, 20)] * frng.randrange(1, 50) + s[p:]
    else:
        s = "[" * frng.randrange(1, 100) + s
    L[i] = s
    with open(bad, "w", encoding="latin-1") as f:
        f.write("\n".join(L) + "\n")
    rc, out, err = run([bad, "--objective", "max-accuracy", "--offload-budget", "0.1", "--bootstrap", "10"])
    rejected += rc == 1
    if rc not in (0, 1) or (rc == 1 and (f":{i + 1}: " not in err or err.count("\n") != 1)):
        wrong += 1
        print(f"      damaged line {i + 1}: exit {rc}: {err.strip()[:200]}")
check(wrong == 0 and rejected > 60, f"120 damaged logs: {rejected} rejected, each naming its line; no crash")

print(f"{cases} searches compared with brute force; {failures} failures")
sys.exit(1 if failures else 0)
