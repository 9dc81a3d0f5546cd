"""AdaMAE's sampling loss (REINFORCE-style), vectorised over the batch, and the settings of a
learned strategy's loss term (`LossSettings`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from .tokens import scatter_masked
from .validation import check_choice, check_sampling_weight

__all__ = ["sampling_loss", "plackett_luce_log_prob", "scatter_masked", "LossSettings", "ESTIMATORS", "BASELINES",
           "DEFAULT_SAMPLING_WEIGHT"]

_TINY = torch.finfo(torch.float32).tiny
ESTIMATORS = ("paper", "plackett_luce")
BASELINES = (None, "mean")
DEFAULT_SAMPLING_WEIGHT = 1e-4  # lambda, the paper's


@dataclass(frozen=True)
class LossSettings:
    """How a learned strategy's loss term enters the total: ``loss = L_R + weight * term``.

    weight:    lambda (default 1e-4, the paper's); a finite float >= 0.
    estimator: the sampling-loss estimator, one of ESTIMATORS (see `sampling_loss`).
    baseline:  the sampling-loss baseline, one of BASELINES.
    Validated on construction; used by the reference MAE and every integration alike.
    """

    weight: float = DEFAULT_SAMPLING_WEIGHT
    estimator: str = "paper"
    baseline: Optional[str] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", check_sampling_weight(self.weight))
        check_choice(self.estimator, ESTIMATORS, "sampling_estimator")
        check_choice(self.baseline, BASELINES, "sampling_baseline")


def plackett_luce_log_prob(probs: Tensor, draw_order: Tensor) -> Tensor:
    """Exact log-probability (B,) of drawing ``draw_order`` (B, k) in that order without replacement
    from Categorical(probs (B, N)): sum_j log p_{v_j} - log(1 - sum_{l<j} p_{v_l})."""
    p = probs.float().gather(1, draw_order)
    before = torch.cumsum(p, dim=1) - p
    return (torch.log(p.clamp_min(_TINY)) - torch.log((1.0 - before).clamp_min(_TINY))).sum(1)


def sampling_loss(probs: Tensor, mask: Tensor, token_error: Tensor, *, estimator: str = "paper",
                  baseline: Optional[str] = None, draw_order: Optional[Tensor] = None) -> Tensor:
    """Unweighted sampling loss L_S (scalar, float32); add ``lambda * L_S`` (lambda = 1e-4) to L_R.

    probs:       (B, N) sampling probabilities (Masking.probs); the only input that gets gradient.
    mask:        (B, N) bool, True = masked.
    token_error: (B, N_m) reconstruction error of the masked tokens in ascending index order,
                 or (B, N) per-token error (visible entries ignored). Detached here.

    estimator="paper" (default): L_S = -mean_b mean_{i masked} log P_i * e_i, AdaMAE's surrogate.
    estimator="plackett_luce": the score function of what was actually sampled,
        L_S = -mean_b log PL(draw_order) * R_b with R_b the sample's mean masked error; needs
        ``draw_order`` (Masking.draw_order).
    baseline="mean" subtracts the batch mean of the errors (paper: per token; PL: of R_b) to reduce
    variance. Log-probabilities are clamped at log(float32 tiny) so zero probabilities stay finite.
    """
    check_choice(estimator, ESTIMATORS, "estimator")
    check_choice(baseline, BASELINES, "baseline")
    for name, t in (("probs", probs), ("mask", mask), ("token_error", token_error)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if probs.dim() != 2:
        raise ValueError(f"probs must have shape (B, N), got {tuple(probs.shape)}")
    if mask.dtype != torch.bool or mask.shape != probs.shape:
        raise ValueError(f"mask must be a bool tensor of shape {tuple(probs.shape)} (True = masked), "
                         f"got {mask.dtype} {tuple(mask.shape)}")
    b, n = probs.shape
    if token_error.dim() != 2 or token_error.shape[0] != b or not 0 < token_error.shape[1] <= n:
        raise ValueError(f"token_error must have shape (B, N_m) or (B, N) with B={b}, N={n}, "
                         f"got {tuple(token_error.shape)}")
    err = token_error.detach().float()
    if err.shape[1] != n:
        err = scatter_masked(err, mask)
    maskf = mask.float()
    n_masked = maskf.sum(1).clamp_min(1.0)

    if estimator == "paper":
        if baseline == "mean":
            err = err - ((err * maskf).sum() / n_masked.sum())
        log_p = torch.log(probs.float().clamp_min(_TINY))
        return -((log_p * err * maskf).sum(1) / n_masked).mean()

    if draw_order is None:
        raise ValueError("estimator='plackett_luce' needs draw_order (Masking.draw_order)")
    if draw_order.dim() != 2 or draw_order.shape[0] != b:
        raise ValueError(f"draw_order must have shape (B, N_v) with B={b}, got {tuple(draw_order.shape)}")
    reward = (err * maskf).sum(1) / n_masked
    if baseline == "mean":
        reward = reward - reward.mean()
    return -(plackett_luce_log_prob(probs, draw_order) * reward).mean()
