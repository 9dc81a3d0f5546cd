"""adamask's strategies beyond AdaMAE in every integration, by name: ``motion`` (draws from the tokens,
not learned: no loss term, no parameter left without a gradient, so DDP needs no
find_unused_parameters) and ``error_predictor`` (learned: its own loss term, weighted by the model's
LossSettings). The HF model here; VideoMAE and mae_st on their stand-ins (the real checkouts in
test_videomae.py, test_videomaev2.py and test_mae_st.py)."""

from __future__ import annotations

import _strategy_checks as S
import _videomae_checks as C
import pytest
import torch
from _toy_models import ToyMAEST, toy_videomae

from adamask import masking_from_mask
from adamask.integrations import mae_st as ms
from adamask.integrations import videomae as vm
from adamask.motion import MotionMasking


@pytest.mark.parametrize("strategy", S.STRATEGIES)
def test_hf_model(strategy):
    pytest.importorskip("transformers")
    from _hf_helpers import B, clips, tiny_config

    from adamask.integrations.hf import AdaptiveVideoMAEForPreTraining

    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.75, strategy=strategy, sampling_weight=0.5).train()
    assert m.config.adamask_strategy == strategy
    out = m(clips(), generator=torch.Generator().manual_seed(0))
    assert out.mask.sum(1).tolist() == [24] * B
    masking = masking_from_mask(out.mask, 8, probs=out.probs)
    S.check_loss(
        m.mask_sampler, masking, out.token_error, out.loss, out.reconstruction_loss, out.sampling_loss, m.loss_settings
    )
    out.loss.backward()
    S.check_gradients(m)


@pytest.mark.parametrize("strategy", S.STRATEGIES)
def test_hf_checkpoint_round_trip(strategy, tmp_path):
    pytest.importorskip("transformers")
    from _hf_helpers import clips, tiny_config

    from adamask.integrations.hf import AdaptiveVideoMAEForPreTraining

    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.75, strategy=strategy).eval()
    m.save_pretrained(tmp_path)
    loaded = AdaptiveVideoMAEForPreTraining.from_pretrained(tmp_path).eval()
    assert type(loaded.mask_sampler) is type(m.mask_sampler)
    a = m(clips(), generator=torch.Generator().manual_seed(3))
    b = loaded(clips(), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.mask, b.mask)


@pytest.mark.parametrize("strategy", S.STRATEGIES)
def test_videomae_wrap_and_train_one_epoch(strategy):
    model = toy_videomae(strategy=strategy, sampling_weight=0.5)
    out = vm.pretraining_losses(model, torch.randn(2, 3, 4, 16, 16), patch_size=8)
    assert out.masking.num_masked == 6
    S.check_loss(
        model.mask_sampler,
        out.masking,
        out.token_error,
        out.loss,
        out.reconstruction_loss,
        out.sampling_loss,
        model.loss_settings,
    )
    out.loss.backward()
    S.check_gradients(model)
    model.zero_grad(set_to_none=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    before = C.snapshot(model)
    stats = vm.train_one_epoch(
        model, [(torch.randn(2, 3, 4, 16, 16), torch.zeros(2, 8)) for _ in range(2)], opt, "cpu", 0, None, patch_size=8
    )
    assert ("loss_sampling" in stats) == (strategy == "error_predictor")
    assert C.changed(before, model, "", exclude="mask_sampler.") > 0
    assert (C.changed(before, model, "mask_sampler.") > 0) == (strategy == "error_predictor")


@pytest.mark.parametrize("strategy", S.STRATEGIES)
def test_mae_st_wrap(strategy):
    torch.manual_seed(0)
    model = ms.wrap(ToyMAEST(), mask_ratio=0.75, strategy=strategy, sampling_weight=0.5)
    seen = {}
    model.mask_sampler.register_forward_hook(lambda mod, a, out: seen.__setitem__("m", out))
    imgs = torch.randn(2, 3, 4, 16, 16)
    loss, pred, mask = model(imgs, mask_ratio=0.75)
    assert torch.equal(mask.bool(), seen["m"].mask)
    rec, ls = model.adamask_losses
    S.check_loss(model.mask_sampler, seen["m"], ms.token_error(model, imgs, pred), loss, rec, ls, model.loss_settings)
    loss.backward()
    S.check_gradients(model)


def test_strategy_options_reach_the_strategy():
    model = toy_videomae(strategy="motion", temperature=0.0, distance="cosine")
    assert isinstance(model.mask_sampler, MotionMasking)
    assert model.mask_sampler.temperature == 0.0 and model.mask_sampler.distance == "cosine"
    mst = ms.wrap(ToyMAEST(), mask_ratio=0.75, strategy="error_predictor", temperature=2.0)
    assert mst.mask_sampler.temperature == 2.0
