"""Shared pieces of the Hugging Face integration and robustness tests: a tiny config, clips, a stock twin,
fixed masks."""

from __future__ import annotations

import torch
from transformers import VideoMAEConfig, VideoMAEForPreTraining

from adamask.integrations.hf import AdaptiveVideoMAEForPreTraining

B, T, C, S = 2, 4, 3, 32
N = (T // 2) * (S // 8) ** 2  # 32 tokens


def tiny_config(**overrides) -> VideoMAEConfig:
    kw = dict(
        image_size=S,
        patch_size=8,
        num_channels=C,
        num_frames=T,
        tubelet_size=2,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        decoder_hidden_size=32,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=64,
        use_mean_pooling=False,
    )
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


def sampler_vector(m: AdaptiveVideoMAEForPreTraining) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in m.mask_sampler.parameters()])


def fixed_mask(batch: int = B, masked: int = 24, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    idx = torch.stack([torch.randperm(N, generator=g)[:masked] for _ in range(batch)])
    return torch.zeros(batch, N, dtype=torch.bool).scatter_(1, idx, True)
