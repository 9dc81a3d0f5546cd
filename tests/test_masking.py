import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import adamask
from adamask.masking import Masking, MaskingStrategy, check_masking, masking_from_draw, masking_from_mask


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


@pytest.mark.parametrize(
    "name,grid,ratio",
    [
        ("random", (1, 2, 2), 0.9),  # int(4 * 0.1) = 0 visible
        ("tube", (4, 2, 2), 0.1),  # int(0.1 * 4) = 0 masked per slice
        ("frame", (1, 4, 4), 0.9),  # int(0.9 * 1) = 0 slices masked
        ("frame", (4, 4, 4), 0.1),  # int(0.4) = 0 slices masked
        ("adaptive", (1, 2, 2), 0.9),
    ],
)
def test_degenerate_counts(name, grid, ratio):
    with pytest.raises(ValueError, match="visible"):
        make(name, grid, ratio)


def test_extreme_but_valid_counts():
    assert make("tube", (4, 2, 2), 0.99).num_visible == 4  # 3 of 4 masked per slice
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


class ToyLearned(torch.nn.Module):
    """A learned strategy written against the contract only (not a LearnedMaskingStrategy subclass):
    scores = tokens @ w, keeps the top half; its loss term is the mean of w's scores of masked tokens."""

    learned = True
    needs = "tokens"

    def __init__(self, grid, mask_ratio, embed_dim):
        super().__init__()
        self.grid, self.mask_ratio = tuple(grid), mask_ratio
        self.num_tokens = grid[0] * grid[1] * grid[2]
        self.num_visible = self.num_tokens // 2
        self.w = torch.nn.Parameter(torch.ones(embed_dim) / embed_dim)

    def forward(self, tokens, generator=None):
        scores = tokens @ self.w
        visible = scores.topk(self.num_visible, dim=1).indices
        mask = torch.ones_like(scores, dtype=torch.bool).scatter_(1, visible, False)
        return masking_from_mask(mask, self.num_visible, probs=scores.softmax(1))

    def masking_loss(self, masking, token_error, settings):
        return token_error.mean().detach() + self.w.sum()


def test_learned_strategy_contract_by_declaration_not_name():
    adamask.register_masking("toy_learned_contract", default_ratio=0.5, override=True)(ToyLearned)
    info = adamask.strategy_info("toy_learned_contract")
    assert info.learned and info.takes_embed_dim and info.needs == "tokens" and info.default_ratio == 0.5
    assert not adamask.strategy_info("tube").learned and adamask.strategy_info("tube").needs == "nothing"
    assert adamask.strategy_info("adaptive").learned and adamask.strategy_info("adaptive").takes_embed_dim
    # embed_dim reaches strategies that take it and is ignored by the others
    assert adamask.create_masking("toy_learned_contract", grid=(2, 2, 2), embed_dim=5).w.shape == (5,)
    assert adamask.create_masking("random", grid=(4, 4, 4), embed_dim=5).num_visible == 6
    model = adamask.create_mae("nano", masking="toy_learned_contract", mask_ratio=0.5)
    assert model.mask_sampler.w.shape == (model.embed_dim,) and model.is_adaptive
    out = model(torch.randn(2, *model.input_shape))
    expected = out.token_error.mean() + model.mask_sampler.w.sum()
    assert torch.allclose(out.sampling_loss, expected)
    assert torch.allclose(out.loss, out.reconstruction_loss + model.sampling_weight * expected)
    out.loss.backward()
    assert model.mask_sampler.w.grad is not None


def test_learned_base_class_defaults_to_the_sampling_loss():
    s = adamask.create_masking("adaptive", grid=(2, 2, 2), mask_ratio=0.5, embed_dim=8)
    assert isinstance(s, adamask.LearnedMaskingStrategy) and isinstance(s, MaskingStrategy)
    m = s(torch.randn(3, 8, 8))
    err = torch.rand(3, 4)
    settings = adamask.LossSettings(estimator="plackett_luce", baseline="mean")
    got = adamask.learned_loss(s, m, err, settings)
    want = adamask.sampling_loss(
        m.probs, m.mask, err, estimator="plackett_luce", baseline="mean", draw_order=m.draw_order
    )
    assert torch.equal(got, want)
    assert (
        adamask.learned_loss(
            s, adamask.create_masking("random", grid=(2, 2, 2), mask_ratio=0.5).sample(3), err, settings
        )
        is None
    )
    with pytest.raises(NotImplementedError, match="tokens"):
        s.sample(2)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(weight=-1.0), "sampling_weight"),
        (dict(weight=float("nan")), "sampling_weight"),
        (dict(estimator="papr"), "sampling_estimator"),
        (dict(baseline="median"), "sampling_baseline"),
    ],
)
def test_loss_settings_validated(kw, match):
    with pytest.raises(ValueError, match=match):
        adamask.LossSettings(**kw)


def test_masking_from_mask_refuses_a_wrong_count():
    # used to return uninitialised memory as indices (e.g. 140629391904096)
    with pytest.raises(RuntimeError, match=r"mask exactly N - num_visible = 4 of its 6 tokens"):
        masking_from_mask(torch.tensor([[1, 0, 1, 0, 1, 0]]).bool(), 2)
    with pytest.raises(RuntimeError, match="every row of mask"):
        masking_from_mask(torch.tensor([[1, 0, 1, 0], [1, 1, 1, 0]]).bool(), 2)
    with pytest.raises(ValueError, match="num_visible"):
        masking_from_mask(torch.zeros(1, 4, dtype=torch.bool), 5)
    with pytest.raises(TypeError, match="bool"):
        masking_from_mask(torch.zeros(1, 4), 4)


def test_models_check_a_custom_strategys_first_output():
    from adamask.masking import check_masking

    def off_by_one(tokens, generator=None):  # a buggy custom strategy: one token both visible and masked
        b, n, _ = tokens.shape
        mask = torch.zeros(b, n, dtype=torch.bool)
        mask[:, n // 2 :] = True
        vis = torch.arange(n // 2 + 1).expand(b, -1)
        msk = torch.arange(n // 2 + 1, n + 1).clamp_max(n - 1).expand(b, -1)
        return Masking(mask, vis, msk[:, : n - n // 2 - 1])

    model = adamask.create_mae("nano", masking=off_by_one)
    with pytest.raises(ValueError, match=r"masking strategy off_by_one breaks the Masking contract"):
        model(torch.randn(2, *model.input_shape))
    good = masking_from_mask(torch.tensor([[True, False, True, False]]), 2)
    check_masking(good, 4)
    with pytest.raises(ValueError, match="draw_order"):
        check_masking(Masking(good.mask, good.visible_idx, good.masked_idx, draw_order=torch.tensor([[0, 1]])))
    with pytest.raises(ValueError, match="probs sum to 1"):
        check_masking(Masking(good.mask, good.visible_idx, good.masked_idx, probs=torch.ones(1, 4)))


def test_validation_modes():
    from adamask.masking import set_validation

    calls = []

    def flaky(tokens, generator=None):  # right on the first call, wrong afterwards
        calls.append(1)
        b, n, _ = tokens.shape
        m = masking_from_mask((torch.arange(n) % 2 == 0).expand(b, n).contiguous(), n // 2)
        if len(calls) > 1:
            return Masking(m.mask, m.masked_idx, m.visible_idx)
        return m

    model = adamask.create_mae("nano", masking=flaky)
    video = torch.randn(1, *model.input_shape)
    model(video)
    model(video)  # default "first": later calls are trusted
    try:
        set_validation("always")
        with pytest.raises(ValueError, match="breaks the Masking contract"):
            model(video)
        with pytest.raises(ValueError, match="mode must be one of"):
            set_validation("sometimes")
    finally:
        set_validation("first")


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 70), st.data())
def test_masking_from_draw_matches_masking_from_mask(batch, n, data):
    num_visible = data.draw(st.integers(0, n))
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    draw = torch.rand(batch, n, generator=g).topk(num_visible, dim=1, sorted=False).indices
    got = masking_from_draw(draw, n)
    mask = torch.ones(batch, n, dtype=torch.bool).scatter_(1, draw, False)
    want = masking_from_mask(mask, num_visible)
    assert torch.equal(got.mask, mask)
    assert torch.equal(got.visible_idx, want.visible_idx) and torch.equal(got.masked_idx, want.masked_idx)
    check_masking(got, n)
    # the CUDA path (one stable sort of the mask) orders tokens exactly like the CPU counting sort
    order = torch.argsort(mask.view(torch.uint8), dim=1, stable=True)
    assert torch.equal(order[:, :num_visible], want.visible_idx) and torch.equal(
        order[:, num_visible:], want.masked_idx
    )
