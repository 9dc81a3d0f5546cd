"""Checks shared by the tests that run adamask's strategies beyond AdaMAE in every integration: ``motion``
(from the tokens, not learned), ``motion_pixels`` (from the clip, not learned) and ``error_predictor``
(from the tokens, learned with its own loss term)."""

from __future__ import annotations

from typing import List, Optional

import torch
from torch import Tensor, nn

from adamask import AdaptiveTokenSampler, LossSettings, Masking, error_prediction_loss
from adamask.motion import MotionMasking, PixelMotionMasking

STRATEGIES = ("motion", "motion_pixels", "error_predictor")


def expected_term(strategy: nn.Module, masking: Masking, token_error: Tensor) -> Optional[Tensor]:
    """The loss term a strategy must add, computed here from its definition (not through adamask's
    dispatch): none for a strategy without parameters (motion, motion_pixels); the error predictor's
    regression loss on the scored tokens."""
    if not any(True for _ in strategy.parameters()):
        return None
    return error_prediction_loss(
        masking.probs, masking.scored_mask, token_error, temperature=strategy.temperature, eps=strategy.eps
    )


def check_loss(
    strategy: nn.Module,
    masking: Masking,
    token_error: Tensor,
    loss: Tensor,
    rec: Tensor,
    term: Optional[Tensor],
    settings: LossSettings,
) -> None:
    """``loss = rec + weight * term`` with the term the strategy must add (none for motion)."""
    want = expected_term(strategy, masking, token_error)
    if want is None:
        assert term is None or float(term.detach()) == 0.0
        assert torch.equal(loss, rec)
    else:
        torch.testing.assert_close(term.detach(), want.detach())
        torch.testing.assert_close(loss, rec + settings.weight * want)
        assert float(want.detach()) != 0.0


def params_without_grad(model: nn.Module) -> List[str]:
    """Trainable parameters that got no gradient: DistributedDataParallel without
    ``find_unused_parameters`` needs this list empty."""
    return [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]


def zero_by_construction(strategy: nn.Module) -> List[str]:
    """The strategy's parameters whose gradient is mathematically zero: the score head's bias of a
    sampler (`AdaptiveTokenSampler`, also the error predictor) adds the same number to every token's
    score, and its probabilities are a softmax over the tokens, which that shift leaves unchanged."""
    head = getattr(strategy, "head", None)
    if isinstance(strategy, AdaptiveTokenSampler) and isinstance(head, nn.Linear) and head.bias is not None:
        return ["head.bias"]
    return []


def check_gradients(model: nn.Module) -> None:
    """After a backward: every parameter has a gradient; every parameter of a learned strategy gets a
    non-zero one, except those whose gradient is zero by construction (`zero_by_construction`), whose
    gradient must then be zero up to rounding."""
    assert params_without_grad(model) == []
    sampler = dict(model.mask_sampler.named_parameters())
    assert isinstance(model.mask_sampler, (MotionMasking, PixelMotionMasking)) == (sampler == {})
    zero = zero_by_construction(model.mask_sampler)
    assert [n for n, p in sampler.items() if n not in zero and not p.grad.abs().sum() > 0] == []
    scale = max((float(p.grad.abs().max()) for n, p in sampler.items() if n not in zero), default=0.0)
    for name in zero:
        assert float(sampler[name].grad.abs().max()) <= 1e-5 * scale, name
