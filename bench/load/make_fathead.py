#!/usr/bin/python3
"""Writes the batching benchmark's weight-bound model: the backbone and side
exits of tests/export's TinyEE (3x28x28, exits after blocks 1, 3 and 4), one
expert, no detector, and a VGG-style final head after the last cut:
avgpool 2x2 -> 128 -> fc 4096 -> ReLU -> fc 4096 -> ReLU -> fc 10, 17.3 M
weights (69 MB, more than this machine's 32 MB L3). Random weights: the
benchmark measures speed, and every cloud answer is still checked bit for
bit against a local resume. One image at a time, those fully-connected layers
read all their weights from memory per image; a batch reads them once.

    make_fathead.py OUT.eex      (skips when OUT is newer than this script)
"""
import modelgen

t, out = modelgen.start(__file__)
nn = t.nn
t.torch.manual_seed(7)
model = t.TinyEE(experts=("pristine",), detector=False)
model.finals = nn.ModuleDict({"pristine": nn.Sequential(
    nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * 32, 4096), nn.ReLU(),
    nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 10))})
model = t.randomise(model, 107)
spec = model.spec(name="tiny-ee-fathead")
t.eex_export.export(model, spec, out)
modelgen.done(t, "make_fathead")
