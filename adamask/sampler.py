"""AdaMAE's adaptive token sampler and the Gumbel-top-k draw without replacement."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Set, Tuple, cast

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from einops import reduce, repeat
from torch import Tensor, nn

from .masking import LearnedMaskingStrategy, Masking, masking_from_draw
from .registry import register_masking
from .tokens import finite_values
from .validation import (
    check_bool,
    check_choice,
    check_grid,
    check_positive_int,
    check_real,
    check_tokens,
    checked_visible_count,
)

__all__ = ["AdaptiveTokenSampler", "gumbel_topk", "safe_log_softmax", "default_num_heads", "SAMPLER_VARIANTS"]

SAMPLER_VARIANTS = ("block", "attention", "mlp")


def safe_log_softmax(scores: Tensor) -> Tensor:
    """(B, N) scores -> float32 log-probabilities, with non-finite scores handled on device.

    NaN scores count as -inf (probability 0); if a row holds +inf, its +inf entries share all the
    mass; a row with no finite score at all becomes uniform. Never raises, never syncs.
    """
    s = scores.float()
    s = torch.where(torch.isnan(s), float("-inf"), s)
    pos = s == float("inf")
    s = torch.where(pos.any(-1, keepdim=True), torch.where(pos, 0.0, float("-inf")), s)
    s = torch.where((s == float("-inf")).all(-1, keepdim=True), 0.0, s)
    return F.log_softmax(s, dim=-1)


def gumbel_topk(log_probs: Tensor, k: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Draw k of N categories without replacement from Categorical(exp(log_probs)) per row.

    log_probs: (B, N) float. Returns (B, k) int64 indices in draw order: the k largest of
    log_probs + Gumbel noise are exactly a Plackett-Luce (sequential without-replacement) sample.
    Zero-probability categories (-inf) are drawn only when fewer than k have mass; never fails.
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 0 < k <= log_probs.shape[-1]:
        raise ValueError(f"k must be an int in [1, {log_probs.shape[-1]}], got {k!r}")
    lp = log_probs.float()
    u = torch.rand(lp.shape, device=lp.device, generator=generator)
    tiny = torch.finfo(torch.float32).tiny
    gumbel = -torch.log(-torch.log(u.clamp(tiny, 1.0 - 1e-7)))
    keys = torch.where(lp == float("-inf"), float("-inf"), lp + gumbel)
    return keys.topk(k, dim=-1, sorted=True).indices


class SamplerBlock(nn.Module):
    """Pre-norm residual block: attention and/or MLP (fused attention from timm)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        attention: bool,
        mlp: bool,
        dropout: float = 0.0,
        qkv_bias: bool = True,
    ) -> None:
        super().__init__()
        from timm.layers import Attention, Mlp  # imported when a sampler is built: `import adamask` stays light

        self.norm1 = nn.LayerNorm(dim) if attention else None
        self.attn = (
            Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=dropout, proj_drop=dropout)
            if attention
            else None
        )
        self.norm2 = nn.LayerNorm(dim) if mlp else None
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=dropout) if mlp else None

    def forward(self, x: Tensor) -> Tensor:
        if self.attn is not None and self.norm1 is not None:
            x = x + self.attn(self.norm1(x))
        if self.mlp is not None and self.norm2 is not None:
            x = x + self.mlp(self.norm2(x))
        return x


def default_num_heads(width: int, preferred: int = 8) -> int:
    """The largest head count <= ``preferred`` that divides ``width`` (AdaMAE's sampler uses 8)."""
    return max(h for h in range(1, preferred + 1) if width % h == 0)


class AdaptiveTokenSampler(LearnedMaskingStrategy):
    """AdaMAE's adaptive token sampler: tokens (B, N, D) -> Masking with probs (B, N) float32.

    Adds a zero-initialised learnable position embedding, runs ``depth`` pre-norm blocks
    (``variant``: "block" = attention + MLP as in the paper, "attention" = no MLP, "mlp" = the
    paper's MLP-only ablation), scores each token with ``Linear(width, 1)``, takes a softmax over N
    and draws N_v = int(N * (1 - mask_ratio)) visible tokens without replacement (Gumbel-top-k).
    ``num_heads`` defaults to the largest count <= 8 dividing the width (8, as the paper, when it can).

    Cheaper options: ``width`` < embed_dim projects the tokens down first; ``token_pool=(pt, ph, pw)``
    scores mean-pooled cells of the grid and shares each cell's score among its tokens.
    ``checkpoint=True`` recomputes the blocks in backward instead of keeping their activations (at
    paper scale: 0.90x tube-0.90's activations instead of 1.19x, for 1.32x its FLOPs instead of 1.22x).
    ``detach_input=True`` (default) keeps the sampling loss off the tokenizer, as the paper states;
    False reproduces the authors' code, where it also reaches the patch embedding.
    ``temperature`` divides the scores before the softmax (default 1: the paper's; > 1 flattens P).
    Its loss term is AdaMAE's `sampling_loss` (the `LearnedMaskingStrategy` default).

    Inputs: floating tokens of another dtype than the sampler's weights are cast to it (float64
    tokens into a float32 sampler just work); non-finite token values and values beyond +-1e4
    (`adamask.tokens.TOKEN_CLIP`) are replaced by 0 before scoring, so one NaN or overflowing token can
    neither poison the sampler's gradients nor its weights.
    ``.eval()`` only switches dropout off: the visible tokens are still *drawn* from P. For
    inference or saliency use, ``deterministic_eval=True`` (or ``forward(..., deterministic=True)``)
    takes the N_v most probable tokens instead while the sampler is in eval mode.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: Optional[int] = None,
        num_tokens: Optional[int] = None,
        mask_ratio: float = 0.95,
        depth: int = 1,
        *,
        grid: Optional[Sequence[int]] = None,
        width: Optional[int] = None,
        mlp_ratio: float = 4.0,
        variant: str = "block",
        token_pool: Optional[Sequence[int]] = None,
        detach_input: bool = True,
        dropout: float = 0.0,
        qkv_bias: bool = True,
        checkpoint: bool = False,
        temperature: float = 1.0,
        deterministic_eval: bool = False,
    ) -> None:
        embed_dim = check_positive_int(embed_dim, "embed_dim")
        detach_input, checkpoint = check_bool(detach_input, "detach_input"), check_bool(checkpoint, "checkpoint")
        deterministic_eval = check_bool(deterministic_eval, "deterministic_eval")
        temperature = check_real(temperature, "temperature", low=0.0, low_open=True)
        mlp_ratio = check_real(mlp_ratio, "mlp_ratio", low=0.0, low_open=True)
        dropout = check_real(dropout, "dropout", low=0.0, high=1.0, high_open=True)
        depth = check_positive_int(depth, "depth")
        check_choice(variant, SAMPLER_VARIANTS, "variant")
        width = check_positive_int(embed_dim if width is None else width, "width")
        num_heads = default_num_heads(width) if num_heads is None else check_positive_int(num_heads, "num_heads")
        if variant != "mlp" and width % num_heads:
            raise ValueError(f"width ({width}) must be divisible by num_heads ({num_heads})")
        super().__init__(embed_dim, mask_ratio, grid=grid, num_tokens=num_tokens)
        self.token_pool = self._check_token_pool(token_pool)
        scored = self.num_tokens // (1 if self.token_pool is None else math.prod(self.token_pool))
        self.width = width
        self._set_counts()
        self.variant, self.detach_input, self.checkpoint = variant, detach_input, checkpoint
        self.temperature, self.deterministic_eval = temperature, deterministic_eval

        self.proj = nn.Linear(embed_dim, width) if width != embed_dim else nn.Identity()
        self.pos_embed = nn.Parameter(torch.zeros(1, scored, width))
        self.blocks = nn.ModuleList(
            SamplerBlock(
                width,
                num_heads,
                mlp_ratio,
                attention=variant != "mlp",
                mlp=variant != "attention",
                dropout=dropout,
                qkv_bias=qkv_bias,
            )
            for _ in range(depth)
        )
        self.head = nn.Linear(width, 1)
        self.apply(self._init_weights)

    def _set_counts(self) -> None:
        self.num_visible = checked_visible_count(
            self.num_tokens, self.mask_ratio, f"adaptive masking of {self.num_tokens} tokens"
        )

    def _check_token_pool(self, token_pool: Optional[Sequence[int]]) -> Optional[Tuple[int, int, int]]:
        """``token_pool`` as a (pt, ph, pw) tuple that divides the grid, or None."""
        if token_pool is None:
            return None
        pool = check_grid(token_pool, "token_pool")
        if self.grid is None or any(g % p for g, p in zip(self.grid, pool, strict=True)):
            raise ValueError(f"token_pool {pool} needs a grid divisible by it, got grid={self.grid}")
        return pool

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        from timm.layers import trunc_normal_

        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def no_weight_decay(self) -> Set[str]:
        return {"pos_embed"}

    def scores(self, tokens: Tensor) -> Tensor:
        """tokens: (B, N, D) -> unnormalised scores (B, N) float32, divided by the temperature."""
        x = tokens.detach() if self.detach_input else tokens
        if not x.is_floating_point():
            raise TypeError(f"tokens must be a floating-point tensor (patch embeddings), got {x.dtype}")
        x = finite_values(x, self.pos_embed.dtype)
        if self.token_pool is not None:
            (t, h, w), (pt, ph, pw) = self.require_grid(), self.token_pool
            x = reduce(
                x, "b (t pt h ph w pw) d -> b (t h w) d", "mean", t=t // pt, pt=pt, h=h // ph, ph=ph, w=w // pw, pw=pw
            )
        x = self.proj(x) + self.pos_embed
        for blk in self.blocks:
            if self.checkpoint and x.requires_grad:
                x = cast(Tensor, torch.utils.checkpoint.checkpoint(blk, x, use_reentrant=False))
            else:
                x = blk(x)
        s = self.head(x).squeeze(-1).float()
        if self.temperature != 1.0:
            s = s / self.temperature
        if self.token_pool is not None:
            s = repeat(s, "b (t h w) -> b (t pt h ph w pw)", t=t // pt, h=h // ph, w=w // pw, pt=pt, ph=ph, pw=pw)
        return cast(Tensor, s)

    def log_probs(self, tokens: Tensor) -> Tensor:
        """tokens: (B, N, D) -> log-probabilities (B, N) float32 (also under autocast)."""
        return safe_log_softmax(self.scores(tokens))

    def forward(  # type: ignore[override]
        self,
        tokens: Tensor,
        generator: Optional[torch.Generator] = None,
        *,
        deterministic: Optional[bool] = None,
    ) -> Masking:
        """tokens: (B, N, D) -> Masking (True = masked) with probs (B, N) float32 and draw_order.

        deterministic: take the N_v most probable tokens instead of drawing them; default
        ``deterministic_eval and not self.training``."""
        check_tokens(tokens, self.num_tokens, embed_dim=self.embed_dim)
        log_probs = self.log_probs(tokens)
        if deterministic is None:
            deterministic = self.deterministic_eval and not self.training
        if deterministic:
            draw = log_probs.topk(self.num_visible, dim=-1, sorted=True).indices
        else:
            draw = gumbel_topk(log_probs, self.num_visible, generator)
        return masking_from_draw(draw, self.num_tokens, probs=log_probs.exp(), draw_order=draw)

    def extra_repr(self) -> str:
        return (
            f"num_tokens={self.num_tokens}, mask_ratio={self.mask_ratio}, num_visible={self.num_visible}, "
            f"variant={self.variant!r}, token_pool={self.token_pool}, detach_input={self.detach_input}, "
            f"temperature={self.temperature:g}"
        )


@register_masking("adaptive", default_ratio=0.95, learned=True, needs="tokens")
def _adaptive(*, grid: Sequence[int], mask_ratio: float, embed_dim: int = 768, **options: Any) -> AdaptiveTokenSampler:
    return AdaptiveTokenSampler(embed_dim, grid=grid, mask_ratio=mask_ratio, **options)
