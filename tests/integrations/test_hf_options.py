"""Hugging Face VideoMAE integration: options never leak into the caller's config, a refused option
leaves nothing behind, numpy numbers are options, the loss settings (entropy bonus, RLOO) and the
pixel input (dtypes, an empty batch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")
from _hf_helpers import B, N, clips, fixed_mask, tiny_config  # noqa: E402
from transformers import VideoMAEForPreTraining  # noqa: E402

from adamask import sampling_loss  # noqa: E402
from adamask.integrations.hf import AdaptiveVideoMAEForPreTraining, adamask_settings, wrap  # noqa: E402


def adamask_attributes(config) -> dict:
    return {k: v for k, v in vars(config).items() if k.startswith("adamask_")}


# ---------------------------------------------------------------------------------------------
# the caller's config


def test_wrap_leaves_the_callers_config_untouched():
    cfg = tiny_config()
    stock = VideoMAEForPreTraining(cfg)
    assert stock.config is cfg  # HF keeps the caller's object
    m = wrap(stock, mask_ratio=0.5, sampling_weight=1e-2)
    assert adamask_attributes(cfg) == {}
    assert m.config is not cfg and m.config.adamask_mask_ratio == 0.5
    # every sub-module that shared the caller's config now shares the model's own copy
    assert all(getattr(mod, "config", None) is not cfg for mod in m.modules())
    assert m.videomae.config is m.config
    # a later model from the same config gets the defaults, not what wrap was given
    later = AdaptiveVideoMAEForPreTraining(cfg)
    assert later.config.adamask_mask_ratio == 0.95 and later.mask_sampler.num_visible == 1
    assert later.config.adamask_sampling_weight == 1e-4


@pytest.mark.parametrize(
    "options",
    [
        dict(sampler_variant="conv"),
        dict(sampler_width=30, sampler_heads=4),
        dict(mask_ratio=1.0),
        dict(strategy="tube"),
        dict(sampling_baseline="median"),
        dict(sampler_depth=0),
        dict(unknown=1),
    ],
)
def test_a_refused_wrap_leaves_model_and_config_as_they_were(options):
    cfg = tiny_config()
    stock = VideoMAEForPreTraining(cfg)
    state = {k: v.clone() for k, v in stock.state_dict().items()}
    with pytest.raises((ValueError, TypeError)):
        wrap(stock, **options)
    assert type(stock) is VideoMAEForPreTraining and not hasattr(stock, "mask_sampler")
    assert stock.config is cfg and adamask_attributes(cfg) == {}
    assert stock.state_dict().keys() == state.keys()
    # nothing left behind: the same config and model still build and wrap
    assert AdaptiveVideoMAEForPreTraining(cfg, mask_ratio=0.75).mask_sampler.num_visible == 8
    assert wrap(stock, mask_ratio=0.75).mask_sampler.num_visible == 8


def test_adamask_settings_writes_nothing_when_an_option_is_refused():
    cfg = tiny_config()
    cfg.adamask_mask_ratio = 0.5
    with pytest.raises(ValueError, match="sampling_weight"):
        adamask_settings(cfg, mask_ratio=0.75, sampling_weight=-1.0)
    assert adamask_attributes(cfg) == {"adamask_mask_ratio": 0.5}
    s = adamask_settings(cfg, sampling_weight=np.float32(0.5))
    assert s["mask_ratio"] == 0.5 and type(s["sampling_weight"]) is float and cfg.adamask_sampling_weight == 0.5


# ---------------------------------------------------------------------------------------------
# numpy numbers as options


def test_numpy_numbers_are_options_and_the_config_still_saves(tmp_path):
    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(
        tiny_config(),
        mask_ratio=np.float32(0.75),
        sampler_depth=np.int64(2),
        sampler_width=np.int32(16),
        sampler_heads=np.int64(4),
        sampling_weight=np.float64(1e-3),
        sampling_entropy_weight=np.float32(0.25),
    )
    cfg = m.config
    assert m.mask_sampler.num_visible == 8 and len(m.mask_sampler.blocks) == 2 and m.mask_sampler.width == 16
    for name in ("mask_ratio", "sampling_weight", "sampling_entropy_weight"):
        assert type(getattr(cfg, f"adamask_{name}")) is float, name
    for name in ("sampler_depth", "sampler_width", "sampler_heads"):
        assert type(getattr(cfg, f"adamask_{name}")) is int, name
    m.save_pretrained(tmp_path)  # JSON: numpy scalars would not serialise
    loaded = AdaptiveVideoMAEForPreTraining.from_pretrained(tmp_path)
    assert loaded.config.adamask_sampling_entropy_weight == 0.25 and loaded.mask_sampler.num_visible == 8


# ---------------------------------------------------------------------------------------------
# loss settings: the entropy bonus and the RLOO baseline


def test_entropy_weight_and_rloo_reach_the_sampling_loss():
    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(
        tiny_config(), mask_ratio=0.75, sampling_entropy_weight=0.5, sampling_baseline="rloo", sampling_weight=0.1
    ).eval()
    assert m.config.adamask_sampling_entropy_weight == 0.5 and m.loss_settings.entropy_weight == 0.5
    assert m.loss_settings.baseline == "rloo"
    out = m(clips(), generator=torch.Generator().manual_seed(1))
    want = sampling_loss(out.probs, out.mask, out.token_error, baseline="rloo", entropy_weight=0.5)
    plain = sampling_loss(out.probs, out.mask, out.token_error, baseline="rloo")
    torch.testing.assert_close(out.sampling_loss, want)
    assert not torch.allclose(want, plain)  # the bonus changes the term
    torch.testing.assert_close(out.loss, out.reconstruction_loss + 0.1 * want)


def test_entropy_weight_defaults_to_zero_also_for_configs_saved_without_it(tmp_path):
    m = AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.75)
    assert m.config.adamask_sampling_entropy_weight == 0.0 and m.loss_settings.entropy_weight == 0.0
    del m.config.adamask_sampling_entropy_weight  # as saved before the option existed
    m.save_pretrained(tmp_path)
    assert AdaptiveVideoMAEForPreTraining.from_pretrained(tmp_path).loss_settings.entropy_weight == 0.0
    with pytest.raises(ValueError, match="entropy_weight"):
        AdaptiveVideoMAEForPreTraining(tiny_config(), sampling_entropy_weight=-1.0)


# ---------------------------------------------------------------------------------------------
# pixel input


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_float_pixels_of_another_dtype_are_cast_to_the_models(model, dtype):
    x = clips()
    want = model(x, bool_masked_pos=fixed_mask())
    got = model(x.to(dtype), bool_masked_pos=fixed_mask())
    torch.testing.assert_close(got.reconstruction_loss, model(x.to(dtype).float(), bool_masked_pos=fixed_mask()).loss)
    assert got.logits.dtype == want.logits.dtype == torch.float32
    sampled = model(x.to(dtype))
    assert sampled.mask.sum(1).tolist() == [N - 8] * B and torch.isfinite(sampled.loss)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.bool])
def test_integer_pixels_are_refused_by_name(model, dtype):
    with pytest.raises(TypeError, match=rf"pixel_values must be a floating-point .* got dtype {dtype}"):
        model(clips().to(dtype))


def test_an_empty_batch_is_refused_by_name(model):
    with pytest.raises(ValueError, match="batch size B of pixel_values .* got 0"):
        model(clips(0))
    with pytest.raises(ValueError, match="batch size B of pixel_values"):
        model(clips(0), bool_masked_pos=torch.zeros(0, N, dtype=torch.bool))


# ---------------------------------------------------------------------------------------------
# the strategy's own options


def test_strategy_options_reach_the_strategy_and_round_trip(tmp_path):
    from adamask.motion import MotionMasking

    m = AdaptiveVideoMAEForPreTraining(
        tiny_config(), mask_ratio=0.75, strategy="motion", strategy_options={"temperature": 0.0, "distance": "cosine"}
    )
    assert isinstance(m.mask_sampler, MotionMasking)
    assert m.mask_sampler.temperature == 0.0 and m.mask_sampler.distance == "cosine"
    m.save_pretrained(tmp_path)
    loaded = AdaptiveVideoMAEForPreTraining.from_pretrained(tmp_path)
    assert loaded.mask_sampler.distance == "cosine" and loaded.config.adamask_strategy_options == {
        "temperature": 0.0,
        "distance": "cosine",
    }
    # temperature 0: the most-changed tokens, the same on every call
    assert torch.equal(m(clips()).mask, m(clips()).mask)
    ep = AdaptiveVideoMAEForPreTraining(
        tiny_config(), strategy="error_predictor", sampler_depth=2, strategy_options={"temperature": 2.0}
    )
    assert ep.mask_sampler.temperature == 2.0 and len(ep.mask_sampler.blocks) == 2


@pytest.mark.parametrize(
    "value", [["temperature", 0.0], {"temperature": np.float32(0.5)}, {1: 2}, {"temperature": float("nan")}]
)
def test_strategy_options_must_be_a_json_dict(value):
    with pytest.raises(TypeError, match="strategy_options"):
        AdaptiveVideoMAEForPreTraining(tiny_config(), strategy="motion", strategy_options=value)
    with pytest.raises(ValueError, match="distance"):
        AdaptiveVideoMAEForPreTraining(tiny_config(), strategy="motion", strategy_options={"distance": "l3"})
