"""Hostile inputs to the sampling loss: peaked and zero probabilities, non-finite errors at visible
entries, wrong error lengths, unequal row counts."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from adamask import gumbel_topk, sampling_loss
from adamask.loss import BASELINES, ESTIMATORS, plackett_luce_log_prob


def case(b, n, nv, scale, seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(b, n, generator=g, dtype=torch.float64) * scale
    probs = torch.softmax(scores, -1)
    order = gumbel_topk(torch.log_softmax(scores, -1), nv, g)
    mask = torch.ones(b, n, dtype=torch.bool).scatter_(1, order, False)
    return probs, mask, order, torch.rand(b, n, generator=g, dtype=torch.float64)


@given(
    b=st.integers(1, 4),
    n=st.integers(3, 24),
    frac=st.floats(0.1, 0.9),
    scale=st.sampled_from([0.1, 1, 9, 30, 80]),
    seed=st.integers(0, 10**6),
    estimator=st.sampled_from(ESTIMATORS),
    baseline=st.sampled_from(BASELINES),
    poison=st.sampled_from([float("inf"), float("nan"), -float("inf"), 1e30]),
)
def test_loss_is_finite_and_ignores_visible_entries(b, n, frac, scale, seed, estimator, baseline, poison):
    nv = min(max(1, int(n * frac)), n - 1)
    probs, mask, order, err = case(b, n, nv, scale, seed)
    dirty = err.clone()
    dirty[~mask] = poison
    logits = probs.log().float().requires_grad_(True)
    kw = dict(estimator=estimator, baseline=baseline, draw_order=order)
    a = sampling_loss(torch.softmax(logits, -1), mask, err.float(), **kw)
    d = sampling_loss(torch.softmax(logits, -1), mask, dirty.float(), **kw)
    assert torch.isfinite(d) and torch.equal(a, d)
    assert torch.isfinite(torch.autograd.grad(d, logits)[0]).all()


@given(n=st.integers(3, 7), k=st.integers(1, 3), scale=st.sampled_from([1, 10, 20, 40]), seed=st.integers(0, 10**6))
def test_plackett_luce_matches_exact_remaining_mass(n, k, scale, seed):
    k = min(k, n - 1)
    probs, _, order, _ = case(1, n, k, scale, seed)
    p = probs[0].tolist()
    want, drawn = 0.0, set()
    for i in order[0].tolist():
        want += math.log(max(p[i], 1e-300)) - math.log(sum(p[j] for j in range(n) if j not in drawn))
        drawn.add(i)
    got = plackett_luce_log_prob(probs, order).item()
    assert math.isclose(got, want, rel_tol=1e-7, abs_tol=1e-7) or want < -690  # below float64 range of p


@given(b=st.integers(1, 3), n=st.integers(4, 16), cols=st.integers(1, 16), seed=st.integers(0, 1000))
def test_error_length_must_match(b, n, cols, seed):
    probs, mask, order, err = case(b, n, 2, 1.0, seed)
    if cols > n:
        return
    e = torch.rand(b, cols)
    if cols in (n, n - 2):
        assert torch.isfinite(sampling_loss(probs, mask, e))
    else:
        with pytest.raises(RuntimeError, match="token_error has"):
            sampling_loss(probs, mask, e)
