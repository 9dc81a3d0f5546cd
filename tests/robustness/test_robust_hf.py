"""Hostile inputs to the Hugging Face integration: generated option values (Python and numpy numbers,
strings, None, NaN), token grids, caller-given masks of every dtype and count, pixels of every dtype.
Each either works (and then the config still saves as JSON and holds the options given, and the mask
counts are exact) or raises a ValueError / TypeError naming the argument; the caller's config is never
modified, and a refused ``wrap`` leaves the model as it was."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

pytest.importorskip("transformers")
from _hf_helpers import N, clips, tiny_config  # noqa: E402
from transformers import VideoMAEForPreTraining  # noqa: E402

from adamask.integrations.hf import ADAMASK_DEFAULTS, AdaptiveVideoMAEForPreTraining, wrap  # noqa: E402
from adamask.validation import visible_count  # noqa: E402

few = settings(max_examples=15)

value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 40),
    st.floats(-2, 2, width=32),
    st.sampled_from(
        [
            float("nan"),
            float("inf"),
            0.5,
            0.75,
            1e-3,
            "adaptive",
            "motion",
            "error_predictor",
            "mean",
            "rloo",
            "paper",
            "block",
            "mlp",
            "yes",
            "",
        ]
    ),
    st.integers(1, 8).map(np.int64),
    st.floats(0.05, 0.95).map(np.float32),
)


def config_state(cfg) -> dict:
    return copy.deepcopy(vars(cfg))


@few
@given(options=st.dictionaries(st.sampled_from(sorted(ADAMASK_DEFAULTS)), value, max_size=3), via_wrap=st.booleans())
def test_any_options_build_or_name_themselves_and_never_touch_the_callers_config(options, via_wrap):
    cfg = tiny_config()
    stock = VideoMAEForPreTraining(cfg) if via_wrap else None  # HF itself may note things on cfg here
    before = config_state(cfg)
    try:
        m = wrap(stock, **options) if via_wrap else AdaptiveVideoMAEForPreTraining(cfg, **options)
    except (ValueError, TypeError) as e:
        assert (
            any(name in str(e) for name in options)
            or "variant" in str(e)
            or "heads" in str(e)
            or "divisible" in str(e)
            or "depth" in str(e)
            or "width" in str(e)
        ), (options, str(e))
        if via_wrap:
            assert type(stock) is VideoMAEForPreTraining and not hasattr(stock, "mask_sampler")
    else:
        assert m.config is not cfg
        m.config.to_json_string()  # saves: every value a plain JSON type
        for name, v in options.items():
            got = getattr(m.config, f"adamask_{name}")
            assert got == v or (isinstance(v, float) and got == pytest.approx(float(v))), name
        assert (m is stock) == via_wrap and m.mask_sampler.training == m.training
        out = m(clips())  # the model it built samples masks of exactly the configured count
        masked = N - visible_count(N, m.config.adamask_mask_ratio)
        assert out.mask.sum(1).tolist() == [masked] * len(out.mask) and torch.isfinite(out.loss)
    assert config_state(cfg) == before


@settings(max_examples=8)
@given(
    frames=st.sampled_from([2, 4, 6]),
    tubelet=st.sampled_from([1, 2]),
    image=st.sampled_from([8, 16, 24]),
    patch=st.sampled_from([4, 8]),
    ratio=st.floats(0.01, 0.99),
    batch=st.integers(1, 3),
)
def test_any_grid_and_ratio_give_exact_counts_or_a_named_error(frames, tubelet, image, patch, ratio, batch):
    cfg = tiny_config(num_frames=frames, tubelet_size=tubelet, image_size=image, patch_size=patch)
    n = (frames // tubelet) * (image // patch) ** 2
    try:
        m = AdaptiveVideoMAEForPreTraining(cfg, mask_ratio=ratio)
    except ValueError as e:
        assert "mask_ratio" in str(e) or "token grid" in str(e), str(e)
        assert not 0 < visible_count(n, ratio) < n or frames % tubelet or image % patch
        return
    x = torch.randn(batch, frames, 3, image, image)
    out = m(x)
    assert out.mask.shape == (batch, n) and out.mask.sum(1).tolist() == [n - visible_count(n, ratio)] * batch
    assert torch.isfinite(out.loss)


MASK_DTYPES = [
    torch.bool,
    torch.uint8,
    torch.int8,
    torch.int32,
    torch.int64,
    torch.float16,
    torch.float32,
    torch.float64,
    torch.complex64,
]


@few
@given(
    dtype=st.sampled_from(MASK_DTYPES),
    counts=st.lists(st.integers(0, N), min_size=2, max_size=2),
    other=st.sampled_from([1, 2, -1, 0.5]),
    seed=st.integers(0, 1000),
)
@example(dtype=torch.uint8, counts=[0, 1], other=1, seed=0)  # row 0 becomes [1, 0, ...]: a valid mask of 1 token
@example(dtype=torch.int64, counts=[1, 1], other=0.5, seed=3)  # 0.5 held as 0 by an integer mask
def test_any_caller_given_mask_is_used_exactly_or_named(dtype, counts, other, seed):
    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.75).eval()
    g = torch.Generator().manual_seed(seed)
    mask = torch.stack([torch.randperm(N, generator=g) < c for c in counts])
    given_mask = mask.to(dtype)
    if dtype != torch.bool and seed % 3 == 0:  # one entry set to `other`, as the mask's dtype holds it (0.5 in an
        given_mask = given_mask.clone()  # integer mask is 0, -1 in uint8 is 255): maybe 0 or 1 again
        given_mask[0, 0] = other
    valid = bool(((given_mask == 0) | (given_mask == 1)).all())
    meant = given_mask != 0
    try:
        out = m(clips(), bool_masked_pos=given_mask)
    except (ValueError, TypeError) as e:
        assert "bool_masked_pos" in str(e), str(e)
        return
    masked = meant.sum(1).tolist()
    assert valid and torch.equal(out.mask, meant) and masked[0] == masked[1] and 0 < masked[0] < N
    assert out.sampling_loss is None and torch.isfinite(out.loss)


PIXEL_DTYPES = [
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.uint8,
    torch.int16,
    torch.int64,
    torch.bool,
]


@few
@given(
    dtype=st.sampled_from(PIXEL_DTYPES),
    batch=st.integers(0, 2),
    strategy=st.sampled_from(["adaptive", "motion", "error_predictor"]),
)
def test_any_pixel_dtype_is_cast_or_named(dtype, batch, strategy):
    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.75, strategy=strategy)
    try:
        out = m(clips(batch).to(dtype))
    except (ValueError, TypeError) as e:
        assert "pixel_values" in str(e) and (batch == 0 or not dtype.is_floating_point), str(e)
        return
    assert dtype.is_floating_point and batch > 0
    assert out.logits.dtype == torch.float32 and torch.isfinite(out.loss)
    assert out.mask.sum(1).tolist() == [N - 8] * batch
