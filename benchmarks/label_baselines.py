"""How learnable the embedded data's probe labels are without any pretraining: k-NN and linear probes on the raw
pixels, on the pixels with the static background subtracted and on the untrained encoder's mean-pooled
features, for the digit and the direction label, on the probe clips of a comparison run's configuration.

    python benchmarks/label_baselines.py                       # the default run's data (256 + 256 probe clips)
    python benchmarks/label_baselines.py --sprite-size 12 --background-contrast 0

A label no probe of the raw pixels can read is a label no encoder can be ranked on. Prints one table; the
untrained encoder is averaged over ``--seeds`` initialisations.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Dict, List

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adamask.compare.config import PROBE_LABELS, CompareConfig, StrategySpec  # noqa: E402
from adamask.compare.data import ClipSet, SyntheticDigitClips, embedded_options  # noqa: E402
from adamask.compare.evaluate import clip_features, knn_probe, linear_probe  # noqa: E402
from adamask.compare.model import build_model  # noqa: E402


def probe_clips(cfg: CompareConfig, label: str) -> Dict[str, ClipSet]:
    """The run's probe clips (after its training and held-out clips), labelled by ``label``."""
    kw = embedded_options(cfg)
    first = cfg.train_clips + cfg.test_clips
    train = SyntheticDigitClips(cfg.probe_train_clips, offset=first, **kw)
    test = SyntheticDigitClips(cfg.probe_test_clips, offset=first + cfg.probe_train_clips, **kw)
    return dict(train=train.clipset(label), test=test.clipset(label))


def backgrounds(cfg: CompareConfig, offset: int, num: int) -> torch.Tensor:
    """The static backgrounds (M, 3, T, H, W) of ``num`` probe clips from ``offset``."""
    ds = SyntheticDigitClips(num, offset=offset, **embedded_options(cfg))
    return torch.stack([ds.sample(i)["background"] for i in range(num)])


def accuracies(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor) -> List[float]:
    return [knn_probe(train_x, train_y, test_x, test_y, k=10), linear_probe(train_x, train_y, test_x, test_y)]


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sprite-size", type=int, default=None)
    p.add_argument("--background-contrast", type=float, default=0.3)
    p.add_argument("--img-size", type=int, default=32)
    p.add_argument("--num-frames", type=int, default=16)
    p.add_argument("--size", default="tiny")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--clips", type=int, default=256, help="probe clips to fit on, and to score on")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    cfg = CompareConfig(
        sprite_size=args.sprite_size,
        background_contrast=args.background_contrast,
        img_size=args.img_size,
        num_frames=args.num_frames,
        size=args.size,
        probe_train_clips=args.clips,
        probe_test_clips=args.clips,
    )
    first = cfg.train_clips + cfg.test_clips
    bg = dict(
        train=backgrounds(cfg, first, cfg.probe_train_clips),
        test=backgrounds(cfg, first + cfg.probe_train_clips, cfg.probe_test_clips),
    )
    print(f"data: {embedded_options(cfg)}; {args.clips} + {args.clips} probe clips")
    print(
        "| label | chance | raw pixels k-NN | raw pixels linear | minus background k-NN | minus background linear "
        "| untrained encoder k-NN | untrained encoder linear |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label in PROBE_LABELS:
        t0 = time.perf_counter()
        clips = probe_clips(cfg, label)
        tr, te = clips["train"], clips["test"]
        chance = float(torch.bincount(te.labels).max()) / len(te)
        raw = accuracies(tr.videos.flatten(1), tr.labels, te.videos.flatten(1), te.labels)
        fg = accuracies((tr.videos - bg["train"]).flatten(1), tr.labels, (te.videos - bg["test"]).flatten(1), te.labels)
        enc = torch.zeros(2)
        for seed in range(args.seeds):
            model = build_model(cfg.model_config(), StrategySpec("random", 0.9), seed=seed)
            ftr, fte = (clip_features(model, c, torch.device("cpu")) for c in (tr, te))
            enc += torch.tensor(accuracies(ftr, tr.labels, fte, te.labels)) / args.seeds
        cells = [f"{v:.3f}" for v in (chance, *raw, *fg, *enc.tolist())]
        print(f"| {label} | " + " | ".join(cells) + f" |  ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
