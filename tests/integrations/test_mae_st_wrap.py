"""mae_st integration, wrap on a stand-in with MaskedAutoencoderViT's interface (runs everywhere; the
real checkout is tested in test_mae_st.py)."""

from __future__ import annotations

import pytest
import torch
from _toy_models import ToyMAEST

from adamask import sampling_loss
from adamask.integrations import mae_st as ms


def toy(**kw):
    torch.manual_seed(0)
    return ms.wrap(ToyMAEST(), mask_ratio=kw.pop("mask_ratio", 0.75), **kw)


def run_step(model, batch: int = 3):
    """One forward of their model; returns (imgs, loss, pred, mask, the strategy's Masking)."""
    seen = {}
    handle = model.mask_sampler.register_forward_hook(lambda m, a, out: seen.__setitem__("m", out))
    imgs = torch.randn(batch, 3, 4, 16, 16)
    loss, pred, mask = model(imgs, mask_ratio=0.75)
    handle.remove()
    return imgs, loss, pred, mask, seen["m"]


def test_wrap_keeps_the_random_masking_contract():
    model = toy()
    assert isinstance(model, ToyMAEST) and model.mask_sampler.blocks[0].attn.num_heads == 8
    assert model.no_weight_decay() >= {"mask_token", "mask_sampler.pos_embed"}
    x = torch.randn(2, 8, 16)
    x_masked, mask, ids_restore, ids_keep = model.random_masking(x, 0.75)
    assert x_masked.shape == (2, 2, 16) and mask.dtype == torch.float32 and (mask.sum(1) == 6).all()
    assert torch.equal(x_masked, torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, 16)))
    assert (mask.gather(1, ids_keep) == 0).all()
    with pytest.raises(ValueError, match="mask_ratio"):
        model(torch.randn(2, 3, 4, 16, 16), mask_ratio=0.5)
    with pytest.raises(ValueError, match="adapted before"):
        ms.wrap(model)


def test_estimator_and_baseline_reach_the_loss():
    model = toy(sampling_weight=0.5, sampling_estimator="plackett_luce", sampling_baseline="mean")
    imgs, loss, pred, mask, m = run_step(model)
    assert torch.equal(mask.bool(), m.mask)  # the loss is computed on the sampled mask
    err = ms.token_error(model, imgs, pred)
    want = sampling_loss(m.probs, m.mask, err, estimator="plackett_luce", baseline="mean", draw_order=m.draw_order)
    rec, ls = model.adamask_losses
    torch.testing.assert_close(ls, want.detach())
    torch.testing.assert_close(loss, rec + 0.5 * want)
    assert not torch.allclose(want, sampling_loss(m.probs, m.mask, err))  # the settings change the term


def test_the_strategy_trains_through_their_loss():
    model = toy()
    _, loss, _, _, _ = run_step(model)
    loss.backward()
    assert model.mask_sampler.head.weight.grad.abs().sum() > 0
    assert model.patch_embed.proj.weight.grad is not None


def test_a_non_learned_token_strategy_adds_no_term():
    model = toy(strategy="toy_norm")
    _, loss, _, _, m = run_step(model)
    rec, ls = model.adamask_losses
    assert m.probs is None and ls == 0 and torch.equal(loss, rec)
