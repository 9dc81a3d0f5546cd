"""VideoMAE integration, the model: wrap on a stand-in with PretrainVisionTransformer's interface."""

from __future__ import annotations

import pytest
import torch
from _toy_models import ToyVideoMAE
from _toy_models import toy_videomae as toy
from torch import nn

from adamask.integrations import videomae as vm

# ---------------------------------------------------------------------------------------------
# a stand-in with PretrainVisionTransformer's interface (encoder.patch_embed, forward(x, mask[, decode_mask]))


def test_wrap_keeps_names_and_adds_mask_sampler():
    bare = ToyVideoMAE()
    names = {n for n, _ in bare.named_parameters()}
    model = vm.wrap(bare, mask_ratio=0.75, depth=2, width=8, num_heads=2, sampling_weight=3e-4)
    after = {n for n, _ in model.named_parameters()}
    assert names <= after and all(n.startswith("mask_sampler.") for n in after - names)
    assert isinstance(model, ToyVideoMAE) and model.sampling_weight == 3e-4
    assert len(model.mask_sampler.blocks) == 2 and model.mask_sampler.width == 8
    assert {"mask_token", "mask_sampler.pos_embed"} <= model.no_weight_decay()
    assert vm.model_grid(model) == (2, 2, 2)


def test_wrap_rejects_bad_input():
    with pytest.raises(TypeError, match="PretrainVisionTransformer"):
        vm.wrap(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="grid"):
        vm.wrap(ToyVideoMAE(), mask_ratio=0.5, grid=(4, 2, 2))
    from adamask import AdaptiveTokenSampler

    with pytest.raises(ValueError, match="grid"):
        vm.wrap(ToyVideoMAE(), sampler=AdaptiveTokenSampler(16, num_heads=2, grid=(4, 2, 2), mask_ratio=0.5))
    with pytest.raises(ValueError, match="embed_dim"):
        vm.wrap(ToyVideoMAE(), sampler=AdaptiveTokenSampler(8, num_heads=2, grid=(2, 2, 2), mask_ratio=0.5))
    with pytest.raises(ValueError, match="sampling_weight"):
        vm.wrap(ToyVideoMAE(), mask_ratio=0.5, sampling_weight=-1.0)
    with pytest.raises(ValueError, match="adapted before"):
        vm.wrap(toy())


def test_forward_samples_mask_and_refuses_loader_mask_in_training():
    model = toy()
    x = torch.randn(2, 3, 4, 16, 16)
    pred, masking = model(x)
    assert masking.mask.shape == (2, 8) and pred.shape == (2, masking.num_masked, 384)
    with pytest.raises(ValueError, match="samples its own mask"):
        model(x, masking.mask)
    model.eval()
    assert model(x, masking.mask).shape == pred.shape
    with pytest.raises(ValueError, match="tokens"):
        model.train()(torch.randn(2, 3, 8, 16, 16))  # 16 tokens, the sampler's grid has 8


def test_wrap_builds_the_strategy_by_name_with_the_shared_defaults():
    from adamask.sampler import default_num_heads

    model = toy()
    assert model.mask_sampler.blocks[0].attn.num_heads == default_num_heads(16) == 8
    assert len(model.mask_sampler.blocks) == 1 and model.mask_sampler.num_visible == 2
    s = model.loss_settings
    assert (s.weight, s.estimator, s.baseline) == (1e-4, "paper", None) and model.sampling_weight == 1e-4
    model.sampling_weight = 0.5
    assert model.loss_settings.weight == 0.5 and model.loss_settings.estimator == "paper"
    with pytest.raises(ValueError, match="needs='tokens'"):
        vm.wrap(ToyVideoMAE(), strategy="tube")
    with pytest.raises(ValueError, match="sampling_estimator"):
        vm.wrap(ToyVideoMAE(), sampling_estimator="reinforce")
