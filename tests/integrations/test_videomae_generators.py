"""VideoMAE integration, the data-loader generator drop-ins: call and output contract, every strategy."""

from __future__ import annotations

import pytest
import torch

from adamask.integrations import videomae as vm

# ---------------------------------------------------------------------------------------------
# the generator drop-in: call and output contract, counts re-derived without numpy


def expected_masked(strategy: str, grid, ratio: float) -> int:
    t, h, w = grid
    return {
        "tube": t * int(ratio * h * w),
        "random": int(ratio * t * h * w),
        "frame": int(ratio * t) * h * w,
        "adaptive": 0,
    }[strategy]


@pytest.mark.parametrize("strategy", ["tube", "random", "frame", "adaptive"])
@pytest.mark.parametrize("shape", ["flat", "frames"])
@pytest.mark.parametrize("grid,ratio", [((8, 14, 14), 0.9), ((2, 4, 4), 0.75), ((4, 3, 5), 0.5)])
def test_generator_output_contract(strategy, shape, grid, ratio):
    gen = vm.MaskingGenerator(grid, ratio, strategy=strategy, shape=shape)
    for _ in range(3):
        m = gen()
        assert type(m).__module__ == "numpy" and m.dtype.name == "float64"
        t, h, w = grid
        assert m.shape == ((t * h * w,) if shape == "flat" else (t, h * w))
        flat = [float(v) for v in m.reshape(-1).tolist()]
        assert set(flat) <= {0.0, 1.0}
        assert int(sum(flat)) == expected_masked(strategy, grid, ratio)
        slices = [flat[i * h * w : (i + 1) * h * w] for i in range(t)]
        if strategy == "tube":
            assert all(s == slices[0] for s in slices)
        if strategy == "frame":
            assert all(len(set(s)) == 1 for s in slices)


def test_generator_aliases_match_upstream_shapes():
    assert vm.TubeMaskingGenerator((8, 14, 14), 0.9)().shape == (1568,)
    assert vm.TubeMaskingGeneratorV2((8, 14, 14), 0.9)().shape == (8, 196)
    assert vm.RandomMaskingGenerator(4, 0.5)().shape == (64,)
    torch.manual_seed(0)
    a = vm.TubeMaskingGenerator((2, 4, 4), 0.5)()
    torch.manual_seed(0)
    assert (vm.TubeMaskingGenerator((2, 4, 4), 0.5)() == a).all()
    assert "placeholder" in repr(vm.TubeMaskingGenerator((2, 4, 4), 0.5, strategy="adaptive"))


@pytest.mark.parametrize(
    "kwargs,err",
    [
        (dict(input_size=(2, 4, 4), mask_ratio=0.5, strategy="blocks"), ValueError),
        (dict(input_size=(2, 4, 4), mask_ratio=0.5, shape="grid"), ValueError),
        (dict(input_size=(2, 4, 4), mask_ratio=1.5), ValueError),
        (dict(input_size=(2, 4), mask_ratio=0.5), TypeError),
        (dict(input_size=(2, 4, 4), mask_ratio="0.5"), TypeError),
        (dict(input_size=(1, 1, 2), mask_ratio=0.1, strategy="random"), ValueError),
    ],
)
def test_generator_rejects_bad_input(kwargs, err):
    with pytest.raises(err):
        vm.MaskingGenerator(**kwargs)


def test_generator_takes_every_registered_strategy():
    from adamask import MaskingStrategy, masking_from_mask, register_masking, strategy_info

    @register_masking("first_half_test", default_ratio=0.5, override=True)
    class FirstHalf(MaskingStrategy):  # a user's strategy that needs nothing
        def __init__(self, grid, mask_ratio):
            super().__init__(grid, mask_ratio)
            self.num_visible = self.num_tokens // 2

        def sample(self, batch_size, device=None, generator=None):
            mask = (torch.arange(self.num_tokens, device=device) < self.num_masked).expand(batch_size, -1)
            return masking_from_mask(mask.contiguous(), self.num_visible)

    names = vm.mask_types()
    assert set(vm.MASK_TYPES) | {"first_half_test", "toy_learned", "toy_norm"} <= set(names)
    assert all(strategy_info(n).needs in ("nothing", "tokens") for n in names)
    m = vm.MaskingGenerator((2, 2, 2), 0.5, strategy="first_half_test")()
    assert m.tolist() == [1.0] * 4 + [0.0] * 4 and "4 of 8 masked" in repr(
        vm.MaskingGenerator((2, 2, 2), 0.5, "first_half_test")
    )
    for token_strategy in ("toy_learned", "toy_norm"):  # drawn by the model: a placeholder here
        gen = vm.MaskingGenerator((2, 2, 2), 0.5, strategy=token_strategy)
        assert gen().sum() == 0 and "placeholder" in repr(gen)
