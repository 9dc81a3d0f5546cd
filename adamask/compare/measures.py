"""What the comparison measures on masks, errors and foregrounds: foreground allocation (of sampled masks and
of probabilities), the mean error of foreground and background tokens, mask statistics, summaries.

Mask convention: (B, N) bool, True = masked; tokens in (t, h, w) order over the grid (T', H', W').
These run at reporting time (host syncs are fine here), never inside the masking path.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import torch
from torch import Tensor

__all__ = ["foreground_allocation", "probability_allocation", "region_errors", "mask_statistics", "summarize"]


def _check_mask(mask: Tensor, name: str = "mask") -> None:
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.dim() != 2:
        raise TypeError(
            f"{name} must be a (B, N) bool tensor (True = masked), got "
            f"{getattr(mask, 'dtype', type(mask).__name__)} {tuple(getattr(mask, 'shape', ()))}"
        )


def _check_foreground(foreground: Tensor, shape: torch.Size) -> Tensor:
    if not isinstance(foreground, Tensor):
        raise TypeError(f"foreground must be a (B, N) tensor, got {type(foreground).__name__}")
    if foreground.shape != shape:
        raise ValueError(f"foreground must have shape {tuple(shape)} like the mask, got {tuple(foreground.shape)}")
    fg = foreground.float()
    if bool((fg < 0).any()):
        raise ValueError("foreground weights must be >= 0")
    return fg


def foreground_allocation(mask: Tensor, foreground: Tensor) -> Tensor:
    """Share of the visible tokens on the foreground divided by the foreground's share of all tokens.

    mask: (B, N) bool, True = masked. foreground: (B, N) bool, or float weights >= 0 (e.g. motion energy).
    Returns (B,) float32: (sum_{i visible} g_i / N_v) / (sum_i g_i / N); 1.0 = uniform, > 1 = the visible
    tokens favour the foreground. NaN for clips with no foreground. For uniform random masking its
    expectation is exactly 1 for every clip.
    """
    _check_mask(mask)
    g = _check_foreground(foreground, mask.shape)
    vis = (~mask).float()
    n_vis = vis.sum(1)
    share_visible = (g * vis).sum(1) / n_vis.clamp_min(1.0)
    share_all = g.mean(1)
    out = share_visible / share_all
    return torch.where(share_all > 0, out, torch.full_like(out, float("nan")))


def region_errors(errors: Tensor, foreground: Tensor) -> Tensor:
    """Mean reconstruction error of the masked tokens on the foreground and on the background, per clip.

    errors: (B, N) float, each masked token's error, NaN where visible. foreground: (B, N) bool, or float
    weights >= 0 (motion energy: scaled to [0, 1] by each clip's largest, a token counting as foreground by its
    weight and as background by the rest). Returns (B, 2) float32 (foreground, background); NaN where a clip
    has no masked token of that kind. The sampler's REINFORCE signal follows the difference of the two.
    """
    if not isinstance(errors, Tensor) or errors.dim() != 2:
        raise TypeError(f"errors must be a (B, N) float tensor, got {getattr(errors, 'shape', type(errors).__name__)}")
    g = _check_foreground(foreground, errors.shape)
    g = g / g.amax(1, keepdim=True).clamp_min(1e-12)
    masked = torch.isfinite(errors).float()
    e = torch.nan_to_num(errors.float(), nan=0.0)
    out = []
    for w in (g * masked, (1.0 - g) * masked):
        total = w.sum(1)
        out.append(torch.where(total > 0, (e * w).sum(1) / total.clamp_min(1e-12), float("nan")))
    return torch.stack(out, 1)


def probability_allocation(probs: Tensor, foreground: Tensor) -> Tensor:
    """Expected allocation of one draw from ``probs`` (B, N): N * sum_i p_i g_i / sum_i g_i, (B,) float32
    (1.0 for uniform probabilities, NaN for clips with no foreground)."""
    if not isinstance(probs, Tensor) or probs.dim() != 2:
        raise TypeError(f"probs must be a (B, N) tensor, got {getattr(probs, 'shape', type(probs).__name__)}")
    g = _check_foreground(foreground, probs.shape)
    p = probs.float() / probs.float().sum(1, keepdim=True)
    total = g.sum(1)
    out = probs.shape[1] * (p * g).sum(1) / total
    return torch.where(total > 0, out, torch.full_like(out, float("nan")))


def mask_statistics(mask: Tensor, grid: Sequence[int]) -> Dict[str, object]:
    """Summary of masks (B, N) bool (True = masked) over the grid (T', H', W'):

    visible_per_time_slice: list of T' floats, the mean number of visible tokens in each time slice;
    spatial_coverage: mean fraction of the H'W' positions visible in at least one time slice;
    visible_fraction: mean fraction of visible tokens;
    visible_per_slice_std: mean over clips of the std of the per-slice visible counts (0 = even in time).
    """
    _check_mask(mask)
    if len(grid) != 3:
        raise ValueError(f"grid must be (T', H', W'), got {grid!r}")
    t, h, w = (int(g) for g in grid)
    if mask.shape[1] != t * h * w:
        raise ValueError(f"mask has {mask.shape[1]} tokens but grid {tuple(grid)} has {t * h * w}")
    vis = (~mask).view(-1, t, h * w).float()
    per_slice = vis.sum(2)  # (B, T')
    covered = (vis.amax(1) > 0).float().mean(1)  # (B,)
    return dict(
        visible_per_time_slice=[round(float(v), 4) for v in per_slice.mean(0)],
        spatial_coverage=float(covered.mean()),
        visible_fraction=float(vis.mean()),
        visible_per_slice_std=float(per_slice.std(1, unbiased=False).mean()),
    )


def summarize(values: List[float]) -> Dict[str, float]:
    """mean / std / n of finite values (reporting helper)."""
    t = torch.tensor([v for v in values if v == v], dtype=torch.float64)
    if t.numel() == 0:
        return dict(mean=float("nan"), std=float("nan"), n=0)
    return dict(mean=float(t.mean()), std=float(t.std(unbiased=False)), n=int(t.numel()))


# ---------------------------------------------------------------------------------------------
# the metric table
