"""Hugging Face VideoMAE integration: save_pretrained / from_pretrained and wrap."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")
from _hf_helpers import B, clips, fixed_mask, tiny_config  # noqa: E402
from transformers import VideoMAEForPreTraining  # noqa: E402

from adamask.integrations.hf import AdaptiveVideoMAEForPreTraining, wrap  # noqa: E402

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
    torch.testing.assert_close(stock(x, bool_masked_pos=mask).loss, model(x, bool_masked_pos=mask).loss, rtol=0, atol=0)


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
