"""Hugging Face VideoMAE integration, masks: caller-given bool_masked_pos, checked by value and property."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

transformers = pytest.importorskip("transformers")
from _hf_helpers import B, N, clips, fixed_mask, stock_twin  # noqa: E402

from adamask.integrations.hf import check_bool_masked_pos  # noqa: E402

# ---------------------------------------------------------------------------------------------
# caller-given masks


def test_caller_mask_is_used_without_sampling_loss(model):
    x, mask = clips(), fixed_mask()
    out = model(x, bool_masked_pos=mask)
    assert torch.equal(out.mask, mask) and out.probs is None and out.sampling_loss is None
    stock = stock_twin(model)(x, bool_masked_pos=mask)
    torch.testing.assert_close(out.loss, stock.loss, rtol=0, atol=0)
    torch.testing.assert_close(out.token_error.mean(), stock.loss, rtol=1e-6, atol=1e-7)
    # a 0/1 integer or float mask is cast to bool and gives the same result
    for dtype in (torch.long, torch.int32, torch.uint8, torch.float32):
        o = model(x, bool_masked_pos=mask.to(dtype))
        assert o.mask.dtype == torch.bool and torch.equal(o.mask, mask)
        torch.testing.assert_close(o.loss, out.loss, rtol=0, atol=0)


def test_bad_caller_masks_raise(model):
    x = clips()
    mask = fixed_mask()
    index_like = torch.randint(0, N, (B, N))  # what HF would silently use as integer indices
    with pytest.raises(ValueError, match="other than 0 and 1"):
        model(x, bool_masked_pos=index_like)
    with pytest.raises(ValueError, match="other than 0 and 1"):
        model(x, bool_masked_pos=mask.float() * 0.5)
    uneven = mask.clone()
    uneven[0, (~uneven[0]).nonzero()[0]] = True
    with pytest.raises(ValueError, match="same number"):
        model(x, bool_masked_pos=uneven)
    with pytest.raises(ValueError, match="shape"):
        model(x, bool_masked_pos=mask[:1])
    with pytest.raises(ValueError, match="shape"):
        model(x, bool_masked_pos=mask.flatten())
    with pytest.raises(ValueError, match="at least one"):
        model(x, bool_masked_pos=torch.zeros(B, N, dtype=torch.bool))
    with pytest.raises(ValueError, match="fewer than"):
        model(x, bool_masked_pos=torch.ones(B, N, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool_masked_pos"):
        model(x, bool_masked_pos=mask.tolist())
    m, k = check_bool_masked_pos(mask.to(torch.int8), B, N)
    assert m.dtype == torch.bool and k == 24


# ---------------------------------------------------------------------------------------------
# mask validation, property-based

DTYPES = [torch.bool, torch.uint8, torch.int8, torch.int32, torch.long, torch.float16, torch.float32, torch.float64]


@given(b=st.integers(1, 4), n=st.integers(2, 20), data=st.data(), dtype=st.sampled_from(DTYPES))
def test_check_bool_masked_pos_accepts_exactly_the_valid_masks(b, n, data, dtype):
    k = data.draw(st.integers(1, n - 1))
    seed = data.draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(b, n, dtype=torch.bool).scatter_(1, torch.rand(b, n, generator=g).argsort(1)[:, :k], True)
    out, count = check_bool_masked_pos(mask.to(dtype), b, n)
    assert out.dtype == torch.bool and torch.equal(out, mask) and count == k
    if dtype != torch.bool:
        bad = mask.to(dtype).clone()
        r, c = data.draw(st.integers(0, b - 1)), data.draw(st.integers(0, n - 1))
        bad[r, c] = data.draw(st.sampled_from([2, 3, -1] + ([0.5] if dtype.is_floating_point else [])))
        with pytest.raises(ValueError, match="other than 0 and 1"):
            check_bool_masked_pos(bad, b, n)
    if b > 1:
        uneven = mask.clone()
        row = uneven[0]
        row[(~row).nonzero()[0] if k < n - 1 else row.nonzero()[0]] = k < n - 1
        with pytest.raises(ValueError, match="same number"):
            check_bool_masked_pos(uneven.to(dtype), b, n)
