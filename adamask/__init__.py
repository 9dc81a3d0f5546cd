"""adamask: AdaMAE's adaptive token masking as a drop-in plugin for video masked autoencoders.

Mask convention: (B, N) bool, True = masked; tokens (B, N, D) in (t, h, w) order.

The library is this package's top level (masking contract and registry, strategies, sampler, loss,
token helpers, reference MAE); ``adamask.integrations`` and ``adamask.compare`` build on it.

``import adamask`` is instant: each public name (and each submodule, e.g. ``adamask.masking``) is
imported on first use, so the ``adamask`` command parses its arguments without importing torch.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ._lazy import lazy_attributes

# The comparison app's modules keep their earlier names (adamask.atomic, .data, .figures, .flops, .metrics): those
# modules live in the app, in adamask/compare/old_names/, and are found through this package's search path. The
# core imports none of them.
__path__.append(os.path.join(os.path.dirname(__file__), "compare", "old_names"))

if TYPE_CHECKING:  # the names below, for type checkers and IDEs; at run time `__getattr__` imports them
    from .error_predictor import ErrorPredictor, error_prediction_loss
    from .loss import LossSettings, plackett_luce_log_prob, sampling_loss
    from .mae import MAE_CONFIGS, MAEOutput, MaskedVideoAutoencoder, create_mae
    from .masking import (
        LearnedMaskingStrategy,
        Masking,
        MaskingStrategy,
        StrategyInfo,
        create_masking,
        default_ratio,
        is_learned,
        learned_loss,
        list_maskings,
        masking_from_draw,
        masking_from_mask,
        register_masking,
        strategy_info,
    )
    from .motion import MotionMasking, PixelMotionMasking
    from .running_cell import RunningCellMasking
    from .sampler import AdaptiveTokenSampler, gumbel_topk
    from .schedules import RatioSchedule
    from .strategies import FrameMasking, RandomMasking, TubeMasking
    from .tokens import gather_tokens, normalized_targets, patchify, scatter_masked, token_mse, unpatchify
    from .validation import check_counts

# public name -> the module defining it
_EXPORTS = {
    "loss": ("LossSettings", "plackett_luce_log_prob", "sampling_loss"),
    "mae": ("MAE_CONFIGS", "MAEOutput", "MaskedVideoAutoencoder", "create_mae"),
    "masking": (
        "LearnedMaskingStrategy",
        "Masking",
        "MaskingStrategy",
        "StrategyInfo",
        "create_masking",
        "default_ratio",
        "is_learned",
        "learned_loss",
        "list_maskings",
        "masking_from_draw",
        "masking_from_mask",
        "register_masking",
        "strategy_info",
    ),
    "error_predictor": ("ErrorPredictor", "error_prediction_loss"),
    "motion": ("MotionMasking", "PixelMotionMasking"),
    "running_cell": ("RunningCellMasking",),
    "sampler": ("AdaptiveTokenSampler", "gumbel_topk"),
    "schedules": ("RatioSchedule",),
    "strategies": ("FrameMasking", "RandomMasking", "TubeMasking"),
    "tokens": ("gather_tokens", "normalized_targets", "patchify", "scatter_masked", "token_mse", "unpatchify"),
    "validation": ("check_counts",),
}

__version__ = "0.1.0"

__all__ = [
    "AdaptiveTokenSampler",
    "ErrorPredictor",
    "FrameMasking",
    "LearnedMaskingStrategy",
    "LossSettings",
    "MAEOutput",
    "MAE_CONFIGS",
    "MaskedVideoAutoencoder",
    "Masking",
    "MaskingStrategy",
    "MotionMasking",
    "PixelMotionMasking",
    "RandomMasking",
    "RatioSchedule",
    "RunningCellMasking",
    "StrategyInfo",
    "TubeMasking",
    "check_counts",
    "create_mae",
    "create_masking",
    "default_ratio",
    "error_prediction_loss",
    "gather_tokens",
    "gumbel_topk",
    "is_learned",
    "learned_loss",
    "list_maskings",
    "masking_from_draw",
    "masking_from_mask",
    "normalized_targets",
    "patchify",
    "plackett_luce_log_prob",
    "register_masking",
    "sampling_loss",
    "scatter_masked",
    "strategy_info",
    "token_mse",
    "unpatchify",
]

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _EXPORTS)
