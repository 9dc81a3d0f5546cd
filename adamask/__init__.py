"""adamask: AdaMAE's adaptive token masking as a drop-in plugin for video masked autoencoders.

Mask convention: (B, N) bool, True = masked; tokens (B, N, D) in (t, h, w) order.

The library is this package's top level (masking contract and registry, strategies, sampler, loss,
token helpers, reference MAE); ``adamask.integrations`` and ``adamask.compare`` build on it.

``import adamask`` is instant: each public name (and each submodule, e.g. ``adamask.masking``) is
imported on first use, so the ``adamask`` command parses its arguments without importing torch. The
``TYPE_CHECKING`` block below is the export table: type checkers read it, and ``__all__`` and the lazy
imports are derived from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_attributes

if TYPE_CHECKING:
    from .error_predictor import ErrorPredictor as ErrorPredictor
    from .error_predictor import error_prediction_loss as error_prediction_loss
    from .loss import LossSettings as LossSettings
    from .loss import plackett_luce_log_prob as plackett_luce_log_prob
    from .loss import sampling_loss as sampling_loss
    from .mae import MAE_CONFIGS as MAE_CONFIGS
    from .mae import MAEOutput as MAEOutput
    from .mae import MaskedVideoAutoencoder as MaskedVideoAutoencoder
    from .mae import create_mae as create_mae
    from .masking import LearnedMaskingStrategy as LearnedMaskingStrategy
    from .masking import Masking as Masking
    from .masking import MaskingStrategy as MaskingStrategy
    from .masking import check_masking as check_masking
    from .masking import is_learned as is_learned
    from .masking import learned_loss as learned_loss
    from .masking import masking_from_draw as masking_from_draw
    from .masking import masking_from_mask as masking_from_mask
    from .masking import set_validation as set_validation
    from .motion import MotionMasking as MotionMasking
    from .motion import PixelMotionMasking as PixelMotionMasking
    from .registry import StrategyInfo as StrategyInfo
    from .registry import create_masking as create_masking
    from .registry import default_ratio as default_ratio
    from .registry import list_maskings as list_maskings
    from .registry import register_masking as register_masking
    from .registry import strategy_info as strategy_info
    from .running_cell import RunningCellMasking as RunningCellMasking
    from .sampler import AdaptiveTokenSampler as AdaptiveTokenSampler
    from .sampler import gumbel_topk as gumbel_topk
    from .schedules import RatioSchedule as RatioSchedule
    from .strategies import FrameMasking as FrameMasking
    from .strategies import RandomMasking as RandomMasking
    from .strategies import TubeMasking as TubeMasking
    from .tokens import gather_tokens as gather_tokens
    from .tokens import normalized_targets as normalized_targets
    from .tokens import patchify as patchify
    from .tokens import scatter_masked as scatter_masked
    from .tokens import token_mse as token_mse
    from .tokens import unpatchify as unpatchify
    from .validation import check_counts as check_counts

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_attributes(__name__, globals())
