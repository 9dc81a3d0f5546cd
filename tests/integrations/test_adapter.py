"""The integrations' shared adapter: strategies by name, attaching, the loss term, weight decay, unwrapping."""

from __future__ import annotations

import pytest
import torch
from _toy_strategies import ToyLearned, ToyNorm
from torch import nn

from adamask import AdaptiveTokenSampler, LossSettings, sampling_loss
from adamask.integrations import adapter as A
from adamask.sampler import default_num_heads


def test_model_strategies_are_the_registered_ones_that_draw_from_tokens_or_the_clip():
    names = A.model_strategies()
    assert {"adaptive", "toy_learned", "toy_norm", "motion", "motion_pixels"} <= set(names)
    assert not {"random", "tube", "frame"} & set(names)
    assert A.check_model_strategy("toy_norm") == "toy_norm"
    assert A.check_model_strategy("motion_pixels") == "motion_pixels"
    for bad in ("nope", None):
        with pytest.raises(ValueError, match=r"strategy must be a registered .*needs='tokens' or 'video'.*got"):
            A.check_model_strategy(bad)
    nothing = r"strategy 'tube' draws its masks from nothing the model has \(needs='nothing'\)"
    with pytest.raises(ValueError, match=nothing):
        A.check_model_strategy("tube")


def test_build_strategy_by_contract_passes_only_the_options_set():
    s = A.build_strategy("adaptive", (2, 4, 4), 0.75, 24, depth=None, num_heads=None, width=None)
    assert isinstance(s, AdaptiveTokenSampler) and s.embed_dim == 24 and s.num_visible == 8
    assert s.blocks[0].attn.num_heads == default_num_heads(24) == 8 and len(s.blocks) == 1
    assert len(A.build_strategy("adaptive", (2, 4, 4), 0.75, 24, depth=2).blocks) == 2
    # a strategy that knows none of the sampler's options still builds, with its default ratio
    toy = A.build_strategy("toy_learned", (2, 4, 4), None, 24, depth=None, num_heads=None, width=None)
    assert isinstance(toy, ToyLearned) and toy.keep == 8 and toy.score.in_features == 24
    assert isinstance(A.build_strategy("toy_norm", (2, 2, 2), 0.5, 8), ToyNorm)
    with pytest.raises(TypeError):
        A.build_strategy("toy_learned", (2, 4, 4), 0.75, 24, depth=2)  # set explicitly: passed, and refused


def test_check_strategy_fits_and_attach():
    s = AdaptiveTokenSampler(16, grid=(2, 2, 2), mask_ratio=0.5)
    A.check_strategy_fits(s, (2, 2, 2), 16)
    A.check_strategy_fits(ToyNorm((2, 2, 2), 0.5), (4, 4, 4), 7)  # says nothing of its grid or width
    with pytest.raises(ValueError, match="token grid"):
        A.check_strategy_fits(s, (2, 4, 2), 16)
    with pytest.raises(ValueError, match="embed_dim"):
        A.check_strategy_fits(s, (2, 2, 2), 8)
    model = nn.Linear(2, 2)
    A.attach_strategy(model, s)
    assert dict(model.named_children())["mask_sampler"] is s
    with pytest.raises(ValueError, match="adapted before"):
        A.attach_strategy(model, s)
    with pytest.raises(TypeError, match="nn.Module"):
        A.attach_strategy(nn.Linear(2, 2), lambda tokens: None)


def test_total_loss_uses_the_strategys_own_term_and_settings():
    tokens = torch.randn(3, 8, 16)
    rec = torch.tensor(2.0)
    adaptive = AdaptiveTokenSampler(16, grid=(2, 2, 2), mask_ratio=0.5)
    m = adaptive(tokens)
    err = torch.rand(3, 4)
    settings = LossSettings(0.5, "plackett_luce", "mean")
    loss, term = A.total_loss(rec, adaptive, m, err, settings)
    want = sampling_loss(m.probs, m.mask, err, estimator="plackett_luce", baseline="mean", draw_order=m.draw_order)
    assert torch.equal(term, want) and torch.equal(loss, rec + 0.5 * want)
    toy = ToyLearned((2, 2, 2), 0.5, 16)
    m = toy(tokens)
    loss, term = A.total_loss(rec, toy, m, err, settings)
    assert torch.equal(term, toy.masking_loss(m, err, settings))
    assert A.total_loss(rec, ToyNorm((2, 2, 2), 0.5), ToyNorm((2, 2, 2), 0.5)(tokens), err, settings) == (rec, None)


def test_no_weight_decay_names_and_unwrap():
    s = AdaptiveTokenSampler(16, grid=(2, 2, 2), mask_ratio=0.5)
    assert A.no_weight_decay_names(s, {"cls"}) == {"cls", "mask_sampler.pos_embed", "_orig_mod.mask_sampler.pos_embed"}
    assert A.no_weight_decay_names(ToyNorm((2, 2, 2), 0.5), compiled=False) == set()
    model = nn.Linear(2, 2)
    assert A.unwrap_model(nn.DataParallel(model)) is model
    assert A.unwrap_model(model) is model


def test_strategy_tokens_follow_detach_input():
    x = torch.randn(2, 3, requires_grad=True)
    assert not A.strategy_tokens(ToyNorm((2, 2, 2), 0.5), lambda: x * 2).requires_grad  # default: detached
    s = AdaptiveTokenSampler(16, grid=(2, 2, 2), mask_ratio=0.5, detach_input=False)
    assert A.strategy_tokens(s, lambda: x * 2).requires_grad


def test_wrap_names_every_option_of_the_built_in_strategies():
    """`WrapFunction` (wrap's type) lists, by name, every keyword argument wrap takes and every option of
    the built-in strategies (those the model gives itself, grid, ratio, width and tubelet, aside)."""
    import inspect

    from adamask.integrations import mae_st, videomae
    from adamask.registry import strategy_info

    typed = set(inspect.signature(A.WrapFunction.__call__).parameters) - {"self", "model"}
    runtime = inspect.signature(mae_st.wrap).parameters
    assert {n for n, p in runtime.items() if p.kind is p.KEYWORD_ONLY} <= typed
    assert inspect.signature(videomae.wrap).parameters.keys() == runtime.keys()
    given = {"grid", "mask_ratio", "embed_dim", "num_tokens", "tubelet", "options"}
    options = set(inspect.signature(AdaptiveTokenSampler.__init__).parameters) - {"self"}
    for name in A.model_strategies():
        if strategy_info(name).factory.__module__.startswith("adamask."):
            options |= set(inspect.signature(strategy_info(name).factory).parameters)
    assert options - given <= typed


def test_a_misspelt_keyword_of_wrap_is_a_type_error(tmp_path):
    """mypy, with the project's settings, flags a misspelt or mistyped keyword of wrap at the call and
    accepts a strategy's option by name."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("mypy")
    root = Path(__file__).resolve().parents[2]
    snippet = tmp_path / "uses_wrap.py"
    snippet.write_text(
        "from torch import nn\n\n"
        "from adamask.integrations import mae_st, videomae\n\n"
        "model = nn.Linear(2, 2)\n"
        "mae_st.wrap(model, mask_ratoi=0.9)\n"
        "videomae.wrap(model, strategy='motion', temperature=0.2, first_slice='next')\n"
        "videomae.wrap(model, mask_ratio='0.9')\n"
    )
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(root / "pyproject.toml"), str(snippet)],
        cwd=root,
        env={**os.environ, "MYPYPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = [line for line in r.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 2, r.stdout + r.stderr
    assert 'uses_wrap.py:6: error: Unexpected keyword argument "mask_ratoi"' in errors[0]
    assert 'uses_wrap.py:8: error: Argument "mask_ratio"' in errors[1] and 'expected "float"' in errors[1]
