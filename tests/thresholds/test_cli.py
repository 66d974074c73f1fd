#!/usr/bin/env python3
"""The threshold tools on the shipped model, as a user meets them: per-exit
thresholds in `eex eval` and `eex run` (and from the file's ee.thresholds),
`eex calibrate`, the adaptive policy reading no labels (checked with strace:
the labels file is never opened), and the outage and missed-deadline
probabilities of `eex eval` recomputed independently from its per-image log.

usage: test_cli.py BUILD_DIR      (FMNIST_DIR: the Fashion-MNIST IDX folder)"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
EEX = os.path.join(BUILD, "eex")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "fmnist-ee.eex")
VAL = os.path.join(ROOT, "models", "fmnist-val-index.txt")
DATA = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
TMP = tempfile.mkdtemp()
failures = 0


def check(cond, what, detail=""):
    global failures
    print(("ok    " if cond else "FAIL  ") + what + ("" if cond or not detail else f" ({detail})"))
    failures += not cond


def run(*args, cmd=None):
    # LeakSanitizer cannot run under ptrace (strace): off for that one command
    env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0") if cmd else None
    p = subprocess.run(cmd or [EEX, *args], capture_output=True, text=True, env=env)
    return p.returncode, p.stdout, p.stderr


def evaljson(*args):
    rc, out, err = run("eval", MODEL, "--dataset", DATA, "--quiet", "--json", *args)
    if rc:
        raise SystemExit(f"eval failed: {err}")
    return json.loads(out)


# ---- help and usage -----------------------------------------------------------------
for c, want in (("thresholds", "--objective"), ("calibrate", "--val-index"), ("eval", "--thresholds"),
                ("eval", "--adaptive"), ("run", "--thresholds")):
    rc, out, _ = run(c, "--help")
    check(rc == 0 and want in out, f"{c} --help mentions {want}")
rc, _, err = run("calibrate", MODEL, "--dataset", DATA)
check(rc == 2 and "missing -o" in err and err.count("\n") <= 2, "calibrate without -o is a usage error", err)
rc, _, err = run("eval", MODEL, "--dataset", DATA, "--thresholds", "0.9,0.8")
check(rc == 2 and "give 3 values" in err, "eval --thresholds with the wrong count", err)
rc, _, err = run("eval", MODEL, "--dataset", DATA, "--split", "val")
check(rc == 2 and "--val-index" in err, "--split val needs --val-index", err)

# ---- per-exit thresholds ---------------------------------------------------------------
j = evaljson("--limit", "1500", "--threshold", "0.8", "--thresholds", "0.8,0.8,0.8", "--thresholds", "0.99,0.9,0.5")
a, b, c = j["results"]
check(all(a[k] == b[k] for k in ("exit_share", "p_offload", "overall_accuracy")),
      "--thresholds t,t,t equals --threshold t")
check(b["thresholds"] == [0.8, 0.8, 0.8, 0.8] and c["thresholds"] == [0.99, 0.9, 0.5, 0.5],
      "the final takes the last exit's threshold", str(c.get("thresholds")))
check(c["exit_share"][0] < a["exit_share"][0] and c["exit_share"][2] > a["exit_share"][2],
      "a higher exit-1 and a lower exit-3 threshold move images from exit 1 to exit 3")

# an image file, and a model whose ee.thresholds the search wrote
png = os.path.join(TMP, "img.png")
subprocess.run(["/usr/bin/python3", "-c", f"""
import gzip, numpy as np
from PIL import Image
d = gzip.open('{DATA}/t10k-images-idx3-ubyte.gz').read()
Image.fromarray(np.frombuffer(d, np.uint8, 784, 16 + 784 * 7).reshape(28, 28)).save('{png}')
"""], check=True)
rc, out, err = run("run", MODEL, png, "--thresholds", "1,1,0", "--json")
r = json.loads(out) if rc == 0 else {}
check(rc == 0 and r.get("exit") == 3 and r.get("thresholds") == [1, 1, 0, 0],
      "eex run --thresholds 1,1,0 answers at exit 3", err or out[:200])
rc, _, err = run("run", MODEL, png, "--thresholds", "0.5,0.5")
check(rc == 2 and "give 3 values" in err, "eex run --thresholds with the wrong count", err)
log = os.path.join(TMP, "val.jsonl")
evaljson("--split", "val", "--val-index", VAL, "--limit", "2000", "--threshold", "0.8", "--log", log)
thr_model = os.path.join(TMP, "thr.eex")
rc, out, err = run("thresholds", log, "--objective", "max-accuracy", "--offload-budget", "0.1", "--grid", "12",
                   "--bootstrap", "100", "--json", "--model", MODEL, "-o", thr_model)
t = json.loads(out)["per_exit"]["thresholds"] if rc == 0 else None
check(rc == 0 and len(t) == 3, "eex thresholds writes a model with the chosen vector", err)
if t:
    rc, out, err = run("run", thr_model, png, "--json")
    got = json.loads(out).get("thresholds") if rc == 0 else None
    check(got is not None and all(abs(x - y) < 1e-5 for x, y in zip(got, t + [t[-1]])),
          "eex run takes the file's ee.thresholds by default", f"{got} vs {t}")
    rc, out, err = run("run", thr_model, png, "--json", "--threshold", "0.8")
    check(rc == 0 and "thresholds" not in json.loads(out), "--threshold overrides the file's ee.thresholds")

# ---- calibrate ----------------------------------------------------------------------------
cal = os.path.join(TMP, "cal.eex")
rc, out, err = run("calibrate", MODEL, "--dataset", DATA, "--split", "val", "--val-index", VAL, "--limit", "600",
                   "-o", cal, "--report-split", "test", "--json", "--diagram", os.path.join(TMP, "rel.json"))
c = json.loads(out) if rc == 0 else {}
check(rc == 0 and len(c.get("exits", [])) == 12 and all(e["temperature"] > 0 for e in c["exits"]),
      "calibrate fits 12 temperatures (4 classifiers x 3 expert sets)", err)
if rc == 0:
    check(all(e["nll"][2] <= e["nll"][0] + 1e-9 and e["nll"][2] <= e["nll"][1] + 1e-9 for e in c["exits"]),
          "the fitted temperature's NLL on the fitting split is never above T=1's or the file's")
    check(c["mean_ece"][2] < c["mean_ece"][0], "mean ECE on the fitting split falls", str(c["mean_ece"]))
    rc2, out2, _ = run("info", cal)
    check(rc2 == 0, "the calibrated copy opens")
    again = json.loads(run("calibrate", cal, "--dataset", DATA, "--split", "val", "--val-index", VAL, "--limit", "600",
                           "-o", os.path.join(TMP, "cal2.eex"), "--report-split", "none", "--json")[1])
    check(all(abs(x["file_temperature"] - y["temperature"]) < 1e-5 for x, y in zip(again["exits"], c["exits"])),
          "the copy holds the fitted temperatures")
    check(all(abs(x["ece"][1] - y["ece"][2]) < 1e-9 for x, y in zip(again["exits"], c["exits"])),
          "and behaves as the fit said (same ECE)")

# ---- adaptive: no labels ---------------------------------------------------------------------
nolab = os.path.join(TMP, "nolabels")
os.mkdir(nolab)
os.symlink(os.path.join(DATA, "t10k-images-idx3-ubyte.gz"), os.path.join(nolab, "t10k-images-idx3-ubyte.gz"))
rc, _, err = run("eval", MODEL, "--dataset", nolab, "--limit", "100", "--quiet")
check(rc == 1 and "labels" in err, "a normal eval needs the labels file", err)
trace = os.path.join(TMP, "trace")
rc, out, err = run(cmd=["strace", "-f", "-e", "trace=open,openat", "-o", trace, EEX, "eval", MODEL, "--dataset", DATA,
                        "--distortion", "mix:3,20", "--expert", "auto", "--adaptive", "--limit", "2000", "--quiet",
                        "--json"])
opened = open(trace).read() if os.path.exists(trace) else ""
check(rc == 0 and "t10k-images" in opened and "labels" not in opened,
      "eval --adaptive never opens the labels file (strace)", err[:200])
if rc == 0:
    a = json.loads(out)
    plays = sum(sum(c["plays"]) for c in a["contexts"])
    check(a["images"] == 2000 and plays == 2000 and a["pseudo_regret"] >= 0, "every image played once",
          f"{plays} plays")
    b = json.loads(run("eval", MODEL, "--dataset", nolab, "--distortion", "mix:3,20", "--expert", "auto",
                       "--adaptive", "--limit", "2000", "--quiet", "--json")[1])
    check(b["contexts"] == a["contexts"] and b["pseudo_regret"] == a["pseudo_regret"],
          "a seeded stream replays exactly, with or without a labels file")

# ---- outage probability against the per-image log ----------------------------------------------
log = os.path.join(TMP, "mix.jsonl")
j = evaljson("--distortion", "mix:3,20", "--expert", "auto", "--limit", "3000", "--threshold", "0.8,0.95",
             "--outage-window", "50", "--outage-target", "0.92", "--log", log)
recs = [json.loads(l) for l in open(log)]
for res in j["results"]:
    key = "%g" % res["threshold"]
    windows = outages = 0
    for w in range(len(recs) // 50):
        win = recs[50 * w: 50 * w + 50]
        edge = [r for r in win if r["exit"][key] <= 3]
        if edge:
            windows += 1
            outages += sum(r["answer"][key] == r["label"] for r in edge) < 0.92 * len(edge)
    check(res["outage_windows"] == windows and abs(res["outage_probability"] - outages / windows) < 1e-6,
          f"outage at {key}: {res['outage_probability']:.4f} = {outages}/{windows} from the log")

# ---- missed deadlines through a real cloud ------------------------------------------------------
err_path = os.path.join(TMP, "serve.err")
srv = subprocess.Popen([EEX, "serve", MODEL, "--listen", "127.0.0.1:0"], stdout=subprocess.DEVNULL,
                       stderr=open(err_path, "w"))
port = None
for _ in range(500):
    text = open(err_path).read()
    if "listening on 127.0.0.1:" in text:
        port = int(text.split("listening on 127.0.0.1:")[1].split(",")[0])
        break
    time.sleep(0.02)
try:
    for deadline in (10000, 1):
        log = os.path.join(TMP, f"cloud{deadline}.jsonl")
        # at 1 ms the cloud is stopped (SIGSTOP): on a quiet machine a loopback offload
        # can beat 1 ms, a stopped cloud cannot, so every offloaded image misses
        if deadline == 1:
            srv.send_signal(signal.SIGSTOP)
        try:
            j = evaljson("--limit", "400", "--threshold", "0.9", "--cloud", f"127.0.0.1:{port}", "--deadline-ms",
                         str(deadline), "--log", log)
        finally:
            srv.send_signal(signal.SIGCONT)
        recs = [json.loads(l) for l in open(log)]
        missed = sum(1 for r in recs if r["where"]["0.9"] != "edge" and "latency_ms" in r and
                     (r["where"]["0.9"] == "degraded" or r["latency_ms"] > deadline))
        res = j["results"][0]
        check(res["missed_deadline"] == missed and abs(res["missed_deadline_probability"] - missed / len(recs)) < 1e-9,
              f"missed deadline at {deadline} ms: {res['missed_deadline']} = {missed} from the log "
              f"(P(offload) {res['p_offload']:.3f})")
        if deadline == 1:
            check(missed > 0 and missed == sum(1 for r in recs if r["where"]["0.9"] != "edge"),
                  "with the cloud stopped, every offloaded image misses a 1 ms deadline")
finally:
    srv.send_signal(signal.SIGTERM)
    srv.wait(30)

shutil.rmtree(TMP, ignore_errors=True)
print(f"{failures} failures")
sys.exit(1 if failures else 0)
