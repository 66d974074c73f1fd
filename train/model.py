"""The early-exit model for Fashion-MNIST and the distortion detector.

EarlyExitNet
  backbone   MobileNetV2-style for 1 x 28 x 28: a 3x3 stem, inverted residual blocks
             (1x1 expand, depthwise 3x3, 1x1 linear projection; BatchNorm, ReLU6,
             residual add when stride 1 and channels match), a 1x1 "last conv".
             `backbone` is a flat nn.ModuleList of whole blocks; nothing is removed
             from it to attach an exit (the authors' code dropped the block at each
             branch position; we do not).
  exits      3 side exits after the blocks where the cumulative backbone FLOPs first
             reach 25%, 50%, 75% of the backbone total (counted per block by
             `count_block_flops`). An exit reads the OUTPUT of its block, which is the
             single tensor the rest of the backbone needs, so each attach point is also
             a valid edge/cloud cut.
  heads      per expert set ("pristine", "blur", "noise"): 3 exit heads
             AdaptiveAvgPool2d(2) -> flatten -> Linear(4C -> 10), as in the paper, and
             its own final classifier (global average pool -> dropout -> Linear), as
             MobileNetV2's classifier. The backbone is shared.

Detector   distortion classifier (pristine / blur / noise) on the spectrum image and,
           as a second channel, the image itself (docs/distortions.md). Not
           CollabAR's layout, and not only its input: see the class.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_CLASSES = 10
EXPERTS = ["pristine", "blur", "noise"]
IMAGE_SIZE = 28

# (expansion t, out channels c, repeats n, first stride s), as MobileNetV2's table.
# Sized so the backbone is ~4.4 M MACs (~8.9 MFLOPs) per 28x28 image: one training
# epoch of 54k images takes about a minute on one core (channels_last).
CONFIG = [
    (1, 12, 1, 1),    # 14x14 (the stem has stride 2)
    (4, 16, 2, 1),    # 14x14
    (4, 24, 2, 2),    # 7x7
    (6, 48, 3, 2),    # 4x4
    (6, 64, 2, 1),    # 4x4
]
STEM_CHANNELS = 12
LAST_CHANNELS = 256


def conv_bn(cin, cout, k, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        layers = []
        if t != 1:
            layers.append(conv_bn(cin, hidden, 1))
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden),
                   conv_bn(hidden, cout, 1, act=False)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.conv(x)
        return x + y if self.residual else y


class ExitHead(nn.Module):
    """AdaptiveAvgPool2d(2) -> flatten -> Linear(4C -> classes)."""

    def __init__(self, channels, classes=NUM_CLASSES):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(4 * channels, classes)

    def features(self, x):
        return torch.flatten(self.pool(x), 1)

    def classify(self, f):
        return self.fc(f)

    def forward(self, x):
        return self.fc(self.features(x))


class FinalClassifier(nn.Module):
    """Global average pool -> dropout(0.2) -> Linear(C -> classes)."""

    def __init__(self, channels, classes=NUM_CLASSES, dropout=0.2):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, classes)

    def features(self, x):
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def classify(self, f):
        return self.fc(self.drop(f))

    def forward(self, x):
        return self.classify(self.features(x))


class HeadSet(nn.Module):
    """One expert set: the side-exit heads and the final classifier."""

    def __init__(self, exit_channels, final_channels, classes=NUM_CLASSES):
        super().__init__()
        self.exits = nn.ModuleList([ExitHead(c, classes) for c in exit_channels])
        self.final = FinalClassifier(final_channels, classes)

    def heads(self):
        return list(self.exits) + [self.final]


def build_backbone():
    blocks = [conv_bn(1, STEM_CHANNELS, 3, stride=2)]
    cin = STEM_CHANNELS
    for t, c, n, s in CONFIG:
        for i in range(n):
            blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    blocks.append(conv_bn(cin, LAST_CHANNELS, 1))
    return nn.ModuleList(blocks)


def count_block_flops(backbone, size=IMAGE_SIZE):
    """Per-block multiply-accumulates of conv layers for one 1 x size x size image
    (BN, activations and adds are not counted). Returns (macs per block, output shape
    per block). FLOPs = 2 x MACs."""
    macs, shapes = [], []
    cur = {"m": 0}

    def hook(mod, inp, out):
        k = mod.kernel_size[0] * mod.kernel_size[1]
        cur["m"] += out.numel() * (mod.in_channels // mod.groups) * k

    hs = [m.register_forward_hook(hook) for m in backbone.modules()
          if isinstance(m, nn.Conv2d)]
    was = backbone.training
    backbone.eval()
    x = torch.zeros(1, 1, size, size)
    with torch.no_grad():
        for b in backbone:
            cur["m"] = 0
            x = b(x)
            macs.append(cur["m"])
            shapes.append(tuple(x.shape[1:]))
    for h in hs:
        h.remove()
    backbone.train(was)
    return macs, shapes


def place_exits(macs, fractions=(0.25, 0.5, 0.75)):
    """Index of the block after which each exit attaches: the first block where the
    cumulative backbone FLOPs reach the fraction of the total."""
    total = float(sum(macs))
    cum, acc = [], 0
    for m in macs:
        acc += m
        cum.append(acc / total)
    places = []
    for f in fractions:
        i = next(i for i, c in enumerate(cum) if c >= f - 1e-12)
        if places and i <= places[-1]:
            raise ValueError(f"exit at {f:.0%} falls on the same block as the previous")
        if i == len(macs) - 1:
            raise ValueError(f"exit at {f:.0%} falls on the last block")
        places.append(i)
    return places, cum


class EarlyExitNet(nn.Module):
    def __init__(self, experts=EXPERTS, verbose=False, classes=NUM_CLASSES):
        super().__init__()
        self.classes = classes
        self.backbone = build_backbone()
        self.block_macs, self.block_shapes = count_block_flops(self.backbone)
        self.exit_blocks, self.cum_flops = place_exits(self.block_macs)
        exit_ch = [self.block_shapes[i][0] for i in self.exit_blocks]
        final_ch = self.block_shapes[-1][0]
        self.experts = list(experts)
        self.heads = nn.ModuleDict({e: HeadSet(exit_ch, final_ch, classes) for e in self.experts})
        if verbose:
            print(self.describe(), flush=True)

    def describe(self):
        total = sum(self.block_macs)
        lines = [f"backbone: {len(self.backbone)} blocks, {total / 1e6:.2f} M MACs "
                 f"({2 * total / 1e6:.2f} MFLOPs) per image"]
        for i, (m, s, c) in enumerate(zip(self.block_macs, self.block_shapes,
                                          self.cum_flops)):
            mark = ""
            if i in self.exit_blocks:
                mark = f"  <- exit {self.exit_blocks.index(i) + 1}"
            lines.append(f"  block {i:2d} out {str(list(s)):14s} {m / 1e6:6.3f} M MACs  "
                         f"cumulative {100 * c:5.1f}%{mark}")
        return "\n".join(lines)

    def attach_features(self, x):
        """Backbone pass -> [exit 1 attach, ..., exit E attach, final attach]."""
        feats = []
        for i, b in enumerate(self.backbone):
            x = b(x)
            if i in self.exit_blocks:
                feats.append(x)
        feats.append(x)
        return feats

    def forward(self, x, expert="pristine"):
        """-> list of logits [exit 1, ..., exit E, final] of one expert set."""
        feats = self.attach_features(x)
        return [h(f) for h, f in zip(self.heads[expert].heads(), feats)]

    def pooled_features(self, x):
        """The inputs of every head's Linear, [exit 1, ..., exit E, final]: heads are
        pool -> Linear, so a frozen backbone lets experts train on these alone."""
        feats = self.attach_features(x)
        hs = self.heads[self.experts[0]].heads()
        return [h.features(f) for h, f in zip(hs, feats)]


class Detector(nn.Module):
    """Distortion classifier -> 3 logits (pristine, blur, noise) on a channels x H x W
    input: channel 0 the spectrum image, channel 1 (channels = 2, the default) the
    grayscale image / 255 (docs/distortions.md, "Detector input").

    Five 3x3 conv + BatchNorm + ReLU layers, widths w, 2w, 2w, 4w, 4w, strides
    1, 2, 1, 2, 1 (28 -> 14 -> 7), then Flatten -> Linear. With w = 8: 1.4 M MACs per
    input (the backbone is 4.4 M), 22 k parameters.

    Why the image channel: on the spectrum alone (channels = 1, the paper's input) no
    network we trained got past about 93% on the 3-class test, because light noise
    (sigma 5, 10) hardly moves the magnitude spectrum of a 28x28 garment, while in the
    pixels it is plain: clean Fashion-MNIST backgrounds are exactly 0. With both
    channels the same network reaches 99.9% (docs/distortions.md, "The detector").

    Why not CollabAR's layout (Conv 1->32 s2, Conv 32->16, MaxPool, Conv 16->1, MaxPool,
    FC): blur is easy for any layout, but telling clean images from light noise
    (sigma 5, 10) depends on faint changes of the high-frequency bins, and that layout
    starts with a stride-2 conv and squeezes everything through one channel (85% test
    accuracy on the spectrum alone; this one: 92%). A stride-2 first conv cost about 1
    point of validation accuracy in our runs; widths up to 32 (4-5x the MACs) gained at
    most 0.5. Flatten keeps where in the spectrum a feature is, i.e. its frequency.
    BatchNorm is folded into the convs at export."""

    def __init__(self, size=IMAGE_SIZE, classes=3, width=8, channels=2):
        super().__init__()
        w = width
        self.channels = channels

        def cbr(cin, cout, stride):
            return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                    nn.ReLU()]
        self.features = nn.Sequential(
            *cbr(channels, w, 1), *cbr(w, 2 * w, 2), *cbr(2 * w, 2 * w, 1),
            *cbr(2 * w, 4 * w, 2), *cbr(4 * w, 4 * w, 1), nn.Flatten())
        with torch.no_grad():
            n = self.features(torch.zeros(1, channels, size, size)).shape[1]
        self.size = size
        self.fc = nn.Linear(n, classes)

    def forward(self, x):
        return self.fc(self.features(x))
