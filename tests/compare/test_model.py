"""The comparison's model: strategies built by the learned-strategy contract, checkpoints read back."""

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
