"""VideoMAE integration, the losses: targets from the sampled mask, decoder masks, the loss settings."""

from __future__ import annotations

import _videomae_checks as C
import pytest
import torch
from _toy_models import ToyVideoMAE
from _toy_models import toy_videomae as toy

from adamask.integrations import videomae as vm


def test_losses_use_the_sampled_mask():
    model = toy()
    seen = {}
    model.encoder.register_forward_pre_hook(lambda m, a: seen.__setitem__("mask", a[1]))
    x = torch.randn(3, 3, 4, 16, 16)
    out = vm.pretraining_losses(model, x, patch_size=8)
    assert torch.equal(seen["mask"], out.masking.mask)
    pixels = x * C.STD + C.MEAN
    from adamask.tokens import normalized_targets

    full = normalized_targets(pixels, (2, 8, 8))
    assert torch.allclose(out.target, full[out.masking.mask].reshape(3, -1, full.shape[-1]))
    assert torch.allclose(out.loss, out.reconstruction_loss + model.sampling_weight * out.sampling_loss)
    with pytest.raises(TypeError, match="wrap"):
        vm.pretraining_losses(ToyVideoMAE(), x)


def test_probabilities_stay_float32_under_autocast():
    model = toy()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = vm.pretraining_losses(model, torch.randn(2, 3, 4, 16, 16), patch_size=8)
    assert out.masking.probs.dtype == torch.float32 and out.sampling_loss.dtype == torch.float32
    out.loss.backward()
    assert model.mask_sampler.head.weight.grad is not None


def test_decoder_mask_is_respected():
    model = toy()
    x = torch.randn(2, 3, 4, 16, 16)
    decode_mask = torch.tensor([[0, 1] * 4, [1, 0] * 4], dtype=torch.bool)  # 4 decoded tokens per clip
    out = vm.pretraining_losses(model, x, decode_mask, patch_size=8)
    assert out.pred.shape == (2, 4, 384)
    decoded = ~decode_mask
    w = out.masking.mask[decoded].reshape(2, -1).float()
    err = ((out.pred - out.target) ** 2).mean(-1)
    assert torch.allclose(out.reconstruction_loss, (err * w).sum() / w.sum().clamp_min(1))
    assert (out.token_error[~(decoded & out.masking.mask)] == 0).all()


@pytest.mark.parametrize("decoder_masked", [False, True])
def test_estimator_and_baseline_reach_the_loss(decoder_masked):
    from adamask import sampling_loss

    model = toy(sampling_weight=0.5, sampling_estimator="plackett_luce", sampling_baseline="mean")
    x = torch.randn(4, 3, 4, 16, 16)
    decode_mask = torch.tensor([[0, 1] * 4] * 4, dtype=torch.bool) if decoder_masked else None
    out = vm.pretraining_losses(model, x, decode_mask, patch_size=8)
    m = out.masking
    # with a decoder mask the term scores only the tokens both masked and reconstructed (error_mask)
    want = sampling_loss(
        m.probs, m.scored_mask, out.token_error, estimator="plackett_luce", baseline="mean", draw_order=m.draw_order
    )
    torch.testing.assert_close(out.sampling_loss, want)
    torch.testing.assert_close(out.loss, out.reconstruction_loss + 0.5 * want)
    paper = sampling_loss(m.probs, m.scored_mask, out.token_error)
    assert not torch.allclose(want, paper)  # the settings change the term


def test_a_non_learned_token_strategy_adds_no_term():
    model = toy(strategy="toy_norm")
    out = vm.pretraining_losses(model, torch.randn(2, 3, 4, 16, 16), patch_size=8)
    assert out.sampling_loss is None and out.masking.probs is None
    assert torch.equal(out.loss, out.reconstruction_loss) and out.masking.num_masked == 6
    assert isinstance(out, vm.StepLosses)
