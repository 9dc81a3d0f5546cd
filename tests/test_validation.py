import numpy as np
import pytest
import torch

import adamask
from adamask.validation import (
    assert_on_device,
    check_bool,
    check_grid,
    check_mask_ratio,
    check_positive_int,
    check_real,
    check_tokens,
    masked_count,
    visible_count,
)


@pytest.mark.parametrize(
    "n,ratio,visible",
    [
        (100, 0.9, 10),
        (50, 0.9, 5),
        (10, 0.9, 1),
        (1568, 0.95, 78),
        (512, 0.9, 51),
        (512, 0.95, 25),
        (30, 0.7, 9),
        (1000, 0.999, 1),
    ],
)
def test_visible_count_is_robust_to_float_representation(n, ratio, visible):
    # 100 * (1 - 0.9) is 9.999999999999998 in floating point: the count must still be 10
    assert visible_count(n, ratio) == visible


@pytest.mark.parametrize("n,ratio,masked", [(100, 0.9, 90), (10, 0.7, 7), (8, 0.9, 7), (196, 0.9, 176), (20, 0.35, 7)])
def test_masked_count_is_robust_to_float_representation(n, ratio, masked):
    assert masked_count(n, ratio) == masked


def test_counts_agree_across_strategies_at_ratio_0_9():
    # 100 tokens at 0.9: random and adaptive keep 10, as tube masking of a 1x10x10 grid does
    grid = (1, 10, 10)
    for name in ("random", "tube", "adaptive"):
        assert adamask.create_masking(name, grid=grid, mask_ratio=0.9, embed_dim=8).num_visible == 10, name
    assert adamask.create_masking("random", grid=(1, 2, 5), mask_ratio=0.9).num_visible == 1  # N=10 no longer raises


def test_numpy_numbers_are_accepted():
    assert check_grid((np.int64(2), np.int32(3), 4)) == (2, 3, 4)
    assert check_mask_ratio(np.float32(0.5)) == 0.5 and check_positive_int(np.int64(3), "x") == 3
    s = adamask.create_masking(
        "adaptive", grid=(np.int64(2), 4, 4), mask_ratio=np.float32(0.75), embed_dim=np.int64(16)
    )
    assert s.embed_dim == 16 and type(s.embed_dim) is int
    assert adamask.create_masking("tube", grid=(2, 4, 4), mask_ratio=0.5).sample(np.int64(3)).mask.shape == (3, 32)


@pytest.mark.parametrize("value", ["no", "yes", 1, 0, None])
def test_check_bool_refuses_non_bools(value):
    with pytest.raises(TypeError, match="flag must be True or False"):
        check_bool(value, "flag")


def test_check_real_names_range():
    with pytest.raises(ValueError, match=r"lr must be a finite number in \(0, inf\]"):
        check_real(float("inf"), "lr", low=0.0, low_open=True)
    with pytest.raises(TypeError, match="lr must be a real number"):
        check_real("1e-3", "lr")
    assert check_real(np.float32(0.25), "x", low=0.0, high=1.0) == 0.25


def test_check_tokens_names_width_and_empty_batch():
    with pytest.raises(ValueError, match=r"width D=7 but the strategy was built for embed_dim=8"):
        check_tokens(torch.zeros(2, 4, 7), 4, embed_dim=8)
    with pytest.raises(ValueError, match=r"at least one sample \(B >= 1\)"):
        check_tokens(torch.zeros(0, 4, 8), 4)


def test_assert_on_device_raises_on_cpu_and_is_silent_on_meta():
    with pytest.raises(RuntimeError, match="rows differ"):
        assert_on_device(torch.tensor(False), "rows differ")
    assert_on_device(torch.tensor(True), "fine")
    assert_on_device(torch.empty((), dtype=torch.bool, device="meta"), "not checked on meta")
