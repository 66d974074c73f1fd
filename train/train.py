#!/usr/bin/python3
"""Reproduces Pacheco et al. (GLOBECOM 2021) on Fashion-MNIST, end to end:

  joint        backbone + pristine exits + final classifier on clean images,
               loss = CE(exit1) + CE(exit2) + CE(exit3) + CE(final), Adam, cosine LR
  temperature  one temperature per exit and for the final classifier (pristine set),
               fitted by minimising the NLL on the validation split (LBFGS on log T)
  experts      blur and noise expert sets: start from the pristine heads, backbone
               frozen (eval-mode BN), heads + final classifier fine-tuned with the
               paper's recipe; temperatures fitted on distorted validation images
  detector     the distortion classifier (pristine / blur / noise) on the spectrum and
               the image of pristine/blurred/noisy images (docs/distortions.md)
  evaluate     per-exit test accuracies (clean and every distortion level, exact
               distortions with seed S + image index), detector accuracy per level,
               offloading summary at p_tar 0.8
  export       the .eex through converter/eex_export.py, checked against
               PyTorch with the converter's reference interpreter

    train.py [--dataset DIR] [--labels FILE] [--name NAME] [--augment hflip]
             [--fast] [--threads N] [--out DIR] [--model FILE.eex] [--json FILE]
             [--steps joint,temperature,experts,detector,evaluate,export] [--log FILE]
             [--detector-channels 1|2|3]

Every step is seeded; torch.use_deterministic_algorithms(True); two runs with the
same thread count give bit-identical files. A run's files go to OUT (default
train/out/NAME/, or train/out-fast/NAME/ with --fast): joint.pt after the joint step,
model.pt with everything and the history, NAME-ee.eex and NAME-ee.json unless --model
and --json name other files; the export step writes the PyTorch model next to the
.eex (NAME-ee.pt). `make train` on Fashion-MNIST is the one run that writes the
shipped models/fmnist-ee.* (it passes --model/--json). --fast is a smoke run on a
small subset. The dataset is any folder of IDX files (train/data.py): class names
from --labels, normalisation measured on its training file.
"""

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import time

# libgomp threads spin while they wait; on a 2-core machine shared with other jobs a
# spinning thread steals the core its partner needs (measured: 2 threads 2x slower than
# 1 under load). Passive waiting must be chosen before torch loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "converter"))
import data  # noqa: E402
import eval_torch  # noqa: E402
import model as M  # noqa: E402

STEPS = ["joint", "temperature", "experts", "detector", "evaluate", "export"]

AUGMENTS = ("hflip",)
SEEDS = {"split": 0, "joint": 0, "experts": 42, "detector": 7, "eval_distortion": 0}

FULL = dict(
    joint_epochs=10, joint_batch=128, joint_lr=3e-3, joint_wd=0.0,
    expert_lr=1e-2, expert_wd=5e-4, expert_tmax=10, expert_batch=32,
    expert_patience=10, expert_max_epochs=40, expert_p=0.5,
    det_lr=2e-3, det_wd=1e-4, det_batch=128, det_epochs=10, det_channels=2,
    subset=None, eval_limit=None,
)
FAST = dict(FULL, joint_epochs=1, expert_max_epochs=2, det_epochs=2,
            subset=(3000, 1000))

T0 = time.time()


class Tee:
    def __init__(self, *streams):
        self.streams = streams

    def write(self, s):
        for st in self.streams:
            st.write(s)

    def flush(self):
        for st in self.streams:
            st.flush()


def log(step, msg):
    print(f"[{step}] {msg}  (elapsed {time.time() - T0:.0f}s)", flush=True)


def seed_all(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)


def git_commit():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def command_line():
    return " ".join(["/usr/bin/python3", os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)]
                    + sys.argv[1:])


def git_uncommitted():
    """Files of the training code that differ from HEAD (the commit alone does not
    describe the run when this is not empty)."""
    try:
        r = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "train",
                            "converter", "mk/train.mk"], capture_output=True, text=True,
                           check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return sorted(line[3:] for line in r.splitlines())


# The input normalisation (mean, std) of the dataset being trained: set by main() from
# data.pixel_stats before any step runs.
NORM = None


def to_tensor(x_u8):
    return torch.from_numpy(data.to_float(x_u8, *NORM))


def cl(x):
    return x.contiguous(memory_format=torch.channels_last)


# ----------------------------------------------------------------------------- eval helpers

@torch.no_grad()
def pooled_features(net, x_u8, batch=1000):
    """Inputs of every head's Linear for images x_u8 -> list of [N, D] float32."""
    net.eval()
    parts = []
    for s in range(0, len(x_u8), batch):
        parts.append(net.pooled_features(cl(to_tensor(x_u8[s:s + batch]))))
    return [torch.cat([p[k] for p in parts]) for k in range(len(parts[0]))]


@torch.no_grad()
def head_logits_from_features(headset, feats):
    headset.eval()
    return [h.classify(f) for h, f in zip(headset.heads(), feats)]


def accuracies(logits, y):
    y = torch.as_tensor(y)
    return [float((l.argmax(1) == y).float().mean()) for l in logits]


def fmt_acc(accs):
    names = [f"exit{k + 1}" for k in range(len(accs) - 1)] + ["final"]
    return " ".join(f"{n} {100 * a:.2f}" for n, a in zip(names, accs))


def fit_temperature(logits, y):
    """argmin_T NLL(softmax(logits / T)) by LBFGS on log T (float64)."""
    z = logits.detach().double()
    y = torch.as_tensor(y)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss
    opt.step(closure)
    t = float(log_t.exp())
    nll_before = float(F.cross_entropy(z, y))
    nll_after = float(F.cross_entropy(z / t, y))
    return t, nll_before, nll_after


# ----------------------------------------------------------------------------- steps

def step_joint(cfg, d, net):
    seed_all(SEEDS["joint"])
    xtr, ytr = to_tensor(d["train"][0]), torch.from_numpy(d["train"][1])
    net.train()
    heads = net.heads["pristine"]
    params = list(net.backbone.parameters()) + list(heads.parameters())
    opt = torch.optim.Adam(params, lr=cfg["joint_lr"], weight_decay=cfg["joint_wd"])
    bs = cfg["joint_batch"]
    steps_per_epoch = math.ceil(len(xtr) / bs)
    total = cfg["joint_epochs"] * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["joint_lr"], total_steps=total,
                                                pct_start=0.15, anneal_strategy="cos")
    gen = torch.Generator().manual_seed(SEEDS["joint"])
    hist = []
    for ep in range(cfg["joint_epochs"]):
        net.train()
        perm = torch.randperm(len(xtr), generator=gen)
        flip = torch.rand(len(xtr), generator=gen) < 0.5
        tot, cnt = 0.0, 0
        for i in range(0, len(xtr), bs):
            idx = perm[i:i + bs]
            x = xtr[idx]
            f = flip[idx]
            if "hflip" in cfg["augment"]:   # the draw above happens either way
                x = torch.where(f[:, None, None, None], x.flip(3), x)
            out = [h(a) for h, a in zip(heads.heads(), net.attach_features(cl(x)))]
            loss = sum(F.cross_entropy(o, ytr[idx]) for o in out)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss) * len(idx)
            cnt += len(idx)
        feats = pooled_features(net, d["val"][0])
        acc = accuracies(head_logits_from_features(heads, feats), d["val"][1])
        hist.append({"epoch": ep + 1, "loss": tot / cnt, "val_acc": acc})
        log("joint", f"epoch {ep + 1}/{cfg['joint_epochs']} loss {tot / cnt:.4f} "
                     f"val acc {fmt_acc(acc)}")
    net.eval()
    return hist


def step_temperature(d, net, expert="pristine", val_x=None, val_y=None):
    """Fits [T exit 1, ..., T final] for one expert set on validation images."""
    x = d["val"][0] if val_x is None else val_x
    y = d["val"][1] if val_y is None else val_y
    feats = pooled_features(net, x) if not isinstance(x, list) else x
    logits = head_logits_from_features(net.heads[expert], feats)
    temps, info = [], []
    for k, z in enumerate(logits):
        t, before, after = fit_temperature(z, y)
        temps.append(t)
        info.append({"T": t, "nll_before": before, "nll_after": after})
    log("temperature", f"{expert}: " + " ".join(
        f"{'exit' + str(k + 1) if k < len(temps) - 1 else 'final'} T={i['T']:.3f} "
        f"(NLL {i['nll_before']:.3f}->{i['nll_after']:.3f})" for k, i in enumerate(info)))
    return temps, info


def _distorted_variant_features(net, x_u8, kind, seed):
    """Pooled features of x_u8 at every level of `kind` -> list over levels of feature
    lists (training-time fast distortions, seeded per level)."""
    out = []
    for li, sigma in enumerate(data.LEVELS[kind]):
        xd = data.distort_fast(x_u8, kind, sigma, seed + 1_000_003 * (li + 1))
        out.append(pooled_features(net, xd))
    return out


def step_expert(cfg, d, net, kind, clean_tr, clean_val):
    """Fine-tunes heads[kind] (initialised from the pristine heads) on the frozen
    backbone. The backbone is frozen and in eval mode and every head is pool -> Linear,
    so the heads' inputs (pooled features) are computed once per image and distortion
    level and the epochs run on those: the same gradients as running the backbone every
    step, much faster. Deviation: the noise realisation of an (image, level) pair is
    drawn once, not afresh every epoch."""
    seed = SEEDS["experts"]
    seed_all(seed)
    net.eval()
    for p in net.backbone.parameters():
        p.requires_grad_(False)
    heads = net.heads[kind]
    heads.load_state_dict(net.heads["pristine"].state_dict())
    t = time.time()
    tr_lv = _distorted_variant_features(net, d["train"][0], kind, seed)
    va_lv = _distorted_variant_features(net, d["val"][0], kind, seed + 17)
    log(f"expert {kind}", f"pooled features of {len(data.LEVELS[kind])} levels computed "
                          f"({time.time() - t:.0f}s)")
    n_heads = len(clean_tr)
    # stack: variant 0 = clean, 1..5 = levels
    tr_all = [torch.stack([clean_tr[k]] + [lv[k] for lv in tr_lv]) for k in range(n_heads)]
    va_all = [torch.stack([clean_val[k]] + [lv[k] for lv in va_lv]) for k in range(n_heads)]
    ytr = torch.from_numpy(d["train"][1])
    yva = torch.from_numpy(d["val"][1])
    rng = np.random.default_rng(seed)
    n_lv = len(data.LEVELS[kind])

    def mixture(n, p):
        return torch.from_numpy(np.where(rng.random(n) < p, rng.integers(0, n_lv, n) + 1, 0))

    # Fixed validation sets: the training mixture (early stopping) and all-distorted
    # (temperatures).
    va_var = mixture(len(yva), cfg["expert_p"])
    va_all_dist = torch.from_numpy(rng.integers(0, n_lv, len(yva)) + 1)
    rows = torch.arange(len(yva))
    va_mix_feats = [f[va_var, rows] for f in va_all]
    va_dist_feats = [f[va_all_dist, rows] for f in va_all]

    opt = torch.optim.Adam(heads.parameters(), lr=cfg["expert_lr"], weight_decay=cfg["expert_wd"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["expert_tmax"])
    gen = torch.Generator().manual_seed(seed)
    best, best_state, best_ep, bad = float("inf"), None, 0, 0
    hist = []
    bs = cfg["expert_batch"]
    trows = torch.arange(len(ytr))
    for ep in range(cfg["expert_max_epochs"]):
        heads.train()
        var = mixture(len(ytr), cfg["expert_p"])
        feats = [f[var, trows] for f in tr_all]
        perm = torch.randperm(len(ytr), generator=gen)
        tot, cnt = 0.0, 0
        for i in range(0, len(ytr), bs):
            idx = perm[i:i + bs]
            out = [h.classify(f[idx]) for h, f in zip(heads.heads(), feats)]
            loss = sum(F.cross_entropy(o, ytr[idx]) for o in out)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss) * len(idx)
            cnt += len(idx)
        sched.step()
        with torch.no_grad():
            vl = head_logits_from_features(heads, va_mix_feats)
            vloss = float(sum(F.cross_entropy(z, yva) for z in vl))
            vacc = accuracies(vl, yva)
        hist.append({"epoch": ep + 1, "loss": tot / cnt, "val_loss": vloss, "val_acc": vacc})
        improved = vloss < best
        if improved:
            best, best_state, best_ep, bad = vloss, copy.deepcopy(heads.state_dict()), ep + 1, 0
        else:
            bad += 1
        log(f"expert {kind}", f"epoch {ep + 1} loss {tot / cnt:.4f} val loss {vloss:.4f} "
                              f"val acc (mixture) {fmt_acc(vacc)}{' *' if improved else ''}")
        if bad >= cfg["expert_patience"]:
            log(f"expert {kind}", f"early stop: {bad} epochs without val improvement")
            break
    heads.load_state_dict(best_state)
    log(f"expert {kind}", f"kept epoch {best_ep} (val loss {best:.4f})")
    temps, info = step_temperature(d, net, kind, va_dist_feats, d["val"][1])
    return {"history": hist, "best_epoch": best_ep, "epochs_run": len(hist),
            "temperature_fit": info}, temps


def _distorted(x_u8, kind, rng):
    """Each image distorted by `kind` at a level drawn uniformly (training-time fast
    distortions) -> (images, level index per image). data.distort_mixture with p = 1
    would do the same with other random draws (a coin per image, a noise seed per
    4096-image chunk), so the committed detector would not be reproduced by it."""
    lv = rng.integers(0, len(data.LEVELS[kind]), len(x_u8))
    out = x_u8.copy()
    for li, sigma in enumerate(data.LEVELS[kind]):
        idx = np.nonzero(lv == li)[0]
        out[idx] = data.distort_fast(x_u8[idx], kind, sigma, int(rng.integers(0, 2 ** 62)))
    return out, lv


def _detector_set(x_u8, rng, channels):
    """Each image three times: pristine, blurred and noisy at uniform levels ->
    (inputs float32 [3N, channels, H, W], class [3N], noise level index of the noisy
    third).
    Equal class shares, noise levels mixed: the same weighting as the test metric
    (mean of the pristine, blur and noise accuracies, levels averaged)."""
    blur, _ = _distorted(x_u8, "blur", rng)
    noise, noise_lv = _distorted(x_u8, "noise", rng)
    x = np.concatenate([x_u8, blur, noise])
    y = np.repeat(np.arange(3, dtype=np.int64), len(x_u8))
    return torch.from_numpy(data.detector_inputs(x, channels)), torch.from_numpy(y), noise_lv


def step_detector(cfg, d, det):
    """Adam + one-cycle LR for a fixed number of epochs; the epoch with the best
    validation accuracy is kept. The noisy third of the training set gets new noise
    (new levels and realisations) every epoch: clean vs light noise is decided by faint
    high-frequency statistics, and one fixed noise draw per image can be memorised."""
    seed = SEEDS["detector"]
    seed_all(seed)
    rng = np.random.default_rng(seed)
    x_img = d["train"][0]
    n = len(x_img)
    xtr, ytr, _ = _detector_set(x_img, rng, det.channels)
    xva, yva, va_lv = _detector_set(d["val"][0], rng, det.channels)
    va_noise = yva == 2
    log("detector", f"{len(xtr)} training inputs, {len(xva)} validation inputs, "
                    f"{det.channels} channel(s)")
    bs = cfg["det_batch"]
    opt = torch.optim.Adam(det.parameters(), lr=cfg["det_lr"], weight_decay=cfg["det_wd"])
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg["det_lr"], total_steps=cfg["det_epochs"] * math.ceil(len(xtr) / bs),
        pct_start=0.2)
    gen = torch.Generator().manual_seed(seed)
    best, best_state, best_ep = -1.0, None, 0
    hist = []
    for ep in range(cfg["det_epochs"]):
        if ep > 0:
            xtr[2 * n:] = torch.from_numpy(data.detector_inputs(_distorted(x_img, "noise", rng)[0],
                                                                det.channels))
        det.train()
        perm = torch.randperm(len(xtr), generator=gen)
        tot, cnt = 0.0, 0
        for i in range(0, len(xtr), bs):
            idx = perm[i:i + bs]
            loss = F.cross_entropy(det(xtr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss) * len(idx)
            cnt += len(idx)
        det.eval()
        with torch.no_grad():
            pred = torch.cat([det(xva[i:i + 4096]).argmax(1) for i in range(0, len(xva), 4096)])
        acc = float((pred == yva).float().mean())
        per = [float((pred[yva == c] == c).float().mean()) for c in range(3)]
        noise_ok = (pred[va_noise] == 2).numpy()
        per_noise = [float(noise_ok[va_lv == li].mean()) for li in range(len(data.LEVELS["noise"]))]
        hist.append({"epoch": ep + 1, "loss": tot / cnt, "val_acc": acc, "val_acc_per_class": per,
                     "val_acc_noise_per_level": per_noise})
        improved = acc > best
        if improved:
            best, best_state, best_ep = acc, copy.deepcopy(det.state_dict()), ep + 1
        log("detector", f"epoch {ep + 1} loss {tot / cnt:.4f} val acc {100 * acc:.2f} "
                        f"(pristine {100 * per[0]:.1f} blur {100 * per[1]:.1f} "
                        f"noise {100 * per[2]:.1f}: " +
                        "/".join(f"{100 * a:.1f}" for a in per_noise) +
                        f"){' *' if improved else ''}")
    det.load_state_dict(best_state)
    det.eval()
    log("detector", f"kept epoch {best_ep} (val acc {100 * best:.2f})")
    return {"history": hist, "best_epoch": best_ep, "epochs_run": len(hist)}


def conditions():
    return ["none"] + [f"{k}:{s}" for k in ("blur", "noise") for s in data.LEVELS[k]]


def step_evaluate(d, net, det, ck):
    """Per-exit test accuracy of every expert set under every condition, detector
    accuracy per condition, and the offloading summary at p_tar 0.8."""
    x, y = d["test"]
    net.eval()
    det.eval()
    seed = SEEDS["eval_distortion"]
    acc = {e: {} for e in ck["experts"]}
    det_acc, det_conf = {}, {}
    offload = {}
    for cond in conditions():
        kind, sigma = data.parse_distortion(cond)
        xd = data.distort_exact(x, kind, sigma, seed)
        logits = eval_torch.head_logits(net, xd, ck["experts"], ck["mean"], ck["std"])
        for e in ck["experts"]:
            acc[e][cond] = [float((z.argmax(1) == y).mean()) for z in logits[e]]
        modes = ["pristine"] + (["oracle", "auto"] if kind else ["auto"])
        offload[cond] = {}
        dl = eval_torch.detector_logits(det, xd)
        for mode in modes:
            r = eval_torch.evaluate(net, det, ck, x, y, cond, seed, mode, [0.8],
                                    logits=logits, det_logits=dl)
            offload[cond][mode] = dict(r["results"][0], exit_accuracy=r["exit_accuracy"])
            if "detector_accuracy" in r:
                det_acc[cond] = r["detector_accuracy"]
                det_conf[cond] = dict(zip(r["detector_classes"], r["detector_predicted"]))
        line = " | ".join(f"{e} {fmt_acc(acc[e][cond])}" for e in ck["experts"])
        log("evaluate", f"{cond}: {line} | detector {100 * det_acc.get(cond, 0):.2f}")
    b = np.mean([det_acc[f"blur:{s}"] for s in data.LEVELS["blur"]])
    n = np.mean([det_acc[f"noise:{s}"] for s in data.LEVELS["noise"]])
    overall = float((det_acc["none"] + b + n) / 3)
    log("evaluate", f"detector test accuracy {100 * overall:.2f} (pristine "
                    f"{100 * det_acc['none']:.2f}, blur {100 * b:.2f}, noise {100 * n:.2f})")
    return acc, {"overall": overall, "pristine": det_acc["none"], "blur": float(b),
                 "noise": float(n), "per_level": det_acc, "predicted": det_conf}, offload


def build_spec(net, det, ck, name):
    temps = ck["temperatures"]
    E = len(net.exit_blocks)
    return {
        "name": name,
        "input_size": (1, M.IMAGE_SIZE, M.IMAGE_SIZE),
        "mean": [ck["mean"]], "std": [ck["std"]],
        "labels": ck["labels"],
        "experts": ck["experts"],
        "stages": list(net.backbone),
        "exits": [{"stage": b,
                   "heads": {e: net.heads[e].exits[k] for e in ck["experts"]},
                   "temperature": {e: temps[e][k] for e in ck["experts"]}}
                  for k, b in enumerate(net.exit_blocks)],
        "final": {"heads": {e: net.heads[e].final for e in ck["experts"]},
                  "temperature": {e: temps[e][E] for e in ck["experts"]}},
        "cuts": list(net.exit_blocks),
        "detector": {"module": det, "input_size": (det.channels, det.size, det.size),
                     "classes": ck["detector_classes"]},
        "threshold": 0.8,
    }


def step_export(net, det, ck, out_path, name):
    import eex_export
    net = copy.deepcopy(net).to(memory_format=torch.contiguous_format).eval()
    det.eval()
    spec = build_spec(net, det, ck, name)
    s = eex_export.export(net, spec, out_path)
    diffs = eex_export.compare(net, spec, out_path, batch=3, seed=0)
    worst = max(dv / max(1.0, ref) for dv, ref in diffs.values())
    log("export", f"{out_path}: {s['bytes']} bytes, {s['nodes']} nodes, {s['params']} params; "
                  f"inputs {s['inputs']}; max |eexref - torch| (relative) {worst:.2e}")
    if worst > 1e-4:
        raise SystemExit(f"train.py: exported model disagrees with PyTorch ({worst:.2e})")
    return {"bytes": s["bytes"], "nodes": s["nodes"], "params": s["params"],
            "inputs": [[n, list(dims)] for n, dims in s["inputs"]], "outputs": s["outputs"],
            "attach": s["attach"], "final_attach": s["final_attach"], "cuts": s["cuts"],
            "reference_max_rel_diff": worst}


# ----------------------------------------------------------------------------- main

def main(argv=None):
    p = argparse.ArgumentParser(prog="train.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--fast", action="store_true", help="tiny smoke run")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", help="checkpoint dir (default train/out or train/out-fast)")
    p.add_argument("--dataset", default=data.DATA_DIR,
                   help="folder with the four IDX files (default: $FMNIST_DIR or "
                        f"{data.FMNIST_DIR})")
    p.add_argument("--labels", help="class names, one a line (default: the class numbers)")
    p.add_argument("--name", help="the dataset's name: report titles, output names "
                                  "(default: the dataset folder's name)")
    p.add_argument("--augment", default="",
                   help="comma list of training augmentations: hflip (random horizontal "
                        "flip in the joint step); default none")
    p.add_argument("--model", help="the .eex to write (default OUT/NAME-ee.eex)")
    p.add_argument("--json", help="results JSON (default OUT/NAME-ee.json)")
    p.add_argument("--steps", default=",".join(STEPS))
    p.add_argument("--log", help="also write the progress lines to this file")
    p.add_argument("--detector-channels", type=int, choices=(1, 2, 3), default=2,
                   help="the detector's input: 1 = the spectrum only (the paper's input), "
                        "2 = spectrum and image (default), 3 = spectrum, image and the "
                        "image's diagonal residual (backgrounds that are not black)")
    args = p.parse_args(argv)
    if args.log:
        os.makedirs(os.path.dirname(os.path.abspath(args.log)), exist_ok=True)
        sys.stdout = Tee(sys.stdout, open(args.log, "w"))
    augment = [a for a in args.augment.split(",") if a]
    if any(a not in AUGMENTS for a in augment):
        p.error(f"--augment: unknown {[a for a in augment if a not in AUGMENTS]} "
                f"(known: {', '.join(AUGMENTS)})")
    cfg = dict(FAST if args.fast else FULL, det_channels=args.detector_channels,
               augment=augment)
    steps = args.steps.split(",")
    bad = [s for s in steps if s not in STEPS]
    if bad:
        p.error(f"unknown steps {bad}")
    data.DATA_DIR = args.dataset
    name = args.name or os.path.basename(os.path.normpath(args.dataset))
    # Everything of a run goes under its own folder, named after the dataset; the
    # shipped models/ files are written only when --model/--json say so (make train).
    out_dir = args.out or os.path.join(HERE, "out-fast" if args.fast else "out", name)
    model_path = args.model or os.path.join(out_dir, f"{name}-ee.eex")
    json_path = args.json or os.path.join(out_dir, f"{name}-ee.json")
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    global NORM
    mean, std, mean_x, std_x = data.pixel_stats()
    NORM = (mean, std)
    classes = data.num_classes()
    labels = data.read_labels(args.labels, classes)
    d = data.load(seed=SEEDS["split"], subset=cfg["subset"])
    log("data", f"{name} ({args.dataset}): {classes} classes; train {len(d['train'][0])} val "
                f"{len(d['val'][0])} test {len(d['test'][0])}; pixel mean {mean_x:.6f} std "
                f"{std_x:.6f} over the training file (stored: {mean}, {std}); augment: "
                f"{','.join(augment) or 'none'}")
    seed_all(SEEDS["joint"])
    net = M.EarlyExitNet(verbose=True, classes=classes).to(memory_format=torch.channels_last)
    seed_all(SEEDS["detector"])
    det = M.Detector(channels=cfg["det_channels"])
    joint_ck = os.path.join(out_dir, "joint.pt")
    full_ck = os.path.join(out_dir, "model.pt")
    ck = {"experts": list(M.EXPERTS), "mean": mean, "std": std,
          "classes": classes, "labels": labels,
          "detector_classes": data.DETECTOR_CLASSES, "detector_size": det.size,
          "detector_channels": det.channels,
          "temperatures": {}, "seeds": SEEDS, "config": cfg}
    report = {}
    if os.path.exists(full_ck) and steps[0] != "joint":
        old = torch.load(full_ck)
        net.load_state_dict(old["model"])
        # A detector retrained by this run may have a different layout: not loaded then.
        if old.get("detector") and "detector" not in steps:
            det.load_state_dict(old["detector"])
        ck.update({k: old[k] for k in ("temperatures", "report") if k in old})
        report = ck.pop("report", {})
    elif os.path.exists(joint_ck) and steps[0] != "joint":
        net.load_state_dict(torch.load(joint_ck)["model"])
    times = report.setdefault("wall_time_s", {})

    def save():
        torch.save(dict(ck, model=net.state_dict(), detector=det.state_dict(),
                        report=report), full_ck)

    if "joint" in steps:
        t = time.time()
        report["joint"] = {"history": step_joint(cfg, d, net)}
        torch.save({"model": net.state_dict()}, joint_ck)
        times["joint"] = round(time.time() - t, 1)
    net.eval()
    if "temperature" in steps:
        t = time.time()
        temps, info = step_temperature(d, net, "pristine")
        ck["temperatures"]["pristine"] = temps
        report["temperature"] = {"pristine": info}
        times["temperature"] = round(time.time() - t, 1)
        save()
    if "experts" in steps:
        t = time.time()
        clean_tr = pooled_features(net, d["train"][0])
        clean_val = pooled_features(net, d["val"][0])
        report["experts"] = {}
        for kind in ("blur", "noise"):
            te = time.time()
            info, temps = step_expert(cfg, d, net, kind, clean_tr, clean_val)
            ck["temperatures"][kind] = temps
            report["experts"][kind] = info
            times[f"expert_{kind}"] = round(time.time() - te, 1)
        times["experts"] = round(time.time() - t, 1)
        save()
    if "detector" in steps:
        t = time.time()
        report["detector_training"] = step_detector(cfg, d, det)
        times["detector"] = round(time.time() - t, 1)
        save()
    if "evaluate" in steps:
        t = time.time()
        acc, det_res, off = step_evaluate(d, net, det, ck)
        report["test_accuracy"] = acc
        report["detector_test"] = det_res
        report["offload_p0.8"] = off
        times["evaluate"] = round(time.time() - t, 1)
        save()
    if "export" in steps:
        t = time.time()
        os.makedirs(os.path.dirname(model_path), exist_ok=True)
        report["export"] = step_export(net, det, ck, model_path,
                                       os.path.splitext(os.path.basename(model_path))[0])
        # The PyTorch side of the model next to the .eex (train/eval_torch.py and
        # tests/ee/test_eval_vs_torch.py load it): weights, temperatures, no history.
        pt_path = os.path.splitext(model_path)[0] + ".pt"
        torch.save(dict(ck, model=net.state_dict(), detector=det.state_dict()), pt_path)
        report["export"]["checkpoint"] = os.path.relpath(pt_path, ROOT)
        times["export"] = round(time.time() - t, 1)
        save()
    runs = report.setdefault("runs", [])
    runs.append({"command": command_line(), "steps": steps, "threads": args.threads,
                 "git_commit": git_commit(), "seconds": round(time.time() - T0, 1),
                 "cpu": cpu_kind()})
    save()
    times["total_this_run"] = round(time.time() - T0, 1)
    stats = {"name": name, "dir": args.dataset, "labels": labels,
             "labels_file": args.labels, "augment": augment,
             "pixel_mean_measured": round(mean_x, 8), "pixel_std_measured": round(std_x, 8)}
    write_json(json_path, model_path, net, ck, cfg, report, args, stats)
    log("done", f"wrote {json_path}")
    return 0


def cpu_kind():
    """The CPU the run trained on: torch's CPU kernels (its own vectorised ops and
    oneDNN's convolutions) pick their code path by ISA, and the float sums then round
    differently, so a run reproduces a model byte for byte only on a CPU with the
    same vector ISA (models/README.md, "fmnist-ee.eex")."""
    name, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k.strip() == "model name" and name == "unknown":
                    name = v.strip()
                elif k.strip() in ("flags", "Features") and not flags:
                    flags = set(v.split())
    except OSError:
        pass
    isa = [f for f in ("avx512f", "avx2", "fma", "asimd") if f in flags]
    cfg = torch.__config__.show()
    key = "CPU capability usage: "
    cap = cfg.split(key, 1)[1].split()[0] if key in cfg else "unknown"
    return {"model": name, "isa": isa, "torch_capability": cap}


def write_json(path, model_path, net, ck, cfg, report, args, stats):
    E = len(net.exit_blocks)
    names = [f"exit{k + 1}" for k in range(E)] + ["final"]

    def named(v):
        return {n: round(a, 6) for n, a in zip(names, v)}
    acc = report.get("test_accuracy", {})
    out = {
        "model": os.path.relpath(model_path, ROOT),
        "command": command_line(),
        "make_target": "make train-fast" if args.fast else "make train",
        "git_commit": git_commit(),
        "git_uncommitted": git_uncommitted(),
        "runs": report.get("runs"),
        "torch": torch.__version__,
        "threads": args.threads,
        "seeds": SEEDS,
        "config": cfg,
        "dataset": dict(stats, **{
            "validation": "10% of the official train split, seeded permutation "
                          f"(seed {SEEDS['split']})",
            "input.mean": ck["mean"], "input.std": ck["std"],
            "normalisation": "pixels / 255 of the whole training file, mean and std "
                             "rounded to 4 decimals"}),
        "backbone": {"blocks": len(net.backbone), "macs": int(sum(net.block_macs)),
                     "mflops": round(2 * sum(net.block_macs) / 1e6, 3),
                     "block_macs": [int(m) for m in net.block_macs],
                     "block_out_shapes": [list(s) for s in net.block_shapes],
                     "exit_after_block": net.exit_blocks,
                     "cumulative_flops_at_exits": [round(net.cum_flops[b], 4)
                                                   for b in net.exit_blocks]},
        "temperatures": {e: named(t) for e, t in ck["temperatures"].items()},
        "test_accuracy": {e: {c: named(v) for c, v in per.items()} for e, per in acc.items()},
        "test_accuracy_note": "per-exit accuracy of each head set on the whole test split; "
                              "distortions applied with converter/distort.py's exact "
                              f"functions, noise seed {SEEDS['eval_distortion']} + image index",
        "detector_test_accuracy": report.get("detector_test"),
        "detector_note": "overall = mean of the pristine, blur (mean of 5 levels) and noise "
                         "(mean of 5 levels) accuracies on the test split; input = the "
                         "28x28 spectrum (docs/distortions.md), no resize",
        "offload_at_p_tar_0.8": report.get("offload_p0.8"),
        "export": report.get("export"),
        "wall_time_s": report.get("wall_time_s"),
        "training": {k: report[k] for k in ("joint", "temperature", "experts",
                                             "detector_training") if k in report},
    }
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (FileNotFoundError, data.DatasetError) as e:
        # a missing or unusable dataset file: one line (data.py names the package)
        sys.exit(f"train: {e}")
