"""Cost accounting on meta tensors: FLOPs and saved activations per component of one training step."""

import pytest


def test_step_costs_attribute_every_flop() -> None:
    import torch

    from adamask import MaskedVideoAutoencoder
    from adamask.compare.costs import step_costs
    from adamask.mae import MAE_CONFIGS

    costs = {}
    for masking, ratio in (("tube", 0.9), ("adaptive", 0.95)):
        with torch.device("meta"):
            model = MaskedVideoAutoencoder(**MAE_CONFIGS["tiny"], masking=masking, mask_ratio=ratio)
        costs[masking] = step_costs(model, batch_size=2)  # raises if the attribution loses FLOPs
    assert costs["tube"]["sampler"]["gflops"] == 0 and costs["adaptive"]["sampler"]["gflops"] > 0
    assert costs["adaptive"]["encoder"]["gflops"] < costs["tube"]["encoder"]["gflops"]
    assert costs["adaptive"]["decoder"]["gflops"] == pytest.approx(costs["tube"]["decoder"]["gflops"], rel=0.05)
    for c in costs.values():
        assert c["total"]["activation_mb"] > 0 and c["tokenizer"]["gflops"] > 0


def test_the_shared_configurations_hold_each_strategy_with_and_without_running_cell_decoder_masking() -> None:
    from adamask.compare.costs import DECODER_MASKING, paper_scale_configs

    configs = {c[0]: c for c in paper_scale_configs(768)}
    cheapest = "adaptive 0.95, attention, width 192, pool 1x2x2"
    for label in ("random 0.90", "tube 0.90", "adaptive 0.95, paper block", cheapest, "motion 0.95"):
        plain, dual = configs[label], configs[f"{label} + running cell 0.5"]
        assert dual[1:3] == plain[1:3] and dual[3] == {**(plain[3] or {}), **DECODER_MASKING}
    assert configs[cheapest][3] == {"variant": "attention", "width": 192, "token_pool": (1, 2, 2)}
    assert configs["motion 0.95"][1:] == ("motion", 0.95, None)


def test_the_moonshot_at_paper_scale() -> None:
    """The cheapest adaptive setting at 0.95 with running-cell decoder masking at 0.5 against tube 0.90 at
    paper scale (ViT-B, 16 x 224^2): 102.0 vs 208.9 GFLOP per clip, 0.49x, within the goal of 0.55x."""
    import torch

    from adamask.compare.costs import build_cost_model, moonshot_line, paper_scale_configs, step_costs
    from adamask.mae import MAE_CONFIGS

    wanted = ("tube 0.90", "adaptive 0.95, attention, width 192, pool 1x2x2 + running cell 0.5")
    rows = []
    for label, masking, ratio, opts in paper_scale_configs(768):
        if label in wanted:
            with torch.device("meta"):
                model = build_cost_model(MAE_CONFIGS["base"], masking, ratio, opts)
            rows.append(dict(config=label, costs=step_costs(model)))
    dual = rows[1]["costs"]
    assert dual["decoder"]["gflops"] < 0.5 * rows[0]["costs"]["decoder"]["gflops"] and dual["sampler"]["gflops"] < 1
    assert moonshot_line(rows, "base") == (
        "moonshot (paper scale): adaptive 0.95, attention, width 192, pool 1x2x2 + running cell 0.5 = 0.49x "
        "tube 0.90's training FLOPs (102 vs 208.9 GFLOP per clip); goal <= 0.55x: met"
    )
