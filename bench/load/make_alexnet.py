#!/usr/bin/python3
"""Writes the batching benchmark's AlexNet-EE: torchvision's AlexNet at 224x224
(5 convolutions, then 9216 -> 4096 -> 4096 -> 1000 fully-connected layers) with
two side exits, after the first and the second max-pool, as BranchyNet's
B-AlexNet places them, one expert, no detector. Cut points after pool 1, pool 2
and pool 5; at the last one the cloud half is the three fully-connected layers:
58.6 M weights (234 MB in float32), far more than this machine's 32 MB L3, read
from memory once per run. A published early-exit backbone whose cloud half is
bound by weight traffic, beside MobileNetV2's, which is bound by arithmetic.

Random weights: the benchmark measures speed, and every cloud answer is still
checked bit for bit against a local resume.

    make_alexnet.py OUT.eex      (skips when OUT is newer than this script)
"""
import modelgen

t, out = modelgen.start(__file__)
nn = t.nn


class AlexNetEE(nn.Module):
    """torchvision.models.alexnet's layers (ReLUs not in place: an exit head reads the
    stage output), exits after features.2 (64x27x27) and features.5 (192x13x13)."""

    def __init__(self, classes=1000):
        super().__init__()
        import torchvision
        base = torchvision.models.alexnet(weights=None)
        for seq in (base.features, base.classifier):
            for i, m in enumerate(seq):
                if isinstance(m, nn.ReLU):
                    seq[i] = nn.ReLU()
        self.features = base.features
        self.exits = nn.ModuleList([nn.ModuleDict({"pristine": t.branch(64, classes)}),
                                    nn.ModuleDict({"pristine": t.branch(192, classes)})])
        # AlexNet's adaptive pool is 6 -> 6 at 224x224, the identity: left out
        self.final = nn.Sequential(nn.Flatten(), base.classifier)


t.torch.manual_seed(8)
model = t.randomise(AlexNetEE(), 108)
spec = {
    "name": "alexnet-ee-224",
    "input_size": (3, 224, 224),
    "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
    "labels": [f"c{i}" for i in range(1000)],
    "experts": ["pristine"],
    "stages": [f"features.{i}" for i in range(len(model.features))],
    "exits": [{"stage": 2, "heads": dict(model.exits[0].items())},
              {"stage": 5, "heads": dict(model.exits[1].items())}],
    "final": {"heads": {"pristine": model.final}},
    "cuts": [2, 5, len(model.features) - 1],
    "threshold": 0.8,
}
t.eex_export.export(model, spec, out)
modelgen.done(t, "make_alexnet")
