"""Hugging Face VideoMAE integration, the model: construction, options, forward, gradients, strategies, the
stock model's numbers without a host sync."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")
from _hf_helpers import B, C, N, S, T, clips, fixed_mask, stock_twin, tiny_config  # noqa: E402
from _host_syncs import host_sync_ops  # noqa: E402
from transformers import VideoMAEForPreTraining  # noqa: E402

from adamask import AdaptiveTokenSampler, sampling_loss  # noqa: E402
from adamask.integrations.hf import (  # noqa: E402
    ADAMASK_DEFAULTS,
    AdaptiveVideoMAEForPreTraining,
    AdaptiveVideoMAEForPreTrainingOutput,
)
from adamask.integrations.hf.model import rank_seed  # noqa: E402

# ---------------------------------------------------------------------------------------------
# construction and configuration


def test_is_a_videomae_with_a_registered_sampler(model):
    assert isinstance(model, VideoMAEForPreTraining)
    assert isinstance(dict(model.named_children())["mask_sampler"], AdaptiveTokenSampler)
    assert model.token_grid() == (2, 4, 4)
    assert model.mask_sampler.num_tokens == N and model.mask_sampler.num_visible == 8
    keys = [k for k in model.state_dict() if k.startswith("mask_sampler.")]
    assert "mask_sampler.pos_embed" in keys and "mask_sampler.head.weight" in keys
    cfg = model.config
    assert cfg.adamask_mask_ratio == 0.75 and cfg.adamask_sampling_weight == 1e-4
    assert cfg.adamask_sampler_depth == 1 and cfg.adamask_sampler_variant == "block"
    assert cfg.adamask_detach_input is True
    assert ADAMASK_DEFAULTS["sampling_weight"] == 1e-4


def test_options_from_kwargs_and_config_without_mutating_the_callers_config():
    cfg = tiny_config()
    m = AdaptiveVideoMAEForPreTraining(
        cfg, sampler_depth=2, sampler_width=16, sampler_heads=4, sampler_variant="attention", sampling_weight=1e-3
    )
    assert not hasattr(cfg, "adamask_sampler_depth")  # the caller's config is untouched
    s = m.mask_sampler
    assert len(s.blocks) == 2 and s.width == 16 and isinstance(s.proj, torch.nn.Linear)
    assert s.blocks[0].mlp is None and s.blocks[0].attn.num_heads == 4
    assert m.config.adamask_sampling_weight == 1e-3

    cfg.adamask_sampler_variant = "mlp"
    cfg.adamask_mask_ratio = 0.5
    m2 = AdaptiveVideoMAEForPreTraining(cfg)
    assert m2.mask_sampler.blocks[0].attn is None and m2.mask_sampler.num_visible == N // 2


@pytest.mark.parametrize(
    "options, error",
    [
        (dict(mask_ratio=1.0), ValueError),
        (dict(sampling_weight=-1.0), ValueError),
        (dict(sampling_weight=float("nan")), ValueError),
        (dict(sampler_variant="conv"), ValueError),
        (dict(sampler_width=30, sampler_heads=4), ValueError),
        (dict(sampling_estimator="reinforce"), ValueError),
        (dict(detach_input="yes"), TypeError),
        (dict(lambda_=1.0), TypeError),
    ],
)
def test_bad_options_raise(options, error):
    with pytest.raises(error):
        AdaptiveVideoMAEForPreTraining(tiny_config(), **options)


def test_mean_pooling_config_warns():
    with pytest.warns(UserWarning, match="use_mean_pooling"):
        AdaptiveVideoMAEForPreTraining(tiny_config(use_mean_pooling=True))


# ---------------------------------------------------------------------------------------------
# forward: mask, probabilities, losses


@pytest.mark.parametrize("norm_pix_loss", [True, False])
def test_forward_losses_match_stock_videomae(norm_pix_loss):
    torch.manual_seed(1)
    m = AdaptiveVideoMAEForPreTraining(tiny_config(norm_pix_loss=norm_pix_loss), mask_ratio=0.75).eval()
    x = clips()
    out = m(x)
    assert isinstance(out, AdaptiveVideoMAEForPreTrainingOutput)
    mask = out.bool_masked_pos
    assert mask is out.mask and mask.dtype == torch.bool and mask.shape == (B, N)
    assert mask.sum(1).tolist() == [N - 8] * B
    assert out.probs.dtype == torch.float32 and out.probs.shape == (B, N)
    torch.testing.assert_close(out.probs.sum(1), torch.ones(B))
    assert out.logits.shape == (B, N - 8, 2 * 8 * 8 * C) and out.token_error.shape == (B, N - 8)

    # reconstruction loss is the stock model's loss with the same weights and mask
    stock = stock_twin(m)(x, bool_masked_pos=mask)
    torch.testing.assert_close(out.reconstruction_loss, stock.loss, rtol=0, atol=0)
    torch.testing.assert_close(out.logits, stock.logits)
    # our per-token errors reproduce it
    torch.testing.assert_close(out.token_error.mean(), stock.loss, rtol=1e-6, atol=1e-7)
    # total = L_R + lambda * L_S, L_S = the core loss on these errors
    ls = sampling_loss(out.probs, mask, out.token_error)
    torch.testing.assert_close(out.sampling_loss, ls)
    torch.testing.assert_close(out.loss, out.reconstruction_loss + 1e-4 * out.sampling_loss)
    assert out.sampling_loss.item() > 0 and out.loss.item() != out.reconstruction_loss.item()


def test_targets_equal_a_direct_computation(model):
    x = clips()
    tgt = model.reconstruction_targets(x)
    assert tgt.shape == (B, N, 2 * 8 * 8 * C) and tgt.dtype == torch.float32
    # token (t'=1, h'=2, w'=3), ImageNet-un-normalised, normalised per channel over its 2x8x8 pixels
    mean = torch.tensor([0.485, 0.456, 0.406])[None, None, :, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[None, None, :, None, None]
    frames = x * std + mean
    cube = frames[:, 2:4, :, 16:24, 24:32]  # (B, 2, C, 8, 8)
    vec = cube.permute(0, 1, 3, 4, 2).reshape(B, 128, C)
    vec = (vec - vec.mean(1, keepdim=True)) / (vec.var(1, unbiased=True, keepdim=True).sqrt() + 1e-6)
    torch.testing.assert_close(tgt[:, 1 * 16 + 2 * 4 + 3], vec.reshape(B, -1))


def test_sampling_estimator_and_weight_from_config():
    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(
        tiny_config(), sampling_estimator="plackett_luce", sampling_baseline="mean", sampling_weight=0.5
    ).eval()
    gen = torch.Generator().manual_seed(3)
    out = m(clips(), generator=gen)
    gen = torch.Generator().manual_seed(3)
    masking = m.mask_sampler(m.patch_tokens(clips()), generator=gen)
    assert torch.equal(masking.mask, out.mask)
    ls = sampling_loss(
        out.probs, out.mask, out.token_error, estimator="plackett_luce", baseline="mean", draw_order=masking.draw_order
    )
    torch.testing.assert_close(out.sampling_loss, ls)
    torch.testing.assert_close(out.loss, out.reconstruction_loss + 0.5 * ls)


def test_return_dict_false_gives_a_tuple(model):
    gen = torch.Generator().manual_seed(0)
    out = model(clips(), generator=gen)
    tup = model(clips(), generator=torch.Generator().manual_seed(0), return_dict=False)
    assert isinstance(tup, tuple)
    torch.testing.assert_close(tup[0], out.loss)
    torch.testing.assert_close(tup[1], out.logits)


def test_generator_and_seed_make_masks_reproducible(model):
    x = clips(4)
    a = model(x, generator=torch.Generator().manual_seed(5)).mask
    b = model(x, generator=torch.Generator().manual_seed(5)).mask
    c = model(x, generator=torch.Generator().manual_seed(6)).mask
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert model.mask_generator(x.device) is None  # one process: the global RNG
    model.set_mask_seed(11)
    m1 = model(x).mask
    model.set_mask_seed(11)
    assert torch.equal(model(x).mask, m1)
    model.set_mask_seed(None)
    assert model.mask_generator(x.device) is None
    assert len({rank_seed(0, r) for r in range(8)}) == 8 and rank_seed(0, 0) != rank_seed(1, 0)


# ---------------------------------------------------------------------------------------------
# gradients


def test_gradients_reach_sampler_and_backbone_and_spare_the_tokenizer():
    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(tiny_config(), sampling_weight=1e-2).train()
    x = clips()
    gen = torch.Generator().manual_seed(0)
    out = m(x, generator=gen)
    out.loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name
    for name, p in m.mask_sampler.named_parameters():
        assert p.grad.abs().sum() > 0, name
    proj = m.videomae.embeddings.patch_embeddings.projection.weight
    g_total = proj.grad.clone()
    # the same step with the reconstruction loss only gives the same tokenizer gradient
    m.zero_grad()
    m(x, generator=torch.Generator().manual_seed(0)).reconstruction_loss.backward()
    torch.testing.assert_close(proj.grad, g_total, rtol=0, atol=0)
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in m.mask_sampler.parameters())

    # detach_input=False (the authors' code): L_S also reaches the patch embedding
    torch.manual_seed(0)
    m2 = AdaptiveVideoMAEForPreTraining(tiny_config(), sampling_weight=1e-2, detach_input=False).train()
    m2.load_state_dict(m.state_dict())
    m2(x, generator=torch.Generator().manual_seed(0)).loss.backward()
    g2 = m2.videomae.embeddings.patch_embeddings.projection.weight.grad
    assert not torch.allclose(g2, g_total)


def test_sampler_gradient_is_lambda_times_sampling_loss_gradient():
    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(tiny_config(), sampling_weight=1e-4).train()
    x = clips()
    m(x, generator=torch.Generator().manual_seed(2)).loss.backward()
    g = m.mask_sampler.head.weight.grad.clone()
    m.zero_grad()
    m(x, generator=torch.Generator().manual_seed(2)).sampling_loss.backward()
    torch.testing.assert_close(g, 1e-4 * m.mask_sampler.head.weight.grad, rtol=1e-5, atol=1e-12)


def test_autocast_keeps_probabilities_float32(model):
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(clips())
    assert out.probs.dtype == torch.float32 and out.sampling_loss.dtype == torch.float32
    torch.testing.assert_close(out.probs.sum(1), torch.ones(B))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert model.mask_sampler.head.weight.grad.abs().sum() > 0


def test_sampled_path_adds_no_host_sync(model, monkeypatch):
    """No .item(), .tolist(), bool() or nonzero() on tensors in the sampled forward (HF's own boolean
    indexing runs in C++ and is not counted here)."""

    def boom(*a, **k):
        raise AssertionError("host sync")

    for name in ("item", "tolist", "__bool__", "nonzero", "cpu", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, boom)
    monkeypatch.setattr(torch, "nonzero", boom)
    out = model(clips())
    monkeypatch.undo()
    assert out.mask.sum().item() == B * (N - 8)


def test_grid_disagreement_and_bad_pixel_values_raise(model):
    with pytest.raises(ValueError, match="pixel_values"):
        model(torch.randn(B, 2 * T, C, S, S))  # HF itself does not check the frame count
    with pytest.raises(ValueError, match="pixel_values"):
        model(torch.randn(B, C, T, S, S))
    with pytest.raises(TypeError, match="pixel_values"):
        model(clips().numpy())
    model.mask_sampler = AdaptiveTokenSampler(32, 2, num_tokens=64, mask_ratio=0.75)
    with pytest.raises(ValueError, match="token grid"):
        model(clips())


# ---------------------------------------------------------------------------------------------
# the strategy by name, the shared sampler defaults


def test_strategy_defaults_to_adaptive_with_the_shared_head_default(model):
    from adamask.sampler import default_num_heads

    assert model.config.adamask_strategy == "adaptive" and ADAMASK_DEFAULTS["strategy"] == "adaptive"
    # the sampler's default heads: the largest count <= 8 dividing the width (not config.num_attention_heads)
    assert model.config.num_attention_heads == 2
    assert model.mask_sampler.blocks[0].attn.num_heads == default_num_heads(32) == 8
    assert model.no_weight_decay() >= {"mask_sampler.pos_embed"}


def test_options_at_their_default_are_the_adaptive_samplers_own():
    """Options equal to ADAMASK_DEFAULTS are not passed to the strategy: the defaults must be the sampler's."""
    import inspect

    from adamask.integrations.hf.model import STRATEGY_OPTIONS

    params = inspect.signature(AdaptiveTokenSampler).parameters
    for name, keyword in STRATEGY_OPTIONS.items():
        assert ADAMASK_DEFAULTS[name] == params[keyword].default, name


def test_a_config_saved_without_a_strategy_means_adaptive(tmp_path):
    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.75)
    del m.config.adamask_strategy  # as saved before the option existed
    m.save_pretrained(tmp_path)
    loaded = AdaptiveVideoMAEForPreTraining.from_pretrained(tmp_path)
    assert loaded.config.adamask_strategy == "adaptive" and isinstance(loaded.mask_sampler, AdaptiveTokenSampler)
    assert torch.equal(loaded.mask_sampler.pos_embed, m.mask_sampler.pos_embed)


@pytest.mark.parametrize("strategy", ["tube", "no_such_strategy", 3])
def test_strategies_that_do_not_draw_from_tokens_are_refused(strategy):
    with pytest.raises(ValueError, match="needs='tokens'"):
        AdaptiveVideoMAEForPreTraining(tiny_config(), strategy=strategy)


# ---------------------------------------------------------------------------------------------
# no host sync: tokens selected by index, the same numbers as the stock model


def training_step(model, x, mask=None):
    """One training step (forward, backward, fused AdamW) of ``model`` on ``x``; the optimizer's state
    is built by a first call, so the step is counted as every later one runs."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)

    def step():
        opt.zero_grad(set_to_none=True)
        model(x, bool_masked_pos=mask).loss.backward()
        opt.step()

    step()
    return step


def test_the_sync_counter_sees_what_makes_the_host_wait():
    x = torch.randn(4, 3)
    ops = host_sync_ops(lambda: (x.sum().item(), x[x > 0], torch.nonzero(x), bool(x.sum() > 0)))
    assert ops == {"aten._local_scalar_dense": 2, "aten.index(bool)": 1, "aten.nonzero": 1}  # .item(), bool()


@pytest.mark.parametrize("strategy", ["adaptive", "error_predictor", "motion", "motion_pixels"])
def test_a_training_step_with_a_sampled_mask_makes_the_host_wait_nowhere(strategy):
    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.75, strategy=strategy).train()
    assert host_sync_ops(training_step(m, clips())) == {}
    stock = stock_twin(m).train()
    mask = m(clips()).mask
    assert host_sync_ops(training_step(stock, clips(), mask)) == {"aten.index(bool)": 4, "aten.index_put(bool)": 1}


@pytest.mark.parametrize("norm_pix_loss", [True, False])
def test_the_step_by_index_computes_the_stock_models_numbers(norm_pix_loss):
    """Same weights, same masks (sampled ones and caller-given ones, different per clip): the loss, the
    logits, the labels' error and every gradient of the stock model's parameters are the stock model's."""
    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(tiny_config(norm_pix_loss=norm_pix_loss), mask_ratio=0.75).train()
    stock = stock_twin(m).train()
    x = clips(4, seed=1)
    for mask in (None, fixed_mask(4, masked=20, seed=2), fixed_mask(4, masked=5, seed=3)):
        m.zero_grad(set_to_none=True)
        stock.zero_grad(set_to_none=True)
        ours = m(x, bool_masked_pos=mask, generator=torch.Generator().manual_seed(7))
        theirs = stock(x, bool_masked_pos=ours.mask)
        torch.testing.assert_close(ours.logits, theirs.logits, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(ours.reconstruction_loss, theirs.loss, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(ours.token_error.mean(), theirs.loss, rtol=1e-5, atol=1e-7)
        ours.reconstruction_loss.backward()
        theirs.loss.backward()
        grads = dict(stock.named_parameters())
        for name, p in m.named_parameters():
            if not name.startswith("mask_sampler."):
                torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-5, atol=1e-7, msg=name)


def test_output_hidden_states_are_the_stock_encoders():
    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(tiny_config(num_hidden_layers=2), mask_ratio=0.75).eval()
    x = clips()
    ours = m(x, output_hidden_states=True)
    theirs = stock_twin(m)(x, bool_masked_pos=ours.mask, output_hidden_states=True)
    assert len(ours.hidden_states) == len(theirs.hidden_states) == 3
    for a, b in zip(ours.hidden_states, theirs.hidden_states, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert type(m.videomae.embeddings).__name__ == "AdaptiveVideoMAEEmbeddings"
    assert m.videomae.embeddings(x, None).shape == (B, N, 32)  # the stock forward, without a mask
