import pytest
import torch

import adamask
from adamask.masking import Masking, MaskingStrategy, masking_from_mask


def test_builtin_names_listed():
    assert {"random", "tube", "frame", "adaptive"} <= set(adamask.list_maskings())
    assert adamask.list_maskings() == sorted(adamask.list_maskings())


def test_unknown_name_lists_known():
    with pytest.raises(ValueError, match=r"unknown masking strategy 'nope'.*random"):
        adamask.create_masking("nope", grid=(2, 2, 2), mask_ratio=0.5)


def make(name, grid, ratio):
    opts = dict(embed_dim=8, num_heads=2) if name == "adaptive" else {}
    return adamask.create_masking(name, grid=grid, mask_ratio=ratio, **opts)


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5, float("nan"), float("inf")])
@pytest.mark.parametrize("name", ["random", "tube", "frame", "adaptive"])
def test_bad_ratio_value(name, ratio):
    with pytest.raises(ValueError, match="mask_ratio"):
        make(name, (4, 4, 4), ratio)


@pytest.mark.parametrize("ratio", ["0.9", None.__class__, True, torch.tensor(0.5)])
def test_bad_ratio_type(ratio):
    with pytest.raises(TypeError, match="mask_ratio"):
        adamask.create_masking("random", grid=(4, 4, 4), mask_ratio=ratio)


@pytest.mark.parametrize("name,grid,ratio", [
    ("random", (1, 2, 2), 0.9),     # int(4 * 0.1) = 0 visible
    ("tube", (4, 2, 2), 0.1),       # int(0.1 * 4) = 0 masked per slice
    ("frame", (1, 4, 4), 0.9),      # int(0.9 * 1) = 0 slices masked
    ("frame", (4, 4, 4), 0.1),      # int(0.4) = 0 slices masked
    ("adaptive", (1, 2, 2), 0.9),
])
def test_degenerate_counts(name, grid, ratio):
    with pytest.raises(ValueError, match="visible"):
        make(name, grid, ratio)


def test_extreme_but_valid_counts():
    assert make("tube", (4, 2, 2), 0.99).num_visible == 4   # 3 of 4 masked per slice
    assert make("random", (1, 2, 2), 0.01).num_visible == 3  # int(4 * 0.99)
    assert make("frame", (2, 1, 1), 0.5).num_visible == 1


@pytest.mark.parametrize("grid", [(4, 4), (4, 0, 4), (4, -1, 4), (4.0, 4, 4), "448"])
def test_bad_grid(grid):
    with pytest.raises((ValueError, TypeError), match="grid"):
        adamask.create_masking("random", grid=grid, mask_ratio=0.5)


@pytest.mark.parametrize("name", ["random", "tube", "frame", "adaptive"])
def test_token_count_and_rank_checked(name):
    s = make(name, (2, 4, 4), 0.75)
    with pytest.raises(ValueError, match="T'\\*H'\\*W'"):
        s(torch.zeros(2, 31, 8))
    with pytest.raises(ValueError, match="rank"):
        s(torch.zeros(32, 8))
    with pytest.raises(TypeError, match="tokens"):
        s([[0.0] * 8] * 32)


def test_default_ratios():
    assert adamask.create_masking("random", grid=(8, 14, 14)).mask_ratio == 0.9
    assert adamask.create_masking("adaptive", grid=(8, 14, 14), embed_dim=64).mask_ratio == 0.95


def test_register_custom_strategy_works_everywhere():
    @adamask.register_masking("checker_test")
    class Checker(MaskingStrategy):
        def __init__(self, grid, mask_ratio):
            super().__init__(grid, mask_ratio)
            self.num_visible = self.num_tokens // 2

        def sample(self, batch_size, device=None, generator=None):
            mask = (torch.arange(self.num_tokens, device=device) % 2 == 0).expand(batch_size, -1)
            return masking_from_mask(mask.contiguous(), self.num_visible)

    assert "checker_test" in adamask.list_maskings()
    s = adamask.create_masking("checker_test", grid=(2, 2, 2), mask_ratio=0.5)
    m = s(torch.zeros(3, 8, 4))
    assert m.visible_idx.tolist() == [[1, 3, 5, 7]] * 3
    assert m.masked_idx.tolist() == [[0, 2, 4, 6]] * 3
    model = adamask.create_mae("nano", masking="checker_test", mask_ratio=0.5)
    out = model(torch.randn(2, *model.input_shape))
    assert out.sampling_loss is None and out.pred.shape[1] == 16
    with pytest.raises(ValueError, match="already registered"):
        adamask.register_masking("checker_test")(lambda **kw: None)


def test_masking_shape_checks():
    mask = torch.tensor([[True, False, True]])
    with pytest.raises(ValueError, match="split"):
        Masking(mask, torch.tensor([[1, 0]]), torch.tensor([[0, 2]]))
    with pytest.raises(TypeError, match="bool"):
        Masking(mask.long(), torch.tensor([[1]]), torch.tensor([[0, 2]]))
    m = masking_from_mask(mask, 1)
    assert m.visible_idx.tolist() == [[1]] and m.masked_idx.tolist() == [[0, 2]]
    assert (m.num_visible, m.num_masked) == (1, 2)


def test_default_ratio_lookup():
    assert adamask.default_ratio("adaptive") == 0.95 and adamask.default_ratio("tube") == 0.9
    with pytest.raises(ValueError, match="known"):
        adamask.default_ratio("nope")
