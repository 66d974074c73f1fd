#!/usr/bin/python3
"""One exit rule on every path: ties between classifiers are decided alike by
`eex run --json`, `eex eval --log`, the offloaded path (`eex serve` + `eex run
--cloud`) and train/eval_torch.py (branches/exit_rule.c: the first classifier above
its threshold, else the most confident, the earliest on a tie).

Two-class models whose heads have zero weights and fixed biases, so every image gets
the same logits, all temperatures 1:
  exit-final  exit 1 [0, 1] and the final classifier [1, 0]: equal confidence
              e/(1+e) = 0.731, different classes; exits 2 and 3 less confident
  two-exits   exits 1 [0, 1] and 2 [1, 0] tie; exit 3 and the final less confident
At p_tar 0.99 nothing passes, so the tie decides: exit 1, class 1, on every path.

    test_exit_rule.py BUILD
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "export"))
sys.path.insert(0, os.path.join(ROOT, "train"))
import test_export as tx  # noqa: E402
import eval_torch  # noqa: E402
sys.path.insert(0, os.path.join(ROOT, "tests"))
from checks import check, summary  # noqa: E402  (tests/checks.py)
from variants import write_idx  # noqa: E402  (the dataset writer train/ uses)

torch = tx.torch
BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
EEX = os.path.join(ROOT, BUILD, "eex")
T = 0.99
CASES = {
    "exit-final": {"exit1": [0.0, 1.0], "exit2": [0.0, 0.5], "exit3": [0.2, 0.0], "final": [1.0, 0.0]},
    "two-exits": {"exit1": [0.0, 1.0], "exit2": [1.0, 0.0], "exit3": [0.0, 0.3], "final": [0.4, 0.0]},
}


def make_model(biases, path):
    model = tx.make_model(seed=5, classes=2, experts=("pristine",), detector=False)
    with torch.no_grad():
        heads = [model.exits[k]["pristine"][2] for k in range(3)] + [model.finals["pristine"][2]]
        for lin, name in zip(heads, ("exit1", "exit2", "exit3", "final")):
            lin.weight.zero_()
            lin.bias.copy_(torch.tensor(biases[name]))
    spec = model.spec(labels=["c0", "c1"])
    for e in spec["exits"]:
        e["temperature"] = {"pristine": 1.0}
    spec["final"]["temperature"] = 1.0
    spec["cuts"] = [model.exit_at[0]]     # the edge keeps exit 1, the cloud the rest
    tx.eex_export.export(model, spec, path)
    return model


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_json(*args):
    r = subprocess.run([EEX, *args, "--json"], capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 else {"error": r.stderr.strip()}


def main():
    from PIL import Image
    tmp = tempfile.mkdtemp(prefix="eex-exit-rule-")
    rng = np.random.default_rng(3)
    imgs = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    write_idx(f"{tmp}/t10k-images-idx3-ubyte.gz", imgs)
    write_idx(f"{tmp}/t10k-labels-idx1-ubyte.gz", np.array([1, 0, 1], np.uint8))
    png = f"{tmp}/img.png"
    Image.fromarray(imgs[0]).save(png)
    for case, biases in CASES.items():
        path = f"{tmp}/{case}.eex"
        make_model(biases, path)
        want_exit, want_cls = 1, 1
        r = run_json("run", path, png, "--threshold", str(T))
        check(r.get("exit") == want_exit and r.get("class") == want_cls,
              f"{case}: eex run answers at exit 1, class 1", r)
        conf = r.get("confidences", [])
        check(len(conf) == 4 and conf[0] == max(conf) and conf.count(conf[0]) == 2,
              f"{case}: the tie is exact", conf)

        log = f"{tmp}/{case}.jsonl"
        e = subprocess.run([EEX, "eval", path, "--dataset", tmp, "--threshold", str(T), "--expert", "pristine",
                            "--log", log, "--quiet", "--json"], capture_output=True, text=True)
        recs = [json.loads(x) for x in open(log)] if e.returncode == 0 else []
        key = next(iter(recs[0]["answer"])) if recs else None
        check(len(recs) == 3 and all(x["answer"][key] == want_cls for x in recs),
              f"{case}: eex eval --log answers like eex run", e.stderr.strip() or recs[:1])

        port = free_port()
        srv = subprocess.Popen([EEX, "serve", path, "--listen", f"127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            r = {}
            for _ in range(50):
                r = run_json("run", path, png, "--threshold", str(T), "--cloud", f"127.0.0.1:{port}",
                             "--cut", "0", "--deadline-ms", "5000")
                if r.get("where") == "cloud":
                    break
                time.sleep(0.1)
            check(r.get("where") == "cloud" and r.get("exit") == want_exit and r.get("class") == want_cls,
                  f"{case}: the offloaded path answers like eex run", r)
        finally:
            srv.terminate()
            srv.wait(timeout=10)

        # train/eval_torch.py's policy on the same confidences
        c = np.array([[x] for x in conf], np.float32)
        p = np.array([[int(np.argmax(biases[n]))] for n in ("exit1", "exit2", "exit3", "final")])
        res = eval_torch.policy(c, p, np.array([want_cls]), [T])[0]
        check(res["overall_accuracy"] == 1.0, f"{case}: train/eval_torch.py answers like eex run", res)
    return summary("exit rule")


if __name__ == "__main__":
    sys.exit(main())
