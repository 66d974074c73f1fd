#!/usr/bin/python3
"""The load benchmark: `eex serve` under many edge clients, with and without
batching, and scaled out behind HAProxy with a worker killed mid-load.
Writes docs/results/load.md and the JSON beside it (bench/load/results.json).

    run.py [--build BUILD] [--out docs/results/load.md] [--json bench/load/results.json]
           [--rounds N] [--quick] [--note @FILE] [--render]

1. Load: K = 64 edge clients x R = 200 requests each against one `eex serve`
   (2 workers, batching on, the default), the real edge path (detector,
   exits, cut, offload) at p_tar 1 so that every image goes to the cloud;
   then the same with HMAC-authenticated frames. Throughput, p50/p99/max,
   errors (error frames and degraded answers), lost (no answer) and wrong
   (answer != local full run) requests.
2. Batching: the same server with `--no-batch` and `--batch 32`, in
   alternating rounds of the same invocation, at K = 1, 8 and 64: the
   server's own throughput (loadgen --send-only: precomputed cut tensors,
   every reply checked bit for bit against a local resume) on the tiny
   Fashion-MNIST-sized model and on MobileNetV2-EE-224 at its last cut, and
   the whole edge path on the tiny model. The factor is the median of the
   per-round ratios batch / no-batch.
   Last, two models whose layers after the last cut are bound by weight
   traffic, the regime batching is for: AlexNet-EE at 224x224 (bench/load/
   make_alexnet.py: torchvision's AlexNet with B-AlexNet's two side exits; after
   pool 5 come 9216 -> 4096 -> 4096 -> 1000 fully-connected layers, 234 MB) and
   a synthetic one (bench/load/make_fathead.py: the tiny backbone with a
   VGG-style 2 x 4096 fully-connected final head, 69 MB).
3. Scale-out: tests/scale/scale.py with 3 workers behind HAProxy, 64 edges x
   200 requests, worker 0 killed (SIGKILL) after a third of the answers.

Everything runs on 127.0.0.1, on this machine's cores, beside whatever else
runs on them (the load average is recorded): compare figures within a run.
"""
import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PY = "/usr/bin/python3"
TINY = os.path.join(ROOT, "build", "ee", "tiny.eex")
MOBILENET = os.path.join(ROOT, "models", "mobilenetv2-ee-224.eex")
FATHEAD = os.path.join(ROOT, "build", "load", "fathead.eex")  # bench/load/make_fathead.py
ALEXNET = os.path.join(ROOT, "build", "load", "alexnet-ee.eex")  # bench/load/make_alexnet.py


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def loadavg():
    return open("/proc/loadavg").read().split()[:3]


class Serve:
    def __init__(self, build, model, args, tmp, name):
        self.err_path = os.path.join(tmp, f"{name}.err")
        self.err = open(self.err_path, "w")
        self.p = subprocess.Popen([os.path.join(ROOT, build, "eex"), "serve", model, "--listen", "127.0.0.1:0", *args],
                                  stdout=subprocess.DEVNULL, stderr=self.err)
        t0 = time.time()
        while True:
            text = open(self.err_path).read()
            if "listening on" in text:
                self.port = int(text.split("listening on 127.0.0.1:")[1].split(",")[0])
                return
            if self.p.poll() is not None or time.time() - t0 > 60:
                raise RuntimeError(f"eex serve did not start: {text}")
            time.sleep(0.02)

    def cpu_s(self):
        """CPU seconds (user + system) the server used so far."""
        f = open(f"/proc/{self.p.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(60)
        self.err.close()
        text = open(self.err_path).read()
        m = re.search(r"(\d+) requests answered, (\d+) error frames.*?(\d+) runs \((\d+) requests in batches, "
                      r"largest (\d+)\)", text)
        keys = ("answered", "error_frames", "runs", "batched", "largest")
        return dict(zip(keys, (int(x) for x in m.groups()))) if m and rc == 0 else {"rc": rc, "stderr": text[-500:]}


def loadgen(build, model, port, k, r, extra=()):
    cmd = [os.path.join(ROOT, build, "bench", "offload", "loadgen"), model, "--cloud", f"127.0.0.1:{port}",
           "--clients", str(k), "--requests", str(r), "--threshold", "1", *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if p.returncode:
        raise RuntimeError(f"loadgen failed: {p.stderr[-1000:]}")
    return json.loads(p.stdout)


def one_load(build, tmp, model, serve_args, k, r, lg_args=(), name="load"):
    srv = Serve(build, model, ["--threads", "2", *serve_args], tmp, name)
    try:
        c0 = srv.cpu_s()
        s = loadgen(build, model, srv.port, k, r, lg_args)
        cpu = srv.cpu_s() - c0
    finally:
        s_srv = srv.stop()
    s["server"] = s_srv
    s["server_cpu_us_per_request"] = cpu / s["requests"] * 1e6
    return s


def section_load(build, tmp, key_file, k, r):
    rows = []
    for label, serve_args, lg_args in (("no key", [], []),
                                       ("HMAC-SHA256 (--key)", ["--key", key_file], ["--key", key_file])):
        s = one_load(build, tmp, TINY, serve_args, k, r, lg_args, "load")
        s["label"] = label
        rows.append(s)
        print(f"load {label}: {s['throughput_rps']:.0f}/s p50 {s['latency_ms']['median']:.2f} "
              f"p99 {s['latency_ms']['p99']:.2f} lost {s['lost']} wrong {s['wrong']} server {s['server']}", flush=True)
    return rows


def section_batching(build, tmp, rounds, quick):
    cases = [("tiny", TINY, None, "send-only", ["--send-only"], {1: 3000, 8: 800, 64: 200}),
             ("tiny", TINY, None, "edge path", [], {1: 1500, 8: 400, 64: 100})]
    if os.path.exists(MOBILENET) and not quick:
        cases.append(("mobilenetv2-ee-224", MOBILENET, "last", "send-only", ["--send-only"], {1: 150, 8: 40, 64: 8}))
    if os.path.exists(ALEXNET):
        r = {1: 20, 8: 6, 64: 2} if quick else {1: 100, 8: 30, 64: 8}
        cases.append(("alexnet-ee-224", ALEXNET, "last", "send-only", ["--send-only"], r))
    if os.path.exists(FATHEAD):
        r = {1: 60, 8: 20, 64: 6} if quick else {1: 300, 8: 100, 64: 40}
        cases.append(("tiny-ee-fathead (synthetic)", FATHEAD, "last", "send-only", ["--send-only"], r))
        cases.append(("tiny-ee-fathead (synthetic)", FATHEAD, "last", "edge path", [], r))
    out = []
    for model_name, model, cut, path, lg_args, reqs in cases:
        extra = list(lg_args)
        for k in (1, 8, 64):
            runs = {"no-batch": [], "batch": []}
            servers = {"no-batch": [], "batch": []}
            cpu = {"no-batch": [], "batch": []}
            for rd in range(rounds):
                order = ("no-batch", "batch") if rd % 2 == 0 else ("batch", "no-batch")
                for mode in order:
                    args = ["--no-batch"] if mode == "no-batch" else ["--batch", "32"]
                    s = one_load(build, tmp, model, args, k, reqs[k], extra, f"batch-{mode}")
                    if s["lost"] or s["wrong"]:
                        raise RuntimeError(f"batching run lost or wrong: {s}")
                    runs[mode].append(s["throughput_rps"])
                    servers[mode].append(s["server"])
                    cpu[mode].append(s["server_cpu_us_per_request"])
            ratios = [b / n for b, n in zip(runs["batch"], runs["no-batch"])]
            row = {"model": model_name, "path": path, "clients": k, "requests_per_client": reqs[k],
                   "no_batch_rps": runs["no-batch"], "batch_rps": runs["batch"],
                   "factor_median": statistics.median(ratios), "ratios": ratios,
                   "no_batch_cpu_us": cpu["no-batch"], "batch_cpu_us": cpu["batch"],
                   "batch_runs": [x.get("runs") for x in servers["batch"]],
                   "batched_requests": [x.get("batched") for x in servers["batch"]],
                   "largest": max(x.get("largest", 0) for x in servers["batch"])}
            out.append(row)
            print(f"batching {model_name} {path} K={k}: no-batch {statistics.median(runs['no-batch']):.0f}/s, "
                  f"batch {statistics.median(runs['batch']):.0f}/s, factor {row['factor_median']:.2f}, server cpu "
                  f"{statistics.median(cpu['no-batch']):.1f} -> {statistics.median(cpu['batch']):.1f} us/request "
                  f"(rounds {', '.join(f'{x:.2f}' for x in ratios)})", flush=True)
    return out


def section_scale(build, tmp, k, r):
    js = os.path.join(tmp, "scale.json")
    p = subprocess.run([PY, os.path.join(ROOT, "tests", "scale", "scale.py"), "--workers", "3", "--clients", str(k),
                        "--requests", str(r), "--json", js, "--label", "scale-out demo"],
                       capture_output=True, text=True, timeout=1800, env=dict(os.environ, BUILD=build))
    print(p.stdout, end="", flush=True)
    if not os.path.exists(js):
        return {"error": p.stdout[-2000:] + p.stderr[-2000:]}
    res = json.load(open(js))
    res["passed"] = p.returncode == 0
    return res


def pct(x):
    return f"{x:.0f}"


def write_md(path, res):
    L = []
    w = L.append
    m = res["machine"]
    w("# Load, batching and scale-out\n")
    w("Generated by `make bench-load` (bench/load/run.py); one run on this machine: "
      f"{m['cores']} cores, {m['cpu']}, load average {' '.join(m['load_before'])} before and "
      f"{' '.join(m['load_after'])} after (other work shared the cores: compare figures within this page, "
      "not across machines). Everything on 127.0.0.1; the edges (bench/offload/loadgen) run on the same "
      "cores as the servers.\n")
    w("The model is `build/ee/tiny.eex` (tests/ee/make_tiny.py: 3x28x28 input, 3 exits, 3 experts, a "
      "detector, 1.4 M MACs per image) unless a row says otherwise; p_tar = 1 so that every request goes to "
      "the cloud, at the last cut.\n")
    w("## 1. Load: 64 edge clients x 200 requests against one `eex serve`\n")
    w("`eex serve --threads 2` (batching on, the default); each client is an edge with its own session and "
      "connection running the whole edge path (detector, exits, cut tensor, offload) on seeded random images. "
      "*Errors* are error frames from the server plus degraded answers; *lost* are requests with no answer at "
      "all; *wrong* are answers that differ from a local full run of the same image.\n")
    w("| frames | requests | answered | cloud | errors | lost | wrong | throughput (req/s) | p50 (ms) | p99 (ms) "
      "| max (ms) | server CPU per request (us) | server runs (batched requests, largest) |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in res["load"]:
        sv = s["server"]
        errs = sv.get("error_frames", 0) + s["degraded"]
        w(f"| {s['label']} | {s['requests']} | {s['answered']} | {s['cloud']} | {errs} | {s['lost']} | {s['wrong']} "
          f"| {pct(s['throughput_rps'])} | {s['latency_ms']['median']:.2f} | {s['latency_ms']['p99']:.2f} | "
          f"{s['latency_ms']['max']:.1f} | {s['server_cpu_us_per_request']:.0f} | "
          f"{sv.get('runs')} ({sv.get('batched')}, {sv.get('largest')}) |")
    w("")
    w("## 2. Batching\n")
    w("`eex serve --threads 2` with `--no-batch` against `--batch 32`, alternating in "
      f"{res['rounds']} rounds of the same invocation; throughput is the median over rounds, the factor the "
      "median of the per-round ratios. *send-only*: the clients send precomputed cut tensors "
      "(`loadgen --send-only`), so the figure is the server's; every reply is compared bit for bit with "
      "`eex_offload_resume` of the same tensor on the client (0 differences in every run). *edge path*: "
      "the clients run the edge half too, on the same cores. *Server CPU* is the server process's user + "
      "system time per request (from /proc), which other work on the machine disturbs much less than "
      "throughput.\n")
    w("| model | clients | no batching (req/s) | batching (req/s) | factor | per round | server CPU per request, "
      "no batching -> batching (us) | runs per 100 requests | largest run |")
    w("|---|---|---|---|---|---|---|---|---|")
    for b in res["batching"]:
        per100 = [r / (b["clients"] * b["requests_per_client"]) * 100 for r in b["batch_runs"] if r]
        w(f"| {b['model']}, {b['path']} | {b['clients']} | {pct(statistics.median(b['no_batch_rps']))} | "
          f"{pct(statistics.median(b['batch_rps']))} | **{b['factor_median']:.2f}x** | "
          f"{', '.join(f'{x:.2f}' for x in b['ratios'])} | {statistics.median(b['no_batch_cpu_us']):.0f} -> "
          f"{statistics.median(b['batch_cpu_us']):.0f} | {statistics.median(per100):.0f} | {b['largest']} |")
    w("")
    w(res.get("batching_note", ""))
    w("## 3. Scale-out behind HAProxy, a worker killed mid-load\n")
    sc = res.get("scale", {})
    if "answered" in sc:
        w("`tests/scale/scale.py` (`make scale-demo`): 3 `eex serve` workers on loopback ports behind HAProxy "
          "(Debian's haproxy, TCP mode, round robin, health checks that send an authenticated PING frame and "
          "expect a PONG every 100 ms, `retries 3`, `option redispatch`); every frame HMAC-authenticated. "
          f"{sc['clients']} edges x {sc['requests_per_client']} requests through HAProxy (the whole edge path, "
          f"deadline 3000 ms); worker w0 got SIGKILL {sc['killed_at_s']:.2f} s in, after "
          f"{sc['answered_before_kill']} answers. A request whose connection breaks is sent once more on a "
          "new connection (HAProxy gives it to a live worker); past the deadline the edge would answer "
          "locally, degraded.\n")
        w("| requests | answered | lost | wrong | cloud | degraded | retried on a new connection | answered per "
          "worker (w0 killed) | throughput (req/s) | p50 (ms) | p99 (ms) | max (ms) |")
        w("|---|---|---|---|---|---|---|---|---|---|---|---|")
        w(f"| {sc['requests']} | {sc['answered']} | {sc['lost']} | {sc['wrong']} | {sc['cloud']} | {sc['degraded']} "
          f"| {sc['retries']} | {', '.join(str(x) for x in sc['per_worker_answered'])} | {pct(sc['throughput_rps'])} | "
          f"{sc['latency_ms']['median']:.2f} | {sc['latency_ms']['p99']:.2f} | {sc['latency_ms']['max']:.1f} |")
        w("")
        if sc["latency_ms"]["max"] > 150:
            w("The slowest requests are retried ones: a new connection may first reach the dead worker before "
              "the health check marks it down, and HAProxy redispatches it after its connect turn-around "
              "(`timeout connect`, 200 ms).\n")
    else:
        w(f"Not run: {sc.get('error', 'haproxy missing')}\n")
    # sections 4 and on are written by other tests (tests/offload/test_offload.py idle): kept
    if os.path.exists(path):
        old = open(path).read()
        i = old.find("\n## 4. ")
        if i >= 0:
            L.append(old[i:])
    with open(path, "w") as f:
        f.write("\n".join(L))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "results", "load.md"))
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "load", "results.json"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="smaller runs, no MobileNetV2 (a smoke test)")
    ap.add_argument("--note", default="", help="a paragraph for the batching section (read from a file with @FILE)")
    ap.add_argument("--render", action="store_true", help="only rewrite --out from the --json of an earlier run")
    a = ap.parse_args()
    note = a.note
    if note.startswith("@"):
        note = open(note[1:]).read()
    if a.render:
        res = json.load(open(a.json))
        res["batching_note"] = note or res.get("batching_note", "")
        write_md(a.out, res)
        print(f"wrote {a.out} from {a.json}")
        return 0
    tmp = os.path.join(ROOT, "build", "load")
    os.makedirs(tmp, exist_ok=True)
    key_file = os.path.join(tmp, "key")
    with open(key_file, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(key_file, 0o600)
    k, r = (16, 50) if a.quick else (64, 200)
    res = {"machine": {"cores": os.cpu_count(), "cpu": cpu_model(), "load_before": loadavg()},
           "rounds": 1 if a.quick else a.rounds}
    res["load"] = section_load(a.build, tmp, key_file, k, r)
    res["batching"] = section_batching(a.build, tmp, res["rounds"], a.quick)
    res["scale"] = section_scale(a.build, tmp, k, r)
    res["machine"]["load_after"] = loadavg()
    res["batching_note"] = note
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1)
    write_md(a.out, res)
    print(f"wrote {a.out} and {a.json}")
    ok = all(s["lost"] == 0 and s["wrong"] == 0 and s["answered"] == s["requests"] for s in res["load"])
    ok = ok and res["scale"].get("lost", 1) == 0 and res["scale"].get("wrong", 1) == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
