"""The VideoMAE / VideoMAEv2 ``PretrainVisionTransformer`` adapted to sample its own mask: `wrap`, and the
losses of one pretraining step with the targets built from that mask (`pretraining_losses`).

Their loop builds the reconstruction targets from the data loader's mask before calling the model;
the adapted model's ``model(videos)`` draws the mask from the strategy on the encoder's patch
embeddings and returns ``(pred, masking)``, so the targets come from the returned masking instead.
Videos (B, C, T, H, W), ImageNet-normalised; tokens in (t, h, w) order; masks (B, N) bool, True = masked.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional, Tuple, cast

import torch
from torch import Tensor, nn

from ...mae import MAEOutput
from ...masking import Masking, masking_from_mask
from ...tokens import gather_tokens, normalized_targets, patchify, token_mse
from ...validation import check_tubelet
from ..adapter import (
    SAMPLER_NAME,
    AdaptedModel,
    Target,
    define_wrap,
    draw_masking,
    model_pixels,
    strategy_input,
    total_loss,
    unwrap_model,
)

__all__ = ["wrap", "model_grid", "StepLosses", "pretraining_losses", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

StepLosses = MAEOutput  # loss, reconstruction_loss, sampling_loss, pred, target, token_error, masking


def model_grid(model: nn.Module) -> Tuple[int, int, int]:
    """(T', H', W') of a ``PretrainVisionTransformer`` from its ``encoder.patch_embed``."""
    pe = getattr(getattr(model, "encoder", None), "patch_embed", None)
    if pe is None or not all(hasattr(pe, a) for a in ("num_patches", "img_size", "patch_size")):
        raise TypeError(
            f"model must be a VideoMAE PretrainVisionTransformer (with .encoder.patch_embed having "
            f"num_patches, img_size, patch_size), got {type(model).__name__}"
        )
    img = pe.img_size if isinstance(pe.img_size, (tuple, list)) else (pe.img_size,) * 2
    ps = pe.patch_size if isinstance(pe.patch_size, (tuple, list)) else (pe.patch_size,) * 2
    h, w = int(img[0]) // int(ps[0]), int(img[1]) // int(ps[1])
    if int(pe.num_patches) % (h * w):
        raise ValueError(f"patch_embed.num_patches={pe.num_patches} is not a multiple of H'*W'={h * w}")
    return (int(pe.num_patches) // (h * w), h, w)


class _AdaptiveVideoMAE(AdaptedModel):
    """Mixed into the model's class by `wrap`; see `wrap`."""

    encoder: Any  # the upstream model's encoder (its patch_embed, embed_dim)

    def sample_mask(self, x: Tensor) -> Masking:
        """videos (B, C, T, H, W) -> Masking from the strategy on the raw patch embeddings (or on the
        videos themselves, for a strategy that draws from the clip)."""
        strategy = getattr(self, SAMPLER_NAME)
        drawn_from = strategy_input(strategy, lambda: self.encoder.patch_embed(x), lambda: x)
        return draw_masking(strategy, drawn_from, int(self.encoder.patch_embed.num_patches))

    def model_videos(self, x: object) -> Tensor:
        """videos (B, C, T, H, W) as the model computes with them: float pixels cast to the patch
        embedding's dtype, integer pixels and an empty batch refused (see `adapter.model_pixels`)."""
        return model_pixels(x, "videos", "(B, C, T, H, W)", self.encoder.patch_embed.proj.weight.dtype)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None, decode_mask: Optional[Tensor] = None) -> Any:
        """``model(videos)`` -> (pred (B, N_m or N_d, P), Masking). ``decode_mask`` (v2, (B, N) bool, True =
        not reconstructed) is passed on. An explicit ``mask`` runs the original model (eval only).
        Float videos of another dtype are cast to the model's; integer videos raise TypeError."""
        x = self.model_videos(x)
        if mask is not None:
            if self.training:
                raise ValueError(
                    "this model samples its own mask: call model(videos) and build the targets from "
                    "the returned masking (adamask.integrations.videomae.train_one_epoch does); an "
                    "explicit mask is only accepted in eval mode"
                )
            return super().forward(x, mask) if decode_mask is None else super().forward(x, mask, decode_mask)
        masking = self.sample_mask(x)
        if decode_mask is None:
            return super().forward(x, masking.mask), masking
        return super().forward(x, masking.mask, decode_mask), masking


def _patch_embed(model: nn.Module) -> Any:
    """The encoder's patch embedding (an upstream attribute, untyped)."""
    return cast(Any, model).encoder.patch_embed


wrap = define_wrap(
    Target(
        model="a VideoMAE / VideoMAEv2 ``PretrainVisionTransformer``",
        mixin=_AdaptiveVideoMAE,
        mask_ratio=0.95,
        grid=model_grid,
        embed_dim=lambda model: int(cast(Any, model).encoder.embed_dim),
        tubelet=lambda model: check_tubelet(_patch_embed(model).proj.kernel_size, "patch_embed.proj.kernel_size"),
        device=lambda model: _patch_embed(model).proj.weight.device,
        usage=(
            "``model(videos)`` then samples its own mask from the encoder's patch embeddings and returns\n"
            "``(pred, masking)``; `pretraining_losses` and `train_one_epoch` build the targets from that\n"
            "masking. ``model.set_mask_ratio(r)`` changes the strategy's ratio (ratio schedules)."
        ),
    )
)


def _pixel_targets(videos: Tensor, tubelet: Tuple[int, int, int], normlize_target: bool) -> Tensor:
    """ImageNet-normalised videos (B, C, T, H, W) -> targets (B, N, P) float32 of every token."""
    with torch.no_grad():
        mean = videos.new_tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, -1, 1, 1, 1)
        std = videos.new_tensor(IMAGENET_STD, dtype=torch.float32).view(1, -1, 1, 1, 1)
        pixels = videos.float() * std + mean
        return normalized_targets(pixels, tubelet) if normlize_target else patchify(pixels, tubelet)


def pretraining_losses(
    model: nn.Module,
    videos: Tensor,
    decode_mask: Optional[Tensor] = None,
    *,
    patch_size: int = 16,
    normlize_target: bool = True,
    num_decoded: Optional[int] = None,
) -> MAEOutput:
    """One forward of a wrapped model (bare, DDP or compiled) with targets from the sampled mask.

    videos: (B, C, T, H, W), ImageNet-normalised. Targets: un-normalised pixels split into
    tubelet x patch_size^2 patches, normalised per patch and channel if ``normlize_target``.
    decode_mask (v2): (B, N) bool, True = not reconstructed; the loss is the mean error of the
    tokens both decoded and masked (masked, not reshaped); ``num_decoded`` = N - True count per
    row (computed from row 0 if not given).
    Returns `StepLosses` (= `adamask.MAEOutput`): ``loss = reconstruction_loss + weight *
    sampling_loss`` with the model's ``loss_settings`` (sampling_loss None for a non-learned
    strategy); pred, target (B, K, P) for the K reconstructed tokens; token_error (B, K) without a
    decoder mask, else (B, N), zero where the loss does not look. With a decoder mask, ``masking.error_mask``
    marks the tokens both masked and reconstructed (the only errors a learned strategy's loss term
    uses) and ``decoder_masking`` is the decoder's `Masking` (True = not reconstructed).
    videos of another float dtype are cast to the model's; integer videos raise TypeError.
    """
    unwrapped = unwrap_model(model)
    decoder_masking = None
    if getattr(unwrapped, SAMPLER_NAME, None) is None or not hasattr(unwrapped, "loss_settings"):
        raise TypeError("model has no mask_sampler: adapt it with adamask.integrations.videomae.wrap(model) first")
    base = cast(_AdaptiveVideoMAE, unwrapped)  # adapted by `wrap`
    videos = base.model_videos(videos)
    tubelet = (int(getattr(base.encoder.patch_embed, "tubelet_size", 2)), int(patch_size), int(patch_size))
    targets = _pixel_targets(videos, tubelet, normlize_target)
    if decode_mask is None:
        pred, masking = model(videos)
        target = gather_tokens(targets, masking.masked_idx)
        token_error = token_mse(pred, target)
        rec = token_error.mean()
    else:
        if decode_mask.dtype != torch.bool or decode_mask.shape != targets.shape[:2]:
            raise ValueError(
                f"decode_mask must be a (B, N) = {tuple(targets.shape[:2])} bool tensor (True = not "
                f"reconstructed), got {decode_mask.dtype} {tuple(decode_mask.shape)}"
            )
        if num_decoded is None:
            num_decoded = int((~decode_mask[0]).sum())
        decoder_masking = masking_from_mask(decode_mask, num_decoded)
        decoded = decoder_masking.visible_idx  # (B, N_d) ascending
        pred, masking = model(videos, None, decode_mask)
        target = gather_tokens(targets, decoded)
        scored = masking.mask.gather(1, decoded)  # masked by the encoder and reconstructed
        err = torch.where(scored, token_mse(pred, target), pred.new_zeros((), dtype=torch.float32))
        rec = err.sum() / scored.sum().clamp_min(1)
        token_error = err.new_zeros(masking.mask.shape).scatter(1, decoded, err)
        # a learned strategy's loss term sees only the errors that exist: masked and reconstructed
        masking = replace(masking, error_mask=masking.mask & ~decode_mask)
    loss, term = total_loss(rec, getattr(base, SAMPLER_NAME), masking, token_error, base.loss_settings)
    return MAEOutput(loss, rec, term, pred, target, token_error, masking, decoder_masking)
