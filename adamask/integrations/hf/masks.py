"""Masks of the Hugging Face integration: checking a caller-given ``bool_masked_pos`` and the per-rank
seeds of the sampled ones. Masks are (B, N) bool, True = masked."""

from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["check_bool_masked_pos", "rank_seed", "distributed"]


def check_bool_masked_pos(
    bool_masked_pos: Any, batch_size: int, num_tokens: int, device: Optional[torch.device] = None
) -> Tuple[Tensor, int]:
    """Validate a caller-given mask; returns it as (B, N) bool (True = masked) and its masked count.

    A bool mask is used as is; an integer or float mask holding only 0 and 1 is cast to bool (any
    other value raises, since HF would treat a non-bool mask as integer indices). Every row must
    mask the same number of tokens, at least one and fewer than N. Reads the mask's values (one
    host sync): only for caller-given masks.
    """
    if not isinstance(bool_masked_pos, Tensor):
        raise TypeError(f"bool_masked_pos must be a torch.Tensor (B, N) of bool, got {type(bool_masked_pos).__name__}")
    m = bool_masked_pos if device is None else bool_masked_pos.to(device)
    if m.dim() != 2 or tuple(m.shape) != (batch_size, num_tokens):
        raise ValueError(f"bool_masked_pos must have shape (B, N) = {(batch_size, num_tokens)}, got {tuple(m.shape)}")
    if m.dtype == torch.bool:
        binary = torch.ones((), dtype=torch.long, device=m.device)
    elif m.is_complex():
        raise TypeError(f"bool_masked_pos must be bool (True = masked), got {m.dtype}")
    else:
        binary = ((m == 0) | (m == 1)).all().long()
        m = m != 0
    counts = m.sum(1)
    ok, lo, hi = torch.stack([binary, counts.min(), counts.max()]).tolist()
    if not ok:
        raise ValueError(
            f"bool_masked_pos of dtype {bool_masked_pos.dtype} holds values other than 0 and 1; "
            f"pass a bool mask (True = masked)"
        )
    if lo != hi:
        raise ValueError(f"bool_masked_pos must mask the same number of tokens in every row, got between {lo} and {hi}")
    if not 0 < lo < num_tokens:
        raise ValueError(f"bool_masked_pos must mask at least one and fewer than {num_tokens} tokens per row, got {lo}")
    return m, int(lo)


def rank_seed(seed: int, rank: int) -> int:
    """Mix a base seed and a rank into a 63-bit seed (splitmix64 finaliser)."""
    x = (seed * 0x9E3779B97F4A7C15 + (rank + 1) * 0xBF58476D1CE4E5B9) % 2**64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) % 2**64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) % 2**64
    x ^= x >> 31
    return x % 2**63


def distributed() -> bool:
    """True when ``torch.distributed`` runs more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
