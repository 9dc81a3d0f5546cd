"""The masking contract, checked for every registered strategy (the registry drives the parametrisation:
registering a strategy is enough to have it tested): counts, disjoint / complete / ascending index sets,
determinism under a generator, meta tensors, ratio changes, and the loss term of learned strategies."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import adamask
from adamask.masking import check_masking

# the strategies adamask ships (tests register toys of their own, written against the minimal contract)
NAMES = [n for n in adamask.list_maskings() if adamask.strategy_info(n).factory.__module__.startswith("adamask.")]
EMBED = 8


def build(name, grid, ratio=None):
    return adamask.create_masking(name, grid=grid, mask_ratio=ratio, embed_dim=EMBED)


@pytest.mark.parametrize("name", NAMES)
@given(
    grid=st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 6)),
    ratio=st.floats(0.05, 0.95),
    b=st.integers(1, 3),
    seed=st.integers(0, 2**31 - 1),
)
def test_counts_and_index_sets(name, grid, ratio, b, seed, strategy_input):
    try:
        s = build(name, grid, ratio)
    except ValueError as e:  # degenerate counts or a grid the strategy cannot use: named, never a wrong mask
        assert any(w in str(e) for w in ("visible", "grid", "even")), str(e)
        return
    n = math.prod(grid)
    m = s(strategy_input(s, b, EMBED), generator=torch.Generator().manual_seed(seed))
    check_masking(m, n)
    assert m.mask.shape == (b, n) and m.num_visible == s.num_visible and 1 <= s.num_visible < n
    assert (m.probs is not None) or not adamask.strategy_info(name).learned


@pytest.mark.parametrize("name", NAMES)
def test_info_matches_the_strategy(name):
    info = adamask.strategy_info(name)
    s = build(name, (4, 4, 4))
    assert s.mask_ratio == info.default_ratio
    assert adamask.is_learned(s) == info.learned and getattr(s, "needs", "tokens") == info.needs
    if info.learned:
        assert isinstance(s, torch.nn.Module) and info.takes_embed_dim and s.embed_dim == EMBED


@pytest.mark.parametrize("name", NAMES)
def test_same_generator_same_mask(name, strategy_input):
    s = build(name, (4, 4, 4), 0.75)
    x = strategy_input(s, 3, EMBED, torch.Generator().manual_seed(1))
    a = s(x, generator=torch.Generator().manual_seed(7))
    b = s(x, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.mask, b.mask) and torch.equal(a.visible_idx, b.visible_idx)
    torch.manual_seed(3)
    c = s(x)
    torch.manual_seed(3)
    assert torch.equal(c.mask, s(x).mask)


@pytest.mark.parametrize("name", NAMES)
def test_runs_on_meta_tensors(name, strategy_input):
    s = build(name, (8, 14, 14)).to("meta")
    x = strategy_input(s, 4, EMBED, device="meta")
    m = s(x)
    assert m.mask.device.type == "meta" and m.visible_idx.shape == (4, s.num_visible)
    if adamask.is_learned(s):
        err = torch.randn(4, m.num_masked, device="meta")
        assert adamask.learned_loss(s, m, err, adamask.LossSettings()).device.type == "meta"


@pytest.mark.parametrize("name", NAMES)
def test_mask_ratio_can_change(name, strategy_input):
    s = build(name, (4, 4, 4), 0.5)
    before = s.num_visible
    s.set_mask_ratio(0.75)
    assert s.mask_ratio == 0.75 and s.num_visible < before
    check_masking(s(strategy_input(s, 2, EMBED)), 64)
    refused = 0
    for extreme in (0.999, 0.001):  # at least one leaves no visible or no masked unit
        try:
            s.set_mask_ratio(extreme)
        except ValueError:
            refused += 1
            assert s.mask_ratio == 0.75 and s.num_visible < before  # a refused ratio keeps the old one
        s.set_mask_ratio(0.75)
    assert refused >= 1


@pytest.mark.parametrize("name", [n for n in NAMES if adamask.strategy_info(n).needs == "nothing"])
def test_strategies_that_need_nothing_sample_without_input(name):
    s = build(name, (4, 4, 4), 0.5)
    m = s.sample(3, device="cpu", generator=torch.Generator().manual_seed(0))
    check_masking(m, 64)
    assert torch.equal(m.mask, s(batch_size=3, generator=torch.Generator().manual_seed(0)).mask)


@pytest.mark.parametrize("name", [n for n in NAMES if adamask.strategy_info(n).learned])
def test_learned_strategies_train_by_their_loss_term(name):
    torch.manual_seed(0)
    s = build(name, (2, 4, 4), 0.75)
    m = s(torch.randn(2, 32, EMBED))
    loss = adamask.learned_loss(s, m, torch.rand(2, m.num_masked), adamask.LossSettings())
    assert loss.shape == () and loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in s.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_every_strategy_trains_in_the_reference_mae(name):
    info = adamask.strategy_info(name)
    model = adamask.create_mae("nano", masking=name, mask_ratio=0.75)
    out = model(torch.randn(2, *model.input_shape))
    assert torch.isfinite(out.loss) and (out.sampling_loss is not None) == info.learned
    assert out.masking.num_visible == model.strategy.num_visible and out.masking.mask.shape == (2, model.num_tokens)
    out.loss.backward()
    assert model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
