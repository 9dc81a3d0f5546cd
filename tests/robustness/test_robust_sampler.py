"""Hostile inputs to the adaptive sampler: non-finite and extreme token values, other dtypes, arbitrary
option values. Probabilities and gradients stay finite; bad options raise ValueError/TypeError."""

import torch
from hypothesis import given
from hypothesis import strategies as st

from adamask import AdaptiveTokenSampler, sampling_loss

values = st.sampled_from([0.0, 1.0, -1e30, 1e30, float("nan"), float("inf"), -float("inf")])


@given(
    seed=st.integers(0, 10**6),
    bad=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 15), st.integers(0, 7), values), max_size=6),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.bfloat16]),
)
def test_probabilities_and_gradients_stay_finite(seed, bad, dtype):
    torch.manual_seed(seed)
    s = AdaptiveTokenSampler(8, num_tokens=16, mask_ratio=0.75)
    tokens = torch.randn(2, 16, 8)
    for b, i, d, v in bad:
        tokens[b, i, d] = v
    m = s(tokens.to(dtype))
    assert torch.isfinite(m.probs).all() and torch.allclose(m.probs.sum(1), torch.ones(2), atol=1e-4)
    loss = sampling_loss(m.probs, m.mask, torch.rand(2, 12))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in s.parameters() if p.grad is not None)


option = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 9),
    st.floats(-16, 16, width=32),
    st.sampled_from([float("nan"), float("inf"), -float("inf")]),
    st.text(max_size=4),
)


@given(
    name=st.sampled_from(
        [
            "num_heads",
            "depth",
            "width",
            "mlp_ratio",
            "variant",
            "token_pool",
            "detach_input",
            "dropout",
            "checkpoint",
            "temperature",
            "deterministic_eval",
        ]
    ),
    value=option,
)
def test_any_option_value_builds_or_names_itself(name, value):
    try:
        AdaptiveTokenSampler(8, grid=(2, 2, 4), mask_ratio=0.5, **{name: value})
    except (ValueError, TypeError) as e:
        assert name in str(e) or "divisible" in str(e), (name, value, str(e))
