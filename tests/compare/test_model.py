"""The comparison's model: strategies built by the learned-strategy contract, checkpoints read back."""

import pytest
import torch

from adamask.compare import load_checkpoint


def test_checkpoint_holds_the_sampler(quick_run):
    out, _ = quick_run
    model, ck = load_checkpoint(out / "checkpoints" / "adaptive_0.95.pt")
    assert ck["completed"] and ck["step"] == 6
    assert any(k.startswith("mask_sampler.") for k in ck["state_dict"])
    assert model.is_adaptive and model.mask_sampler.mask_ratio == 0.95
    raw = torch.load(out / "checkpoints" / "adaptive_0.95.pt", weights_only=False)
    for k, v in model.state_dict().items():
        assert torch.equal(v, raw["state_dict"][k])


def test_sampler_options_reach_only_the_adaptive_sampler():
    from adamask.compare import StrategySpec, build_strategy

    s = build_strategy(StrategySpec("adaptive", 0.75), (2, 4, 4), 32, {"variant": "attention", "token_pool": (1, 2, 2)})
    assert s.variant == "attention" and s.token_pool == (1, 2, 2) and s.embed_dim == 32
    r = build_strategy(StrategySpec("tube", 0.75), (2, 4, 4), 32, {"variant": "attention"})
    assert r.num_visible == 2 * 4


def test_options_go_to_each_strategy_by_its_constructors_signature():
    from adamask.compare import parse_strategy
    from adamask.compare.model import strategy_options, takes_option

    assert takes_option("motion", "temperature") and takes_option("motion_pixels", "temperature")
    assert takes_option("adaptive", "width") and takes_option("error_predictor", "token_pool")  # **options
    assert not takes_option("motion", "width") and not takes_option("random", "temperature")
    shared = {"temperature": 5.0, "width": 8}
    assert strategy_options(parse_strategy("motion:0.9"), shared) == {"temperature": 5.0}
    assert strategy_options(parse_strategy("random"), shared) == {}
    assert strategy_options(parse_strategy("adaptive:0.95:width=24,variant=mlp"), shared) == dict(
        temperature=5.0, width=24, variant="mlp"
    )
    with pytest.raises(ValueError, match="strategy motion_0.9_w8: motion takes no option 'width'"):
        strategy_options(parse_strategy("motion:0.9:width=8"))
