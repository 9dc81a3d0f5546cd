import os

import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(min(2, os.cpu_count() or 1))
settings.register_profile("adamask", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("adamask")


def strategy_input(strategy, batch: int, embed_dim: int = 8, generator=None, device="cpu"):
    """What ``strategy(...)`` is called with, by what it declares it needs: tokens (B, N, D), or the
    video (B, 3, T, H, W) of its grid and tubelet for ``needs == "video"``."""
    t, h, w = strategy.grid
    if getattr(strategy, "needs", "tokens") == "video":
        pt, ph, pw = strategy.tubelet
        return torch.randn(batch, 3, t * pt, h * ph, w * pw, generator=generator).to(device)
    return torch.randn(batch, t * h * w, embed_dim, generator=generator).to(device)
