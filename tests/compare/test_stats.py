"""Statistics over seeds: Student-t quantiles, the mean with its 95% interval, paired differences and verdicts."""

import math

import pytest

from adamask.compare.stats import interval, paired_difference, t_quantile, verdict


def test_t_quantiles_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    for dof in list(range(1, 40)) + [50, 100, 1000]:
        assert t_quantile(dof) == pytest.approx(stats.t.ppf(0.975, dof), abs=2e-4), dof
    with pytest.raises(ValueError, match="dof must be an int >= 1, got 0"):
        t_quantile(0)


def test_interval_by_hand():
    s = interval([1.0, 2.0, 3.0])
    # mean 2, sample sd 1, t(2) = 4.3027: half-width 4.3027 / sqrt(3)
    assert s["mean"] == 2.0 and s["n"] == 3 and s["half_width"] == pytest.approx(4.3027 / math.sqrt(3), rel=1e-6)
    assert (s["low"], s["high"]) == (pytest.approx(2 - s["half_width"]), pytest.approx(2 + s["half_width"]))
    one = interval([5.0, None, float("nan")])  # missing and NaN values are left out
    assert one == dict(mean=5.0, half_width=None, low=5.0, high=5.0, n=1, values=[5.0])
    assert interval([])["mean"] is None and interval([None])["n"] == 0


def test_interval_covers_the_mean_95_percent_of_the_time():
    """Normal samples of 3: the t interval covers the true mean in 95% of 4000 repetitions (within 4 s.e.)."""
    import random

    rng = random.Random(0)
    reps, hits = 4000, 0
    for _ in range(reps):
        s = interval([rng.gauss(1.0, 2.0) for _ in range(3)])
        hits += s["low"] <= 1.0 <= s["high"]
    se = math.sqrt(0.95 * 0.05 / reps)
    assert abs(hits / reps - 0.95) < 4 * se


def test_paired_difference_removes_what_the_seeds_share():
    """Two strategies whose values move together with the seed: unpaired intervals overlap, the paired
    difference is clearly positive."""
    base = [0.30, 0.50, 0.70]
    better = [b + 0.02 + e for b, e in zip(base, (0.001, -0.001, 0.0), strict=True)]
    d = paired_difference(better, base)
    assert d["mean"] == pytest.approx(0.02) and d["low"] > 0 and verdict(d, "higher") == "better"
    assert verdict(d, "lower") == "worse"
    a, b = interval(better), interval(base)
    assert a["low"] < b["high"]  # unpaired: indistinguishable
    # pairs with a missing value are left out; unequal lengths are refused
    assert paired_difference([1.0, None, 3.0], [0.5, 1.0, 2.0])["n"] == 2
    with pytest.raises(ValueError, match="one per seed"):
        paired_difference([1.0], [1.0, 2.0])


def test_verdicts():
    assert verdict(paired_difference([1.0, 2.0, 3.0], [1.5, 1.5, 2.5]), "higher") == "indistinguishable"
    assert verdict(paired_difference([1.0], [0.0]), "higher") == "one seed"
    assert verdict(paired_difference([], []), "higher") is None
    assert verdict(paired_difference([2.0, 2.0], [1.0, 1.0]), None) is None
    # identical differences: a zero-width interval, beyond noise unless the metric is discrete
    assert verdict(paired_difference([2.0, 2.0], [1.0, 1.0]), "lower") == "worse"


def test_resolution_widens_seeds_that_agree_exactly():
    """Accuracies on 8 clips move in steps of 1/8: two seeds that both differ by exactly -1/8 are not a finding."""
    d = paired_difference([0.0, 0.0], [0.125, 0.125], resolution=1 / 8)
    assert d["mean"] == -0.125 and d["half_width"] == pytest.approx(12.7062 * (0.125 / math.sqrt(6)) / math.sqrt(2))
    assert verdict(d, "higher") == "indistinguishable"
    s = interval([0.5, 0.5, 0.5], resolution=1 / 256)
    assert s["half_width"] == pytest.approx(4.3027 * (1 / 256 / math.sqrt(12)) / math.sqrt(3))
    # a real spread is kept as it is
    assert interval([0.1, 0.3], resolution=1 / 256)["half_width"] == interval([0.1, 0.3])["half_width"]


def test_a_difference_beyond_noise_but_below_the_precision_shown_is_negligible():
    """Three seeds whose paired differences are all about -6e-6 (the same random masks give nearly the same
    loss): the interval excludes 0, but a loss shown with 4 decimals cannot show it."""
    from adamask.compare.metrics import METRICS

    diff = paired_difference([0.214230, 0.214231, 0.214229], [0.214236, 0.214237, 0.214235])
    assert diff["high"] < 0
    assert verdict(diff, "lower") == "better"
    loss = next(m for m in METRICS if m.name == "recon_loss_random_masks")
    assert loss.negligible() == pytest.approx(5e-5)
    assert verdict(diff, "lower", loss.negligible()) == "negligible"
    share = next(m for m in METRICS if m.name == "sampler_share")  # shown in % with no decimals
    assert share.negligible() == pytest.approx(0.005)
    assert verdict(dict(diff, mean=-6e-5, low=-7e-5, high=-5e-5), "lower", loss.negligible()) == "better"
