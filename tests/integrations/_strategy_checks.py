"""Checks shared by the tests that run adamask's token strategies beyond AdaMAE (``motion``, not
learned; ``error_predictor``, learned with its own loss term) in every integration."""

from __future__ import annotations

from typing import List, Optional

import torch
from torch import Tensor, nn

from adamask import LossSettings, Masking, error_prediction_loss
from adamask.motion import MotionMasking

STRATEGIES = ("motion", "error_predictor")


def expected_term(strategy: nn.Module, masking: Masking, token_error: Tensor) -> Optional[Tensor]:
    """The loss term a strategy must add, computed here from its definition (not through adamask's
    dispatch): none for motion; the error predictor's regression loss on the scored tokens."""
    if isinstance(strategy, MotionMasking):
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


def check_gradients(model: nn.Module) -> None:
    """After a backward: every parameter has a gradient; a learned strategy's reach it (non-zero)."""
    assert params_without_grad(model) == []
    sampler = [p for p in model.mask_sampler.parameters()]
    assert isinstance(model.mask_sampler, MotionMasking) == (sampler == [])
    assert all(p.grad.abs().sum() > 0 for p in sampler)
