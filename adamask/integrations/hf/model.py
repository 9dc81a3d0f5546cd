"""`AdaptiveVideoMAEForPreTraining`: ``transformers.VideoMAEForPreTraining`` whose forward samples
``bool_masked_pos`` itself with a masking strategy (the sub-module ``mask_sampler``), with its settings,
the check of a caller-given mask, its per-rank random streams and `wrap`.

The forward computes what the stock one does with the same weights and mask, but selects tokens by
index (gathers of the sampled visible and masked indices) where the stock model indexes with the
boolean mask, and keeps its fixed position tables on the model's device: a training step with a
sampled mask makes the host wait for the device nowhere.

Settings live on the config as ``config.adamask_<name>`` (so ``save_pretrained`` / ``from_pretrained``
round-trip them); every setting is validated before any is written, so a refused call leaves the config
as it was. Conventions: ``pixel_values`` (B, T, C, H, W); tokens in (t, h, w) order; ``bool_masked_pos``
(B, N) bool with True = masked and the same number of masked tokens in every row; ``probs`` (B, N) float32.
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple, Union, cast

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor
from transformers import VideoMAEConfig, VideoMAEForPreTraining
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from transformers.models.videomae.modeling_videomae import (
    VideoMAEEmbeddings,
    VideoMAEForPreTrainingOutput,
    VideoMAEPatchEmbeddings,
)

from ...loss import DEFAULT_SAMPLING_WEIGHT, LossSettings
from ...masking import Masking
from ...tokens import gather_tokens, patchify
from ...validation import check_bool, check_mask_ratio, check_positive_int
from ..adapter import (
    SAMPLER_NAME,
    attach_strategy,
    build_strategy,
    check_bare_model,
    check_loss_settings,
    check_model_strategy,
    check_strategy_fits,
    detaches_input,
    draw_masking,
    make_loss_settings,
    model_pixels,
    no_weight_decay_names,
    set_strategy_ratio,
    strategy_input,
    total_loss,
)

try:  # transformers >= 5: init functions that skip weights already loaded from a checkpoint
    from transformers.initialization import zeros_ as _zeros_
except ImportError:  # pragma: no cover - transformers 4.x
    from torch.nn.init import zeros_ as _zeros_

__all__ = [
    "ADAMASK_DEFAULTS",
    "CONFIG_PREFIX",
    "STRATEGY_OPTIONS",
    "adamask_settings",
    "strategy_options_of",
    "check_bool_masked_pos",
    "rank_seed",
    "distributed",
    "VisibleEmbeddings",
    "AdaptiveVideoMAEEmbeddings",
    "AdaptiveVideoMAEForPreTraining",
    "AdaptiveVideoMAEForPreTrainingOutput",
    "wrap",
]

# ---------------------------------------------------------------------------------------------
# settings: config.adamask_<name>

CONFIG_PREFIX = "adamask_"

ADAMASK_DEFAULTS: Dict[str, Any] = {
    "mask_ratio": 0.95,  # fraction of tokens hidden from the encoder
    "sampling_weight": DEFAULT_SAMPLING_WEIGHT,  # lambda in loss = L_R + lambda * L_S
    "sampler_depth": 1,  # sampler blocks
    "sampler_width": None,  # None: config.hidden_size
    "sampler_heads": None,  # None: the largest count <= 8 dividing the width
    "sampler_variant": "block",  # "block" | "attention" | "mlp"
    "detach_input": True,  # keep L_S off the patch embedding
    "sampling_estimator": "paper",  # see adamask.sampling_loss
    "sampling_baseline": None,  # None | "mean" | "rloo"
    "sampling_entropy_weight": 0.0,  # weight of the entropy bonus on the sampler's distribution
    "strategy": "adaptive",  # any registered strategy the model draws, from its tokens or its clip
    "strategy_options": None,  # further keyword arguments of the strategy (a JSON dict), e.g. motion's temperature
}

# options of the strategy (config name -> the strategy's keyword); each is passed only when it differs
# from its default here, which is the adaptive sampler's own, so other strategies keep theirs
STRATEGY_OPTIONS = {
    "sampler_depth": "depth",
    "sampler_width": "width",
    "sampler_heads": "num_heads",
    "sampler_variant": "variant",
    "detach_input": "detach_input",
}


def adamask_settings(config: VideoMAEConfig, **overrides: Any) -> Dict[str, Any]:
    """Validate ``overrides`` merged with ``config.adamask_*`` and the defaults, then write them all to
    ``config.adamask_*`` (numbers as plain Python ints and floats, so the config saves as JSON);
    returns the settings. Nothing is written unless every setting is valid: a refused call leaves
    ``config`` as it was. A config saved before an option existed gets its default (``strategy``:
    ``"adaptive"``; ``sampling_entropy_weight``: 0). The strategy's own options (variant, heads, ...)
    are checked when the strategy is built."""
    unknown = sorted(set(overrides) - set(ADAMASK_DEFAULTS))
    if unknown:
        raise TypeError(f"unknown adamask option(s) {unknown}; known: {sorted(ADAMASK_DEFAULTS)}")
    merged = {
        name: overrides[name] if name in overrides else getattr(config, CONFIG_PREFIX + name, default)
        for name, default in ADAMASK_DEFAULTS.items()
    }
    s = _checked_settings(merged)
    for name, value in s.items():
        setattr(config, CONFIG_PREFIX + name, value)
    return s


def _optional_positive_int(value: Any, name: str) -> Optional[int]:
    return None if value is None else check_positive_int(value, name)


def _checked_settings(s: Mapping[str, Any]) -> Dict[str, Any]:
    """The settings validated and normalised (numpy numbers become Python numbers); raises
    ValueError / TypeError naming the first bad one."""
    loss = make_loss_settings(
        s["sampling_weight"], s["sampling_estimator"], s["sampling_baseline"], s["sampling_entropy_weight"]
    )
    out = dict(s)
    out.update(
        mask_ratio=check_mask_ratio(s["mask_ratio"], "mask_ratio"),
        sampling_weight=loss.weight,
        sampling_entropy_weight=loss.entropy_weight,
        sampler_depth=check_positive_int(s["sampler_depth"], "sampler_depth"),
        sampler_width=_optional_positive_int(s["sampler_width"], "sampler_width"),
        sampler_heads=_optional_positive_int(s["sampler_heads"], "sampler_heads"),
        detach_input=check_bool(s["detach_input"], "detach_input"),
        strategy=check_model_strategy(s["strategy"]),
        strategy_options=_checked_strategy_options(s["strategy_options"]),
    )
    if not isinstance(s["sampler_variant"], str):
        raise TypeError(
            f"sampler_variant must be a str, got {type(s['sampler_variant']).__name__} {s['sampler_variant']!r}"
        )
    return out


def strategy_options_of(settings: Mapping[str, Any]) -> Dict[str, Any]:
    """The strategy's keyword arguments: the `STRATEGY_OPTIONS` that differ from their default, then
    ``strategy_options``."""
    options = {kw: settings[name] for name, kw in STRATEGY_OPTIONS.items() if settings[name] != ADAMASK_DEFAULTS[name]}
    return {**options, **(settings["strategy_options"] or {})}


def _checked_strategy_options(value: Any) -> Optional[Dict[str, Any]]:
    """None or a dict of the strategy's keyword arguments holding JSON values (saved in the config)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise TypeError(
            f"strategy_options must be a dict of the strategy's keyword arguments (str keys), got {value!r}"
        )
    try:
        json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError):
        raise TypeError(
            f"strategy_options must hold plain JSON values (they are saved with the config), got {value!r}"
        ) from None
    return dict(value)


# ---------------------------------------------------------------------------------------------
# masks: a caller-given one checked, the sampled ones drawn from per-rank streams


def check_bool_masked_pos(
    bool_masked_pos: Any, batch_size: int, num_tokens: int, device: Optional[torch.device] = None
) -> Tuple[Tensor, int]:
    """Validate a caller-given mask; returns it as (B, N) bool (True = masked) and its masked count.

    A bool mask is used as is; an integer or float mask holding only 0 and 1 is cast to bool (any
    other value raises, since HF would treat a non-bool mask as integer indices). Every row must
    mask the same number of tokens, at least one and fewer than N. Reads the mask's values (one
    host sync): only for caller-given masks.
    """
    if not isinstance(bool_masked_pos, Tensor):
        raise TypeError(f"bool_masked_pos must be a torch.Tensor (B, N) of bool, got {type(bool_masked_pos).__name__}")
    m = bool_masked_pos if device is None else bool_masked_pos.to(device)
    if m.dim() != 2 or tuple(m.shape) != (batch_size, num_tokens):
        raise ValueError(f"bool_masked_pos must have shape (B, N) = {(batch_size, num_tokens)}, got {tuple(m.shape)}")
    if m.dtype == torch.bool:
        binary = torch.ones((), dtype=torch.long, device=m.device)
    elif m.is_complex():
        raise TypeError(f"bool_masked_pos must be bool (True = masked), got {m.dtype}")
    else:
        binary = ((m == 0) | (m == 1)).all().long()
        m = m != 0
    counts = m.sum(1)
    ok, lo, hi = torch.stack([binary, counts.min(), counts.max()]).tolist()
    if not ok:
        raise ValueError(
            f"bool_masked_pos of dtype {bool_masked_pos.dtype} holds values other than 0 and 1; "
            f"pass a bool mask (True = masked)"
        )
    if lo != hi:
        raise ValueError(f"bool_masked_pos must mask the same number of tokens in every row, got between {lo} and {hi}")
    if not 0 < lo < num_tokens:
        raise ValueError(f"bool_masked_pos must mask at least one and fewer than {num_tokens} tokens per row, got {lo}")
    return m, int(lo)


def rank_seed(seed: int, rank: int) -> int:
    """Mix a base seed and a rank into a 63-bit seed (splitmix64 finaliser)."""
    x = (seed * 0x9E3779B97F4A7C15 + (rank + 1) * 0xBF58476D1CE4E5B9) % 2**64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) % 2**64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) % 2**64
    x ^= x >> 31
    return x % 2**63


def distributed() -> bool:
    """True when ``torch.distributed`` runs more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


# ---------------------------------------------------------------------------------------------
# the model


def _loss_settings(config: VideoMAEConfig) -> LossSettings:
    """lambda, estimator, baseline and entropy weight of the sampling loss, from ``config.adamask_*``."""
    return LossSettings(
        config.adamask_sampling_weight,
        config.adamask_sampling_estimator,
        config.adamask_sampling_baseline,
        config.adamask_sampling_entropy_weight,
    )


def _token_grid(patch_embeddings: VideoMAEPatchEmbeddings, config: VideoMAEConfig) -> Tuple[int, int, int]:
    """(T', H', W') from HF's VideoMAE patch embedding and its config."""
    pe = patch_embeddings
    grid = (
        config.num_frames // pe.tubelet_size,
        pe.image_size[0] // pe.patch_size[0],
        pe.image_size[1] // pe.patch_size[1],
    )
    if math.prod(grid) != pe.num_patches:
        raise ValueError(f"token grid {grid} does not match the patch embedding's {pe.num_patches} patches")
    return grid


def _tubelet(patch_embeddings: VideoMAEPatchEmbeddings) -> Tuple[int, int, int]:
    """(t, h, w): the block of pixels one token covers."""
    pe = patch_embeddings
    return (int(pe.tubelet_size), int(pe.patch_size[0]), int(pe.patch_size[1]))


def _normalized_as_stock(patches: Tensor, channels: int, eps: float = 1e-6) -> Tensor:
    """Patches (B, K, P*C) in (p c) order -> each patch's pixels, per channel, minus their mean and divided
    by their unbiased std + eps, with the mean and the variance in two reductions as transformers'
    loss computes them, so that the targets, and the loss, are the stock model's to the last bit."""
    x = patches.reshape(*patches.shape[:-1], -1, channels)  # (B, K, P, C)
    normed = (x - x.mean(dim=-2, keepdim=True)) / (x.var(dim=-2, unbiased=True, keepdim=True).sqrt() + eps)
    return normed.flatten(-2)


@dataclass(frozen=True)
class VisibleEmbeddings:
    """The encoder's input as the adaptive model computes it: the visible tokens' patch embeddings plus
    their position embeddings, (B, N_v, hidden), ascending token order. Handed to the embeddings
    module in place of ``bool_masked_pos`` (see `AdaptiveVideoMAEEmbeddings`)."""

    tokens: Tensor


class AdaptiveVideoMAEEmbeddings(VideoMAEEmbeddings):
    """The embeddings module of an adaptive model: ``VideoMAEEmbeddings`` (same parameters) whose forward
    returns `VisibleEmbeddings` given in place of ``bool_masked_pos`` as they are, so that the stock
    ``VideoMAEModel.forward`` (with its hidden-state and attention outputs) runs the encoder on tokens
    the adaptive model selected by index. Any other ``bool_masked_pos`` (None, a bool mask) is the
    stock forward."""

    def forward(self, pixel_values: Tensor, bool_masked_pos: Any = None) -> Tensor:
        if isinstance(bool_masked_pos, VisibleEmbeddings):
            return bool_masked_pos.tokens
        return cast(Tensor, super().forward(pixel_values, bool_masked_pos))


@dataclass
class AdaptiveVideoMAEForPreTrainingOutput(VideoMAEForPreTrainingOutput):
    """The stock output plus the masking and both loss terms.

    loss:                reconstruction_loss + sampling_weight * sampling_loss (scalar).
    logits:              (B, N_m, tubelet*patch*patch*C) predictions of the masked tokens, ascending.
    bool_masked_pos:     (B, N) bool, True = masked (also available as ``mask``).
    probs:               (B, N) float32 sampling probabilities; None for a caller-given mask.
    reconstruction_loss: the stock VideoMAE loss (scalar).
    sampling_loss:       unweighted L_S (scalar float32); None for a caller-given mask.
    token_error:         (B, N_m) float32 per-token MSE of the masked tokens, ascending (detached);
                         its mean equals reconstruction_loss.
    """

    bool_masked_pos: Optional[Tensor] = None
    probs: Optional[Tensor] = None
    reconstruction_loss: Optional[Tensor] = None
    sampling_loss: Optional[Tensor] = None
    token_error: Optional[Tensor] = None

    @property
    def mask(self) -> Optional[Tensor]:
        return self.bool_masked_pos


class AdaptiveVideoMAEForPreTraining(VideoMAEForPreTraining):
    """``VideoMAEForPreTraining`` with adaptive masking (sub-module ``mask_sampler``).

    ``AdaptiveVideoMAEForPreTraining(config, **options)``: ``options`` are the `ADAMASK_DEFAULTS`
    names (mask_ratio, sampling_weight, sampler_depth, ..., strategy); they override
    ``config.adamask_*``. ``strategy`` (default ``"adaptive"``, AdaMAE's sampler) may name any
    registered strategy the model draws itself: from the patch embeddings, or from the clip
    (``needs="video"``, e.g. ``"motion_pixels"``, built with the model's tubelet and given
    ``pixel_values`` as (B, C, T, H, W)); a non-learned one adds no sampling loss.
    The config is copied, never modified in place. Pre-training configs should set
    ``use_mean_pooling=False`` (else the encoder has no final LayerNorm).
    """

    # The loss is a per-batch mean: Trainer must not pass num_items_in_batch to forward.
    accepts_loss_kwargs = False
    # the embeddings module keeps its stock parameters under another class name (device maps)
    _no_split_modules = ["VideoMAEEmbeddings", "AdaptiveVideoMAEEmbeddings", "VideoMAELayer"]
    mask_sampler: torch.nn.Module  # the masking strategy, a sub-module added by `_setup_adamask`

    def __init__(self, config: VideoMAEConfig, **adamask_options: Any) -> None:
        super().__init__(copy.deepcopy(config))
        self._setup_adamask(adamask_options)

    # -- construction -----------------------------------------------------------------------

    def _setup_adamask(self, options: Mapping[str, Any], config: Optional[VideoMAEConfig] = None) -> None:
        """Validate the options and build the strategy, then attach it. ``config`` (default
        ``self.config``) receives the settings and becomes the config of the model and of every
        sub-module that shared the old one. Nothing of the model changes unless every step succeeds."""
        config = self.config if config is None else config
        s = adamask_settings(config, **options)
        if getattr(config, "use_mean_pooling", False):
            warnings.warn(
                "config.use_mean_pooling=True: the encoder has no final LayerNorm; VideoMAE "
                "pre-training configs use use_mean_pooling=False",
                stacklevel=3,
            )
        pe = self.videomae.embeddings.patch_embeddings
        grid = _token_grid(pe, config)
        options = strategy_options_of(s)
        strategy = build_strategy(s["strategy"], grid, s["mask_ratio"], config.hidden_size, _tubelet(pe), **options)
        check_loss_settings(strategy, _loss_settings(config))
        strategy = strategy.to(device=pe.projection.weight.device, dtype=pe.projection.weight.dtype)
        if config is not self.config:
            old = self.config
            for module in self.modules():
                if getattr(module, "config", None) is old:
                    cast(Any, module).config = config
        self.adamask_grid = grid
        attach_strategy(self, strategy)
        self._mask_seed: Optional[int] = None
        self._mask_generators: Dict[str, torch.Generator] = {}
        self._position_tables: Dict[Tuple[str, str], Tensor] = {}
        self.videomae.embeddings.__class__ = AdaptiveVideoMAEEmbeddings

    def token_grid(self) -> Tuple[int, int, int]:
        """The model's token grid (T', H', W') from its patch embedding and config."""
        return _token_grid(self.videomae.embeddings.patch_embeddings, self.config)

    def _init_weights(self, module: torch.nn.Module) -> None:
        # Only runs for weights a checkpoint did not provide (e.g. a stock checkpoint's missing sampler):
        # the strategy's own parameters (the sampler's position embedding) start at zero, its layers as the
        # model's.
        if module is self._modules.get(SAMPLER_NAME):
            for p in module.parameters(recurse=False):
                _zeros_(p)
            return
        super()._init_weights(module)

    @property
    def loss_settings(self) -> LossSettings:
        """lambda, estimator, baseline and entropy weight of the sampling loss, from ``config.adamask_*``."""
        return _loss_settings(self.config)

    def set_mask_ratio(self, mask_ratio: float) -> None:
        """Change the strategy's mask ratio in place (e.g. each step from an `adamask.RatioSchedule`)
        and record it as ``config.adamask_mask_ratio``, so a checkpoint saved mid-schedule reloads
        with the ratio in use. Call it on every rank at the same step (on the bare model under DDP)."""
        self.config.adamask_mask_ratio = set_strategy_ratio(self.mask_sampler, mask_ratio)

    def no_weight_decay(self) -> set:
        """Parameter names to keep out of weight decay: the strategy's (``mask_sampler.pos_embed``)."""
        return no_weight_decay_names(self.mask_sampler)

    # -- random streams ---------------------------------------------------------------------

    def set_mask_seed(self, seed: Optional[int]) -> None:
        """Draw masks from a generator per (device, rank) seeded from (seed, rank); None restores
        the default (global RNG in one process; torch.initial_seed() mixed with the rank under DDP)."""
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        self._mask_seed = seed
        self._mask_generators = {}

    def mask_generator(self, device: torch.device) -> Optional[torch.Generator]:
        """The generator masks are drawn from on ``device``; None means torch's global RNG."""
        several = distributed()
        if self._mask_seed is None and not several:
            return None
        key = str(device)
        gen = self._mask_generators.get(key)
        if gen is None:
            base = torch.initial_seed() if self._mask_seed is None else self._mask_seed
            gen = torch.Generator(device=device)
            gen.manual_seed(rank_seed(base, dist.get_rank() if several else 0))
            self._mask_generators[key] = gen
        return gen

    # -- targets ----------------------------------------------------------------------------

    def reconstruction_targets(self, pixel_values: Tensor, token_idx: Optional[Tensor] = None) -> Tensor:
        """pixel_values (B, T, C, H, W) -> targets (B, N, tubelet*patch*patch*C) float32 for every
        token (or (B, K, ...) for the tokens ``token_idx`` (B, K) int64), as the stock loss builds them:
        ImageNet-un-normalised (3 channels), then per-patch normalised if ``config.norm_pix_loss``."""
        cfg = self.config
        frames = pixel_values.float()
        if cfg.num_channels == 3:  # Python scalars: no host-to-device copy
            frames = torch.stack(
                [
                    frames[:, :, c] * s + m
                    for c, (m, s) in enumerate(zip(IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, strict=True))
                ],
                dim=2,
            )
        elif not cfg.norm_pix_loss:
            raise ValueError("norm_pix_loss=False needs 3-channel (ImageNet-normalised) pixel_values")
        patches = patchify(frames, _tubelet(self.videomae.embeddings.patch_embeddings), layout="btchw")
        if token_idx is not None:  # each patch is normalised on its own: select first, normalise fewer
            patches = gather_tokens(patches, token_idx)
        return _normalized_as_stock(patches, cfg.num_channels) if cfg.norm_pix_loss else patches

    # -- forward ----------------------------------------------------------------------------

    def _check_pixel_values(self, pixel_values: Any) -> Tensor:
        """pixel_values checked against the config and cast to the patch embedding's dtype (see
        `adamask.integrations.adapter.model_pixels`: float pixels of another dtype are cast, integer ones
        refused)."""
        cfg, pe = self.config, self.videomae.embeddings.patch_embeddings
        pixel_values = model_pixels(pixel_values, "pixel_values", "(B, T, C, H, W)", pe.projection.weight.dtype)
        want = (cfg.num_frames, cfg.num_channels, pe.image_size[0], pe.image_size[1])
        if pixel_values.dim() != 5 or tuple(pixel_values.shape[1:]) != want:
            raise ValueError(
                f"pixel_values must have shape (B, T, C, H, W) = (B, {', '.join(map(str, want))}) "
                f"per the config, got {tuple(pixel_values.shape)}"
            )
        check_strategy_fits(self.mask_sampler, self.token_grid(), cfg.hidden_size, tubelet=_tubelet(pe))
        return pixel_values

    def patch_tokens(self, pixel_values: Tensor) -> Tensor:
        """pixel_values (B, T, C, H, W) -> patch embeddings (B, N, hidden)."""
        return cast(Tensor, self.videomae.embeddings.patch_embeddings(pixel_values))

    def position_table(self, which: str, device: torch.device) -> Tensor:
        """The fixed sinusoid position table (1, N, width) float32 of the ``"encoder"`` (the embeddings') or
        the ``"decoder"`` on ``device``: copied there once per device (the stock model copies it from
        the host on every forward, which makes the host wait)."""
        key = (which, str(device))
        table = self._position_tables.get(key)
        if table is None:
            source = self.videomae.embeddings.position_embeddings if which == "encoder" else self.position_embeddings
            table = self._position_tables[key] = source.detach().to(device=device, copy=True)
        return table

    def _mask(
        self,
        pixel_values: Tensor,
        tokens: Tensor,
        bool_masked_pos: Optional[Tensor],
        generator: Optional[torch.Generator],
    ) -> Tuple[Tensor, Tensor, Tensor, Optional[Masking]]:
        """(mask (B, N) bool, visible_idx (B, N_v), masked_idx (B, N_m), both ascending, the sampled
        Masking or None if caller-given). tokens: the patch embeddings (B, N, hidden)."""
        n = tokens.shape[1]
        if bool_masked_pos is None:
            strategy = self.mask_sampler
            drawn_from = strategy_input(
                strategy,
                lambda: tokens.detach() if detaches_input(strategy) else tokens,
                lambda: pixel_values.permute(0, 2, 1, 3, 4),  # (B, C, T, H, W), a view
            )
            gen = generator if generator is not None else self.mask_generator(tokens.device)
            masking = draw_masking(strategy, drawn_from, n, gen)
            return masking.mask, masking.visible_idx, masking.masked_idx, masking
        mask, n_masked = check_bool_masked_pos(bool_masked_pos, tokens.shape[0], n, tokens.device)
        order = torch.argsort(mask.to(torch.uint8), dim=1, stable=True)  # visible first, then masked; ascending
        return mask, order[:, : n - n_masked], order[:, n - n_masked :], None

    def forward(
        self,
        pixel_values: Tensor,
        bool_masked_pos: Optional[Tensor] = None,
        *,
        generator: Optional[torch.Generator] = None,
        return_loss: bool = True,
        **kwargs: Any,
    ) -> Union[AdaptiveVideoMAEForPreTrainingOutput, Tuple[Tensor, ...]]:
        """pixel_values (B, T, C, H, W) -> AdaptiveVideoMAEForPreTrainingOutput.

        pixel_values: ImageNet-normalised floats (B >= 1); another float dtype (float64, float16, ...)
        is cast to the model's, integer pixels (e.g. uint8 frames) raise TypeError.
        bool_masked_pos: None to sample the mask with the strategy (no host sync), or a caller-given (B, N)
        mask, True = masked (validated, see `check_bool_masked_pos`; no sampling loss then).
        generator: optional torch.Generator for the draw (default: `mask_generator`).
        return_loss: always computed; the argument only tells ``Trainer.evaluate`` that this model
        returns a loss without labels (so it reports ``eval_loss``).
        Other keyword arguments (``output_hidden_states``, ``output_attentions``, ...) go to the encoder,
        as in the stock model. The numbers are the stock model's for the same weights and mask.
        """
        return_dict = kwargs.pop("return_dict", None)
        if return_dict is None:
            return_dict = getattr(self.config, "return_dict", True)
        pixel_values = self._check_pixel_values(pixel_values)
        tokens = self.patch_tokens(pixel_values)
        mask, visible_idx, masked_idx, masking = self._mask(pixel_values, tokens, bool_masked_pos, generator)
        logits, outputs = self._reconstruct(pixel_values, tokens, visible_idx, masked_idx, kwargs)
        with torch.no_grad():
            labels = self.reconstruction_targets(pixel_values, masked_idx)
            token_error = (logits.detach().float() - labels).pow(2).mean(-1)
        rec = F.mse_loss(logits, labels.to(pixel_values.dtype))
        loss, ls = (
            (rec, None)
            if masking is None
            else total_loss(rec, self.mask_sampler, masking, token_error, self.loss_settings)
        )
        output = AdaptiveVideoMAEForPreTrainingOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            bool_masked_pos=mask,
            probs=None if masking is None else masking.probs,
            reconstruction_loss=rec,
            sampling_loss=ls,
            token_error=token_error,
        )
        return output if return_dict else output.to_tuple()

    def _reconstruct(
        self, pixel_values: Tensor, tokens: Tensor, visible_idx: Tensor, masked_idx: Tensor, kwargs: Dict[str, Any]
    ) -> Tuple[Tensor, Any]:
        """The stock model's encoder and decoder on the visible tokens, by index: (logits (B, N_m, P) of
        the masked tokens, ascending; the encoder's outputs)."""
        pos = self.position_table("encoder", tokens.device).to(tokens.dtype).expand(tokens.shape[0], -1, -1)
        visible = VisibleEmbeddings(gather_tokens(tokens, visible_idx) + gather_tokens(pos, visible_idx))
        outputs = self.videomae(pixel_values, bool_masked_pos=visible, return_dict=True, **kwargs)
        latent = self.encoder_to_decoder(outputs.last_hidden_state)
        dec_pos = self.position_table("decoder", tokens.device).to(pixel_values.dtype).expand(latent.shape[0], -1, -1)
        x_full = torch.cat(
            [latent + gather_tokens(dec_pos, visible_idx), self.mask_token + gather_tokens(dec_pos, masked_idx)], dim=1
        )
        return self.decoder(x_full, masked_idx.shape[1]).logits, outputs


def wrap(model: VideoMAEForPreTraining, **adamask_options: Any) -> AdaptiveVideoMAEForPreTraining:
    """Make an already-built ``VideoMAEForPreTraining`` adaptive, **in place**, and return it.

    The model's class becomes `AdaptiveVideoMAEForPreTraining` and a fresh ``mask_sampler`` (the
    strategy named by ``strategy``, default ``"adaptive"``) is
    added on the model's device and dtype; every existing parameter stays the same object, so call
    ``wrap`` before building the optimizer and before DDP. The model gets its own copy of its config,
    with ``adamask_*`` entries (``adamask_options`` override them): the config object it was built
    from, which the caller may still use, is never modified. A refused call (a bad option) leaves the
    model and its config exactly as they were.
    """
    if isinstance(model, AdaptiveVideoMAEForPreTraining):
        if adamask_options:
            raise ValueError("model is already adaptive; build a new AdaptiveVideoMAEForPreTraining to change options")
        return model
    check_bare_model(model)
    if type(model) is not VideoMAEForPreTraining:
        raise TypeError(f"model must be a transformers.VideoMAEForPreTraining, got {type(model).__name__}")
    model.__class__ = AdaptiveVideoMAEForPreTraining
    adaptive = cast(AdaptiveVideoMAEForPreTraining, model)
    try:
        adaptive._setup_adamask(adamask_options, copy.deepcopy(model.config))
    except BaseException:
        model.__class__ = VideoMAEForPreTraining
        raise
    adaptive.mask_sampler.train(model.training)
    return adaptive
