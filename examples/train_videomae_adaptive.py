"""Adaptive masking in a VideoMAE (v1) or VideoMAEv2 checkout: their model, optimizer factory and
loss scaler, adamask's wrap() and train_one_epoch, a few steps on random clips.

    python examples/train_videomae_adaptive.py /path/to/VideoMAE --steps 5

For real data, run their script through the launcher instead:
    python -m adamask.integrations.videomae --repo /path/to/VideoMAE -- <their args> --mask_type adaptive
"""

import argparse
import importlib
import sys
import types
from functools import partial
from pathlib import Path

import torch
from torch import nn

from adamask.integrations import videomae
from adamask.integrations.compat import install_compat_shims


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("repo", type=Path, help="a VideoMAE or VideoMAEv2 checkout")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--mask-ratio", type=float, default=0.9)
    ap.add_argument("--sampling-weight", type=float, default=1e-4)
    args = ap.parse_args()

    v2 = (args.repo / "models" / "modeling_pretrain.py").is_file()
    install_compat_shims()  # their code on current torch / timm / numpy / torchvision
    sys.path.insert(0, str(args.repo.resolve()))
    modeling = importlib.import_module("models.modeling_pretrain" if v2 else "modeling_pretrain")
    optim_factory = importlib.import_module("optim_factory")
    utils = importlib.import_module("utils")

    torch.manual_seed(0)
    frames = 4 if v2 else 16  # v1's patch embedding assumes 16 frames
    kw = dict(
        img_size=64,
        patch_size=16,
        encoder_embed_dim=96,
        encoder_depth=2,
        encoder_num_heads=3,
        decoder_num_classes=3 * 2 * 16 * 16,
        decoder_embed_dim=64,
        decoder_depth=1,
        decoder_num_heads=2,
        qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
    )
    if v2:
        kw["all_frames"] = frames
    model = modeling.PretrainVisionTransformer(**kw)
    model = videomae.wrap(model, mask_ratio=args.mask_ratio, sampling_weight=args.sampling_weight)
    print(
        f"{'VideoMAEv2' if v2 else 'VideoMAE'}: grid {videomae.model_grid(model)}, "
        f"{sum(p.numel() for p in model.mask_sampler.parameters())} sampler parameters"
    )

    opt_args = types.SimpleNamespace(
        opt="adamw", weight_decay=0.05, lr=1e-3, opt_eps=1e-8, opt_betas=[0.9, 0.95], momentum=0.9
    )
    optimizer = optim_factory.create_optimizer(opt_args, model)
    n = videomae.model_grid(model)
    placeholder = videomae.MaskingGenerator(n, args.mask_ratio, strategy="adaptive", shape="frames" if v2 else "flat")
    loader = []
    for _ in range(args.steps):
        mask = torch.as_tensor(placeholder()).expand(args.batch_size, *placeholder().shape)
        batch = (torch.randn(args.batch_size, 3, frames, 64, 64), mask)
        loader.append(batch + ((1 - mask),) if v2 else batch)
    stats = videomae.train_one_epoch(
        model,
        loader,
        optimizer,
        torch.device("cpu"),
        0,
        utils.NativeScalerWithGradNormCount(),
        patch_size=16,
        start_steps=0,
        print_freq=1,
    )
    print({k: round(v, 5) for k, v in stats.items()})


if __name__ == "__main__":
    main()
