"""Hugging Face VideoMAE integration: tiny configs, real transformers models, Trainer and save/load."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

transformers = pytest.importorskip("transformers")
from transformers import VideoMAEConfig, VideoMAEForPreTraining  # noqa: E402

from adamask import AdaptiveTokenSampler, sampling_loss  # noqa: E402
from adamask.integrations.hf import (  # noqa: E402
    ADAMASK_DEFAULTS,
    AdaMaskTrainer,
    AdaptiveVideoMAEForPreTraining,
    AdaptiveVideoMAEForPreTrainingOutput,
    _rank_seed,
    check_bool_masked_pos,
    wrap,
)

ROOT = Path(__file__).resolve().parents[2]
B, T, C, S = 2, 4, 3, 32
N = (T // 2) * (S // 8) ** 2  # 32 tokens


def tiny_config(**overrides) -> VideoMAEConfig:
    kw = dict(image_size=S, patch_size=8, num_channels=C, num_frames=T, tubelet_size=2, hidden_size=32,
              num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, decoder_hidden_size=32,
              decoder_num_hidden_layers=1, decoder_num_attention_heads=2, decoder_intermediate_size=64,
              use_mean_pooling=False)
    kw.update(overrides)
    return VideoMAEConfig(**kw)


def clips(batch: int = B, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, T, C, S, S, generator=g)


def stock_twin(model: AdaptiveVideoMAEForPreTraining) -> VideoMAEForPreTraining:
    """A stock model holding the same encoder/decoder weights."""
    stock = VideoMAEForPreTraining(model.config)
    stock.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("mask_sampler.")})
    return stock.eval()


@pytest.fixture
def model() -> AdaptiveVideoMAEForPreTraining:
    torch.manual_seed(0)
    return AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.75).eval()


def sampler_vector(m: AdaptiveVideoMAEForPreTraining) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in m.mask_sampler.parameters()])


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
    m = AdaptiveVideoMAEForPreTraining(cfg, sampler_depth=2, sampler_width=16, sampler_heads=4,
                                       sampler_variant="attention", sampling_weight=1e-3)
    assert not hasattr(cfg, "adamask_sampler_depth")  # the caller's config is untouched
    s = m.mask_sampler
    assert len(s.blocks) == 2 and s.width == 16 and isinstance(s.proj, torch.nn.Linear)
    assert s.blocks[0].mlp is None and s.blocks[0].attn.num_heads == 4
    assert m.config.adamask_sampling_weight == 1e-3

    cfg.adamask_sampler_variant = "mlp"
    cfg.adamask_mask_ratio = 0.5
    m2 = AdaptiveVideoMAEForPreTraining(cfg)
    assert m2.mask_sampler.blocks[0].attn is None and m2.mask_sampler.num_visible == N // 2


@pytest.mark.parametrize("options, error", [
    (dict(mask_ratio=1.0), ValueError),
    (dict(sampling_weight=-1.0), ValueError),
    (dict(sampling_weight=float("nan")), ValueError),
    (dict(sampler_variant="conv"), ValueError),
    (dict(sampler_width=30, sampler_heads=4), ValueError),
    (dict(sampling_estimator="reinforce"), ValueError),
    (dict(detach_input="yes"), TypeError),
    (dict(lambda_=1.0), TypeError),
])
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
    m = AdaptiveVideoMAEForPreTraining(tiny_config(), sampling_estimator="plackett_luce",
                                       sampling_baseline="mean", sampling_weight=0.5).eval()
    gen = torch.Generator().manual_seed(3)
    out = m(clips(), generator=gen)
    gen = torch.Generator().manual_seed(3)
    masking = m.mask_sampler(m.patch_tokens(clips()), generator=gen)
    assert torch.equal(masking.mask, out.mask)
    ls = sampling_loss(out.probs, out.mask, out.token_error, estimator="plackett_luce", baseline="mean",
                       draw_order=masking.draw_order)
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
    assert len({_rank_seed(0, r) for r in range(8)}) == 8 and _rank_seed(0, 0) != _rank_seed(1, 0)


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


# ---------------------------------------------------------------------------------------------
# caller-given masks

def fixed_mask(batch: int = B, masked: int = 24, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    idx = torch.stack([torch.randperm(N, generator=g)[:masked] for _ in range(batch)])
    return torch.zeros(batch, N, dtype=torch.bool).scatter_(1, idx, True)


def test_caller_mask_is_used_without_sampling_loss(model):
    x, mask = clips(), fixed_mask()
    out = model(x, bool_masked_pos=mask)
    assert torch.equal(out.mask, mask) and out.probs is None and out.sampling_loss is None
    stock = stock_twin(model)(x, bool_masked_pos=mask)
    torch.testing.assert_close(out.loss, stock.loss, rtol=0, atol=0)
    torch.testing.assert_close(out.token_error.mean(), stock.loss, rtol=1e-6, atol=1e-7)
    # a 0/1 integer or float mask is cast to bool and gives the same result
    for dtype in (torch.long, torch.int32, torch.uint8, torch.float32):
        o = model(x, bool_masked_pos=mask.to(dtype))
        assert o.mask.dtype == torch.bool and torch.equal(o.mask, mask)
        torch.testing.assert_close(o.loss, out.loss, rtol=0, atol=0)


def test_bad_caller_masks_raise(model):
    x = clips()
    mask = fixed_mask()
    index_like = torch.randint(0, N, (B, N))  # what HF would silently use as integer indices
    with pytest.raises(ValueError, match="other than 0 and 1"):
        model(x, bool_masked_pos=index_like)
    with pytest.raises(ValueError, match="other than 0 and 1"):
        model(x, bool_masked_pos=mask.float() * 0.5)
    uneven = mask.clone()
    uneven[0, (~uneven[0]).nonzero()[0]] = True
    with pytest.raises(ValueError, match="same number"):
        model(x, bool_masked_pos=uneven)
    with pytest.raises(ValueError, match="shape"):
        model(x, bool_masked_pos=mask[:1])
    with pytest.raises(ValueError, match="shape"):
        model(x, bool_masked_pos=mask.flatten())
    with pytest.raises(ValueError, match="at least one"):
        model(x, bool_masked_pos=torch.zeros(B, N, dtype=torch.bool))
    with pytest.raises(ValueError, match="fewer than"):
        model(x, bool_masked_pos=torch.ones(B, N, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool_masked_pos"):
        model(x, bool_masked_pos=mask.tolist())
    m, k = check_bool_masked_pos(mask.to(torch.int8), B, N)
    assert m.dtype == torch.bool and k == 24


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
# save / load / wrap

def test_save_pretrained_round_trips_the_sampler(model, tmp_path):
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(clips()).loss.backward()
    opt.step()  # non-initial sampler weights (pos_embed no longer zero)
    assert model.mask_sampler.pos_embed.abs().sum() > 0
    model.save_pretrained(tmp_path)
    loaded = AdaptiveVideoMAEForPreTraining.from_pretrained(tmp_path).eval()
    model.eval()
    assert loaded.config.adamask_mask_ratio == 0.75 and loaded.mask_sampler.num_visible == 8
    sd, sd2 = model.state_dict(), loaded.state_dict()
    assert sd.keys() == sd2.keys()
    for k in sd:
        assert torch.equal(sd[k], sd2[k]), k
    x = clips()
    a = model(x, generator=torch.Generator().manual_seed(4))
    b = loaded(x, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a.mask, b.mask)
    torch.testing.assert_close(a.loss, b.loss, rtol=0, atol=0)

    # kwargs on from_pretrained override the saved options
    assert AdaptiveVideoMAEForPreTraining.from_pretrained(tmp_path, mask_ratio=0.5).mask_sampler.num_visible == 16


def test_stock_videomae_loads_an_adaptive_checkpoint(model, tmp_path):
    model.save_pretrained(tmp_path)
    stock = VideoMAEForPreTraining.from_pretrained(tmp_path).eval()
    assert type(stock) is VideoMAEForPreTraining and not hasattr(stock, "mask_sampler")
    sd = stock.state_dict()
    for k, v in model.state_dict().items():
        if not k.startswith("mask_sampler."):
            assert torch.equal(sd[k], v), k
    x, mask = clips(), fixed_mask()
    torch.testing.assert_close(stock(x, bool_masked_pos=mask).loss, model(x, bool_masked_pos=mask).loss,
                               rtol=0, atol=0)


def test_adaptive_model_loads_a_stock_checkpoint(tmp_path):
    torch.manual_seed(0)
    stock = VideoMAEForPreTraining(tiny_config())
    stock.save_pretrained(tmp_path)
    m = AdaptiveVideoMAEForPreTraining.from_pretrained(tmp_path, mask_ratio=0.75)
    for k, v in stock.state_dict().items():
        assert torch.equal(m.state_dict()[k], v), k
    s = m.mask_sampler
    assert torch.equal(s.pos_embed, torch.zeros_like(s.pos_embed))  # the sampler's own init
    assert all(torch.isfinite(p).all() for p in s.parameters())
    assert 0.005 < s.head.weight.std().item() < 0.05
    out = m(clips())
    assert torch.isfinite(out.loss) and out.mask.sum().item() == B * 24


def test_wrap_converts_in_place_and_keeps_parameters():
    torch.manual_seed(0)
    stock = VideoMAEForPreTraining(tiny_config())
    params = {n: p for n, p in stock.named_parameters()}
    x, mask = clips(), fixed_mask()
    before = stock(x, bool_masked_pos=mask).loss
    m = wrap(stock, mask_ratio=0.75, sampler_depth=2)
    assert m is stock and type(m) is AdaptiveVideoMAEForPreTraining
    assert len(m.mask_sampler.blocks) == 2 and m.config.adamask_sampler_depth == 2
    for n, p in m.named_parameters():
        if not n.startswith("mask_sampler."):
            assert p is params[n], n
    torch.testing.assert_close(m(x, bool_masked_pos=mask).loss, before, rtol=0, atol=0)
    out = m(x)
    assert out.sampling_loss is not None and out.mask.sum().item() == B * 24
    assert wrap(m) is m
    with pytest.raises(ValueError, match="already adaptive"):
        wrap(m, mask_ratio=0.5)
    with pytest.raises(TypeError, match="VideoMAEForPreTraining"):
        wrap(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError):
        wrap(VideoMAEForPreTraining(tiny_config()), mask_ratio=2.0)


# ---------------------------------------------------------------------------------------------
# training: plain loop and Trainer

def test_plain_training_loop_updates_sampler_and_backbone():
    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.75).train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    s0 = sampler_vector(m).clone()
    w0 = m.encoder_to_decoder.weight.detach().clone()
    x, probe = clips(4), fixed_mask(4)
    with torch.no_grad():
        before = m(x, bool_masked_pos=probe).loss.item()
    for _ in range(5):
        out = m(x)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        assert math.isfinite(out.reconstruction_loss.item()) and math.isfinite(out.sampling_loss.item())
    with torch.no_grad():
        after = m(x, bool_masked_pos=probe).loss.item()
    assert not torch.equal(sampler_vector(m), s0)
    assert not torch.equal(m.encoder_to_decoder.weight, w0)
    assert after < before - 1e-3, (before, after)


class ClipDataset(torch.utils.data.Dataset):
    def __init__(self, n: int = 8) -> None:
        self.x = clips(n, seed=7)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"pixel_values": self.x[i]}


def trainer_args(tmp_path, **kw):
    from transformers import TrainingArguments
    base = dict(output_dir=str(tmp_path), per_device_train_batch_size=2, max_steps=4, logging_steps=2,
                learning_rate=1e-3, report_to=[], use_cpu=True, save_strategy="no", disable_tqdm=True,
                dataloader_num_workers=0, seed=0)
    base.update(kw)
    return TrainingArguments(**base)


def test_adamask_trainer_trains_and_logs_both_losses(tmp_path):
    pytest.importorskip("accelerate", reason="transformers.Trainer needs accelerate")
    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.75)
    s0, w0 = sampler_vector(m).clone(), m.encoder_to_decoder.weight.detach().clone()
    trainer = AdaMaskTrainer(model=m, args=trainer_args(tmp_path), train_dataset=ClipDataset())
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 2 and trainer.state.global_step == 4
    for h in logs:
        assert h["reconstruction_loss"] > 0 and h["sampling_loss"] > 0
        # loss = L_R + 1e-4 * L_S, averaged over the same steps
        assert h["loss"] == pytest.approx(h["reconstruction_loss"] + 1e-4 * h["sampling_loss"], rel=1e-5)
    assert not torch.equal(sampler_vector(m), s0)
    assert not torch.equal(m.encoder_to_decoder.weight, w0)
    # evaluation through the Trainer works as well
    metrics = trainer.evaluate(ClipDataset(4))
    assert math.isfinite(metrics["eval_loss"])


def test_stock_trainer_accepts_the_model(tmp_path):
    pytest.importorskip("accelerate", reason="transformers.Trainer needs accelerate")
    from transformers import Trainer
    torch.manual_seed(0)
    m = AdaptiveVideoMAEForPreTraining(tiny_config())
    s0 = sampler_vector(m).clone()
    trainer = Trainer(model=m, args=trainer_args(tmp_path, max_steps=2), train_dataset=ClipDataset(4))
    assert trainer.model_accepts_loss_kwargs is False
    result = trainer.train()
    assert math.isfinite(result.training_loss) and not torch.equal(sampler_vector(m), s0)


def test_example_script_runs(capsys, monkeypatch):
    path = ROOT / "examples" / "train_hf_adaptive.py"
    spec = importlib.util.spec_from_file_location("train_hf_adaptive", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    history = mod.main(["--steps", "3", "--batch-size", "2"])
    assert len(history) == 3
    for rec, ls in history:
        assert math.isfinite(rec) and rec > 0 and math.isfinite(ls) and ls > 0
    text = capsys.readouterr().out
    assert "reconstruction_loss" in text and "sampling_loss" in text


# ---------------------------------------------------------------------------------------------
# mask validation, property-based

DTYPES = [torch.bool, torch.uint8, torch.int8, torch.int32, torch.long, torch.float16, torch.float32, torch.float64]


@given(b=st.integers(1, 4), n=st.integers(2, 20), data=st.data(), dtype=st.sampled_from(DTYPES))
def test_check_bool_masked_pos_accepts_exactly_the_valid_masks(b, n, data, dtype):
    k = data.draw(st.integers(1, n - 1))
    seed = data.draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(b, n, dtype=torch.bool).scatter_(1, torch.rand(b, n, generator=g).argsort(1)[:, :k], True)
    out, count = check_bool_masked_pos(mask.to(dtype), b, n)
    assert out.dtype == torch.bool and torch.equal(out, mask) and count == k
    if dtype != torch.bool:
        bad = mask.to(dtype).clone()
        r, c = data.draw(st.integers(0, b - 1)), data.draw(st.integers(0, n - 1))
        bad[r, c] = data.draw(st.sampled_from([2, 3, -1] + ([0.5] if dtype.is_floating_point else [])))
        with pytest.raises(ValueError, match="other than 0 and 1"):
            check_bool_masked_pos(bad, b, n)
    if b > 1:
        uneven = mask.clone()
        row = uneven[0]
        row[(~row).nonzero()[0] if k < n - 1 else row.nonzero()[0]] = k < n - 1
        with pytest.raises(ValueError, match="same number"):
            check_bool_masked_pos(uneven.to(dtype), b, n)
