import itertools
import math

import pytest
import torch

import adamask
from adamask.sampler import AdaptiveTokenSampler, gumbel_topk, safe_log_softmax


def exact_set_probs(p, k):
    """Probability of each k-subset under sequential sampling without replacement (enumeration)."""
    out = {}
    for seq in itertools.permutations(range(len(p)), k):
        prob, left = 1.0, 1.0
        for i in seq:
            prob *= p[i] / left
            left -= p[i]
        key = tuple(sorted(seq))
        out[key] = out.get(key, 0.0) + prob
    return out


@pytest.mark.parametrize("k", [1, 2, 3])
def test_gumbel_topk_matches_without_replacement_distribution(k):
    p = torch.tensor([0.4, 0.25, 0.15, 0.12, 0.05, 0.03], dtype=torch.float64)
    exact = exact_set_probs(p.tolist(), k)
    n = 200_000
    g = torch.Generator().manual_seed(0)
    draws = gumbel_topk(p.log().expand(n, -1), k, generator=g).sort(1).values
    # subset frequencies vs exact enumeration, within 5 standard errors each
    keys = (draws * torch.tensor([36, 6, 1][-k:])).sum(1)
    counts = torch.bincount(keys, minlength=216).double() / n
    for subset, prob in exact.items():
        code = sum(i * m for i, m in zip(subset, [36, 6, 1][-k:], strict=True))
        se = math.sqrt(prob * (1 - prob) / n)
        assert abs(counts[code].item() - prob) < 5 * se + 1e-4, (subset, counts[code].item(), prob)
    # inclusion probabilities
    incl = (
        torch.zeros(6, dtype=torch.float64).scatter_add_(0, draws.flatten(), torch.ones(n * k, dtype=torch.float64)) / n
    )
    exact_incl = [sum(pr for s, pr in exact.items() if i in s) for i in range(6)]
    assert torch.allclose(incl, torch.tensor(exact_incl, dtype=torch.float64), atol=0.005)


def test_gumbel_topk_draw_order_is_plackett_luce():
    p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    n = 100_000
    first = gumbel_topk(p.log().expand(n, -1), 2, generator=torch.Generator().manual_seed(1))[:, 0]
    assert torch.allclose(torch.bincount(first, minlength=3).double() / n, p, atol=0.006)


def test_gumbel_topk_never_fails_on_peaked_distributions():
    # fewer non-zero probabilities than draws (torch.multinomial raised here in older releases)
    lp = torch.full((4, 100), float("-inf"))
    lp[:, :3] = 0.0
    idx = gumbel_topk(lp, 10)
    assert idx.shape == (4, 10)
    assert (idx.sort(1).values[:, :3] == torch.arange(3)).all()  # mass-carrying tokens first
    assert all(len(set(r.tolist())) == 10 for r in idx)  # still distinct
    # underflowing: probabilities of 1e-60 are 0 in float32, their log-probs are not -inf
    scores = torch.cat([torch.zeros(2, 1), torch.full((2, 99), -140.0)], 1)
    idx = gumbel_topk(torch.log_softmax(scores, -1), 5)
    assert (idx[:, 0] == 0).all() and all(len(set(r.tolist())) == 5 for r in idx)


def test_gumbel_topk_checks_k():
    with pytest.raises(ValueError, match="k must be"):
        gumbel_topk(torch.zeros(2, 4), 5)
    with pytest.raises(ValueError, match="k must be"):
        gumbel_topk(torch.zeros(2, 4), 0)


def test_non_finite_scores_handled_on_device():
    nan, inf = float("nan"), float("inf")
    s = torch.tensor(
        [
            [0.0, nan, 0.0, 0.0],  # NaN -> probability 0
            [inf, 1.0, inf, 0.0],  # +inf entries share all the mass
            [nan, nan, -inf, nan],  # nothing finite -> uniform
            [1.0, 2.0, -inf, 3.0],
        ]
    )  # -inf -> probability 0
    p = safe_log_softmax(s).exp()
    assert torch.isfinite(p).all()
    assert torch.allclose(
        p,
        torch.tensor(
            [
                [1 / 3, 0, 1 / 3, 1 / 3],
                [0.5, 0, 0.5, 0],
                [0.25] * 4,
                torch.softmax(torch.tensor([1.0, 2.0, -inf, 3.0]), 0).tolist(),
            ]
        ),
    )


def test_sampler_structure_and_probs():
    s = AdaptiveTokenSampler(32, num_heads=4, num_tokens=64, mask_ratio=0.9)
    assert isinstance(s.head, torch.nn.Linear) and s.head.out_features == 1 and s.head.in_features == 32
    assert s.pos_embed.shape == (1, 64, 32) and not s.pos_embed.any()  # zero-initialised
    assert s.num_visible == int(64 * 0.1)
    m = s(torch.randn(3, 64, 32))
    assert m.probs.dtype == torch.float32 and torch.allclose(m.probs.sum(1), torch.ones(3))
    assert torch.equal(m.draw_order.sort(1).values, m.visible_idx)
    assert "pos_embed" in s.no_weight_decay()


@pytest.mark.parametrize("variant", ["block", "attention", "mlp"])
@pytest.mark.parametrize("opts", [{}, {"width": 16}, {"depth": 2}, {"token_pool": (1, 2, 2)}])
def test_variants(variant, opts):
    s = adamask.create_masking(
        "adaptive", grid=(2, 4, 4), mask_ratio=0.75, embed_dim=24, num_heads=4, variant=variant, **opts
    )
    tokens = torch.randn(2, 32, 24)
    m = s(tokens)
    assert m.mask.sum(1).tolist() == [24, 24]
    (-(m.probs.log() * torch.rand(2, 32)).sum()).backward()
    assert s.head.weight.grad is not None and s.head.weight.grad.abs().sum() > 0
    has_attn = any(isinstance(x, torch.nn.MultiheadAttention) or type(x).__name__ == "Attention" for x in s.modules())
    assert has_attn == (variant != "mlp")
    if "token_pool" in opts:  # tokens of one pooled cell share a probability
        cells = m.probs.view(2, 2, 2, 2, 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(2, 8, 4)
        assert torch.allclose(cells, cells[..., :1].expand_as(cells))


def test_sampler_argument_errors():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        AdaptiveTokenSampler(30, num_heads=4, num_tokens=16)
    with pytest.raises(ValueError, match="variant"):
        AdaptiveTokenSampler(32, num_tokens=16, variant="conv")
    with pytest.raises(ValueError, match="num_tokens"):
        AdaptiveTokenSampler(32)
    with pytest.raises(ValueError, match="grid"):
        AdaptiveTokenSampler(32, num_tokens=16, grid=(2, 2, 2))
    with pytest.raises(ValueError, match="token_pool"):
        AdaptiveTokenSampler(32, grid=(2, 3, 4), token_pool=(1, 2, 2))
    with pytest.raises(ValueError, match="mask_ratio"):
        AdaptiveTokenSampler(32, num_tokens=16, mask_ratio=1.0)


def test_input_detached_by_default_and_optionally_not():
    tokens = torch.randn(2, 16, 8, requires_grad=True)
    for detach in (True, False):
        tokens.grad = None
        s = AdaptiveTokenSampler(8, num_heads=2, num_tokens=16, mask_ratio=0.5, detach_input=detach)
        m = s(tokens)
        adamask.sampling_loss(m.probs, m.mask, torch.rand(2, 8)).backward()
        assert (tokens.grad is None) == detach


def test_autocast_bf16_gives_float32_probs():
    s = AdaptiveTokenSampler(16, num_heads=2, num_tokens=32, mask_ratio=0.75)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        m = s(torch.randn(2, 32, 16))
        loss = adamask.sampling_loss(m.probs, m.mask, torch.rand(2, 24))
    assert m.probs.dtype == torch.float32 and loss.dtype == torch.float32
    assert torch.allclose(m.probs.sum(1), torch.ones(2), atol=1e-5)
    loss.backward()
    assert s.head.weight.grad is not None


def test_sharp_sampler_never_crashes():
    s = AdaptiveTokenSampler(8, num_heads=2, num_tokens=64, mask_ratio=0.5)
    with torch.no_grad():
        s.head.weight.zero_()
        s.head.bias.zero_()
        s.pos_embed[0, :3, 0] = 1e4  # three tokens get all the mass
        s.head.weight[0, 0] = 1.0
    s.detach_input = True
    m = s(torch.zeros(4, 64, 8))
    assert m.mask.sum(1).tolist() == [32] * 4
    assert (~m.mask[:, :3]).all()


def test_checkpointed_blocks_give_identical_loss_and_gradients():
    torch.manual_seed(0)
    a = AdaptiveTokenSampler(16, num_heads=2, num_tokens=32, mask_ratio=0.75, depth=2)
    b = AdaptiveTokenSampler(16, num_heads=2, num_tokens=32, mask_ratio=0.75, depth=2, checkpoint=True)
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        for s in (a, b):
            s.pos_embed.normal_(generator=torch.Generator().manual_seed(1))
    tokens, err = torch.randn(2, 32, 16), torch.rand(2, 32)
    grads = []
    for s in (a, b):
        m = s(tokens, generator=torch.Generator().manual_seed(2))
        loss = adamask.sampling_loss(m.probs, m.mask, err)
        grads.append((loss, torch.autograd.grad(loss, list(s.parameters()))))
    assert torch.equal(grads[0][0], grads[1][0])
    assert all(torch.allclose(x, y, atol=1e-7) for x, y in zip(grads[0][1], grads[1][1], strict=True))


def test_one_nan_token_cannot_poison_the_sampler():
    torch.manual_seed(0)
    s = AdaptiveTokenSampler(16, num_tokens=32, mask_ratio=0.75)
    opt = torch.optim.AdamW(s.parameters(), lr=1e-2)
    tokens = torch.randn(2, 32, 16)
    tokens[0, 5] = float("nan")
    tokens[1, 7, 3] = float("inf")
    m = s(tokens)
    loss = adamask.sampling_loss(m.probs, m.mask, torch.rand(2, 24))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(m.probs).all()
    assert all(torch.isfinite(p.grad).all() for p in s.parameters() if p.grad is not None)
    opt.step()
    assert all(torch.isfinite(p).all() for p in s.parameters())
    m2 = s(torch.randn(2, 32, 16))  # the next batch is scored, not uniform
    assert m2.probs.std(1).min() > 0


def test_wrong_token_width_is_named():
    s = adamask.create_masking("adaptive", grid=(2, 4, 4), mask_ratio=0.75, embed_dim=8)
    with pytest.raises(ValueError, match=r"width D=7 but the strategy was built for embed_dim=8"):
        s(torch.randn(2, 32, 7))


def test_tokens_of_another_float_dtype_are_cast():
    s = AdaptiveTokenSampler(8, num_tokens=16, mask_ratio=0.5)
    tokens = torch.randn(2, 16, 8, dtype=torch.float64)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(s(tokens, generator=g()).mask, s(tokens.float(), generator=g()).mask)
    with pytest.raises(TypeError, match="floating-point"):
        s(torch.zeros(2, 16, 8, dtype=torch.long))


@pytest.mark.parametrize("option", ["detach_input", "checkpoint", "deterministic_eval"])
def test_flag_options_must_be_bool(option):
    with pytest.raises(TypeError, match=f"{option} must be True or False"):
        AdaptiveTokenSampler(8, num_tokens=16, **{option: "no"})


def test_default_heads_divide_the_width():
    # embed_dim=12 used to fail with "divisible by num_heads (8)", a value the user never chose
    s = adamask.create_masking("adaptive", grid=(2, 2, 2), mask_ratio=0.5, embed_dim=12)
    assert s.blocks[0].attn.num_heads == 6
    assert AdaptiveTokenSampler(768, num_tokens=64).blocks[0].attn.num_heads == 8
    assert AdaptiveTokenSampler(30, num_tokens=64).blocks[0].attn.num_heads == 6


def test_temperature_scales_the_scores():
    torch.manual_seed(0)
    tokens = torch.randn(2, 16, 8)
    a = AdaptiveTokenSampler(8, num_tokens=16, mask_ratio=0.5)
    with torch.no_grad():
        a.pos_embed.normal_()
    b = AdaptiveTokenSampler(8, num_tokens=16, mask_ratio=0.5, temperature=4.0)
    b.load_state_dict(a.state_dict())
    assert torch.allclose(b.scores(tokens), a.scores(tokens) / 4.0)
    hot = AdaptiveTokenSampler(8, num_tokens=16, mask_ratio=0.5, temperature=1e6)
    hot.load_state_dict(a.state_dict())
    assert torch.allclose(hot(tokens).probs, torch.full((2, 16), 1 / 16), atol=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        AdaptiveTokenSampler(8, num_tokens=16, temperature=0.0)


def test_deterministic_eval_takes_the_most_probable_tokens():
    torch.manual_seed(0)
    s = AdaptiveTokenSampler(8, num_tokens=16, mask_ratio=0.75, deterministic_eval=True)
    with torch.no_grad():
        s.pos_embed.normal_()
    tokens = torch.randn(3, 16, 8)
    s.eval()
    m = s(tokens)
    top = s.log_probs(tokens).topk(4, dim=1).indices
    assert torch.equal(m.visible_idx, top.sort(1).values) and torch.equal(m.draw_order, top)
    assert torch.equal(s(tokens).mask, m.mask)  # the same every time
    s.train()  # training keeps sampling
    draws = {tuple(s(tokens, generator=torch.Generator().manual_seed(i)).visible_idx[0].tolist()) for i in range(20)}
    assert len(draws) > 1
    plain = AdaptiveTokenSampler(8, num_tokens=16, mask_ratio=0.75).eval()  # .eval() alone still samples
    assert len({tuple(plain(tokens).visible_idx[0].tolist()) for _ in range(20)}) > 1
    assert torch.equal(
        plain(tokens, deterministic=True).visible_idx, plain.log_probs(tokens).topk(4, dim=1).indices.sort(1).values
    )
