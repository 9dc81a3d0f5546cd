"""AdaMAE's sampling loss (REINFORCE-style), vectorised over the batch, and the settings of a
learned strategy's loss term (`LossSettings`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from .tokens import scatter_masked
from .validation import assert_on_device, check_choice, check_sampling_weight

__all__ = [
    "sampling_loss",
    "plackett_luce_log_prob",
    "entropy",
    "masked_errors",
    "LossSettings",
    "ESTIMATORS",
    "BASELINES",
    "DEFAULT_SAMPLING_WEIGHT",
]

_TINY = torch.finfo(torch.float32).tiny
ESTIMATORS = ("paper", "plackett_luce")
BASELINES = (None, "mean", "rloo")
DEFAULT_SAMPLING_WEIGHT = 1e-4  # lambda, the paper's


@dataclass(frozen=True)
class LossSettings:
    """How a learned strategy's loss term enters the total: ``loss = L_R + weight * term``.

    weight:         lambda (default 1e-4, the paper's); a finite float >= 0.
    estimator:      the sampling-loss estimator, one of ESTIMATORS (see `sampling_loss`).
    baseline:       the sampling-loss baseline, one of BASELINES.
    entropy_weight: weight of an entropy bonus on the sampler's distribution (default 0, the paper's).
    Validated on construction; used by the reference MAE and every integration alike.
    """

    weight: float = DEFAULT_SAMPLING_WEIGHT
    estimator: str = "paper"
    baseline: Optional[str] = None
    entropy_weight: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", check_sampling_weight(self.weight))
        object.__setattr__(self, "entropy_weight", check_sampling_weight(self.entropy_weight, "entropy_weight"))
        check_choice(self.estimator, ESTIMATORS, "sampling_estimator")
        check_choice(self.baseline, BASELINES, "sampling_baseline")


def plackett_luce_log_prob(probs: Tensor, draw_order: Tensor) -> Tensor:
    """Exact log-probability (B,) of drawing ``draw_order`` (B, k) in that order without replacement
    from Categorical(probs (B, N)): sum_j log p_{v_j} - log(sum of p over the tokens not drawn before j).

    Numerically stable on peaked distributions: the remaining mass before draw j is summed from the
    small probabilities that remain (the never-drawn tokens plus draws j..k-1, in log space), never
    formed as ``1 - cumsum``. Computed in float64 for float64 input, else float32.
    """
    dtype = torch.promote_types(probs.dtype, torch.float32)
    logp = torch.log(probs.to(dtype).clamp_min(torch.finfo(dtype).tiny))
    drawn = logp.gather(1, draw_order)  # (B, k)
    never = torch.ones_like(logp, dtype=torch.bool).scatter_(1, draw_order, False)
    log_rest = torch.logsumexp(logp.masked_fill(~never, float("-inf")), dim=1, keepdim=True)  # (B, 1)
    suffix = torch.logcumsumexp(drawn.flip(1), dim=1).flip(1)  # log sum_{l >= j} p_{v_l}
    remaining = torch.logaddexp(suffix, log_rest)
    return (drawn - remaining).sum(1)


def masked_errors(probs: Tensor, mask: Tensor, token_error: Tensor) -> Tensor:
    """Check the inputs of a strategy's loss term and return the errors as (B, N) float32, detached,
    zero wherever ``mask`` is False (selected, so inf/NaN there vanish).

    probs (B, N); mask (B, N) bool, True = a masked token whose error counts; token_error (B, N_m)
    for the masked tokens in ascending order (every row must mask N_m tokens, checked on the device)
    or (B, N) (rows may then mask different counts, e.g. with decoder masking)."""
    _check_inputs(probs, mask, token_error)
    _check_counts_on_device(mask, token_error)
    err = token_error.detach().float()
    if err.shape[1] != probs.shape[1]:
        return scatter_masked(err, mask)  # zero where visible
    return torch.where(mask, err, 0.0)


def _check_inputs(probs: Tensor, mask: Tensor, token_error: Tensor) -> None:
    for name, t in (("probs", probs), ("mask", mask), ("token_error", token_error)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if probs.dim() != 2 or probs.shape[0] < 1:
        raise ValueError(f"probs must have shape (B, N) with B >= 1, got {tuple(probs.shape)}")
    if mask.dtype != torch.bool or mask.shape != probs.shape:
        raise ValueError(
            f"mask must be a bool tensor of shape {tuple(probs.shape)} (True = masked), "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )
    b, n = probs.shape
    if token_error.dim() != 2 or token_error.shape[0] != b or not 0 < token_error.shape[1] <= n:
        raise ValueError(
            f"token_error must have shape (B, N_m) or (B, N) with B={b}, N={n}, got {tuple(token_error.shape)}"
        )


def _check_counts_on_device(mask: Tensor, token_error: Tensor) -> None:
    """A (B, N_m) token_error needs exactly N_m masked tokens in every row (checked without a sync)."""
    n_m = token_error.shape[1]
    if n_m != mask.shape[1]:
        assert_on_device(
            (mask.sum(1) == n_m).all(),
            f"token_error has {n_m} columns but a row of mask does not mask exactly {n_m} tokens "
            f"(pass the errors of the masked tokens in ascending order, or (B, N))",
        )


def _baseline(values: Tensor, weights: Tensor, baseline: Optional[str]) -> Tensor:
    """The baseline to subtract from ``values`` (B, L) with 0/1 ``weights`` (B, L): 0, the batch mean,
    or per sample the mean over the other samples (leave-one-out; 0 for a batch of one)."""
    if baseline is None:
        return torch.zeros((), dtype=values.dtype, device=values.device)
    total, count = (values * weights).sum(), weights.sum()
    if baseline == "mean":
        return total / count.clamp_min(1.0)
    own, own_count = (values * weights).sum(1, keepdim=True), weights.sum(1, keepdim=True)
    others = count - own_count
    return torch.where(others > 0, (total - own) / others.clamp_min(1.0), 0.0)


def entropy(probs: Tensor) -> Tensor:
    """Entropy (B,) in nats of each row of probs (B, N), float32 (0 log 0 = 0)."""
    p = probs.float()
    return -(p * torch.log(p.clamp_min(_TINY))).sum(1)


def sampling_loss(
    probs: Tensor,
    mask: Tensor,
    token_error: Tensor,
    *,
    estimator: str = "paper",
    baseline: Optional[str] = None,
    draw_order: Optional[Tensor] = None,
    entropy_weight: float = 0.0,
) -> Tensor:
    """Unweighted sampling loss L_S (scalar, float32); add ``lambda * L_S`` (lambda = 1e-4) to L_R.

    probs:       (B, N) sampling probabilities (Masking.probs); the only input that gets gradient.
    mask:        (B, N) bool, True = masked (the tokens whose error counts).
    token_error: (B, N_m) reconstruction error of the masked tokens in ascending index order (every
                 row must mask N_m tokens), or (B, N) per-token error (visible entries are ignored,
                 whatever they hold; rows may mask different counts). Detached.

    estimator="paper" (default): L_S = -mean_b mean_{i masked} log P_i * e_i, AdaMAE's surrogate.
    estimator="plackett_luce": the score function of what was actually sampled,
        L_S = -mean_b log PL(draw_order) * R_b with R_b the sample's mean masked error; needs
        ``draw_order`` (Masking.draw_order).
    baseline: None (the paper's); "mean" subtracts the batch mean of the errors (paper: per token;
        PL: of R_b); "rloo" subtracts, per sample, the mean over the *other* samples of the batch
        (leave-one-out; no baseline for a batch of one). Both reduce the variance of the gradient.
    entropy_weight: subtracts ``entropy_weight * mean_b H(P_b)`` (an entropy bonus that keeps the
        sampler from collapsing onto a few tokens; default 0).
    Log-probabilities are clamped at log(float32 tiny) so zero probabilities stay finite. Row counts
    of a (B, N_m) token_error are checked on the device (`adamask.validation.assert_on_device`).
    """
    check_choice(estimator, ESTIMATORS, "estimator")
    check_choice(baseline, BASELINES, "baseline")
    err = masked_errors(probs, mask, token_error)  # selected, not multiplied: inf/NaN at visible entries vanish
    b, n = probs.shape
    n_m = token_error.shape[1]
    # a (B, N_m) token_error means every row masks N_m tokens (checked on the device): a constant count
    n_masked = mask.sum(1).clamp_min(1).float() if n_m == n else None

    if estimator == "paper":
        if baseline is not None:
            err = torch.where(mask, err - _baseline(err, mask.float(), baseline), 0.0)
        per_token = torch.log(probs.float().clamp_min(_TINY)) * err
        loss = -(per_token.sum(1) / n_masked).mean() if n_masked is not None else per_token.sum() * (-1.0 / (b * n_m))
    else:
        if draw_order is None:
            raise ValueError("estimator='plackett_luce' needs draw_order (Masking.draw_order)")
        if not isinstance(draw_order, Tensor) or draw_order.dim() != 2 or draw_order.shape[0] != probs.shape[0]:
            raise ValueError(
                f"draw_order must have shape (B, N_v) with B={probs.shape[0]}, got "
                f"{tuple(getattr(draw_order, 'shape', ()))}"
            )
        reward = (err.sum(1) / (n_masked if n_masked is not None else n_m))[:, None]
        reward = (reward - _baseline(reward, torch.ones_like(reward), baseline))[:, 0]
        loss = -(plackett_luce_log_prob(probs, draw_order).float() * reward).mean()
    if entropy_weight:
        loss = loss - float(entropy_weight) * entropy(probs).mean()
    return loss
