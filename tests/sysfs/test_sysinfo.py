#!/usr/bin/python3
"""eex sysinfo and eex bench on the fake /sys trees of tests/sysfs/ (see
make_trees.sh): parsing of a Raspberry Pi 4, a two-cluster RK3399, an RK3588
and a tree with files missing or unreadable; --cpus requests (lists, big/little, cpus that are not
here); the throttling warning from "after" snapshot files; and that the real
machine's bench JSON carries every field bench/boards/README.md documents;
and eex selftest's exit codes and lines.

    BUILD=build test_sysinfo.py [--runner "qemu-aarch64"] [--quick]

--runner prefixes every eex command (the AArch64 build under qemu);
--quick runs the parsing checks and one bench (for qemu).
"""
import argparse
import json
import os
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
MODEL = os.path.join(ROOT, "models", "fmnist-ee.eex")
FAILS = []


def eex(args, runner, root=None, after=None):
    env = dict(os.environ)
    env.pop("EEX_SYSFS_ROOT", None)
    env.pop("EEX_SYSFS_ROOT_AFTER", None)
    if root:
        env["EEX_SYSFS_ROOT"] = os.path.join(HERE, root)
    if after:
        env["EEX_SYSFS_ROOT_AFTER"] = os.path.join(HERE, after)
    exe = os.path.join(ROOT, os.environ.get("BUILD", "build"), "eex")
    r = subprocess.run(runner + [exe] + args, env=env, capture_output=True, text=True, timeout=600)
    return r.returncode, r.stdout, r.stderr


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        FAILS.append(what)


def sysinfo(runner, root, *extra):
    rc, out, err = eex(["sysinfo", "--json", *extra], runner, root)
    check(rc == 0, f"sysinfo on {root}: exit 0 ({err.strip()})")
    return json.loads(out) if rc == 0 else {}


def bench(runner, root=None, after=None, *extra):
    args = ["bench", MODEL, "--runs", "3", "--warmup", "1", "--json", *extra]
    return eex(args, runner, root, after)


def test_parsing(runner):
    j = sysinfo(runner, "rpi4")
    m = j.get("machine", {})
    check(m.get("cpu_model") == "4x Cortex-A72", f"rpi4: cpu model {m.get('cpu_model')!r}")
    check(m.get("board") == "Raspberry Pi 4 Model B Rev 1.4", f"rpi4: board from the device tree {m.get('board')!r}")
    check(m.get("cores") == 4 and m.get("online") == "0-3", f"rpi4: 4 cores online 0-3 ({m.get('cores')}, {m.get('online')})")
    cl = m.get("clusters", [])
    check(len(cl) == 1 and cl[0] == {"cpus": "0-3", "count": 4, "core": "Cortex-A72", "max_mhz": 1800,
                                     "min_mhz": 600, "capacity": 1024, "governor": "ondemand"},
          f"rpi4: one cluster 0-3 A72 1800/600 MHz capacity 1024 ondemand: {cl}")
    check(m.get("thermal_zones") == ["cpu-thermal"], f"rpi4: thermal zones {m.get('thermal_zones')}")
    now = j.get("now", {})
    check(now.get("mhz") == [1800] * 4 and now.get("temp_c") == [47.2] and now.get("max_temp_c") == 47.2,
          f"rpi4: now 4x 1800 MHz, 47.2 C: {now}")

    j = sysinfo(runner, "rk3399")
    m = j.get("machine", {})
    check(m.get("cpu_model") == "4x Cortex-A53 + 2x Cortex-A72", f"rk3399: cpu model {m.get('cpu_model')!r}")
    cl = m.get("clusters", [])
    check([(c["cpus"], c["core"], c["max_mhz"], c["capacity"], c["governor"]) for c in cl] ==
          [("0-3", "Cortex-A53", 1416, 485, "schedutil"), ("4-5", "Cortex-A72", 1800, 1024, "schedutil")],
          f"rk3399: LITTLE 0-3 A53 1416 MHz cap 485, big 4-5 A72 1800 MHz cap 1024: {cl}")
    check(j.get("now", {}).get("temp_c") == [51.1, 49.4], f"rk3399: two zones {j.get('now')}")
    check(sysinfo(runner, "rk3399", "--cpus", "big").get("cpus") == "4-5", "rk3399: --cpus big is 4-5")
    check(sysinfo(runner, "rk3399", "--cpus", "little").get("cpus") == "0-3", "rk3399: --cpus little is 0-3")
    check(sysinfo(runner, "rk3399", "--cpus", "1,4-5").get("now", {}).get("cpus") == [1, 4, 5],
          "rk3399: --cpus 1,4-5 lists cpus 1, 4, 5")

    j = sysinfo(runner, "rk3588")
    m = j.get("machine", {})
    cl = m.get("clusters", [])
    check(m.get("cpu_model") == "4x Cortex-A55 + 4x Cortex-A76" and m.get("board") == "Radxa ROCK 5B",
          f"rk3588: {m.get('cpu_model')!r} on {m.get('board')!r}")
    check([(c["cpus"], c["max_mhz"], c["capacity"], c["governor"]) for c in cl] ==
          [("0-3", 1800, 414, "performance"), ("4-7", 2256, 1024, "performance")],
          f"rk3588: the two A76 policies with equal limits are one cluster 4-7: {cl}")
    check(len(m.get("thermal_zones", [])) == 7 and j.get("now", {}).get("max_temp_c") == 46.5,
          f"rk3588: 7 zones, the hottest 46.5 C: {j.get('now', {}).get('temp_c')}")
    check(sysinfo(runner, "rk3588", "--cpus", "big").get("cpus") == "4-7", "rk3588: --cpus big is 4-7")

    j = sysinfo(runner, "missing")
    m = j.get("machine", {})
    check(m.get("cpu_model") == "unknown" and m.get("board") == "unknown", f"missing: model/board unknown: {m}")
    check(m.get("cores") == 4, "missing: 4 cores from cpu/online")
    cl = m.get("clusters", [])
    check(len(cl) == 2 and cl[0]["max_mhz"] == 2000 and cl[1]["max_mhz"] is None and
          all(c["capacity"] is None and c["governor"] == "unknown" and c["core"] == "unknown" for c in cl),
          f"missing: cpu0 (max known) apart from 1-3 (unknown), the rest unknown: {cl}")
    now = j.get("now", {})
    check(now.get("mhz") == [None] * 4 and now.get("temp_c") == [None] and now.get("max_temp_c") is None,
          f"missing: frequencies and temperature null: {now}")
    rc, out, err = eex(["sysinfo"], runner, "missing")
    check(rc == 0 and "governor unknown" in out and "temperature unknown" in out,
          f"missing: the table says unknown ({rc})")
    j = sysinfo(runner, "no-such-tree")
    check(j.get("machine", {}).get("cores") is None and j["machine"]["clusters"] == [],
          "a root with nothing in it: cores null, no clusters, exit 0")
    rc, _, err = eex(["sysinfo", "--cpus", "big"], runner, "rpi4")
    check(rc == 2 and "one kind of core" in err, f"rpi4: --cpus big is refused, exit 2 ({rc}: {err.strip()})")
    rc, _, err = eex(["sysinfo", "--cpus", "3-1"], runner, "rpi4")
    check(rc == 2 and "not a cpu list" in err, f"--cpus 3-1 is refused, exit 2 ({rc})")


FIELDS = ["format", "eex_version", "date", "label", "model", "model_name", "macs", "threads", "batch", "runs",
          "warmup", "isa", "gemm", "min_ms", "median_ms", "max_ms", "peak_rss_mb", "machine", "cpus_requested",
          "cpus_allowed", "threads_last_cpu", "threads_idle", "main_thread_cpus", "rounds", "cooldown_s", "temp_limit_c", "round_results",
          "throttled", "warnings", "times_ms", "nodes"]
MACHINE = ["arch", "cpu_model", "board", "cores", "online", "sysfs_root", "clusters", "thermal_zones"]


def test_bench_fields(runner):
    rc, out, err = bench(runner, None, None, "--rounds", "2", "--cooldown", "0.1")
    check(rc == 0, f"bench on this machine: exit 0 ({err.strip()[-200:]})")
    j = json.loads(out) if rc == 0 else {}
    check(all(k in j for k in FIELDS), f"bench --json has {', '.join(k for k in FIELDS if k not in j) or 'every field'}")
    check(all(k in j.get("machine", {}) for k in MACHINE), "bench --json machine has every field")
    rr = j.get("round_results", [])
    check(len(rr) == 2 and all(set(r) == {"min_ms", "median_ms", "max_ms", "before", "after"} for r in rr),
          "two rounds, each with min/median/max and before/after snapshots")
    check(j.get("format") == "eex-bench/1" and j.get("cooldown_s") == 0.1, "format eex-bench/1, cooldown 0.1 s")
    return j


def test_pinning(runner):
    here = sorted(os.sched_getaffinity(0))
    last = here[-1]
    rc, out, err = bench(runner, None, None, "--cpus", str(last), "--threads", "2")
    j = json.loads(out) if rc == 0 else {}
    check(rc == 0 and j.get("cpus_requested") == str(last) and j.get("cpus_allowed") == str(last),
          f"--cpus {last}: requested and allowed are {last} ({rc}, {err.strip()})")
    seen = j.get("threads_last_cpu", [])
    check(j.get("main_thread_cpus") == str(last), f"--cpus {last}: the main thread ran only on {last}: {j.get('main_thread_cpus')}")
    check(len(seen) >= 1 and all(c == last for c in seen) and isinstance(j.get("threads_idle"), int),
          f"--cpus {last}: every thread that ran last ran on {last}: {seen} ({j.get('threads_idle')} idle)")
    # big on the RK3399 tree is 4-5: pinned there when this machine has them, else an error
    rc, out, err = bench(runner, "rk3399", None, "--cpus", "big")
    if {4, 5} <= set(here):
        check(rc == 0 and json.loads(out)["cpus_allowed"] == "4-5", "rk3399 --cpus big pins to 4-5")
    else:
        check(rc == 1 and "not available here" in err, f"rk3399 --cpus big here: exit 1, cpus 4-5 not available ({rc}: {err.strip()})")
    rc, out, err = bench(runner, "rpi4", None, "--cpus", "little")
    check(rc == 2 and "one kind of core" in err, f"rpi4 --cpus little: exit 2 ({rc})")


def test_throttling(runner):
    rc, out, err = bench(runner, "rpi4", None)
    j = json.loads(out) if rc == 0 else {}
    check(rc == 0 and j.get("throttled") is False and j.get("warnings") == [] and "warning" not in err,
          "rpi4, same files before and after: no warning")
    rc, out, err = bench(runner, "rpi4", "rpi4-hot")
    j = json.loads(out) if rc == 0 else {}
    w = j.get("warnings", [])
    cpu = sorted(os.sched_getaffinity(0))[0]
    check(rc == 0 and j.get("throttled") is True, f"rpi4 -> rpi4-hot: throttled ({rc})")
    check(f"cpu{cpu} frequency dropped from 1800 to 1000 MHz during the run" in w, f"rpi4-hot: frequency warning {w}")
    check("cpu-thermal temperature reached 82.5 C (from 47.2 C), past the 80 C limit" in w, f"rpi4-hot: temperature warning {w}")
    check("eex bench: warning:" in err, "the warning is on stderr too")
    r0 = j.get("round_results", [{}])[0]
    check(r0.get("before", {}).get("max_temp_c") == 47.2 and r0.get("after", {}).get("max_temp_c") == 82.5,
          f"rpi4-hot: before 47.2 C, after 82.5 C in the round: {r0.get('before')} {r0.get('after')}")
    rc, out, err = bench(runner, "rpi4", "rpi4-hot", "--temp-limit", "85")
    w = json.loads(out).get("warnings", []) if rc == 0 else ["?"]
    check(rc == 0 and w and all("frequency" in x for x in w), f"--temp-limit 85: only the frequency warnings {w}")
    rc, out, err = eex(["bench", MODEL, "--runs", "3", "--warmup", "1"], runner, "rk3399", "rk3399-throttled")
    check(rc == 0 and "WARNING (throttling?)" in out and "gpu-thermal temperature reached 86.2 C" in out,
          f"rk3399 -> throttled: the table warns ({rc})")
    rc, out, err = bench(runner, "missing", "missing")
    j = json.loads(out) if rc == 0 else {}
    check(rc == 0 and j.get("throttled") is False and j["round_results"][0]["after"]["max_temp_c"] is None,
          "missing: bench runs, nothing to compare, no warning")


def selfcheck_count():
    """The checks kernels/selfcheck.h enumerates before EEX_SELFCHECK_COUNT."""
    import re
    src = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "kernels", "selfcheck.h")).read()
    start = src.index("enum {")
    body = src[start:src.index("EEX_SELFCHECK_COUNT", start)]
    return len(re.findall(r"^\s*EEX_SELFCHECK_[A-Z0-9_]+,", body, re.M))


def test_selftest(runner):
    rc, out, err = eex(["selftest", "--quiet", "--iters", "5"], runner)
    check(rc == 0 and "0 failed" in out and "isa " in out, f"selftest passes here and names the ISA ({rc}: {out.strip()[-80:]})")
    rc, out, err = eex(["selftest", "--iters", "5"], runner)
    check(rc == 0 and out.count("ok    model") == 3, "selftest: the embedded model passes with ref, fast 1 and 3 threads")
    n_checks = selfcheck_count()
    check(sum(line.startswith("ok    ") for line in out.splitlines()) == 3 + n_checks * (out.split("kernel tables")[1].split(";")[0].count(" ")),
          f"selftest: {n_checks} kernel checks per ISA table listed (kernels/selfcheck.h)")
    rc, out, err = eex(["selftest", "--iters", "0"], runner)
    check(rc == 2, f"selftest --iters 0 is a usage error ({rc})")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runner", default="", help="command prefix, e.g. qemu-aarch64")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    runner = shlex.split(a.runner)
    test_selftest(runner)
    test_parsing(runner)
    test_bench_fields(runner)
    if not a.quick:
        test_pinning(runner)
        test_throttling(runner)
    print(f"test_sysinfo: {len(FAILS)} failed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
