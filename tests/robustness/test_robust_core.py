"""Hostile inputs to the core contract: arbitrary argument types for every registered strategy, and masks with
wrong counts. Each case raises a ValueError/TypeError naming the argument (or, for a mask, a device-side
assertion), never another error or a silent wrong mask. Valid arbitrary grids and ratios: test_contract.py."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import adamask
from adamask.masking import check_masking, masking_from_mask

NAMES = [n for n in adamask.list_maskings() if adamask.strategy_info(n).factory.__module__.startswith("adamask.")]
junk = st.one_of(
    st.none(),
    st.text(max_size=3),
    st.booleans(),
    st.floats(allow_nan=True),
    st.integers(-3, 3),
    st.lists(st.integers(-2, 5), max_size=4),
    st.just(torch.tensor(0.5)),
)


def build(name, grid, ratio):
    return adamask.create_masking(name, grid=grid, mask_ratio=ratio, embed_dim=8)


@pytest.mark.parametrize("name", NAMES)
@given(grid=junk, ratio=junk)
def test_bad_arguments_raise_value_or_type_errors(name, grid, ratio):
    try:
        build(name, grid, ratio)
    except (ValueError, TypeError) as e:
        assert any(w in str(e) for w in ("grid", "mask_ratio", "visible", "num_tokens")), str(e)


@given(
    rows=st.lists(st.lists(st.booleans(), min_size=6, max_size=6), min_size=1, max_size=4),
    num_visible=st.integers(0, 6),
)
def test_masking_from_mask_never_returns_garbage(rows, num_visible):
    mask = torch.tensor(rows)
    consistent = all(6 - sum(r) == num_visible for r in rows)
    if not consistent:
        with pytest.raises(RuntimeError, match="masking_from_mask"):
            masking_from_mask(mask, num_visible)
        return
    m = masking_from_mask(mask, num_visible)
    check_masking(m, 6)
    assert (m.visible_idx < 6).all() and (m.masked_idx < 6).all()
