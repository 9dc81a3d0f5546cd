"""Baselines, re-implemented from the behaviour of the AdaMAE / VideoMAE code: the sampling loss as a per-clip
loop, and per-clip numpy mask generators collated by a data loader."""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor


def loss_per_sample_loop(probs: Tensor, mask: Tensor, token_error: Tensor) -> Tensor:
    """AdaMAE's sampling loss as the authors compute it: one Categorical per clip, in a Python loop.

    token_error (B, N_m): reconstruction error of the masked tokens in ascending index order.
    """
    b, n = probs.shape
    per_clip = torch.zeros(b, dtype=probs.dtype, device=probs.device)
    positions = torch.arange(n, device=probs.device)
    for i in range(b):
        log_probs = torch.distributions.Categorical(probs=probs[i]).log_prob(positions)
        per_clip[i] = -torch.mean(log_probs[mask[i]] * token_error[i].detach())
    return per_clip.mean()


class NumpyRandomMask:
    """Per-clip numpy generator: a shuffled float64 vector with int(ratio * N) ones (1 = masked)."""

    def __init__(self, grid: Sequence[int], ratio: float) -> None:
        self.n = math.prod(grid)
        self.masked = int(ratio * self.n)

    def __call__(self) -> np.ndarray:
        m = np.hstack([np.zeros(self.n - self.masked), np.ones(self.masked)])
        np.random.shuffle(m)
        return m


class NumpyTubeMask:
    """Per-clip numpy generator: one shuffled spatial pattern with int(ratio * H'W') ones, tiled over T'."""

    def __init__(self, grid: Sequence[int], ratio: float) -> None:
        self.t, self.hw = grid[0], grid[1] * grid[2]
        self.masked = int(ratio * self.hw)

    def __call__(self) -> np.ndarray:
        m = np.hstack([np.zeros(self.hw - self.masked), np.ones(self.masked)])
        np.random.shuffle(m)
        return np.tile(m, (self.t, 1)).flatten()


class NumpyFrameMask:
    """Per-clip numpy generator: int(ratio * T') shuffled time slices masked, repeated over H'W'."""

    def __init__(self, grid: Sequence[int], ratio: float) -> None:
        self.t, self.hw = grid[0], grid[1] * grid[2]
        self.masked = int(ratio * self.t)

    def __call__(self) -> np.ndarray:
        m = np.hstack([np.zeros(self.t - self.masked), np.ones(self.masked)])
        np.random.shuffle(m)
        return np.repeat(m, self.hw)


def collate_numpy_masks(generator: Callable[[], np.ndarray], batch: int, device: torch.device) -> Tensor:
    """What a data loader does with per-clip masks: one call per clip, stack, to a bool tensor on device."""
    return torch.from_numpy(np.stack([generator() for _ in range(batch)])).to(device).bool()
