import itertools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from adamask.loss import plackett_luce_log_prob, sampling_loss, scatter_masked


def loop_reference(probs, mask, err_full):
    """The paper's formula, one sample at a time, in float64."""
    total = 0.0
    for b in range(probs.shape[0]):
        m = mask[b]
        total += -(probs[b, m].double().log() * err_full[b, m].double()).mean()
    return total / probs.shape[0]


def random_case(b, n, nv, seed=0):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(torch.randn(b, n, generator=g, dtype=torch.float64), -1)
    order = torch.rand(b, n, generator=g).argsort(1)
    mask = torch.ones(b, n, dtype=torch.bool).scatter_(1, order[:, :nv], False)
    err = torch.rand(b, n, generator=g, dtype=torch.float64)
    return probs, mask, err, order[:, :nv]


@given(b=st.integers(1, 5), n=st.integers(3, 40), frac=st.floats(0.1, 0.9), seed=st.integers(0, 1000))
def test_matches_per_sample_loop_float64(b, n, frac, seed):
    nv = min(max(1, int(n * frac)), n - 1)
    probs, mask, err, _ = random_case(b, n, nv, seed)
    ref = loop_reference(probs, mask, err)
    full = sampling_loss(probs, mask, err)
    # the (B, N_m) form: errors of the masked tokens in ascending index order
    masked_idx = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)[:, : n - nv]
    compact = sampling_loss(probs, mask, err.gather(1, masked_idx))
    assert full.dtype == torch.float32
    assert math.isclose(full.item(), ref.item(), rel_tol=1e-5, abs_tol=1e-6)
    assert math.isclose(compact.item(), full.item(), rel_tol=1e-6, abs_tol=1e-7)


def test_scatter_masked_places_values_in_ascending_masked_order():
    mask = torch.tensor([[True, False, True, True], [False, True, True, False]])
    out = scatter_masked(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])[:, :3][[0]], mask[[0]])
    assert out.tolist() == [[1.0, 0.0, 2.0, 3.0]]
    out = scatter_masked(torch.tensor([[4.0, 5.0]]), mask[[1]])
    assert out.tolist() == [[0.0, 4.0, 5.0, 0.0]]


def test_gradient_reaches_probs_only_and_matches_formula():
    probs, mask, err, _ = random_case(2, 10, 3)
    logits = probs.log().float().clone().requires_grad_(True)
    e = err.float().clone().requires_grad_(True)
    loss = sampling_loss(torch.softmax(logits, -1), mask, e)
    loss.backward()
    assert e.grad is None  # the error is detached: L_S never trains the MAE
    # d/dlogits of -mean_b mean_masked e_i log p_i
    p = torch.softmax(logits.detach(), -1)
    w = err.float() * mask / mask.sum(1, keepdim=True)
    expected = -(w - p * w.sum(1, keepdim=True)) / 2
    assert torch.allclose(logits.grad, expected, atol=1e-6)


def test_higher_error_tokens_get_more_probability():
    logits = torch.zeros(1, 6, requires_grad=True)
    mask = torch.tensor([[True, True, True, False, False, False]])
    err = torch.tensor([[1.0, 5.0, 1.0, 0.0, 0.0, 0.0]])
    opt = torch.optim.SGD([logits], lr=1.0)
    for _ in range(20):
        opt.zero_grad()
        sampling_loss(torch.softmax(logits, -1), mask, err).backward()
        opt.step()
    p = torch.softmax(logits, -1)[0]
    # the surrogate pulls probability towards the masked tokens in proportion to their error
    assert p[1] > 1 / 6 > p[0] > p[3]
    assert p[0].item() == pytest.approx(p[2].item()) and p[3].item() == pytest.approx(p[5].item())


def test_baseline_mean_subtracts_batch_mean():
    probs, mask, err, _ = random_case(3, 12, 4)
    mean_err = (err * mask).sum() / mask.sum()
    shifted = sampling_loss(probs, mask, err - mean_err)
    assert math.isclose(sampling_loss(probs, mask, err, baseline="mean").item(), shifted.item(), rel_tol=1e-5)


def test_plackett_luce_log_prob_exact():
    p = torch.tensor([[0.1, 0.2, 0.3, 0.4]], dtype=torch.float64)
    for seq in itertools.permutations(range(4), 2):
        expected = math.log(p[0, seq[0]] * p[0, seq[1]] / (1 - p[0, seq[0]]))
        got = plackett_luce_log_prob(p, torch.tensor([seq]))
        assert math.isclose(got.item(), expected, rel_tol=1e-6)
    # the ordered probabilities sum to one over all sequences
    total = sum(plackett_luce_log_prob(p, torch.tensor([s])).exp().item() for s in itertools.permutations(range(4), 3))
    assert math.isclose(total, 1.0, rel_tol=1e-6)


def test_plackett_luce_estimator():
    probs, mask, err, order = random_case(4, 10, 3)
    reward = (err * mask).sum(1) / mask.sum(1)
    expected = -(plackett_luce_log_prob(probs, order) * reward).mean()
    got = sampling_loss(probs, mask, err, estimator="plackett_luce", draw_order=order)
    assert math.isclose(got.item(), expected.item(), rel_tol=1e-5)
    got_b = sampling_loss(probs, mask, err, estimator="plackett_luce", baseline="mean", draw_order=order)
    expected_b = -(plackett_luce_log_prob(probs, order) * (reward - reward.mean())).mean()
    assert math.isclose(got_b.item(), expected_b.item(), rel_tol=1e-4)
    with pytest.raises(ValueError, match="draw_order"):
        sampling_loss(probs, mask, err, estimator="plackett_luce")


def test_zero_probabilities_stay_finite():
    probs = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[False, True, True, True]])
    assert torch.isfinite(sampling_loss(probs, mask, torch.ones(1, 3)))


def test_argument_errors():
    probs, mask, err, _ = random_case(2, 8, 2)
    with pytest.raises(ValueError, match="mask must be a bool"):
        sampling_loss(probs, mask.long(), err)
    with pytest.raises(ValueError, match="token_error"):
        sampling_loss(probs, mask, err[:, None])
    with pytest.raises(ValueError, match="token_error"):
        sampling_loss(probs, mask, torch.rand(3, 6))
    with pytest.raises(ValueError, match="probs"):
        sampling_loss(probs[0], mask, err)
    with pytest.raises(TypeError, match="token_error"):
        sampling_loss(probs, mask, err.tolist())
    with pytest.raises(ValueError, match="estimator"):
        sampling_loss(probs, mask, err, estimator="reinforce")
    with pytest.raises(ValueError, match="baseline"):
        sampling_loss(probs, mask, err, baseline="ema")
