#!/usr/bin/python3
"""PyTorch evaluation of the trained early-exit model: the reference the C engine's
`eex eval` is checked against (same options, same JSON keys).

    eval_torch.py [--checkpoint models/fmnist-ee.pt] [--split test|val|train]
                  [--distortion none|blur:S|noise:S] [--seed S]
                  [--expert pristine|oracle|auto|NAME] [--threshold 0.7,0.75,...]
                  [--limit N] [--json] [--cloud-rule paper|final]

Each image i of the split (0-based, after --limit) is distorted with
converter/distort.py's exact functions (noise seed S + i, docs/distortions.md), then
classified by every exit of the chosen expert set. For each threshold p_tar:

  exit rule   confidence = max softmax(logits / T_k) (per-exit temperature); the image
              exits at the FIRST side exit whose confidence > p_tar (strict);
  offload     no side exit fired: the cloud runs the rest and the final classifier;
  answer      --cloud-rule paper (default, as `eex eval`): the final classifier's answer,
              unless its confidence is not > p_tar either, then the most confident
              classifier's answer (the earliest on a tie: branches/exit_rule.c);
              --cloud-rule final: always the final classifier's answer.

Expert modes: pristine (the first set), oracle (the set named after the applied
distortion: none -> pristine), auto (the detector's class on the image's spectrum), or
a set name. Reported: exit_share (share of all images leaving at each side exit),
p_offload, edge_accuracy (among images that exit on the edge), cloud_accuracy (among
offloaded images, with the cloud rule), final_accuracy_offloaded (the final classifier
alone on them), overall_accuracy, exit_accuracy (every exit and the final on all
images), detector_accuracy and the detector's confusion matrix.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data  # noqa: E402

# The checkpoint `make train` publishes next to models/fmnist-ee.eex (train/out/model.pt
# holds the same weights plus the training history).
DEFAULT_CHECKPOINT = os.path.join(os.path.dirname(HERE), "models", "fmnist-ee.pt")
THRESHOLDS = [0.7, 0.75, 0.8, 0.85, 0.9]


# ----------------------------------------------------------------------------- model

def load_checkpoint(path=DEFAULT_CHECKPOINT):
    """-> (EarlyExitNet in eval mode, Detector or None, checkpoint dict). The dict's
    'temperatures' is {expert: [T exit 1, ..., T exit E, T final]}."""
    import torch
    import model as M
    ck = torch.load(path, map_location="cpu")
    net = M.EarlyExitNet(experts=ck["experts"], classes=ck.get("classes", M.NUM_CLASSES))
    net.load_state_dict(ck["model"])
    net.eval()
    det = None
    if ck.get("detector") is not None:
        det = M.Detector(size=ck.get("detector_size", M.IMAGE_SIZE),
                         channels=ck.get("detector_channels", 1))
        det.load_state_dict(ck["detector"])
        det.eval()
    return net, det, ck


def head_logits(net, x_u8, experts, mean, std, batch=1000):
    """Backbone once, every listed expert's heads on it.
    -> {expert: [float32 logits [N, K] per exit ..., final]}."""
    import torch
    out = {e: None for e in experts}
    parts = {e: [] for e in experts}
    with torch.no_grad():
        for s in range(0, len(x_u8), batch):
            x = torch.from_numpy(data.to_float(x_u8[s:s + batch], mean, std))
            x = x.contiguous(memory_format=torch.channels_last)
            feats = net.attach_features(x)
            for e in experts:
                parts[e].append([h(f).numpy() for h, f in
                                 zip(net.heads[e].heads(), feats)])
    for e in experts:
        out[e] = [np.concatenate([p[k] for p in parts[e]]) for k in range(len(parts[e][0]))]
    return out


def detector_logits(det, x_u8, batch=2000):
    import torch
    res = []
    with torch.no_grad():
        for s in range(0, len(x_u8), batch):
            x = data.detector_inputs(x_u8[s:s + batch], det.channels)
            res.append(det(torch.from_numpy(x)).numpy())
    return np.concatenate(res)


def confidences(logits, temperature):
    """float32 calibrated softmax -> (max prob, argmax)."""
    z = logits.astype(np.float32) / np.float32(temperature)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return p.max(axis=1), p.argmax(axis=1)


# ----------------------------------------------------------------------------- policy

def policy(conf, pred, labels, thresholds, cloud_rule="paper"):
    """conf, pred: [E+1, N] (side exits then the final). -> list of result dicts."""
    n_exit = conf.shape[0] - 1
    n = conf.shape[1]
    results = []
    rows = np.arange(n)
    for t in thresholds:
        fired = conf[:n_exit] > np.float32(t)
        any_fired = fired.any(axis=0)
        first = np.where(any_fired, fired.argmax(axis=0), n_exit)
        answer = pred[first, rows]
        off = ~any_fired
        if cloud_rule == "paper":
            # Final not above t either: the most confident classifier, the earliest on
            # a tie: the exit rule of branches/exit_rule.c (eex_exit_choose).
            best = np.zeros(n, dtype=np.int64)
            for k in range(1, n_exit + 1):
                better = conf[k] > conf[best, rows]
                best = np.where(better, k, best)
            weak = off & ~(conf[n_exit] > np.float32(t))
            answer = np.where(weak, pred[best, rows], answer)
        correct = answer == labels
        edge = ~off
        n_off = int(off.sum())
        n_edge = n - n_off
        results.append({
            "threshold": t,
            "exit_share": [float((first == k).sum() / n) for k in range(n_exit)],
            "p_offload": n_off / n,
            "edge_accuracy": float(correct[edge].sum() / n_edge) if n_edge else 0.0,
            "cloud_accuracy": float(correct[off].sum() / n_off) if n_off else 0.0,
            "final_accuracy_offloaded":
                float((pred[n_exit][off] == labels[off]).sum() / n_off) if n_off else 0.0,
            "overall_accuracy": float(correct.sum() / n),
        })
    return results


def evaluate(net, det, ck, x_u8, labels, distortion="none", seed=0, expert="pristine",
             thresholds=THRESHOLDS, cloud_rule="paper", distorted=None, logits=None,
             det_logits=None):
    """The whole evaluation on already-loaded images. To reuse work across expert modes,
    `distorted` may pass the already distorted images, `logits` the head_logits() of
    every expert set on them and `det_logits` the detector's logits."""
    kind, sigma = data.parse_distortion(distortion)
    experts = ck["experts"]
    if distorted is not None:
        xd = distorted
    elif logits is not None and (det_logits is not None or det is None):
        xd = None
    else:
        xd = data.distort_exact(x_u8, kind, sigma, seed)
    n = len(labels)
    true_class = kind or "pristine"
    det_pred = None
    res = {"distortion": distortion, "expert": expert, "seed": seed, "images": n,
           "cloud_rule": cloud_rule}
    classes = ck.get("detector_classes", data.DETECTOR_CLASSES)
    if det is not None:
        if det_logits is None:
            det_logits = detector_logits(det, xd)
        det_pred = det_logits.argmax(axis=1)
        conf_mat = np.zeros((len(classes), len(classes)), dtype=np.int64)
        ti = classes.index(true_class)
        for c in range(len(classes)):
            conf_mat[ti, c] = int((det_pred == c).sum())
        res["detector_accuracy"] = float((det_pred == ti).mean())
        res["detector_classes"] = classes
        res["detector_predicted"] = conf_mat[ti].tolist()
        res["detector_confusion"] = conf_mat.tolist()
    if expert == "auto":
        if det_pred is None:
            raise SystemExit("eval_torch: --expert auto needs a detector")
        per_image = np.array([experts.index(classes[c]) for c in det_pred])
    elif expert == "oracle":
        per_image = np.full(n, experts.index(true_class) if true_class in experts else 0)
    elif expert == "pristine":
        per_image = np.zeros(n, dtype=np.int64)
    elif expert in experts:
        per_image = np.full(n, experts.index(expert))
    else:
        raise SystemExit(f"eval_torch: unknown expert '{expert}' (sets: {experts})")
    used = [experts[i] for i in sorted(set(per_image.tolist()))]
    if logits is None:
        logits = head_logits(net, xd, used, ck["mean"], ck["std"])
    n_heads = len(next(iter(logits.values())))
    conf = np.zeros((n_heads, n), dtype=np.float32)
    pred = np.zeros((n_heads, n), dtype=np.int64)
    for e in used:
        sel = per_image == experts.index(e)
        for k in range(n_heads):
            c, p = confidences(logits[e][k][sel], ck["temperatures"][e][k])
            conf[k, sel] = c
            pred[k, sel] = p
    res["experts_used"] = {e: int((per_image == experts.index(e)).sum()) for e in used}
    res["exits"] = n_heads - 1
    res["exit_accuracy"] = [float((pred[k] == labels).mean()) for k in range(n_heads)]
    res["results"] = policy(conf, pred, labels, thresholds, cloud_rule)
    return res


def load_images(split, limit=None):
    if split == "test":
        x, y = data.load_split("test")
    else:
        d = data.load()
        x, y = d[split]
    if limit:
        x, y = x[:limit], y[:limit]
    return x, y


def print_table(res):
    print(f"eval_torch: {res['images']} images, distortion {res['distortion']}, expert "
          f"{res['expert']}, cloud rule {res['cloud_rule']}")
    if "detector_accuracy" in res:
        pairs = ", ".join(f"{c} {k}" for c, k in zip(res["detector_classes"],
                                                     res["detector_predicted"]))
        print(f"detector: {100 * res['detector_accuracy']:.2f}% right ({pairs})")
    print("accuracy of each exit on all images: " +
          "  ".join(f"{'exit' + str(k + 1) if k < res['exits'] else 'final'} "
                    f"{100 * a:.2f}%" for k, a in enumerate(res["exit_accuracy"])))
    e = res["exits"]
    print(" threshold" + "".join(f"   exit{k + 1}" for k in range(e)) +
          "  P(offload)  edge acc  cloud acc  overall")
    for r in res["results"]:
        print(f"  {r['threshold']:8.3f}" + "".join(f"  {100 * s:5.1f}%" for s in r["exit_share"])
              + f"     {100 * r['p_offload']:5.1f}%    {100 * r['edge_accuracy']:5.1f}%"
              f"     {100 * r['cloud_accuracy']:5.1f}%   {100 * r['overall_accuracy']:5.1f}%")


def main(argv=None):
    p = argparse.ArgumentParser(prog="eval_torch.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    p.add_argument("--split", choices=["test", "val", "train"], default="test")
    p.add_argument("--distortion", default="none", help="none | blur:S | noise:S")
    p.add_argument("--seed", type=int, default=0, help="noise seed S (image i: S + i)")
    p.add_argument("--expert", default="pristine",
                   help="pristine | oracle | auto | an expert set name")
    p.add_argument("--threshold", default=",".join(map(str, THRESHOLDS)),
                   help="comma-separated p_tar values")
    p.add_argument("--limit", type=int, help="first N images only")
    p.add_argument("--cloud-rule", choices=["paper", "final"], default="paper")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--save-images", metavar="FILE.npy",
                   help="also save the distorted uint8 images [N, 28, 28]")
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    data.parse_distortion(args.distortion)   # validate early
    thresholds = [float(t) for t in args.threshold.split(",")]
    t0 = time.time()
    net, det, ck = load_checkpoint(args.checkpoint)
    x, y = load_images(args.split, args.limit)
    kind, sigma = data.parse_distortion(args.distortion)
    xd = data.distort_exact(x, kind, sigma, args.seed)
    if args.save_images:
        np.save(args.save_images, xd)
    res = evaluate(net, det, ck, x, y, args.distortion, args.seed, args.expert,
                   thresholds, args.cloud_rule, distorted=xd)
    res["split"] = args.split
    res["seconds"] = round(time.time() - t0, 3)
    if args.json:
        print(json.dumps(res))
    else:
        print_table(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
