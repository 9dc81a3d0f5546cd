"""Adaptive masking in an mae_st checkout: their model and their own train_one_epoch, unchanged,
after adamask's wrap(); a few steps on random clips.

    python examples/train_mae_st_adaptive.py /path/to/mae_st --steps 5

For real data, run their script through the launcher instead:
    python -m adamask.integrations.mae_st --repo /path/to/mae_st -- <their args>
"""

import argparse
import importlib
import sys
import types
from pathlib import Path

import torch

from adamask.integrations import mae_st
from adamask.integrations.compat import install_compat_shims


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("repo", type=Path, help="an mae_st checkout (a folder named mae_st)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--mask-ratio", type=float, default=0.9)
    ap.add_argument("--sampling-weight", type=float, default=1e-4)
    args = ap.parse_args()
    repo = args.repo.resolve()
    if repo.name != "mae_st":
        ap.error("the checkout folder must be named mae_st")

    install_compat_shims()  # their code on current torch / timm / numpy / torchvision
    sys.path.insert(0, str(repo.parent))
    models_mae = importlib.import_module("mae_st.models_mae")
    misc = importlib.import_module("mae_st.util.misc")
    engine = importlib.import_module("mae_st.engine_pretrain")

    torch.manual_seed(0)
    model = models_mae.MaskedAutoencoderViT(
        img_size=64,
        patch_size=16,
        embed_dim=96,
        depth=2,
        num_heads=3,
        decoder_embed_dim=64,
        decoder_depth=1,
        decoder_num_heads=2,
        num_frames=8,
        t_patch_size=2,
        pred_t_dim=8,
        norm_pix_loss=True,
    )
    model = mae_st.wrap(model, mask_ratio=args.mask_ratio, sampling_weight=args.sampling_weight)
    groups = misc.add_weight_decay(model, 0.05, skip_list=model.no_weight_decay())
    optimizer = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.95))
    model.register_forward_hook(
        lambda m, a, out: print(f"  L_R {m.adamask_losses[0]:.5f}  L_S {m.adamask_losses[1]:.5f}")
    )
    train_args = types.SimpleNamespace(
        accum_iter=1,
        mask_ratio=args.mask_ratio,
        clip_grad=None,
        lr=1e-3,
        min_lr=0.0,
        warmup_epochs=0,
        epochs=1,
        repeat_aug=1,
        num_checkpoint_del=0,
    )
    loader = [(torch.randn(args.batch_size, 3, 8, 64, 64), torch.zeros(args.batch_size)) for _ in range(args.steps)]
    stats = engine.train_one_epoch(
        model,
        loader,
        optimizer,
        torch.device("cpu"),
        0,
        misc.NativeScalerWithGradNormCount(fp32=True),
        args=train_args,
        fp32=True,
    )
    print({k: round(v, 5) for k, v in stats.items()})


if __name__ == "__main__":
    main()
