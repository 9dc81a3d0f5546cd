"""Strategies that draw their masks from the clip (``needs == "video"``: ``motion_pixels``) in every
integration: a wrapped model builds them with its tubelet and hands them the clip it is called with;
what never sees the clip (a data loader's mask generator) refuses them by name. The HF model and the
stand-ins here; the real checkouts in test_videomae.py, test_videomaev2.py and test_mae_st.py."""

from __future__ import annotations

import pytest
import torch
from _toy_models import ToyMAEST, ToyVideoMAE, toy_videomae

from adamask.integrations import adapter as A
from adamask.integrations import mae_st as ms
from adamask.integrations import videomae as vm
from adamask.motion import PixelMotionMasking


def moving_clip(batch: int = 2, frames: int = 4, size: int = 16, patch: int = 8) -> torch.Tensor:
    """(B, C, T, H, W) zeros but for one patch, (row 1, column 0), that changes from the first tubelet
    (2 frames) to the second: tokens (t', 1, 0) are the only ones that move."""
    x = torch.zeros(batch, 3, frames, size, size)
    x[:, :, 2:, patch : 2 * patch, :patch] = 1.0
    return x


def drawn_twice(model_call, strategy, video, seed: int = 5):
    """(the masking the model drew, the strategy's own draw on ``video``), from the same global seed."""
    torch.manual_seed(seed)
    got = model_call()
    torch.manual_seed(seed)
    return got, strategy(video)


# ---------------------------------------------------------------------------------------------
# the adapter


def test_adapter_builds_it_with_the_models_tubelet_and_checks_a_ready_one():
    s = A.build_strategy("motion_pixels", (2, 2, 2), 0.75, 16, (2, 8, 8))
    assert isinstance(s, PixelMotionMasking) and s.tubelet == (2, 8, 8) and s.grid == (2, 2, 2)
    assert A.build_strategy("motion_pixels", (2, 2, 2), 0.75, 16, (2, 8, 8), tubelet=(2, 8, 8)).tubelet == (2, 8, 8)
    with pytest.raises(ValueError, match=r"'motion_pixels' draws its masks from the video \(needs='video'\)"):
        A.build_strategy("motion_pixels", (2, 2, 2), 0.75, 16)
    with pytest.raises(ValueError, match=r"tubelet=\(1, 8, 8\) but the model's tubelet is \(2, 8, 8\)"):
        A.build_strategy("motion_pixels", (2, 2, 2), 0.75, 16, (2, 8, 8), tubelet=(1, 8, 8))
    ready = PixelMotionMasking((2, 2, 2), 0.75, tubelet=(2, 16, 16))
    with pytest.raises(ValueError, match=r"tubelets \(2, 16, 16\) but the model's tubelet is \(2, 8, 8\)"):
        A.check_strategy_fits(ready, (2, 2, 2), 16, tubelet=(2, 8, 8))
    with pytest.raises(ValueError, match=r"tubelets \(2, 16, 16\) but the model's tubelet is \(2, 8, 8\)"):
        vm.wrap(ToyVideoMAE(), sampler=ready)


def test_a_strategy_that_needs_nothing_from_the_model_is_refused_naming_what_it_needs():
    for wrap, model in ((vm.wrap, ToyVideoMAE()), (ms.wrap, ToyMAEST())):
        with pytest.raises(ValueError, match=r"strategy 'tube' draws its masks from nothing the model has"):
            wrap(model, strategy="tube")
        assert not hasattr(model, "mask_sampler")  # a refused call leaves the model as it was


# ---------------------------------------------------------------------------------------------
# VideoMAE and mae_st (stand-ins with their interfaces)


def test_videomae_model_hands_the_strategy_its_videos():
    model = toy_videomae(strategy="motion_pixels")
    assert isinstance(model.mask_sampler, PixelMotionMasking) and model.mask_sampler.tubelet == (2, 8, 8)
    x = torch.randn(2, 3, 4, 16, 16)
    (pred, masking), want = drawn_twice(lambda: model(x), model.mask_sampler, x)
    assert torch.equal(masking.mask, want.mask) and torch.equal(masking.probs, want.probs)
    assert pred.shape == (2, 6, 384)
    still = toy_videomae(strategy="motion_pixels", temperature=0.0)
    _, masking = still(moving_clip())
    assert (~masking.mask[:, [2, 6]]).all()  # the moving patch (t' = 0, 1; h' = 1; w' = 0) is shown
    out = vm.pretraining_losses(model, x, patch_size=8)
    assert out.sampling_loss is None and torch.equal(out.loss, out.reconstruction_loss)


def test_mae_st_random_masking_draws_from_the_clip_given_to_the_forward():
    torch.manual_seed(0)
    model = ms.wrap(ToyMAEST(), mask_ratio=0.75, strategy="motion_pixels")
    assert model.mask_sampler.tubelet == (2, 8, 8)
    imgs = torch.randn(2, 3, 4, 16, 16)
    (loss, pred, mask), want = drawn_twice(lambda: model(imgs, mask_ratio=0.75), model.mask_sampler, imgs)
    assert torch.equal(mask.bool(), want.mask) and torch.isfinite(loss)
    still = ms.wrap(ToyMAEST(), mask_ratio=0.75, strategy="motion_pixels", temperature=0.0)
    assert (still(moving_clip(), mask_ratio=0.75)[2][:, [2, 6]] == 0).all()  # shown: 0 = kept
    assert "_adamask_video" not in vars(model)  # the clip is not kept past the forward
    with pytest.raises(TypeError, match=r"draws its masks from the video \(needs='video'\): call the model"):
        model.random_masking(torch.randn(2, 8, 16), 0.75)


# ---------------------------------------------------------------------------------------------
# Hugging Face


def test_hf_model_hands_the_strategy_pixel_values_as_b_c_t_h_w():
    pytest.importorskip("transformers")
    from _hf_helpers import clips, stock_twin, tiny_config

    from adamask.integrations.hf import AdaptiveVideoMAEForPreTraining

    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.75, strategy="motion_pixels").train()
    assert isinstance(m.mask_sampler, PixelMotionMasking) and m.mask_sampler.tubelet == (2, 8, 8)
    x = clips()
    gen = torch.Generator().manual_seed(3)
    out = m(x, generator=gen)
    want = m.mask_sampler(x.permute(0, 2, 1, 3, 4), generator=torch.Generator().manual_seed(3))
    assert torch.equal(out.mask, want.mask) and torch.equal(out.probs, want.probs)
    assert out.sampling_loss is None and torch.equal(out.loss, out.reconstruction_loss)
    stock = stock_twin(m).train()
    torch.testing.assert_close(out.loss, stock(x, bool_masked_pos=out.mask).loss, rtol=0, atol=0)
    still = AdaptiveVideoMAEForPreTraining(
        tiny_config(), mask_ratio=0.75, strategy="motion_pixels", strategy_options={"temperature": 0.0}
    )
    pixels = moving_clip(size=32).permute(0, 2, 1, 3, 4)  # (B, T, C, H, W)
    shown = ~still(pixels).mask
    assert shown[:, [4, 20]].all()  # the moving patch (t' = 0, 1; h' = 1; w' = 0) of a 4 x 4 grid


def test_hf_refuses_a_strategy_that_needs_nothing_from_the_model():
    pytest.importorskip("transformers")
    from _hf_helpers import tiny_config

    from adamask.integrations.hf import AdaptiveVideoMAEForPreTraining

    with pytest.raises(ValueError, match=r"strategy 'frame' draws its masks from nothing the model has"):
        AdaptiveVideoMAEForPreTraining(tiny_config(), strategy="frame")


# ---------------------------------------------------------------------------------------------
# VideoMAE's data-loader generators


def test_a_generator_refuses_it_unless_the_model_draws_it():
    with pytest.raises(ValueError, match=r"'motion_pixels' draws its masks from the video \(needs='video'\)"):
        vm.MaskingGenerator((2, 4, 4), 0.9, strategy="motion_pixels")
    with pytest.raises(ValueError, match="called without the clip"):
        vm.TubeMaskingGenerator((2, 4, 4), 0.9, strategy="motion_pixels")
    placeholder = vm.MaskingGenerator((2, 4, 4), 0.9, strategy="motion_pixels", shape="frames", model_draws=True)
    mask = placeholder()
    assert mask.shape == (2, 16) and mask.sum() == 0 and "placeholder" in repr(placeholder)
    with pytest.raises(ValueError, match=r"'tube' needs nothing from the model .*model_draws must be False"):
        vm.MaskingGenerator((2, 4, 4), 0.9, strategy="tube", model_draws=True)
    with pytest.raises(TypeError, match="model_draws"):
        vm.MaskingGenerator((2, 4, 4), 0.9, strategy="adaptive", model_draws="yes")
