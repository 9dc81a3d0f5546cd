"""Foreground allocation, region errors and mask statistics, on constructed cases and in expectation."""

import math

import pytest
import torch

from adamask import create_masking, gumbel_topk
from adamask.compare.metrics import foreground_allocation, mask_statistics, probability_allocation
from adamask.masking import masking_from_mask

GRID = (4, 8, 8)
N = 256


def _foreground(batch: int, seed: int = 0) -> torch.Tensor:
    """(B, N) bool: a 3x3 block per time slice at a random place, moving one token per slice."""
    g = torch.Generator().manual_seed(seed)
    fg = torch.zeros(batch, *GRID, dtype=torch.bool)
    for b in range(batch):
        y, x = torch.randint(0, 5, (2,), generator=g).tolist()
        for t in range(GRID[0]):
            fg[b, t, y : y + 3, min(x + t, 5) : min(x + t, 5) + 3] = True
    return fg.view(batch, N)


def test_allocation_constructed_values():
    mask = torch.ones(1, 10, dtype=torch.bool)
    mask[0, [0, 5]] = False  # visible: 0 (foreground) and 5 (background)
    fg = torch.zeros(1, 10, dtype=torch.bool)
    fg[0, :2] = True
    # share visible on fg = 1/2, fg share = 2/10 -> 2.5
    assert foreground_allocation(mask, fg).item() == pytest.approx(2.5)
    mask2 = torch.ones(1, 10, dtype=torch.bool)
    mask2[0, [7, 8]] = False
    assert foreground_allocation(mask2, fg).item() == 0.0
    # float weights (motion energy): weighted shares
    w = torch.tensor([[3.0, 1.0] + [0.0] * 8])
    assert foreground_allocation(mask, w).item() == pytest.approx((3.0 / 2) / (4.0 / 10))
    # no foreground -> NaN, not an error
    assert math.isnan(foreground_allocation(mask, torch.zeros(1, 10)).item())


def test_allocation_rejects_bad_input():
    with pytest.raises(TypeError, match="mask"):
        foreground_allocation(torch.zeros(2, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="foreground"):
        foreground_allocation(torch.zeros(2, 4, dtype=torch.bool), torch.zeros(2, 5))
    with pytest.raises(ValueError, match=">= 0"):
        foreground_allocation(torch.zeros(1, 2, dtype=torch.bool), torch.tensor([[1.0, -1.0]]))


@pytest.mark.parametrize("name", ["random", "tube", "frame"])
def test_allocation_is_one_in_expectation_for_uniform_strategies(name):
    """Each token is visible with probability N_v / N under these strategies, so E[allocation] = 1 exactly
    for any fixed foreground; check the sample mean within 4 standard errors and within 0.02."""
    strategy = create_masking(name, grid=GRID, mask_ratio=0.9)
    fg = _foreground(8).repeat(1000, 1)  # 8000 clips, 8 distinct foregrounds
    g = torch.Generator().manual_seed(123)
    alloc = foreground_allocation(strategy.sample(fg.shape[0], generator=g).mask, fg)
    mean, se = alloc.mean().item(), alloc.std().item() / math.sqrt(alloc.numel())
    assert abs(mean - 1.0) <= 4 * se + 1e-9 and abs(mean - 1.0) < 0.02, (mean, se)


def test_random_allocation_exact_expectation_by_enumeration():
    """N = 6, 2 visible, foreground = tokens {0, 1, 2}: average over all 15 visible pairs is exactly 1."""
    import itertools

    fg = torch.tensor([[1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    vals = []
    for pair in itertools.combinations(range(6), 2):
        mask = torch.ones(1, 6, dtype=torch.bool)
        mask[0, list(pair)] = False
        vals.append(foreground_allocation(mask, fg).item())
    assert sum(vals) / len(vals) == pytest.approx(1.0, abs=1e-12)


def test_allocation_reacts_to_a_sampler_that_prefers_the_foreground():
    fg = _foreground(64, seed=1)
    nv = int(N * 0.05)
    g = torch.Generator().manual_seed(0)
    results = {}
    for weight in (0.1, 1.0, 4.0, 1e6):
        log_p = torch.log_softmax(torch.where(fg, math.log(weight), 0.0), dim=1)
        draw = gumbel_topk(log_p, nv, generator=g)
        mask = torch.ones_like(fg).scatter_(1, draw, False)
        m = masking_from_mask(mask, nv, probs=log_p.exp(), draw_order=draw)
        results[weight] = foreground_allocation(m.mask, fg).mean().item()
        # the expected allocation of a single draw: N * sum(p * g) / sum(g) = N * w / (w |F| + N - |F|)
        nf = fg.sum(1).float()
        exact = N * weight / (weight * nf + N - nf)
        assert torch.allclose(probability_allocation(m.probs, fg), exact, rtol=1e-4)
    assert results[0.1] < 0.6 < 1.5 < results[4.0]
    assert abs(results[1.0] - 1.0) < 0.25
    # all visible tokens on the foreground: the maximum, 1 / foreground share
    assert torch.allclose(torch.tensor(results[1e6]), (N / fg.sum(1).float()).mean(), rtol=1e-5)


def test_mask_statistics():
    tube = create_masking("tube", grid=GRID, mask_ratio=0.75).sample(16, generator=torch.Generator().manual_seed(0))
    s = mask_statistics(tube.mask, GRID)
    assert s["visible_per_time_slice"] == [16.0] * 4
    assert s["spatial_coverage"] == pytest.approx(16 / 64)
    assert s["visible_fraction"] == pytest.approx(0.25) and s["visible_per_slice_std"] == 0.0
    frame = create_masking("frame", grid=GRID, mask_ratio=0.75).sample(400, generator=torch.Generator().manual_seed(0))
    s = mask_statistics(frame.mask, GRID)
    assert s["spatial_coverage"] == 1.0 and sum(s["visible_per_time_slice"]) == pytest.approx(64)
    assert all(abs(v - 16) < 4 for v in s["visible_per_time_slice"])
    assert s["visible_per_slice_std"] == pytest.approx(math.sqrt(3 * 64**2 / 16))  # one slice of 64, three of 0
    with pytest.raises(ValueError, match="grid"):
        mask_statistics(frame.mask, (4, 8, 4))


try:
    from hypothesis import given
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None

if given is not None:

    @given(n=st.integers(4, 64), data=st.data())
    def test_allocation_identities(n, data):
        """allocation * (|F| / N) * N_v = visible tokens on F; scale-invariant in the weights; bounded by N / |F|."""
        nv = data.draw(st.integers(1, n - 1))
        vis = data.draw(st.lists(st.integers(0, n - 1), min_size=nv, max_size=nv, unique=True))
        fg_idx = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
        mask = torch.ones(1, n, dtype=torch.bool)
        mask[0, vis] = False
        fg = torch.zeros(1, n, dtype=torch.bool)
        fg[0, fg_idx] = True
        a = foreground_allocation(mask, fg).item()
        on_fg = len(set(vis) & set(fg_idx))
        assert a * len(fg_idx) / n * nv == pytest.approx(on_fg)
        assert 0.0 <= a <= (n / len(fg_idx)) * (1 + 1e-6)
        assert foreground_allocation(mask, fg.float() * 7.5).item() == pytest.approx(a)


def test_region_errors_split_masked_tokens_by_foreground():
    import math

    from adamask.compare.metrics import region_errors

    nan = float("nan")
    errors = torch.tensor(
        [
            [1.0, 3.0, nan, 0.5, 0.1],  # foreground tokens 0, 1 (2 visible); background 3, 4
            [nan, 2.0, 2.0, nan, nan],
        ]
    )  # no masked foreground token
    fg = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    out = region_errors(errors, fg)
    assert out[0].tolist() == pytest.approx([2.0, 0.3])
    assert math.isnan(out[1, 0]) and out[1, 1] == pytest.approx(2.0)
    # weights (motion energy) scaled by each clip's largest: token 0 counts fully as foreground, token 1 half
    w = torch.tensor([[4.0, 2.0, 0.0, 0.0, 0.0]])
    out = region_errors(errors[:1], w)
    assert out[0, 0] == pytest.approx((1.0 * 1 + 3.0 * 0.5) / 1.5)
    assert out[0, 1] == pytest.approx((3.0 * 0.5 + 0.5 + 0.1) / 2.5)
    with pytest.raises(TypeError, match=r"errors must be a \(B, N\) float tensor"):
        region_errors(errors[0], fg[0])
