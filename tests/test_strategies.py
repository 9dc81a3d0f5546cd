"""Properties of every strategy's masks: exact counts, disjoint/complete ascending index sets,
mask == complement of visible, determinism, and the tube/frame structure."""

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import adamask
from adamask.validation import masked_count, visible_count

NAMES = ["random", "tube", "frame", "adaptive"]


def expected_visible(name, grid, ratio):
    t, h, w = grid
    n = t * h * w
    if name in ("random", "adaptive"):
        return visible_count(n, ratio)
    if name == "tube":
        return t * (h * w - masked_count(h * w, ratio))
    return (t - masked_count(t, ratio)) * h * w


def build(name, grid, ratio):
    opts = dict(embed_dim=8, num_heads=2) if name == "adaptive" else {}
    return adamask.create_masking(name, grid=grid, mask_ratio=ratio, **opts)


def valid(name, grid, ratio):
    t, h, w = grid
    nv = expected_visible(name, grid, ratio)
    unit = {"tube": h * w - masked_count(h * w, ratio), "frame": t - masked_count(t, ratio)}.get(name, nv)
    total = {"tube": h * w, "frame": t}.get(name, t * h * w)
    return 1 <= unit < total


grids = st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 5))
ratios = st.floats(0.05, 0.95)


def check_masking(m, b, n, nv):
    assert m.mask.shape == (b, n) and m.mask.dtype == torch.bool
    assert m.visible_idx.shape == (b, nv) and m.masked_idx.shape == (b, n - nv)
    assert m.visible_idx.dtype == torch.int64 and m.masked_idx.dtype == torch.int64
    assert (m.mask.sum(1) == n - nv).all()
    assert (m.visible_idx.diff(dim=1) > 0).all() and (m.masked_idx.diff(dim=1) > 0).all()
    both = torch.cat([m.visible_idx, m.masked_idx], 1).sort(1).values
    assert torch.equal(both, torch.arange(n).expand(b, n))  # disjoint and complete
    assert not m.mask.gather(1, m.visible_idx).any() and m.mask.gather(1, m.masked_idx).all()


@pytest.mark.parametrize("name", NAMES)
@given(grid=grids, ratio=ratios, b=st.integers(1, 4))
def test_counts_and_index_sets(name, grid, ratio, b):
    if not valid(name, grid, ratio):
        with pytest.raises(ValueError):
            build(name, grid, ratio)
        return
    s = build(name, grid, ratio)
    n = grid[0] * grid[1] * grid[2]
    assert s.num_visible == expected_visible(name, grid, ratio)
    m = s(torch.randn(b, n, 8))
    check_masking(m, b, n, s.num_visible)
    assert (m.probs is None) == (name != "adaptive")


@pytest.mark.parametrize("name", NAMES)
@given(seed=st.integers(0, 2**31 - 1), b=st.integers(1, 3))
def test_same_seed_same_mask(name, seed, b):
    s = build(name, (4, 3, 3), 0.75)
    x = torch.randn(b, 36, 8, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(seed)
    m1 = s(x)
    torch.manual_seed(seed)
    m2 = s(x)
    assert torch.equal(m1.mask, m2.mask)
    g1, g2 = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    assert torch.equal(s(x, generator=g1).mask, s(x, generator=g2).mask)


@pytest.mark.parametrize("name", ["random", "tube", "frame"])
def test_samples_differ_within_batch_and_over_calls(name):
    s = build(name, (8, 7, 7), 0.75)
    m = s.sample(16)
    assert len({tuple(r.tolist()) for r in m.visible_idx}) > 1
    assert not torch.equal(m.mask, s.sample(16).mask)


@given(grid=st.tuples(st.integers(2, 4), st.integers(2, 5), st.integers(2, 5)), ratio=ratios)
def test_tube_repeats_one_spatial_pattern(grid, ratio):
    assume(valid("tube", grid, ratio))
    t, h, w = grid
    m = build("tube", grid, ratio).sample(3).mask.view(3, t, h * w)
    assert (m == m[:, :1]).all()
    assert (m.sum(-1) == masked_count(h * w, ratio)).all()


@given(grid=st.tuples(st.integers(2, 6), st.integers(1, 4), st.integers(1, 4)), ratio=ratios)
def test_frame_hides_whole_slices(grid, ratio):
    assume(valid("frame", grid, ratio))
    t, h, w = grid
    m = build("frame", grid, ratio).sample(3).mask.view(3, t, h * w)
    assert ((m.all(-1)) | (~m.any(-1))).all()  # each slice all masked or all visible
    assert (m.all(-1).sum(-1) == masked_count(t, ratio)).all()


def test_random_is_uniform_over_positions():
    s = build("random", (2, 4, 4), 0.75)
    freq = s.sample(20000).mask.float().mean(0)
    assert torch.allclose(freq, torch.full_like(freq, 0.75), atol=0.015)


@pytest.mark.parametrize("name", ["random", "tube", "frame"])
def test_sample_without_tokens(name):
    s = build(name, (2, 4, 4), 0.5)
    m = s.sample(5, device="cpu")
    check_masking(m, 5, 32, s.num_visible)
    m2 = s(batch_size=3, device="cpu", generator=torch.Generator().manual_seed(0))
    assert torch.equal(m2.mask, s.sample(3, generator=torch.Generator().manual_seed(0)).mask)
    with pytest.raises(ValueError, match="batch_size"):
        s.sample(0)
    with pytest.raises(ValueError, match="batch_size"):
        s()


@pytest.mark.parametrize("name", NAMES)
def test_runs_on_meta_tensors(name):
    """No host sync and no data-dependent shapes: the whole path runs on the meta device."""
    s = build(name, (8, 14, 14), 0.9).to("meta")
    tokens = torch.randn(4, 1568, 8, device="meta")
    m = s(tokens)
    assert m.mask.device.type == "meta" and m.visible_idx.shape == (4, s.num_visible)
    if m.probs is not None:
        err = torch.randn(4, m.num_masked, device="meta")
        loss = adamask.sampling_loss(m.probs, m.mask, err)
        assert loss.device.type == "meta" and loss.shape == ()
        pl = adamask.sampling_loss(
            m.probs, m.mask, err, estimator="plackett_luce", baseline="mean", draw_order=m.draw_order
        )
        assert pl.device.type == "meta"
