"""Checks shared by the VideoMAE (v1) and VideoMAEv2 checkout tests, on a tiny upstream model."""

from __future__ import annotations

import json
import math
import os
import types
from functools import partial
from pathlib import Path
from typing import Any, Dict

import torch
from einops import rearrange
from torch import nn

from adamask.integrations import videomae as vm

MEAN = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1, 1)
STD = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1, 1)
PATCH = 8


def tiny_model(modeling_pretrain: types.ModuleType, version: str) -> nn.Module:
    """Their PretrainVisionTransformer, tiny: 32x32 pixels, patch 8, tubelet 2; v1's patch
    embedding assumes 16 frames (grid 8x4x4), v2 is given 4 frames (grid 2x4x4)."""
    kw = dict(
        img_size=32,
        patch_size=PATCH,
        encoder_embed_dim=32,
        encoder_depth=1,
        encoder_num_heads=2,
        decoder_num_classes=3 * 2 * PATCH * PATCH,
        decoder_embed_dim=16,
        decoder_depth=1,
        decoder_num_heads=2,
        qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
    )
    if version == "v2":
        kw["all_frames"] = 4
    return modeling_pretrain.PretrainVisionTransformer(**kw)


def frames(version: str) -> int:
    return 16 if version == "v1" else 4


def upstream_labels(videos: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Their target recipe, applied to a given (B, N) bool mask: un-normalise, per-tubelet per-channel
    normalisation, the masked tokens by boolean indexing."""
    x = videos * STD + MEAN
    x = rearrange(x, "b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2) c", p0=2, p1=PATCH, p2=PATCH)
    x = (x - x.mean(dim=-2, keepdim=True)) / (x.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6)
    x = rearrange(x, "b n p c -> b n (p c)")
    return x[mask].reshape(x.shape[0], -1, x.shape[-1])


def check_targets_from_sampled_mask(model: nn.Module) -> Dict[str, float]:
    """The encoder sees exactly the sampled mask and the targets are built from it."""
    seen = {}
    handle = model.encoder.register_forward_pre_hook(lambda m, args: seen.__setitem__("mask", args[1]))
    videos = torch.randn(2, 3, vm.model_grid(model)[0] * 2, 32, 32)
    out = vm.pretraining_losses(model, videos, patch_size=PATCH)
    handle.remove()
    assert torch.equal(seen["mask"], out.masking.mask)
    assert torch.allclose(out.target, upstream_labels(videos, out.masking.mask), atol=1e-5)
    assert out.pred.shape == out.target.shape
    assert torch.allclose(out.reconstruction_loss, ((out.pred - out.target) ** 2).mean())
    assert torch.allclose(out.loss, out.reconstruction_loss + model.sampling_weight * out.sampling_loss)
    assert out.masking.probs.dtype == torch.float32
    assert out.sampling_loss.item() != 0.0 and math.isfinite(out.sampling_loss.item())
    return dict(loss=out.loss.item(), rec=out.reconstruction_loss.item(), samp=out.sampling_loss.item())


def check_video_strategy_draws_from_the_videos(model: nn.Module) -> None:
    """A model wrapped with ``motion_pixels``: built with the model's tubelet, it draws the mask from the
    videos the step is given (the same draw as the strategy's own on them, from the same seed), the
    encoder sees that mask and the targets are built from it; no loss term."""
    assert model.mask_sampler.tubelet == (2, PATCH, PATCH)
    seen = {}
    handle = model.encoder.register_forward_pre_hook(lambda m, args: seen.__setitem__("mask", args[1]))
    videos = torch.randn(2, 3, vm.model_grid(model)[0] * 2, 32, 32)
    torch.manual_seed(3)
    out = vm.pretraining_losses(model, videos, patch_size=PATCH)
    handle.remove()
    torch.manual_seed(3)
    want = model.mask_sampler(videos)
    assert torch.equal(out.masking.mask, want.mask) and torch.equal(seen["mask"], want.mask)
    assert torch.allclose(out.target, upstream_labels(videos, want.mask), atol=1e-5)
    assert out.sampling_loss is None and torch.equal(out.loss, out.reconstruction_loss)


def snapshot(model: nn.Module) -> Dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def changed(before: Dict[str, torch.Tensor], model: nn.Module, prefix: str, exclude: str = "") -> int:
    return sum(
        1
        for n, p in model.named_parameters()
        if n.startswith(prefix)
        and (not exclude or not n.startswith(exclude))
        and not torch.equal(before[n], p.detach())
    )


def optimizer_args() -> types.SimpleNamespace:
    """The arguments their ``optim_factory.create_optimizer`` reads."""
    return types.SimpleNamespace(opt="adamw", weight_decay=0.05, lr=1e-3, opt_eps=1e-8, opt_betas=None, momentum=0.9)


def optimizer_for(optim_factory: types.ModuleType, model: nn.Module) -> torch.optim.Optimizer:
    opt = optim_factory.create_optimizer(optimizer_args(), model)
    pos = model.mask_sampler.pos_embed
    groups = [g for g in opt.param_groups if any(p is pos for p in g["params"])]
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.0, "sampler pos_embed must not be decayed"
    return opt


def check_launcher_run(result: Any, out: Path, checkpoint: str, test: str) -> Dict[str, Any]:
    """A launcher run finished, logged both loss terms as finite numbers and saved the sampler in
    ``out/checkpoint``; returns the last log record (also appended to ADAMASK_CHECKOUT_LOG)."""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    log = json.loads((out / "log.txt").read_text().splitlines()[-1])
    assert math.isfinite(log["train_loss_rec"]) and math.isfinite(log["train_loss_sampling"])
    state = torch.load(out / checkpoint, map_location="cpu", weights_only=False)["model"]
    assert any(k.startswith("mask_sampler.") for k in state)
    write_log(os.environ.get("ADAMASK_CHECKOUT_LOG"), dict(test=test, log=log))
    return log


def write_log(path: Path, record: Dict[str, Any]) -> None:
    """Append the figures of a checkout run to ADAMASK_CHECKOUT_LOG, if set."""
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
