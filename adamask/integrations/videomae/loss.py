"""One pretraining step's losses for a `wrap`-ped VideoMAE model, with the targets built from the mask
the model sampled (their loop builds them from the loader's mask, before calling the model)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Optional, Tuple, cast

import torch
from torch import Tensor, nn

from ...mae import MAEOutput
from ...masking import masking_from_mask
from ...tokens import gather_tokens, normalized_targets, patchify, token_mse
from ..adapter import SAMPLER_NAME, total_loss, unwrap_model

if TYPE_CHECKING:
    from .model import _AdaptiveVideoMAE

__all__ = ["StepLosses", "pretraining_losses", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

StepLosses = MAEOutput  # loss, reconstruction_loss, sampling_loss, pred, target, token_error, masking


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
    base = cast("_AdaptiveVideoMAE", unwrapped)  # adapted by `wrap`
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
