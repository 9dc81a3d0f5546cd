"""Earlier home of the integrations' shared pieces, kept so that existing imports work.

They now live in `adamask.integrations.adapter` (strategy, loss terms, model adaptation),
`adamask.integrations.launch` (launcher arguments) and `adamask.integrations.compat` (compatibility
shims); import from there.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, cast

from torch import nn

from ..loss import DEFAULT_SAMPLING_WEIGHT
from ..sampler import AdaptiveTokenSampler, default_num_heads
from ..validation import check_sampling_weight
from .adapter import SAMPLER_NAME, adaptive_subclass, attach_strategy, check_strategy_fits, unwrap_model
from .compat import install_compat_shims, timm_create_model_shim
from .launch import add_sampler_arguments, pop_option, split_launcher_argv
from .videomae.generators import MASK_TYPES

__all__ = [
    "SAMPLER_NAME",
    "DEFAULT_SAMPLING_WEIGHT",
    "MASK_TYPES",
    "build_sampler",
    "check_sampling_weight",
    "check_sampler_grid",
    "attach_sampler",
    "unwrap_model",
    "split_launcher_argv",
    "pop_option",
    "install_compat_shims",
    "add_sampler_arguments",
    "adaptive_subclass",
    "default_num_heads",
    "timm_create_model_shim",
]


def check_sampler_grid(sampler: nn.Module, grid: Sequence[int], what: str = "model") -> None:
    """ValueError unless ``sampler`` scores exactly the tokens of ``grid`` (T', H', W')."""
    check_strategy_fits(sampler, grid, what=what)


def build_sampler(
    embed_dim: int,
    grid: Sequence[int],
    mask_ratio: float,
    *,
    depth: int = 1,
    num_heads: Optional[int] = None,
    width: Optional[int] = None,
    **options: Any,
) -> AdaptiveTokenSampler:
    """An `AdaptiveTokenSampler` for a token grid (T', H', W') of ``embed_dim`` patch embeddings."""
    return AdaptiveTokenSampler(
        embed_dim, num_heads=num_heads, mask_ratio=mask_ratio, depth=depth, grid=grid, width=width, **options
    )


def attach_sampler(model: nn.Module, sampler: nn.Module, sampling_weight: float) -> None:
    """Register ``sampler`` as ``model.mask_sampler`` and store lambda as ``model.sampling_weight``."""
    weight = check_sampling_weight(sampling_weight)
    attach_strategy(model, sampler)
    cast(Any, model).sampling_weight = weight  # a plain attribute nn.Module does not declare
