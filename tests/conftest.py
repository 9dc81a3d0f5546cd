"""Set-up shared by the whole test suite: torch's thread count, the hypothesis profile and the
`strategy_input` fixture."""

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(min(2, os.cpu_count() or 1))
settings.register_profile("adamask", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("adamask")


def _strategy_input(strategy, batch: int, embed_dim: int = 8, generator=None, device="cpu"):
    """What ``strategy(...)`` is called with, by what it declares it needs: tokens (B, N, D), or the
    video (B, 3, T, H, W) of its grid and tubelet for ``needs == "video"``."""
    t, h, w = strategy.grid
    if getattr(strategy, "needs", "tokens") == "video":
        pt, ph, pw = strategy.tubelet
        return torch.randn(batch, 3, t * pt, h * ph, w * pw, generator=generator).to(device)
    return torch.randn(batch, t * h * w, embed_dim, generator=generator).to(device)


@pytest.fixture(scope="session")
def strategy_input():
    """``strategy_input(strategy, batch, embed_dim=8, generator=None, device="cpu")``: the input of
    ``strategy(...)`` (see `_strategy_input`)."""
    return _strategy_input
