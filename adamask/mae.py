"""A compact reference video MAE that takes any masking strategy.

Encoder: ViT on the visible tokens only; decoder: a light ViT on all tokens (mask tokens for the
hidden ones); both from timm blocks with fused attention and fixed sinusoidal position embeddings.
Video layout (B, C, T, H, W); tubelet (t, h, w); tokens in (t, h, w) order; mask True = masked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Optional, Sequence, Set, Union, cast

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .loss import DEFAULT_SAMPLING_WEIGHT, LossSettings
from .masking import Masking, MaskingStrategy, is_learned, learned_loss, needs_video, validate_strategy_output
from .registry import create_masking, strategy_info
from .tokens import gather_tokens, normalize_patches, patchify, sinusoid_embedding, token_grid, token_mse
from .validation import Grid, check_mask_ratio, check_tubelet

__all__ = [
    "TubeletEmbedding",
    "MaskedVideoAutoencoder",
    "MAEOutput",
    "MAE_CONFIGS",
    "create_mae",
]

_CONFIG_FIELDS = ("img_size", "num_frames", "tubelet", "embed_dim", "depth", "num_heads", "decoder_embed_dim",
                  "decoder_depth", "decoder_num_heads")  # fmt: skip
_CONFIG_ROWS = {
    # CPU-test sizes
    "nano": (32, 4, (2, 8, 8), 32, 1, 2, 32, 1, 2),
    "tiny": (64, 8, (2, 16, 16), 96, 2, 3, 64, 1, 2),
    # ViT sizes at the paper's input (16 x 224 x 224, tubelet 2 x 16 x 16 -> 1568 tokens)
    "small": (224, 16, (2, 16, 16), 384, 12, 6, 192, 4, 3),
    "base": (224, 16, (2, 16, 16), 768, 12, 12, 384, 4, 6),
}
MAE_CONFIGS: Dict[str, Dict[str, Any]] = {
    name: dict(zip(_CONFIG_FIELDS, row, strict=True)) for name, row in _CONFIG_ROWS.items()
}


class TubeletEmbedding(nn.Module):
    """Patch embedding of tubelets: video (B, C, T, H, W) -> tokens (B, N, D) in (t, h, w) order, computed as
    one reshape of the tubelets and one matmul.

    Numerically equal to ``nn.Conv3d(in_chans, embed_dim, kernel_size=tubelet, stride=tubelet)`` followed by
    ``flatten(2).transpose(1, 2)``, with the same parameters (``weight`` (D, C, t, h, w), ``bias`` (D,)), the
    same ``state_dict`` and the same initialisation (so the same seed gives the same weights); it skips the
    convolution's implicit GEMM and the transposed copy of its output."""

    def __init__(self, in_chans: int, embed_dim: int, tubelet: Sequence[int]) -> None:
        super().__init__()
        self.tubelet: Grid = check_tubelet(tubelet)
        self.weight = nn.Parameter(torch.empty(embed_dim, in_chans, *self.tubelet))
        self.bias = nn.Parameter(torch.empty(embed_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The initialisation of ``nn.Conv3d``: Kaiming-uniform weights (a = sqrt(5)), uniform bias in
        +-1/sqrt(fan_in)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1.0 / math.sqrt(math.prod(self.weight.shape[1:]))
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, video: Tensor) -> Tensor:
        """video (B, C, T, H, W), T, H, W divisible by the tubelet -> (B, N, D)."""
        pt, ph, pw = self.tubelet
        # one copy of the video, its patches in the (c p0 p1 p2) order of the flattened Conv3d weight
        patches = rearrange(video, "b c (t p0) (h p1) (w p2) -> b (t h w) (c p0 p1 p2)", p0=pt, p1=ph, p2=pw)
        return F.linear(patches, self.weight.flatten(1), self.bias)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, tubelet={self.tubelet}"


@dataclass
class MAEOutput:
    """loss = reconstruction_loss + sampling_weight * sampling_loss (sampling_loss None if not learned).

    pred, target: (B, N_m, t*h*w*C) for the masked tokens in ascending order; token_error (B, N_m).
    With decoder masking: pred, target (B, N_d, t*h*w*C) for the N_d tokens the decoder reconstructs
    (ascending); token_error (B, N), the error of tokens both masked and reconstructed, 0 elsewhere;
    ``masking.error_mask`` marks them and ``decoder_masking`` is the decoder's Masking.
    """

    loss: Tensor
    reconstruction_loss: Tensor
    sampling_loss: Optional[Tensor]
    pred: Tensor
    target: Tensor
    token_error: Tensor
    masking: Masking
    decoder_masking: Optional[Masking] = None


class MaskedVideoAutoencoder(nn.Module):
    """Reference video MAE. ``masking``: a registered name (built with the model's grid and token
    width) or a strategy ``(tokens) -> Masking``; a learned strategy is stored as the sub-module
    ``mask_sampler`` and trained by its own loss term, weighted by ``sampling_weight``.

    ``decoder_masking`` (e.g. "running_cell", ratio ``decoder_mask_ratio``): the decoder then
    reconstructs only the tokens that strategy leaves visible (VideoMAE V2's dual masking), and the
    loss is the mean error over the tokens both masked and reconstructed."""

    pos_embed: Tensor  # buffers: fixed sinusoidal tables (1, N, D)
    decoder_pos_embed: Tensor

    def __init__(
        self,
        img_size: int = 224,
        num_frames: int = 16,
        tubelet: Sequence[int] = (2, 16, 16),
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        decoder_embed_dim: int = 384,
        decoder_depth: int = 4,
        decoder_num_heads: int = 6,
        masking: Union[str, Callable[..., Masking]] = "adaptive",
        mask_ratio: Optional[float] = None,
        masking_options: Optional[Dict[str, Any]] = None,
        sampling_weight: float = DEFAULT_SAMPLING_WEIGHT,
        norm_pix_loss: bool = True,
        sampling_estimator: str = "paper",
        sampling_baseline: Optional[str] = None,
        decoder_masking: Union[None, str, MaskingStrategy] = None,
        decoder_mask_ratio: Optional[float] = None,
        sampling_entropy_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.tubelet: Grid = check_tubelet(tubelet)
        self.in_chans = in_chans
        self.input_shape = (in_chans, num_frames, img_size, img_size)
        self.grid = token_grid((1, *self.input_shape), self.tubelet)
        self.num_tokens = math.prod(self.grid)
        self.embed_dim = embed_dim
        self.loss_settings = LossSettings(
            sampling_weight, sampling_estimator, sampling_baseline, sampling_entropy_weight
        )
        self.norm_pix_loss = norm_pix_loss

        self._attach_strategy(masking, mask_ratio, masking_options)
        self.decoder_masking = self._decoder_strategy(decoder_masking, decoder_mask_ratio)

        from timm.models.vision_transformer import Block  # imported when a model is built: `import adamask` stays light

        self.patch_embed = TubeletEmbedding(in_chans, embed_dim, self.tubelet)
        self.register_buffer("pos_embed", sinusoid_embedding(self.num_tokens, embed_dim), persistent=False)
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)

        patch_dim = math.prod(self.tubelet) * in_chans
        self.encoder_to_decoder = nn.Linear(embed_dim, decoder_embed_dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.register_buffer(
            "decoder_pos_embed", sinusoid_embedding(self.num_tokens, decoder_embed_dim), persistent=False
        )
        self.decoder_blocks = nn.ModuleList(
            Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, qkv_bias=True) for _ in range(decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim)
        self.decoder_head = nn.Linear(decoder_embed_dim, patch_dim)
        self._init_backbone()

    def _attach_strategy(
        self,
        masking: Union[str, Callable[..., Masking]],
        mask_ratio: Optional[float],
        options: Optional[Dict[str, Any]],
    ) -> None:
        """Build a named strategy on the model's grid (a strategy that needs the video also gets the model's
        tubelet); a module strategy becomes ``mask_sampler``."""
        if isinstance(masking, str):
            opts = dict(options or {})
            width = opts.pop("embed_dim", self.embed_dim)
            if strategy_info(masking).needs == "video":
                opts.setdefault("tubelet", self.tubelet)
            masking = create_masking(masking, grid=self.grid, mask_ratio=mask_ratio, embed_dim=width, **opts)
        elif not callable(masking):
            raise TypeError(f"masking must be a strategy name or a callable (tokens) -> Masking, got {masking!r}")
        strategy_tokens = getattr(masking, "num_tokens", self.num_tokens)
        if strategy_tokens != self.num_tokens:
            raise ValueError(
                f"masking strategy expects {strategy_tokens} tokens but the model's grid "
                f"{self.grid} has {self.num_tokens}"
            )
        tubelet = getattr(masking, "tubelet", None)
        if needs_video(masking) and tubelet is not None and tuple(tubelet) != self.tubelet:
            raise ValueError(
                f"masking strategy {type(masking).__name__} cuts the video into tubelets {tuple(tubelet)} but the "
                f"model's tubelet is {self.tubelet}; build it with tubelet={self.tubelet}"
            )
        check = getattr(masking, "check_loss_settings", None)
        if callable(check):
            check(self.loss_settings)
        self.mask_sampler: Optional[nn.Module] = None
        self._masking_fn: Optional[Callable[..., Masking]] = None  # a callable that is not a module
        if isinstance(masking, nn.Module):
            self.mask_sampler = masking
        else:
            self._masking_fn = masking

    def _decoder_strategy(
        self, strategy: Union[None, str, MaskingStrategy], ratio: Optional[float]
    ) -> Optional[MaskingStrategy]:
        if strategy is None:
            if ratio is not None:
                raise ValueError("decoder_mask_ratio needs decoder_masking (e.g. 'running_cell')")
            return None
        built: Any = strategy
        if isinstance(strategy, str):
            if strategy_info(strategy).needs != "nothing":
                raise ValueError(
                    f"decoder_masking must be a strategy that needs no tokens (e.g. 'running_cell'), got {strategy!r}"
                )
            built = create_masking(strategy, grid=self.grid, mask_ratio=ratio)
        if not isinstance(built, MaskingStrategy) or built.num_tokens != self.num_tokens:
            raise TypeError(
                f"decoder_masking must be a registered name or a MaskingStrategy over the model's "
                f"{self.num_tokens} tokens, got {strategy!r}"
            )
        return built

    def set_mask_ratio(self, mask_ratio: float) -> None:
        """Change the encoder strategy's mask ratio (e.g. from an `adamask.schedules.RatioSchedule`)."""
        setter = getattr(self.strategy, "set_mask_ratio", None)
        if setter is None:
            raise TypeError(f"the masking strategy {self.strategy!r} cannot change its mask ratio")
        setter(mask_ratio)

    def _init_backbone(self) -> None:
        from timm.layers import trunc_normal_

        trunc_normal_(self.mask_token, std=0.02)
        for name, m in self.named_modules():
            if name.startswith("mask_sampler"):
                continue
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def is_adaptive(self) -> bool:
        """True when the model's strategy is learned (it has a loss term of its own)."""
        return is_learned(self.mask_sampler)

    @property
    def sampling_weight(self) -> float:
        return self.loss_settings.weight

    @sampling_weight.setter
    def sampling_weight(self, value: float) -> None:
        self.loss_settings = replace(self.loss_settings, weight=value)

    @property
    def sampling_estimator(self) -> str:
        return self.loss_settings.estimator

    @property
    def sampling_baseline(self) -> Optional[str]:
        return self.loss_settings.baseline

    def no_weight_decay(self) -> Set[str]:
        names = {"mask_token"}
        own = getattr(self.mask_sampler, "no_weight_decay", None)
        if callable(own):
            names |= {f"mask_sampler.{n}" for n in own()}
        return names

    def check_video(self, video: Tensor) -> None:
        if not isinstance(video, Tensor):
            raise TypeError(f"video must be a torch.Tensor (B, C, T, H, W), got {type(video).__name__}")
        if video.dim() != 5 or tuple(video.shape[1:]) != self.input_shape:
            raise ValueError(
                f"video must have shape (B, {', '.join(map(str, self.input_shape))}) = (B, C, T, H, W), "
                f"got {tuple(video.shape)}"
            )
        if not video.is_floating_point():
            raise TypeError(
                f"video must be a floating-point tensor of normalised pixels, got {video.dtype}; "
                f"convert it first, e.g. (video.float() / 255 - mean) / std"
            )

    def tokenize(self, video: Tensor) -> Tensor:
        """video (B, C, T, H, W) float -> patch embeddings (B, N, D) (no position embedding).

        A video of another float dtype than the weights (float64, float16, bfloat16) is cast to it."""
        self.check_video(video)
        return cast(Tensor, self.patch_embed(video.to(self.patch_embed.weight.dtype)))

    @property
    def strategy(self) -> Callable[..., Masking]:
        """The masking strategy: ``mask_sampler`` when it is a module, else the callable given."""
        return self.mask_sampler if self.mask_sampler is not None else cast(Callable[..., Masking], self._masking_fn)

    def sample_masking(
        self, tokens: Tensor, generator: Optional[torch.Generator] = None, video: Optional[Tensor] = None
    ) -> Masking:
        """tokens (B, N, D) -> the strategy's Masking (checked against the contract on its first call, see
        `adamask.masking.set_validation`). A strategy that needs the video (``needs == "video"``, e.g.
        ``motion_pixels``) is given ``video`` (B, C, T, H, W) instead of the tokens."""
        fn = self.strategy
        x = tokens
        if needs_video(fn):
            if video is None:
                raise TypeError(
                    f"masking strategy {type(fn).__name__} draws its masks from the video (needs='video'): "
                    f"call sample_masking(tokens, video=video) or the model itself"
                )
            x = video
        masking = fn(x, generator=generator) if generator is not None else fn(x)
        return validate_strategy_output(self, fn, masking, self.num_tokens)

    def encode(self, tokens: Tensor, visible_idx: Optional[Tensor] = None) -> Tensor:
        """Encoder on patch embeddings (B, N, D); only the visible ones if ``visible_idx`` (B, N_v)."""
        pos = self.pos_embed[0].to(tokens.dtype)  # (N, D)
        if visible_idx is None:
            x = tokens + pos
        else:  # the position embedding of the visible tokens only: one lookup of its rows
            x = gather_tokens(tokens, visible_idx) + F.embedding(visible_idx, pos)
        for blk in self.blocks:
            x = blk(x)
        return cast(Tensor, self.norm(x))

    def decode(self, latent: Tensor, masking: Masking, decoded_idx: Optional[Tensor] = None) -> Tensor:
        """latent (B, N_v, D) -> predictions (B, N_m, t*h*w*C) for the masked tokens, ascending.

        decoded_idx (B, N_d): reconstruct only these tokens (decoder masking): the decoder then sees
        the N_v visible tokens and N_d mask tokens, not all N, and predicts (B, N_d, t*h*w*C)."""
        y = self.encoder_to_decoder(latent)
        b, d = y.shape[0], y.shape[-1]
        pos = self.decoder_pos_embed.to(y.dtype)
        if decoded_idx is None:
            full = self.mask_token.to(y.dtype).expand(b, self.num_tokens, d)
            x = full.scatter(1, masking.visible_idx.unsqueeze(-1).expand(-1, -1, d), y) + pos
        else:
            pos = pos.expand(b, -1, -1)
            queries = self.mask_token.to(y.dtype) + gather_tokens(pos, decoded_idx)
            x = torch.cat([y + gather_tokens(pos, masking.visible_idx), queries], dim=1)
        for blk in self.decoder_blocks:
            x = blk(x)
        out = gather_tokens(x, masking.masked_idx) if decoded_idx is None else x[:, y.shape[1] :]
        return cast(Tensor, self.decoder_head(self.decoder_norm(out)))

    @torch.no_grad()
    def features(self, video: Tensor) -> Tensor:
        """Frozen-encoder clip features (B, D): mean of the encoder output over all tokens."""
        return self.encode(self.tokenize(video)).mean(1)

    def targets(self, video: Tensor, idx: Optional[Tensor] = None) -> Tensor:
        """Reconstruction targets, float32: the pixels of each tubelet in (p0 p1 p2 c) order, normalised per
        patch and channel if ``norm_pix_loss``; (B, N, t*h*w*C), or (B, K, t*h*w*C) for the tokens ``idx`` (B, K)
        only (gathered before the normalisation, which is per token)."""
        with torch.no_grad():
            patches = patchify(video, self.tubelet)
            if idx is not None:
                patches = gather_tokens(patches, idx)
            return normalize_patches(patches, self.in_chans) if self.norm_pix_loss else patches.float()

    def forward(
        self, video: Tensor, masking: Optional[Masking] = None, generator: Optional[torch.Generator] = None
    ) -> MAEOutput:
        """video (B, C, T, H, W) -> MAEOutput. ``masking`` overrides the model's strategy."""
        tokens = self.tokenize(video)
        if masking is None:
            masking = self.sample_masking(tokens, generator, video)
        elif masking.mask.shape != tokens.shape[:2]:
            raise ValueError(
                f"masking.mask must be (B, N) = {tuple(tokens.shape[:2])}, got {tuple(masking.mask.shape)}"
            )
        return self.reconstruct(video, tokens, masking, generator=generator)

    def reconstruct(
        self,
        video: Tensor,
        tokens: Tensor,
        masking: Masking,
        decoder_masking: Optional[Masking] = None,
        generator: Optional[torch.Generator] = None,
    ) -> MAEOutput:
        """The MAE step after masking: video (B, C, T, H, W), its patch embeddings (B, N, D) and the
        masking -> MAEOutput with both losses. With decoder masking configured, its mask is drawn
        here unless ``decoder_masking`` (True = not reconstructed) is given."""
        latent = self.encode(tokens, masking.visible_idx)
        if decoder_masking is None and self.decoder_masking is not None:
            decoder_masking = self.decoder_masking.sample(tokens.shape[0], tokens.device, generator)
        if decoder_masking is None:
            pred = self.decode(latent, masking)
            target = self.targets(video, masking.masked_idx)
            err = token_mse(pred, target)
            rec = err.mean()
        else:
            decoded = decoder_masking.visible_idx
            pred = self.decode(latent, masking, decoded)
            target = self.targets(video, decoded)
            scored = masking.mask.gather(1, decoded)  # masked by the encoder and reconstructed
            err_d = torch.where(scored, token_mse(pred, target), pred.new_zeros((), dtype=torch.float32))
            rec = err_d.sum() / scored.sum().clamp_min(1)
            err = err_d.new_zeros(masking.mask.shape).scatter(1, decoded, err_d)
            masking = replace(masking, error_mask=masking.mask & ~decoder_masking.mask)
        ls = learned_loss(self.strategy, masking, err, self.loss_settings)
        loss = rec if ls is None else rec + self.loss_settings.weight * ls
        return MAEOutput(loss, rec, ls, pred, target, err, masking, decoder_masking)


def create_mae(
    size: str = "tiny",
    *,
    masking: Union[str, Callable[..., Masking]] = "adaptive",
    mask_ratio: Optional[float] = None,
    **overrides: Any,
) -> MaskedVideoAutoencoder:
    """Build a reference MAE from a named size in MAE_CONFIGS (nano, tiny, small, base)."""
    if size not in MAE_CONFIGS:
        raise ValueError(f"unknown size {size!r}; known: {sorted(MAE_CONFIGS)}")
    if mask_ratio is not None:
        check_mask_ratio(mask_ratio)
    return MaskedVideoAutoencoder(**{**MAE_CONFIGS[size], **overrides}, masking=masking, mask_ratio=mask_ratio)
