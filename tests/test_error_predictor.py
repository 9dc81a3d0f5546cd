import math

import pytest
import torch

import adamask
from adamask.error_predictor import ErrorPredictor, error_prediction_loss


def spearman(a, b):
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def test_loss_is_a_centred_log_error_regression():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 10, generator=g, dtype=torch.float64)
    probs = torch.softmax(pred / 2.0, -1)  # temperature 2
    mask = torch.rand(2, 10, generator=g) < 0.6
    mask[:, 0] = True
    err = torch.rand(2, 10, generator=g, dtype=torch.float64) + 0.1
    want = 0.0
    for b in range(2):
        m = mask[b]
        p, t = pred[b, m], (err[b, m] + 1e-6).log()
        want += ((p - p.mean()) - (t - t.mean())).pow(2).mean() / 2
    got = error_prediction_loss(probs, mask, err, temperature=2.0)
    assert got.dtype == torch.float32 and math.isclose(got.item(), want.item(), rel_tol=1e-4)
    # invariant to a constant shift of the predictions and to the error's units
    shifted = error_prediction_loss(torch.softmax((pred + 3) / 2.0, -1), mask, err * 7, temperature=2.0)
    assert math.isclose(shifted.item(), got.item(), rel_tol=1e-4)
    perfect = torch.softmax(err.log() / 2.0, -1)  # predictions = the true log-errors
    assert error_prediction_loss(perfect, mask, err, temperature=2.0, eps=1e-12).item() < 1e-6


def test_errors_are_detached_and_visible_entries_ignored():
    s = adamask.create_masking("error_predictor", grid=(2, 4, 4), mask_ratio=0.75, embed_dim=8)
    assert isinstance(s, ErrorPredictor) and adamask.is_learned(s) and s.mask_ratio == 0.75
    m = s(torch.randn(2, 32, 8))
    err = torch.rand(2, 32, requires_grad=True)
    dirty = torch.where(m.mask, err, torch.full_like(err, float("nan")))
    loss = adamask.learned_loss(s, m, dirty, adamask.LossSettings())
    loss.backward()
    assert torch.isfinite(loss) and err.grad is None
    assert all(torch.isfinite(p.grad).all() for p in s.parameters() if p.grad is not None)
    assert s.head.weight.grad.abs().sum() > 0


def test_learns_to_predict_which_tokens_are_hard_and_shows_them():
    """Errors depend on the token content; after training, predictions rank held-out tokens by error
    (Spearman > 0.8) and the visible tokens favour the hard ones."""
    torch.manual_seed(0)
    s = adamask.create_masking("error_predictor", grid=(2, 4, 4), mask_ratio=0.75, embed_dim=8, num_heads=2)
    opt = torch.optim.AdamW(s.parameters(), lr=3e-3)
    w = torch.randn(8)

    def true_error(tokens):  # hard tokens: a direction of the embedding
        return torch.exp(1.5 * torch.tanh(tokens @ w / 2))

    for _ in range(300):
        tokens = torch.randn(16, 32, 8)
        m = s(tokens)
        loss = adamask.learned_loss(s, m, true_error(tokens), adamask.LossSettings(weight=1.0))
        opt.zero_grad()
        loss.backward()
        opt.step()
    tokens = torch.randn(64, 32, 8)
    with torch.no_grad():
        pred = s.predicted_log_error(tokens)
        rho = sum(spearman(pred[i], true_error(tokens)[i]) for i in range(64)) / 64
        vis = ~s(tokens).mask
    e = true_error(tokens)
    print(f"error predictor: held-out Spearman {rho:.3f}; visible mean error {e[vis].mean():.3f} vs all {e.mean():.3f}")
    assert rho > 0.8
    assert e[vis].mean() > 1.2 * e.mean()


def test_estimator_settings_do_not_apply():
    s = adamask.create_masking("error_predictor", grid=(2, 4, 4), mask_ratio=0.75, embed_dim=8)
    m = s(torch.randn(2, 32, 8))
    err = torch.rand(2, 24)
    a = adamask.learned_loss(s, m, err, adamask.LossSettings())
    b = adamask.learned_loss(s, m, err, adamask.LossSettings(estimator="plackett_luce", baseline="rloo"))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="eps"):
        adamask.create_masking("error_predictor", grid=(2, 4, 4), embed_dim=8, eps=0.0)


def test_an_entropy_bonus_is_refused():
    s = adamask.create_masking("error_predictor", grid=(2, 4, 4), mask_ratio=0.75, embed_dim=8)
    m = s(torch.randn(2, 32, 8))
    with pytest.raises(ValueError, match="sampling_entropy_weight must be 0"):
        adamask.learned_loss(s, m, torch.rand(2, 24), adamask.LossSettings(entropy_weight=1e-3))


def test_the_temperature_is_bounded_where_the_loss_stays_finite():
    from adamask.error_predictor import MAX_TEMPERATURE

    for t in (1e-3, 1.0, MAX_TEMPERATURE):
        torch.manual_seed(0)
        s = adamask.create_masking("error_predictor", grid=(2, 4, 4), mask_ratio=0.75, embed_dim=8, temperature=t)
        m = s(torch.randn(3, 32, 8))
        loss = adamask.learned_loss(s, m, torch.rand(3, 24), adamask.LossSettings())
        loss.backward()
        assert torch.isfinite(loss) and loss < 10
        assert all(torch.isfinite(p.grad).all() for p in s.parameters() if p.grad is not None)
    for t in (MAX_TEMPERATURE * 10, 1e30):
        with pytest.raises(ValueError, match=r"temperature must be a finite number in \(0, 1000\]"):
            adamask.create_masking("error_predictor", grid=(2, 4, 4), embed_dim=8, temperature=t)
