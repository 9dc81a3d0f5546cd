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
