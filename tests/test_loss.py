import itertools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import adamask
from adamask.loss import plackett_luce_log_prob, sampling_loss
from adamask.tokens import scatter_masked


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


def exact_pl_log_prob(p, seq):
    """log P(seq) under sequential sampling without replacement, remaining mass summed from what remains (float64)."""
    total, drawn = 0.0, set()
    for i in seq:
        remaining = sum(p[j] for j in range(len(p)) if j not in drawn)
        total += math.log(p[i]) - math.log(remaining)
        drawn.add(i)
    return total


@pytest.mark.parametrize("scale,k", [(20.0, 3), (30.0, 2), (9.0, 4)])
def test_plackett_luce_log_prob_on_peaked_distributions(scale, k):
    # softmax([20, 0, 0, 0, 0]) and the order [0, 1, 2]: log(1/4) + log(1/3) = -2.485
    # (1 - cumsum in float32 gave +134.67)
    scores = torch.zeros(1, 5, dtype=torch.float64)
    scores[0, 0] = scale
    p64 = torch.softmax(scores, -1)
    for seq in itertools.permutations(range(5), k):
        want = exact_pl_log_prob(p64[0].tolist(), seq)
        got32 = plackett_luce_log_prob(p64.float(), torch.tensor([seq])).item()
        got64 = plackett_luce_log_prob(p64, torch.tensor([seq]))
        assert got64.dtype == torch.float64  # float64 input is not cast down
        assert math.isclose(got64.item(), want, rel_tol=1e-9, abs_tol=1e-9), seq
        assert math.isclose(got32, want, rel_tol=1e-4, abs_tol=1e-4), (seq, got32, want)
    assert math.isclose(
        plackett_luce_log_prob(torch.softmax(torch.tensor([[20.0, 0, 0, 0, 0]]), -1), torch.tensor([[0, 1, 2]])).item(),
        math.log(1 / 12),
        rel_tol=1e-4,
    )


def test_plackett_luce_estimator_keeps_its_sign_on_a_peaked_sampler():
    # 21 tokens, score std 9: the estimator must match the exact float64 computation
    g = torch.Generator().manual_seed(3)
    scores = torch.randn(4, 21, generator=g, dtype=torch.float64) * 9
    probs = torch.softmax(scores, -1)
    order = adamask.gumbel_topk(probs.log(), 5, torch.Generator().manual_seed(4))
    mask = torch.ones(4, 21, dtype=torch.bool).scatter_(1, order, False)
    err = torch.rand(4, 21, generator=g, dtype=torch.float64)
    reward = (err * mask).sum(1) / mask.sum(1)
    exact = [exact_pl_log_prob(probs[b].tolist(), order[b].tolist()) for b in range(4)]
    want = -sum(e * r for e, r in zip(exact, reward.tolist(), strict=True)) / 4
    got = sampling_loss(probs.float(), mask, err.float(), estimator="plackett_luce", draw_order=order)
    assert math.isclose(got.item(), want, rel_tol=1e-3, abs_tol=1e-5), (got.item(), want)


@pytest.mark.parametrize("estimator", ["paper", "plackett_luce"])
def test_non_finite_errors_at_visible_entries_are_ignored(estimator):
    probs, mask, err, order = random_case(3, 12, 4)
    poisoned = err.clone()
    poisoned[~mask] = float("inf")
    poisoned[0, (~mask[0]).nonzero()[0, 0]] = float("nan")
    logits = probs.log().float().requires_grad_(True)
    for kw in (
        dict(estimator=estimator, draw_order=order),
        dict(estimator=estimator, draw_order=order, baseline="mean"),
    ):
        clean = sampling_loss(torch.softmax(logits, -1), mask, err, **kw)
        dirty = sampling_loss(torch.softmax(logits, -1), mask, poisoned, **kw)
        assert torch.isfinite(dirty) and torch.equal(clean, dirty)
        (grad,) = torch.autograd.grad(dirty, logits)
        assert torch.isfinite(grad).all()


@pytest.mark.parametrize("cols", [1, 7, 9])
def test_token_error_length_must_match_masked_count(cols):
    probs, mask, err, _ = random_case(2, 12, 4)  # 8 masked per row
    with pytest.raises(RuntimeError, match="token_error has .* columns"):
        sampling_loss(probs, mask, torch.rand(2, cols))


def test_rows_with_different_masked_counts():
    probs, mask, err, _ = random_case(2, 12, 4)
    mask[0, (~mask[0]).nonzero()[0, 0]] = True  # row 0 now masks 9, row 1 masks 8
    with pytest.raises(RuntimeError, match="token_error has 8 columns"):  # (B, N_m) needs equal counts
        sampling_loss(probs, mask, torch.rand(2, 8))
    # (B, N) errors: each row averages over its own masked tokens (decoder masking scores a subset per clip)
    assert math.isclose(sampling_loss(probs, mask, err).item(), loop_reference(probs, mask, err).item(), rel_tol=1e-5)


def test_rloo_baseline_is_leave_one_out():
    probs, mask, err, order = random_case(3, 10, 4)
    m = mask.double()
    own_sum, own_n = (err * m).sum(1), m.sum(1)
    loo = ((err * m).sum() - own_sum) / (m.sum() - own_n)
    shifted = torch.where(mask, err - loo[:, None], torch.zeros(()))
    want = sampling_loss(probs, mask, shifted)
    assert math.isclose(sampling_loss(probs, mask, err, baseline="rloo").item(), want.item(), rel_tol=1e-5)
    reward = own_sum / own_n
    loo_r = (reward.sum() - reward) / 2
    want_pl = -(plackett_luce_log_prob(probs, order) * (reward - loo_r)).mean()
    got_pl = sampling_loss(probs, mask, err, estimator="plackett_luce", baseline="rloo", draw_order=order)
    assert math.isclose(got_pl.item(), want_pl.item(), rel_tol=1e-4)
    one = sampling_loss(probs[:1], mask[:1], err[:1], baseline="rloo")  # a batch of one: no baseline
    assert math.isclose(one.item(), sampling_loss(probs[:1], mask[:1], err[:1]).item(), rel_tol=1e-6)


def _gradient_variance(baseline, estimator, draws=400):
    """Variance over repeated draws of d L_S / d scores, for one fixed batch of scores and per-token errors."""
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(8, 32, generator=g)
    token_err = 1.0 + torch.rand(8, 32, generator=g)  # errors far from zero: what a baseline removes
    grads = []
    for i in range(draws):
        s = scores.clone().requires_grad_(True)
        lp = torch.log_softmax(s, -1)
        order = adamask.gumbel_topk(lp.detach(), 8, torch.Generator().manual_seed(i))
        mask = torch.ones(8, 32, dtype=torch.bool).scatter_(1, order, False)
        loss = sampling_loss(lp.exp(), mask, token_err, estimator=estimator, baseline=baseline, draw_order=order)
        grads.append(torch.autograd.grad(loss, s)[0])
    return torch.stack(grads).var(0).sum().item()


@pytest.mark.parametrize("estimator", ["paper", "plackett_luce"])
def test_rloo_lowers_gradient_variance(estimator):
    none, rloo = _gradient_variance(None, estimator), _gradient_variance("rloo", estimator)
    print(f"{estimator}: gradient variance, no baseline {none:.3g}, rloo {rloo:.3g} ({rloo / none:.2f}x)")
    assert rloo < 0.5 * none


def test_entropy_bonus_pushes_towards_uniform():
    probs, mask, err, _ = random_case(2, 10, 3)
    logits = probs.log().float().requires_grad_(True)
    base = sampling_loss(torch.softmax(logits, -1), mask, err)
    bonus = sampling_loss(torch.softmax(logits, -1), mask, err, entropy_weight=0.5)
    h = adamask.loss.entropy(torch.softmax(logits, -1)).mean()
    assert math.isclose(bonus.item(), (base - 0.5 * h).item(), rel_tol=1e-5)
    (g,) = torch.autograd.grad(-h, logits)  # descending -H raises the entropy: flattens the distribution
    assert torch.allclose(g.sum(1), torch.zeros(2), atol=1e-6)
    with torch.no_grad():
        flatter = torch.softmax(logits - 0.1 * g, -1)
    assert (adamask.loss.entropy(flatter) > adamask.loss.entropy(torch.softmax(logits, -1))).all()
