"""`wrap`: a masking strategy inside a VideoMAE / VideoMAEv2 ``PretrainVisionTransformer``, so that
``model(videos)`` samples its own mask. Videos (B, C, T, H, W); masks (B, N) bool, True = masked."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, cast

from torch import Tensor, nn

from ...loss import DEFAULT_SAMPLING_WEIGHT
from ...masking import Masking
from ...validation import check_grid
from ..adapter import (
    SAMPLER_NAME,
    AdaptedModel,
    adapt_model,
    check_bare_model,
    draw_masking,
    make_loss_settings,
    model_pixels,
    strategy_tokens,
)

__all__ = ["wrap", "model_grid"]


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
        """videos (B, C, T, H, W) -> Masking from the strategy on the raw patch embeddings."""
        strategy = getattr(self, SAMPLER_NAME)
        return draw_masking(strategy, strategy_tokens(strategy, lambda: self.encoder.patch_embed(x)))

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


def wrap(
    model: nn.Module,
    *,
    mask_ratio: float = 0.95,
    sampling_weight: float = DEFAULT_SAMPLING_WEIGHT,
    depth: Optional[int] = None,
    num_heads: Optional[int] = None,
    width: Optional[int] = None,
    grid: Optional[Sequence[int]] = None,
    sampler: Optional[nn.Module] = None,
    strategy: str = "adaptive",
    sampling_estimator: str = "paper",
    sampling_baseline: Optional[str] = None,
    sampling_entropy_weight: float = 0.0,
    **sampler_options: Any,
) -> nn.Module:
    """Add a masking strategy to a VideoMAE / VideoMAEv2 ``PretrainVisionTransformer``, in place.

    Call it before the optimizer, DDP and torch.compile. ``strategy`` names any registered strategy
    that draws from the tokens (default ``"adaptive"``, AdaMAE's sampler: ``depth`` blocks (default 1)
    of ``width`` (default the encoder's), ``num_heads`` heads (default the largest count <= 8
    dividing the width); other ``sampler_options`` go to the strategy; options left None are not
    passed). It becomes ``model.mask_sampler``, drawing int(N * (1 - mask_ratio)) visible tokens
    from the encoder's patch embeddings; ``model.loss_settings`` holds lambda (``sampling_weight``),
    ``sampling_estimator``, ``sampling_baseline`` and ``sampling_entropy_weight`` for a learned
    strategy's loss term (a non-learned one adds none). ``no_weight_decay()`` gains the strategy's own
    names and ``model(videos)`` returns ``(pred, masking)``. Existing parameter names are unchanged.
    ``grid`` (T', H', W'), if given, must equal the model's; a ready ``sampler`` must match the model's
    grid and embedding width. Numbers may be numpy numbers. A refused call leaves the model as it was.
    ``model.set_mask_ratio(r)`` changes the strategy's ratio (ratio schedules). Returns the model.
    """
    check_bare_model(model)
    settings = make_loss_settings(sampling_weight, sampling_estimator, sampling_baseline, sampling_entropy_weight)
    mgrid = model_grid(model)
    if grid is not None and check_grid(grid) != mgrid:
        raise ValueError(f"grid {tuple(grid)} does not match the model's token grid {mgrid} (from encoder.patch_embed)")
    encoder = cast(Any, model).encoder  # upstream attributes, untyped
    return adapt_model(
        model,
        _AdaptiveVideoMAE,
        globals(),
        grid=mgrid,
        embed_dim=int(encoder.embed_dim),
        device=encoder.patch_embed.proj.weight.device,
        strategy=strategy,
        mask_ratio=mask_ratio,
        settings=settings,
        sampler=sampler,
        depth=depth,
        num_heads=num_heads,
        width=width,
        **sampler_options,
    )
