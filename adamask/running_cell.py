"""Decoder masking (VideoMAE V2's "dual masking", CVPR 2023): the decoder reconstructs only a subset
of the tokens, chosen by a running-cell pattern, which cuts the decoder's cost.

``running_cell`` is a strategy like the others, but its `Masking` is read as a *decoder* mask:
``mask`` True = not reconstructed by the decoder, ``visible_idx`` = the tokens the decoder predicts.
Each 2 x 2 spatial cell leaves int(4 * mask_ratio) of its 4 positions out; the pattern moves one
position per time slice ("running"), from a random phase per clip, so every position is reconstructed
in some slices. Every clip reconstructs the same number of tokens. Needs even H' and W'.

Use it with the reference MAE (``create_mae(..., decoder_masking="running_cell")``: the loss is the
mean error over the tokens both masked by the encoder's strategy and reconstructed by the decoder)
or as the decoder mask of VideoMAE V2's loop (True = not reconstructed, its convention).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from .masking import Masking, MaskingStrategy, masking_from_mask
from .registry import register_masking
from .validation import check_batch_size, check_counts, masked_count

__all__ = ["RunningCellMasking"]


@register_masking("running_cell", default_ratio=0.5)
class RunningCellMasking(MaskingStrategy):
    """Running-cell decoder mask over (T', H', W'): int(4 * mask_ratio) of every 2 x 2 cell not
    reconstructed, the pattern shifted by one cell position per time slice. mask_ratio in [0.25, 1)."""

    def __init__(self, grid: Sequence[int], mask_ratio: float = 0.5) -> None:
        super().__init__(grid, mask_ratio)
        _, h, w = self.require_grid()
        if h % 2 or w % 2:
            raise ValueError(f"running_cell masking needs an even H' and W' (2 x 2 cells), got grid {self.grid}")
        self._set_counts()

    def _set_counts(self) -> None:
        t, h, w = self.require_grid()
        per_cell = masked_count(4, self.mask_ratio)
        check_counts(4, 4 - per_cell, "running_cell masking of a 2 x 2 cell (mask_ratio in [0.25, 1))")
        self.masked_per_cell, self.num_visible = per_cell, t * h * w * (4 - per_cell) // 4

    def sample(
        self, batch_size: int, device: torch.device | str | None = None, generator: Optional[torch.Generator] = None
    ) -> Masking:
        """(B, N) decoder mask, True = not reconstructed; a random phase per clip."""
        t, h, w = self.require_grid()
        b = check_batch_size(batch_size)
        phase = torch.randint(4, (b, 1, 1, 1), device=device, generator=generator)
        slot = torch.arange(h, device=device)[:, None] % 2 * 2 + torch.arange(w, device=device)[None, :] % 2
        run = torch.arange(t, device=device)[:, None, None]
        mask = ((slot[None] + run + phase) % 4 < self.masked_per_cell).reshape(b, t * h * w)
        return masking_from_mask(mask, self.num_visible)
