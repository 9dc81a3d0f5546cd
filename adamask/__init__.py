"""adamask: AdaMAE's adaptive token masking as a drop-in plugin for video masked autoencoders.

Mask convention: (B, N) bool, True = masked; tokens (B, N, D) in (t, h, w) order.
"""
from .loss import plackett_luce_log_prob, sampling_loss
from .masking import Masking, MaskingStrategy, create_masking, default_ratio, list_maskings, register_masking
from .mae import MAE_CONFIGS, MAEOutput, MaskedVideoAutoencoder, create_mae
from .patches import normalized_targets, patchify, token_mse, unpatchify
from .sampler import AdaptiveTokenSampler, gumbel_topk
from .strategies import FrameMasking, RandomMasking, TubeMasking

__version__ = "0.1.0"

__all__ = [
    "AdaptiveTokenSampler",
    "FrameMasking",
    "MAEOutput",
    "MAE_CONFIGS",
    "MaskedVideoAutoencoder",
    "Masking",
    "MaskingStrategy",
    "RandomMasking",
    "TubeMasking",
    "create_mae",
    "create_masking",
    "default_ratio",
    "gumbel_topk",
    "list_maskings",
    "normalized_targets",
    "patchify",
    "plackett_luce_log_prob",
    "register_masking",
    "sampling_loss",
    "token_mse",
    "unpatchify",
]
