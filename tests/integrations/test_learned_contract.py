"""A learned strategy defined and registered only in the tests (`_toy_strategies.ToyLearned`, a plain
nn.Module written against the contract) works in every integration with no change to adamask: its
own loss term is used, weighted by the model's LossSettings, and it trains. A non-learned strategy
that draws from the tokens (`ToyNorm`) adds no term."""

from __future__ import annotations

import _videomae_checks as C
import pytest
import torch
from _toy_models import ToyMAEST, ToyVideoMAE
from _toy_strategies import ToyLearned, ToyNorm

from adamask import LossSettings, masking_from_mask
from adamask.integrations import mae_st as ms
from adamask.integrations import videomae as vm


def test_hf_model():
    pytest.importorskip("transformers")
    from _hf_helpers import B, clips, tiny_config

    from adamask.integrations.hf import AdaptiveVideoMAEForPreTraining

    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(
        tiny_config(), mask_ratio=0.75, strategy="toy_learned", sampling_weight=0.5
    ).train()
    assert isinstance(m.mask_sampler, ToyLearned) and m.config.adamask_strategy == "toy_learned"
    out = m(clips(), generator=torch.Generator().manual_seed(0))
    assert out.mask.sum(1).tolist() == [24] * B and out.probs.shape == (B, 32)
    masking = masking_from_mask(out.mask, 8, probs=out.probs)
    want = m.mask_sampler.masking_loss(masking, out.token_error, LossSettings(0.5))
    torch.testing.assert_close(out.sampling_loss, want)
    torch.testing.assert_close(out.loss, out.reconstruction_loss + 0.5 * want)
    out.loss.backward()
    assert m.mask_sampler.score.weight.grad.abs().sum() > 0

    plain = AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.75, strategy="toy_norm")
    out = plain(clips())
    assert isinstance(plain.mask_sampler, ToyNorm) and out.sampling_loss is None and out.probs is None
    assert torch.equal(out.loss, out.reconstruction_loss) and out.mask.sum(1).tolist() == [24] * B


def test_hf_checkpoint_keeps_the_strategy(tmp_path):
    pytest.importorskip("transformers")
    from _hf_helpers import tiny_config

    from adamask.integrations.hf import AdaptiveVideoMAEForPreTraining

    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.75, strategy="toy_learned")
    m.save_pretrained(tmp_path)
    loaded = AdaptiveVideoMAEForPreTraining.from_pretrained(tmp_path)
    assert isinstance(loaded.mask_sampler, ToyLearned)
    assert torch.equal(loaded.mask_sampler.score.weight, m.mask_sampler.score.weight)


def test_videomae_wrap_and_train_one_epoch():
    torch.manual_seed(0)
    model = vm.wrap(ToyVideoMAE(), mask_ratio=0.75, strategy="toy_learned", sampling_weight=0.5)
    out = vm.pretraining_losses(model, torch.randn(2, 3, 4, 16, 16), patch_size=8)
    want = model.mask_sampler.masking_loss(out.masking, out.token_error, model.loss_settings)
    torch.testing.assert_close(out.sampling_loss, want)
    torch.testing.assert_close(out.loss, out.reconstruction_loss + 0.5 * want)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    before = C.snapshot(model)
    stats = vm.train_one_epoch(
        model, [(torch.randn(2, 3, 4, 16, 16), torch.zeros(2, 8)) for _ in range(2)], opt, "cpu", 0, None, patch_size=8
    )
    assert "loss_sampling" in stats and C.changed(before, model, "mask_sampler.") > 0


def test_mae_st_wrap():
    torch.manual_seed(0)
    model = ms.wrap(ToyMAEST(), mask_ratio=0.75, strategy="toy_learned", sampling_weight=0.5)
    seen = {}
    model.mask_sampler.register_forward_hook(lambda mod, a, out: seen.__setitem__("m", out))
    imgs = torch.randn(2, 3, 4, 16, 16)
    loss, pred, mask = model(imgs, mask_ratio=0.75)
    want = model.mask_sampler.masking_loss(seen["m"], ms.token_error(model, imgs, pred), model.loss_settings)
    rec, ls = model.adamask_losses
    torch.testing.assert_close(ls, want.detach())
    torch.testing.assert_close(loss, rec + 0.5 * want)
    loss.backward()
    assert model.mask_sampler.score.weight.grad.abs().sum() > 0
