"""Argument checks shared by the whole package: one place for every "must be a positive int" rule.

Each check returns the normalised value (plain Python ``int`` / ``float`` / tuple) or raises a
``TypeError`` (wrong kind of value) / ``ValueError`` (right kind, wrong value) whose message names the
argument, what is allowed and what was given. None of them reads tensor data (no host sync).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Collection, Sequence, Tuple, TypeVar

from torch import Tensor

Grid = Tuple[int, int, int]
T = TypeVar("T")

__all__ = [
    "Grid",
    "check_positive_int",
    "check_grid",
    "check_tubelet",
    "check_mask_ratio",
    "check_counts",
    "check_tokens",
    "check_batch_size",
    "check_sampling_weight",
    "check_choice",
    "visible_count",
]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive_int(value: Any, name: str) -> int:
    """``value`` must be an integer >= 1 (Python or numpy int; not bool)."""
    if not _is_int(value) or int(value) < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def check_grid(grid: Sequence[int], name: str = "grid") -> Grid:
    """A token grid (T', H', W'): a sequence of three positive ints."""
    if isinstance(grid, (str, bytes)) or not isinstance(grid, Sequence) or len(grid) != 3:
        raise TypeError(f"{name} must be a sequence of 3 positive ints (T', H', W'), got {grid!r}")
    if not all(_is_int(g) and int(g) >= 1 for g in grid):
        raise ValueError(f"{name} must hold 3 positive ints (T', H', W'), got {tuple(grid)!r}")
    return (int(grid[0]), int(grid[1]), int(grid[2]))


def check_tubelet(tubelet: Sequence[int], name: str = "tubelet") -> Grid:
    """A tubelet (t, h, w) in frames x pixels x pixels: three positive ints."""
    if isinstance(tubelet, (str, bytes)) or not isinstance(tubelet, Sequence) or len(tubelet) != 3 \
            or not all(_is_int(p) and int(p) >= 1 for p in tubelet):
        raise ValueError(f"{name} must be 3 positive ints (t, h, w), got {tubelet!r}")
    return (int(tubelet[0]), int(tubelet[1]), int(tubelet[2]))


def check_mask_ratio(mask_ratio: float, name: str = "mask_ratio") -> float:
    """A mask ratio: a real number strictly between 0 and 1."""
    if isinstance(mask_ratio, bool) or not isinstance(mask_ratio, (int, float)):
        raise TypeError(f"{name} must be a float in (0, 1), got {type(mask_ratio).__name__} {mask_ratio!r}")
    if math.isnan(mask_ratio) or not 0.0 < mask_ratio < 1.0:
        raise ValueError(f"{name} must be in the open interval (0, 1), got {mask_ratio!r}")
    return float(mask_ratio)


def visible_count(num_tokens: int, mask_ratio: float) -> int:
    """N_v = int(N * (1 - mask_ratio)): the number of visible tokens of random and adaptive masking."""
    return int(num_tokens * (1 - mask_ratio))


def check_counts(num_tokens: int, num_visible: int, what: str) -> None:
    """A strategy's counts must leave at least one visible and one masked token (``what`` names it)."""
    if num_visible < 1 or num_visible >= num_tokens:
        raise ValueError(
            f"{what} leaves {num_visible} of {num_tokens} tokens visible; mask_ratio must leave at least "
            f"one visible and one masked token"
        )


def check_tokens(tokens: Tensor, num_tokens: int, name: str = "tokens") -> None:
    """``tokens`` must be a (B, N, D) tensor with N == num_tokens."""
    if not isinstance(tokens, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, N, D), got {type(tokens).__name__}")
    if tokens.dim() != 3:
        raise ValueError(f"{name} must have shape (B, N, D), got rank {tokens.dim()} shape {tuple(tokens.shape)}")
    if tokens.shape[1] != num_tokens:
        raise ValueError(
            f"{name} has {tokens.shape[1]} tokens but the strategy's grid has {num_tokens}; "
            f"token count must equal T'*H'*W'"
        )


def check_batch_size(batch_size: int) -> int:
    """A batch size: a positive int."""
    return check_positive_int(batch_size, "batch_size")


def check_sampling_weight(sampling_weight: float, name: str = "sampling_weight") -> float:
    """lambda, the weight of a strategy's loss term: a finite real number >= 0."""
    if isinstance(sampling_weight, bool) or not isinstance(sampling_weight, (int, float)):
        raise TypeError(f"{name} must be a float >= 0, got {type(sampling_weight).__name__}")
    if not math.isfinite(sampling_weight) or sampling_weight < 0:
        raise ValueError(f"{name} must be a finite float >= 0, got {sampling_weight!r}")
    return float(sampling_weight)


def check_choice(value: T, allowed: Collection[T], name: str) -> T:
    """``value`` must be one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value
