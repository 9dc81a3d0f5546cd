"""A learned sampler trained by supervision instead of REINFORCE: it predicts each token's
reconstruction error (after HPM, CVPR 2023) and shows the tokens it expects to be hardest.

The network is AdaMAE's sampler (same blocks and options); its head's output is read as a predicted
log-error ``l_i``, the visible tokens are drawn without replacement from P = softmax(l / temperature),
i.e. P_i proportional to the predicted error to the power 1 / temperature. Its loss term regresses the
log-errors of the masked tokens, up to a constant per clip (the softmax ignores constants):

    L_E = mean_b mean_{i masked} ((l_i - mean_masked l) - (log(e_i + eps) - mean_masked log(e + eps)))^2

Why a log-error regression rather than a pairwise ranking loss: errors span orders of magnitude, so
their logarithm is the scale on which a squared loss is balanced; centring makes it free of the
error's units (raw or normalised pixels) like a ranking loss, at O(N) instead of O(N^2) pairs; and
it gives P a plain meaning (proportional to the predicted error). A supervised target has no
sampling noise: no baseline is needed. The errors are detached: L_E trains the predictor only.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import Tensor

from .loss import LossSettings, masked_errors
from .masking import Masking
from .registry import register_masking
from .sampler import AdaptiveTokenSampler
from .validation import check_real

__all__ = ["ErrorPredictor", "error_prediction_loss", "MAX_TEMPERATURE"]

_TINY = torch.finfo(torch.float32).tiny
# the largest temperature whose float32 probabilities still carry the predicted log-errors (to about 1e-4)
MAX_TEMPERATURE = 1e3


def error_prediction_loss(
    probs: Tensor, mask: Tensor, token_error: Tensor, *, temperature: float = 1.0, eps: float = 1e-6
) -> Tensor:
    """Unweighted loss of the error predictor (scalar float32); add ``lambda * L_E`` to L_R.

    probs:       (B, N) the predictor's probabilities (Masking.probs), softmax(l / temperature); the
                 only input that gets gradient (temperature * log probs = l minus a constant per row).
    mask:        (B, N) bool, True = masked (the tokens whose error is known).
    token_error: (B, N_m) errors of the masked tokens in ascending order, or (B, N). Detached.
    """
    err = masked_errors(probs, mask, token_error)
    maskf = mask.float()
    n = maskf.sum(1, keepdim=True).clamp_min(1.0)
    pred = temperature * torch.log(probs.float().clamp_min(_TINY))
    target = torch.log(err.clamp_min(0.0) + eps)

    def centred(x: Tensor) -> Tensor:
        return x - (x * maskf).sum(1, keepdim=True) / n

    sq = torch.where(mask, (centred(pred) - centred(target)).pow(2), pred.new_zeros(()))
    return (sq.sum(1) / n[:, 0]).mean()


@register_masking("error_predictor", default_ratio=0.95)
class ErrorPredictor(AdaptiveTokenSampler):
    """Learned strategy: predicts per-token log reconstruction errors and draws the visible tokens
    from softmax(prediction / temperature). tokens (B, N, embed_dim) -> Masking with probs.

    Options as `AdaptiveTokenSampler` (num_heads, depth, width, variant, token_pool, checkpoint, ...);
    ``temperature`` in (0, MAX_TEMPERATURE] (default 1: P proportional to the predicted error; the loss
    reads the prediction back from float32 probabilities, which above that bound are uniform to float32
    precision); ``eps`` is added to the errors before the log. Its loss term is `error_prediction_loss`,
    weighted like the sampling loss (``LossSettings.weight``). It is a regression, not a sampling loss: the
    estimator and baseline settings do not apply to it, and it has no entropy bonus, so a nonzero
    ``LossSettings.entropy_weight`` is refused (`check_loss_settings`).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: Optional[int] = None,
        num_tokens: Optional[int] = None,
        mask_ratio: float = 0.95,
        depth: int = 1,
        *,
        grid: Optional[Sequence[int]] = None,
        eps: float = 1e-6,
        **options: Any,
    ) -> None:
        super().__init__(embed_dim, num_heads, num_tokens, mask_ratio, depth, grid=grid, **options)
        check_real(self.temperature, "temperature", low=0.0, high=MAX_TEMPERATURE, low_open=True)
        self.eps = check_real(eps, "eps", low=0.0, low_open=True)

    def predicted_log_error(self, tokens: Tensor) -> Tensor:
        """tokens (B, N, D) -> the predicted log reconstruction error (B, N) float32, up to a constant per clip."""
        return self.scores(tokens) * self.temperature

    def check_loss_settings(self, settings: LossSettings) -> None:
        """ValueError for an entropy bonus: the error predictor's regression has none."""
        if settings.entropy_weight:
            raise ValueError(
                f"error_predictor's loss term is a regression of the log-errors with no entropy bonus: "
                f"sampling_entropy_weight must be 0 with it, got {settings.entropy_weight!r}"
            )

    def masking_loss(self, masking: Masking, token_error: Tensor, settings: LossSettings) -> Tensor:
        self.check_loss_settings(settings)
        if masking.probs is None:
            raise ValueError("error_predictor's loss needs the probs of a masking it drew (Masking.probs is None)")
        return error_prediction_loss(
            masking.probs, masking.scored_mask, token_error, temperature=self.temperature, eps=self.eps
        )
