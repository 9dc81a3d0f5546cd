"""Motion-guided masking without optical flow: show the tokens that change over time.

``motion`` scores each token by how far its embedding moved since the same spatial position in the
previous time slice (the embedding disparity used by EVEREST, ICML 2024); ``motion_pixels`` scores
it by the mean absolute frame difference of its pixels (what RLT, NeurIPS 2024, drops when it is
zero), so it runs in a data loader on the raw clip. Both draw the N_v = int(N * (1 - mask_ratio))
visible tokens without replacement from softmax(z / temperature), z = the scores standardised per
clip (Gumbel-top-k): temperature 0 takes the N_v highest-scoring tokens, a large temperature is
uniform random masking. Neither has parameters or a loss term (not learned); the Masking carries
the (detached) probabilities so they can be shown. Both need at least two time slices (T' >= 2): with
one there is no change to measure. Non-finite values (a NaN or inf token value or pixel) count as 0,
so they move only the scores of the tokens they belong to.

tokens (B, N, D) in (t, h, w) order over the grid (T', H', W'); video (B, C, T, H, W); mask (B, N)
bool, True = masked.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from .masking import Masking, MaskingStrategy, masking_from_draw
from .registry import register_masking
from .sampler import gumbel_topk
from .tokens import finite_values
from .validation import check_choice, check_real, check_tokens, check_tubelet, checked_visible_count

__all__ = ["MotionMasking", "PixelMotionMasking", "token_motion", "pixel_motion", "DISTANCES", "FIRST_SLICE"]

DISTANCES = ("l2", "cosine")
FIRST_SLICE = (
    "next",
    "zero",
    "mean",
)  # the first time slice has no predecessor: copy slice 1's score, 0, or the clip mean


def _fill_first_slice(d: Tensor, first_slice: str) -> Tensor:
    """d (B, T'-1, H'W') differences of slices 1.. -> (B, T', H'W') scores with slice 0 filled."""
    if first_slice == "next":
        first = d[:, :1]
    elif first_slice == "zero":
        first = torch.zeros_like(d[:, :1])
    else:
        first = d.mean(dim=(1, 2), keepdim=True).expand(-1, 1, d.shape[2])
    return torch.cat([first, d], dim=1)


def _check_slices(grid: Sequence[int], what: str) -> None:
    if grid[0] < 2:
        raise ValueError(
            f"{what} needs at least 2 time slices (T' >= 2) to measure change between them, got grid "
            f"{tuple(grid)}: use more frames or a shorter tubelet in time"
        )


def token_motion(tokens: Tensor, grid: Sequence[int], distance: str = "l2", first_slice: str = "next") -> Tensor:
    """tokens (B, N, D) -> (B, N) float32 >= 0: the distance of each token's embedding to the embedding at
    the same spatial position in the previous time slice (``distance``: "l2" or "cosine" = 1 - cos).
    Non-finite values count as 0 (`adamask.tokens.finite_values`); ``grid`` needs T' >= 2."""
    t, h, w = grid
    _check_slices(grid, "token_motion")
    x = rearrange(finite_values(tokens), "b (t s) d -> b t s d", t=t, s=h * w)
    cur, prev = x[:, 1:], x[:, :-1]
    if distance == "l2":
        d = (cur - prev).pow(2).sum(-1).sqrt()
    else:
        d = 1.0 - F.cosine_similarity(cur, prev, dim=-1, eps=1e-6)
    return _fill_first_slice(d, first_slice).flatten(1)


def pixel_motion(video: Tensor, tubelet: Sequence[int], first_slice: str = "next") -> Tensor:
    """video (B, C, T, H, W) -> (B, N) float32 >= 0: the mean absolute difference of each tubelet's
    frames to the frames one tubelet earlier (channel mean), N = (T/t)(H/h)(W/w) in (t, h, w) order.
    Non-finite pixels count as 0 (`adamask.tokens.finite_values`); needs T/t >= 2 time slices."""
    pt, ph, pw = tubelet
    v = finite_values(video).mean(1, keepdim=True)  # (B, 1, T, H, W)
    _check_slices((v.shape[2] // pt, v.shape[3] // ph, v.shape[4] // pw), "pixel_motion")
    diff = (v[:, :, pt:] - v[:, :, :-pt]).abs()  # every frame against the one a tubelet earlier
    d = F.avg_pool3d(diff, kernel_size=(pt, ph, pw))  # (B, 1, T'-1, H', W'): slices 1.. against their predecessor
    return _fill_first_slice(d.flatten(3)[:, 0], first_slice).flatten(1)


class _ScoredMasking(MaskingStrategy):
    """Draws N_v visible tokens from softmax(standardised scores / temperature); subclasses score."""

    def __init__(self, grid: Sequence[int], mask_ratio: float, temperature: float, first_slice: str) -> None:
        super().__init__(grid, mask_ratio)
        _check_slices(self.require_grid(), f"{self.name} masking")
        self.temperature = check_real(temperature, "temperature", low=0.0)
        self.first_slice = check_choice(first_slice, FIRST_SLICE, "first_slice")
        self._set_counts()

    name = "scored"

    def _set_counts(self) -> None:
        self.num_visible = checked_visible_count(
            self.num_tokens, self.mask_ratio, f"{self.name} masking of {self.num_tokens} tokens"
        )

    def draw(self, scores: Tensor, generator: Optional[torch.Generator]) -> Masking:
        """scores (B, N) -> Masking with probs = softmax(z / temperature) (detached), draw_order."""
        s = scores.detach().float()
        z = (s - s.mean(1, keepdim=True)) / s.std(1, keepdim=True).clamp_min(1e-6)
        if self.temperature == 0.0:
            draw = z.topk(self.num_visible, dim=1, sorted=True).indices
            probs = torch.zeros_like(z).scatter_(1, draw, 1.0 / self.num_visible)
        else:
            log_probs = torch.log_softmax(z / self.temperature, dim=1)
            draw = gumbel_topk(log_probs, self.num_visible, generator)
            probs = log_probs.exp()
        return masking_from_draw(draw, z.shape[1], probs=probs, draw_order=draw)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, temperature={self.temperature:g}, first_slice={self.first_slice!r}"


@register_masking("motion", default_ratio=0.95)
class MotionMasking(_ScoredMasking):
    """Show the tokens whose embedding changed most since the previous time slice (no optical flow).

    temperature: 0 = the N_v most-changed tokens; larger = closer to uniform random (default 0.5,
    in units of the score's standard deviation over the clip). distance: "l2" or "cosine".
    first_slice: "next" (slice 0 gets slice 1's score), "zero" or "mean" (the clip's mean score).
    """

    needs = "tokens"
    name = "motion"

    def __init__(
        self,
        grid: Sequence[int],
        mask_ratio: float = 0.95,
        *,
        temperature: float = 0.5,
        distance: str = "l2",
        first_slice: str = "next",
    ) -> None:
        super().__init__(grid, mask_ratio, temperature, first_slice)
        self.distance = check_choice(distance, DISTANCES, "distance")

    def sample(
        self, batch_size: int, device: torch.device | str | None = None, generator: Optional[torch.Generator] = None
    ) -> Masking:
        raise TypeError(
            "motion masking scores the tokens: call it with tokens (B, N, D); for a data loader, "
            "use 'motion_pixels' on the clip"
        )

    def forward(  # type: ignore[override]  # always needs the tokens
        self,
        tokens: Optional[Tensor] = None,
        generator: Optional[torch.Generator] = None,
    ) -> Masking:
        """tokens (B, N, D) -> Masking (True = masked) with probs (B, N) and draw_order."""
        if tokens is None:
            raise TypeError("motion masking scores the tokens: call it with tokens (B, N, D)")
        check_tokens(tokens, self.num_tokens)
        with torch.no_grad():
            scores = token_motion(tokens, self.require_grid(), self.distance, self.first_slice)
        return self.draw(scores, generator)


@register_masking("motion_pixels", default_ratio=0.95)
class PixelMotionMasking(_ScoredMasking):
    """Show the tokens whose pixels change most (mean absolute frame difference per tubelet), from the
    raw clip: ``strategy(video (B, C, T, H, W))``, e.g. in a data loader's collate function.

    tubelet (t, h, w) gives the token grid of the video (default VideoMAE's 2 x 16 x 16); options as
    `MotionMasking`.
    """

    needs = "video"
    name = "motion_pixels"

    def __init__(
        self,
        grid: Sequence[int],
        mask_ratio: float = 0.95,
        *,
        tubelet: Sequence[int] = (2, 16, 16),
        temperature: float = 0.5,
        first_slice: str = "next",
    ) -> None:
        super().__init__(grid, mask_ratio, temperature, first_slice)
        self.tubelet = check_tubelet(tubelet)

    def forward(  # type: ignore[override]  # always needs the video
        self,
        video: Optional[Tensor] = None,
        generator: Optional[torch.Generator] = None,
    ) -> Masking:
        """video (B, C, T, H, W) (or one clip (C, T, H, W)) -> Masking over the grid (True = masked)."""
        if not isinstance(video, Tensor) or video.dim() not in (4, 5):
            raise TypeError(
                f"video must be a (B, C, T, H, W) or (C, T, H, W) tensor, got "
                f"{tuple(getattr(video, 'shape', ())) or type(video).__name__}"
            )
        v = video if video.dim() == 5 else video[None]
        grid = tuple(s // p for s, p in zip(v.shape[2:], self.tubelet, strict=True))
        if grid != self.grid or any(s % p for s, p in zip(v.shape[2:], self.tubelet, strict=True)):
            raise ValueError(
                f"video of (T, H, W) = {tuple(v.shape[2:])} with tubelet {self.tubelet} does not give "
                f"the strategy's grid {self.grid}"
            )
        with torch.no_grad():
            scores = pixel_motion(v, self.tubelet, self.first_slice)
        return self.draw(scores, generator)

    def sample(
        self, batch_size: int, device: torch.device | str | None = None, generator: Optional[torch.Generator] = None
    ) -> Masking:
        raise TypeError("motion_pixels scores the clip's pixels: call it with the video (B, C, T, H, W)")
