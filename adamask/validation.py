"""Argument checks shared by the whole package: one place for every "must be a positive int" rule.

Each check returns the normalised value (plain Python ``int`` / ``float`` / tuple) or raises a
``TypeError`` (wrong kind of value) / ``ValueError`` (right kind, wrong value) whose message names the
argument, what is allowed and what was given. None of them reads tensor data (no host sync).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Collection, Optional, Sequence, Tuple, TypeVar

import torch
from torch import Tensor

Grid = Tuple[int, int, int]
T = TypeVar("T")

__all__ = [
    "Grid",
    "assert_on_device",
    "check_bool",
    "check_real",
    "masked_count",
    "check_positive_int",
    "check_grid",
    "check_tubelet",
    "check_mask_ratio",
    "check_counts",
    "checked_visible_count",
    "check_tokens",
    "check_batch_size",
    "check_sampling_weight",
    "check_choice",
    "visible_count",
]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_bool(value: Any, name: str) -> bool:
    """``value`` must be a bool (True / False), not a string or a number."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_real(
    value: Any,
    name: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` must be a finite real number (Python or numpy; not bool) in [low, high] (open ends if asked)."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    v = float(value)
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
    if not math.isfinite(v) or v < low or v > high or (low_open and v == low) or (high_open and v == high):
        raise ValueError(f"{name} must be a finite number in {lo}{low:g}, {high:g}{hi}, got {value!r}")
    return v


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
    if (
        isinstance(tubelet, (str, bytes))
        or not isinstance(tubelet, Sequence)
        or len(tubelet) != 3
        or not all(_is_int(p) and int(p) >= 1 for p in tubelet)
    ):
        raise ValueError(f"{name} must be 3 positive ints (t, h, w), got {tubelet!r}")
    return (int(tubelet[0]), int(tubelet[1]), int(tubelet[2]))


def check_mask_ratio(mask_ratio: float, name: str = "mask_ratio") -> float:
    """A mask ratio: a real number (Python or numpy) strictly between 0 and 1."""
    if not _is_real(mask_ratio):
        raise TypeError(f"{name} must be a float in (0, 1), got {type(mask_ratio).__name__} {mask_ratio!r}")
    if math.isnan(mask_ratio) or not 0.0 < mask_ratio < 1.0:
        raise ValueError(f"{name} must be in the open interval (0, 1), got {mask_ratio!r}")
    return float(mask_ratio)


def _floor_count(x: float) -> int:
    # round away float noise first: 100 * (1 - 0.9) = 9.999999999999998 must count 10, not 9
    return int(math.floor(round(x, 9)))


def visible_count(num_tokens: int, mask_ratio: float) -> int:
    """N_v = int(N * (1 - mask_ratio)), robust to float representation (100 tokens at 0.9 keep 10).

    The count of visible tokens of random and learned masking (AdaMAE's N_v)."""
    return _floor_count(num_tokens * (1.0 - mask_ratio))


def masked_count(num_units: int, mask_ratio: float) -> int:
    """int(mask_ratio * L), robust to float representation: the masked units of tube masking (L = H'W'
    positions), frame masking (L = T' slices) and VideoMAE's own random generator (L = N tokens)."""
    return _floor_count(num_units * mask_ratio)


def check_counts(num_tokens: int, num_visible: int, what: str) -> None:
    """A strategy's counts must leave at least one visible and one masked token (``what`` names it)."""
    if num_visible < 1 or num_visible >= num_tokens:
        raise ValueError(
            f"{what} leaves {num_visible} of {num_tokens} tokens visible; mask_ratio must leave at least "
            f"one visible and one masked token"
        )


def checked_visible_count(num_tokens: int, mask_ratio: float, what: str) -> int:
    """`visible_count` that must leave at least one visible and one masked token (`check_counts`)."""
    num_visible = visible_count(num_tokens, mask_ratio)
    check_counts(num_tokens, num_visible, what)
    return num_visible


def check_tokens(tokens: Tensor, num_tokens: int, name: str = "tokens", embed_dim: Optional[int] = None) -> None:
    """``tokens`` must be a (B, N, D) tensor with B >= 1, N == num_tokens and (if given) D == embed_dim."""
    if not isinstance(tokens, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, N, D), got {type(tokens).__name__}")
    if tokens.dim() != 3:
        raise ValueError(f"{name} must have shape (B, N, D), got rank {tokens.dim()} shape {tuple(tokens.shape)}")
    if tokens.shape[1] != num_tokens:
        raise ValueError(
            f"{name} has {tokens.shape[1]} tokens but the strategy's grid has {num_tokens}; "
            f"token count must equal T'*H'*W'"
        )
    if tokens.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one sample (B >= 1), got shape {tuple(tokens.shape)}")
    if embed_dim is not None and tokens.shape[2] != embed_dim:
        raise ValueError(
            f"{name} have width D={tokens.shape[2]} but the strategy was built for embed_dim={embed_dim}; "
            f"build it with embed_dim={tokens.shape[2]} (the width of your patch embeddings)"
        )


def check_batch_size(batch_size: int) -> int:
    """A batch size: a positive int."""
    return check_positive_int(batch_size, "batch_size")


def check_sampling_weight(sampling_weight: float, name: str = "sampling_weight") -> float:
    """lambda, the weight of a strategy's loss term: a finite real number >= 0."""
    if not _is_real(sampling_weight):
        raise TypeError(f"{name} must be a float >= 0, got {type(sampling_weight).__name__}")
    if not math.isfinite(sampling_weight) or sampling_weight < 0:
        raise ValueError(f"{name} must be a finite float >= 0, got {sampling_weight!r}")
    return float(sampling_weight)


def assert_on_device(condition: Tensor, message: str) -> None:
    """Fail when the bool scalar tensor ``condition`` is False, without a host sync.

    On CPU this raises ``RuntimeError(message)`` at once; on CUDA it is a device-side assertion that
    fails the next synchronising call (loudly, never a silent wrong result); on meta tensors nothing
    is checked. Used where a check would otherwise need to read tensor data in the hot path."""
    torch._assert_async(condition, message)


def check_choice(value: T, allowed: Collection[T], name: str) -> T:
    """``value`` must be one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value
