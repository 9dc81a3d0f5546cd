"""The classical masking strategies: random, tube and frame. Batched, on the requested device."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from .masking import Masking, MaskingStrategy, masking_from_draw
from .registry import register_masking
from .validation import check_batch_size, check_counts, checked_visible_count, masked_count

__all__ = ["RandomMasking", "TubeMasking", "FrameMasking", "lowest_k_mask"]

Device = Union[torch.device, str, None]


def lowest_k_mask(noise: Tensor, k: int) -> Tensor:
    """(B, L) noise -> (B, L) bool, True at the k smallest entries of each row.

    Selects whichever of the k smallest / L - k largest is the smaller set (same mask, cheaper topk).
    """
    length = noise.shape[1]
    if 2 * k <= length:
        idx = noise.topk(k, dim=1, largest=False, sorted=False).indices
        return torch.zeros_like(noise, dtype=torch.bool).scatter_(1, idx, True)
    idx = noise.topk(length - k, dim=1, largest=True, sorted=False).indices
    return torch.ones_like(noise, dtype=torch.bool).scatter_(1, idx, False)


def _repeated_masking(unit_mask: Tensor, num_visible_units: int, repeats: int, outer: bool) -> Masking:
    """Masking of a mask pattern over L units repeated into N = L * repeats tokens, without a (B, N) sort.

    outer=True: token = r * L + u (tube: the spatial pattern in every time slice);
    outer=False: token = u * repeats + r (frame: every token of a masked slice).
    """
    b, length = unit_mask.shape
    order = torch.argsort(unit_mask.view(torch.uint8), dim=1, stable=True)  # (B, L): visible then masked
    r = torch.arange(repeats, device=unit_mask.device)
    if outer:
        idx = r[None, :, None] * length + order[:, None, :]  # (B, R, L)
        mask = unit_mask.unsqueeze(1).expand(-1, repeats, -1).reshape(b, length * repeats)
        vis = idx[:, :, :num_visible_units].reshape(b, -1)
        msk = idx[:, :, num_visible_units:].reshape(b, -1)
    else:
        idx = order[:, :, None] * repeats + r[None, None, :]  # (B, L, R)
        mask = unit_mask.unsqueeze(2).expand(-1, -1, repeats).reshape(b, length * repeats)
        vis = idx[:, :num_visible_units].reshape(b, -1)
        msk = idx[:, num_visible_units:].reshape(b, -1)
    return Masking(mask, vis, msk)


def _noise(batch_size: int, length: int, device: Device, generator: Optional[torch.Generator]) -> Tensor:
    check_batch_size(batch_size)
    return torch.rand(batch_size, length, device=device, generator=generator)


@register_masking("random")
class RandomMasking(MaskingStrategy):
    """Uniform random masking (MAE, mae_st): int(N * (1 - mask_ratio)) visible tokens per sample."""

    def __init__(self, grid: Sequence[int], mask_ratio: float = 0.9) -> None:
        super().__init__(grid, mask_ratio)
        self._set_counts()

    def _set_counts(self) -> None:
        self.num_visible = checked_visible_count(
            self.num_tokens, self.mask_ratio, f"random masking of {self.num_tokens} tokens"
        )

    def sample(self, batch_size: int, device: Device = None, generator: Optional[torch.Generator] = None) -> Masking:
        noise = _noise(batch_size, self.num_tokens, device, generator)
        return masking_from_draw(noise.topk(self.num_visible, dim=1, sorted=False).indices, self.num_tokens)


@register_masking("tube")
class TubeMasking(MaskingStrategy):
    """Tube masking (VideoMAE): one spatial pattern, int(mask_ratio * H'W') masked, repeated in every
    time slice."""

    def __init__(self, grid: Sequence[int], mask_ratio: float = 0.9) -> None:
        super().__init__(grid, mask_ratio)
        self._set_counts()

    def _set_counts(self) -> None:
        t, h, w = self.require_grid()
        masked = masked_count(h * w, self.mask_ratio)
        check_counts(h * w, h * w - masked, f"tube masking of {h}x{w} tokens per slice")
        self.masked_per_slice, self.num_visible = masked, t * (h * w - masked)

    def sample(self, batch_size: int, device: Device = None, generator: Optional[torch.Generator] = None) -> Masking:
        t, h, w = self.require_grid()
        spatial = lowest_k_mask(_noise(batch_size, h * w, device, generator), self.masked_per_slice)
        return _repeated_masking(spatial, h * w - self.masked_per_slice, t, outer=True)


@register_masking("frame")
class FrameMasking(MaskingStrategy):
    """Frame masking: int(mask_ratio * T') whole time slices are masked."""

    def __init__(self, grid: Sequence[int], mask_ratio: float = 0.9) -> None:
        super().__init__(grid, mask_ratio)
        self._set_counts()

    def _set_counts(self) -> None:
        t, h, w = self.require_grid()
        masked = masked_count(t, self.mask_ratio)
        check_counts(t, t - masked, f"frame masking of {t} time slices")
        self.masked_slices, self.num_visible = masked, (t - masked) * h * w

    def sample(self, batch_size: int, device: Device = None, generator: Optional[torch.Generator] = None) -> Masking:
        t, h, w = self.require_grid()
        slices = lowest_k_mask(_noise(batch_size, t, device, generator), self.masked_slices)
        return _repeated_masking(slices, t - self.masked_slices, h * w, outer=False)
