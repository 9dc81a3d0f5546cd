"""Token helpers: video <-> tubelet patches, per-patch normalised targets (VideoMAE convention),
per-token MSE, and gathering / scattering tokens by index.

Conventions: tokens (B, N, D) in (t, h, w) order; index tensors (B, K) int64; masks (B, N) bool with
True = masked; values "of the masked tokens" are (B, N_m) in ascending token order.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import torch
from einops import rearrange
from torch import Tensor

from .validation import check_tubelet

__all__ = [
    "patchify",
    "unpatchify",
    "normalized_targets",
    "normalize_patches",
    "token_mse",
    "token_grid",
    "gather_tokens",
    "scatter_masked",
    "sinusoid_embedding",
    "LAYOUTS",
    "TOKEN_CLIP",
    "finite_values",
]

LAYOUTS = ("bcthw", "btchw")  # reference MAE / VideoMAE / mae_st  vs  Hugging Face
TOKEN_CLIP = 1e4  # |values| a strategy reads; patch embeddings and pixels are O(1) to O(100): beyond is corrupt


def _check_video(video: Tensor, layout: str) -> None:
    if not isinstance(video, Tensor):
        raise TypeError(f"video must be a torch.Tensor, got {type(video).__name__}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if video.dim() != 5:
        raise ValueError(f"video must have shape ({', '.join(layout.upper())}), got {tuple(video.shape)}")


def token_grid(video_shape: Sequence[int], tubelet: Sequence[int], layout: str = "bcthw") -> Tuple[int, int, int]:
    """(T', H', W') of a video shape; raises ValueError if T, H, W are not divisible by the tubelet."""
    tubelet = check_tubelet(tubelet)
    if layout == "bcthw":
        t, h, w = video_shape[2], video_shape[3], video_shape[4]
    else:
        t, h, w = video_shape[1], video_shape[3], video_shape[4]
    if t % tubelet[0] or h % tubelet[1] or w % tubelet[2]:
        raise ValueError(f"video size (T, H, W) = {(t, h, w)} is not divisible by tubelet {tuple(tubelet)}")
    return t // tubelet[0], h // tubelet[1], w // tubelet[2]


def patchify(video: Tensor, tubelet: Sequence[int] = (2, 16, 16), layout: str = "bcthw") -> Tensor:
    """video (B, C, T, H, W) (or (B, T, C, H, W) with layout="btchw") -> (B, N, t*h*w*C).

    Tokens in (t, h, w) order; each patch vector in (p0 p1 p2 c) order, as VideoMAE's targets.
    """
    _check_video(video, layout)
    token_grid(video.shape, tubelet, layout)
    pt, ph, pw = tubelet
    src = "b c (t p0) (h p1) (w p2)" if layout == "bcthw" else "b (t p0) c (h p1) (w p2)"
    return rearrange(video, f"{src} -> b (t h w) (p0 p1 p2 c)", p0=pt, p1=ph, p2=pw)


def unpatchify(
    patches: Tensor, grid: Sequence[int], tubelet: Sequence[int] = (2, 16, 16), layout: str = "bcthw"
) -> Tensor:
    """Inverse of `patchify`: (B, N, t*h*w*C) -> video in ``layout``."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    t, h, w = grid
    pt, ph, pw = tubelet
    if patches.dim() != 3 or patches.shape[1] != t * h * w or patches.shape[2] % (pt * ph * pw):
        raise ValueError(
            f"patches must be (B, {t * h * w}, {pt * ph * pw}*C) for grid {tuple(grid)} and "
            f"tubelet {tuple(tubelet)}, got {tuple(patches.shape)}"
        )
    dst = "b c (t p0) (h p1) (w p2)" if layout == "bcthw" else "b (t p0) c (h p1) (w p2)"
    return rearrange(patches, f"b (t h w) (p0 p1 p2 c) -> {dst}", t=t, h=h, w=w, p0=pt, p1=ph, p2=pw)


def normalize_patches(patches: Tensor, channels: int, eps: float = 1e-6) -> Tensor:
    """Patches (B, K, P*C) in (p c) order (`patchify`'s) -> float32 (B, K, P*C): each patch's pixels, per
    channel, minus their mean and divided by their unbiased std + eps (VideoMAE / Hugging Face
    ``norm_pix_loss``). One pass for mean and variance, one result tensor."""
    x = patches.float().reshape(*patches.shape[:-1], -1, channels)  # (B, K, P, C)
    var, mean = torch.var_mean(x, dim=-2, unbiased=True, keepdim=True)
    out: Tensor = (x - mean).div_(var.sqrt() + eps)
    return out.flatten(-2)


def normalized_targets(
    video: Tensor, tubelet: Sequence[int] = (2, 16, 16), layout: str = "bcthw", eps: float = 1e-6
) -> Tensor:
    """Per-patch normalised pixels (B, N, t*h*w*C), float32: each tubelet's pixels, per channel, minus
    their mean and divided by their unbiased std + eps (VideoMAE / Hugging Face ``norm_pix_loss``)."""
    _check_video(video, layout)
    return normalize_patches(patchify(video, tubelet, layout), video.shape[1 if layout == "bcthw" else 2], eps)


def token_mse(pred: Tensor, target: Tensor) -> Tensor:
    """Per-token mean squared error: (B, L, P), (B, L, P) -> (B, L) float32."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
    return (pred.float() - target.float()).pow(2).mean(dim=-1)


def finite_values(x: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """``x`` (any shape) as ``dtype`` with every value that is not finite or lies beyond +-TOKEN_CLIP (1e4)
    replaced by 0: what a strategy scores, so that one NaN, inf or overflowing value moves only the scores it
    belongs to, never a whole clip's. On the device, no host sync."""
    x = x.to(dtype)
    return torch.where(x.abs() <= TOKEN_CLIP, x, 0.0)


def gather_tokens(x: Tensor, idx: Tensor) -> Tensor:
    """x (B, N, D), idx (B, K) int64 -> (B, K, D): the tokens at ``idx``, in its order."""
    return x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def scatter_masked(values: Tensor, mask: Tensor) -> Tensor:
    """values (B, N_m) for the masked tokens in ascending order -> (B, N), zero where visible."""
    rank = (mask.cumsum(1) - 1).clamp_(0, values.shape[1] - 1)  # j-th masked token <- values[:, j]
    return torch.where(mask, values.gather(1, rank), 0.0)


def sinusoid_embedding(num_positions: int, dim: int) -> Tensor:
    """Fixed 1-D sinusoidal table (1, num_positions, dim), float32."""
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]
    freq = torch.pow(10000.0, -2.0 * (torch.arange(dim, dtype=torch.float64) // 2) / dim)
    angle = pos * freq
    table = torch.where(torch.arange(dim) % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.float().unsqueeze(0)
