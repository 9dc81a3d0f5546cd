"""Adaptive token masking for Hugging Face ``transformers`` VideoMAE pre-training.

One-line swap::

    from adamask.integrations.hf import AdaptiveVideoMAEForPreTraining as VideoMAEForPreTraining

``AdaptiveVideoMAEForPreTraining`` subclasses ``transformers.VideoMAEForPreTraining``. Its forward
samples ``bool_masked_pos`` from the patch embeddings with AdaMAE's sampler (the sub-module
``mask_sampler``), runs the stock forward with that mask and returns
``loss = reconstruction_loss + sampling_weight * sampling_loss``.

Conventions: ``pixel_values`` (B, T, C, H, W); tokens in (t, h, w) order; ``bool_masked_pos`` (B, N)
bool with True = masked and the same number of masked tokens in every row; ``probs`` (B, N) float32.

Settings live on the config as ``config.adamask_<name>`` (so ``save_pretrained`` /
``from_pretrained`` round-trip them) and can be given as keyword arguments ``<name>`` to the
constructor, ``from_pretrained`` and `wrap`; see `ADAMASK_DEFAULTS`.

Random streams: in a single process masks are drawn from torch's global RNG. When
``torch.distributed`` runs more than one process (or after ``set_mask_seed``), each rank draws from
its own generator seeded from (seed, rank), so ranks sample different masks even when every rank
was seeded identically (as ``Trainer`` does).
"""
from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
import torch.distributed as dist
from torch import Tensor

from transformers import Trainer, VideoMAEConfig, VideoMAEForPreTraining
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from transformers.models.videomae.modeling_videomae import VideoMAEForPreTrainingOutput

from ..loss import BASELINES, ESTIMATORS, sampling_loss
from ..masking import check_mask_ratio
from ..patches import normalized_targets, patchify
from ..sampler import SAMPLER_VARIANTS, AdaptiveTokenSampler

try:  # transformers >= 5: init functions that skip weights already loaded from a checkpoint
    from transformers.initialization import zeros_ as _zeros_
except ImportError:  # pragma: no cover - transformers 4.x
    from torch.nn.init import zeros_ as _zeros_

__all__ = [
    "ADAMASK_DEFAULTS",
    "AdaptiveVideoMAEForPreTraining",
    "AdaptiveVideoMAEForPreTrainingOutput",
    "AdaMaskTrainer",
    "adamask_settings",
    "check_bool_masked_pos",
    "wrap",
]

CONFIG_PREFIX = "adamask_"

ADAMASK_DEFAULTS: Dict[str, Any] = {
    "mask_ratio": 0.95,            # fraction of tokens hidden from the encoder
    "sampling_weight": 1e-4,       # lambda in loss = L_R + lambda * L_S
    "sampler_depth": 1,            # sampler blocks
    "sampler_width": None,         # None: config.hidden_size
    "sampler_heads": None,         # None: config.num_attention_heads
    "sampler_variant": "block",    # "block" | "attention" | "mlp"
    "detach_input": True,          # keep L_S off the patch embedding
    "sampling_estimator": "paper",  # see adamask.sampling_loss
    "sampling_baseline": None,
}


def adamask_settings(config: VideoMAEConfig, **overrides: Any) -> Dict[str, Any]:
    """Write ``overrides`` and any missing defaults to ``config.adamask_*``; return the validated settings."""
    unknown = sorted(set(overrides) - set(ADAMASK_DEFAULTS))
    if unknown:
        raise TypeError(f"unknown adamask option(s) {unknown}; known: {sorted(ADAMASK_DEFAULTS)}")
    for name, default in ADAMASK_DEFAULTS.items():
        if name in overrides:
            setattr(config, CONFIG_PREFIX + name, overrides[name])
        elif not hasattr(config, CONFIG_PREFIX + name):
            setattr(config, CONFIG_PREFIX + name, default)
    s = {name: getattr(config, CONFIG_PREFIX + name) for name in ADAMASK_DEFAULTS}
    s["mask_ratio"] = check_mask_ratio(s["mask_ratio"], "mask_ratio")
    w = s["sampling_weight"]
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
        raise ValueError(f"sampling_weight must be a finite float >= 0, got {w!r}")
    if s["sampler_variant"] not in SAMPLER_VARIANTS:
        raise ValueError(f"sampler_variant must be one of {SAMPLER_VARIANTS}, got {s['sampler_variant']!r}")
    if s["sampling_estimator"] not in ESTIMATORS:
        raise ValueError(f"sampling_estimator must be one of {ESTIMATORS}, got {s['sampling_estimator']!r}")
    if s["sampling_baseline"] not in BASELINES:
        raise ValueError(f"sampling_baseline must be one of {BASELINES}, got {s['sampling_baseline']!r}")
    if not isinstance(s["detach_input"], bool):
        raise TypeError(f"detach_input must be a bool, got {s['detach_input']!r}")
    return s


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


def check_bool_masked_pos(bool_masked_pos: Any, batch_size: int, num_tokens: int,
                          device: Optional[torch.device] = None) -> Tuple[Tensor, int]:
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
        raise ValueError(f"bool_masked_pos of dtype {bool_masked_pos.dtype} holds values other than 0 and 1; "
                         f"pass a bool mask (True = masked)")
    if lo != hi:
        raise ValueError(f"bool_masked_pos must mask the same number of tokens in every row, got between {lo} and {hi}")
    if not 0 < lo < num_tokens:
        raise ValueError(f"bool_masked_pos must mask at least one and fewer than {num_tokens} tokens per row, got {lo}")
    return m, int(lo)


def _rank_seed(seed: int, rank: int) -> int:
    """Mix a base seed and a rank into a 63-bit seed (splitmix64 finaliser)."""
    x = (seed * 0x9E3779B97F4A7C15 + (rank + 1) * 0xBF58476D1CE4E5B9) % 2**64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) % 2**64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) % 2**64
    x ^= x >> 31
    return x % 2**63


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class AdaptiveVideoMAEForPreTraining(VideoMAEForPreTraining):
    """``VideoMAEForPreTraining`` with AdaMAE's adaptive masking (sub-module ``mask_sampler``).

    ``AdaptiveVideoMAEForPreTraining(config, **options)``: ``options`` are the `ADAMASK_DEFAULTS`
    names (mask_ratio, sampling_weight, sampler_depth, ...); they override ``config.adamask_*``.
    The config is copied, never modified in place. Pre-training configs should set
    ``use_mean_pooling=False`` (else the encoder has no final LayerNorm).
    """

    # The loss is a per-batch mean: Trainer must not pass num_items_in_batch to forward.
    accepts_loss_kwargs = False

    def __init__(self, config: VideoMAEConfig, **adamask_options: Any) -> None:
        super().__init__(copy.deepcopy(config))
        self._setup_adamask(adamask_options)

    # -- construction -----------------------------------------------------------------------

    def _setup_adamask(self, options: Mapping[str, Any]) -> None:
        s = adamask_settings(self.config, **options)
        if getattr(self.config, "use_mean_pooling", False):
            warnings.warn("config.use_mean_pooling=True: the encoder has no final LayerNorm; VideoMAE "
                          "pre-training configs use use_mean_pooling=False", stacklevel=3)
        self.adamask_grid = self.token_grid()
        weight = self.videomae.embeddings.patch_embeddings.projection.weight
        self.mask_sampler = AdaptiveTokenSampler(
            self.config.hidden_size,
            num_heads=s["sampler_heads"] or self.config.num_attention_heads,
            grid=self.adamask_grid,
            mask_ratio=s["mask_ratio"],
            depth=s["sampler_depth"],
            width=s["sampler_width"],
            variant=s["sampler_variant"],
            detach_input=s["detach_input"],
        ).to(device=weight.device, dtype=weight.dtype)
        self._mask_seed: Optional[int] = None
        self._mask_generators: Dict[str, torch.Generator] = {}

    def token_grid(self) -> Tuple[int, int, int]:
        """The model's token grid (T', H', W') from its patch embedding and config."""
        pe = self.videomae.embeddings.patch_embeddings
        grid = (self.config.num_frames // pe.tubelet_size, pe.image_size[0] // pe.patch_size[0],
                pe.image_size[1] // pe.patch_size[1])
        if math.prod(grid) != pe.num_patches:
            raise ValueError(f"token grid {grid} does not match the patch embedding's {pe.num_patches} patches")
        return grid

    def _init_weights(self, module: torch.nn.Module) -> None:
        # Only runs for weights a checkpoint did not provide (e.g. a stock checkpoint's missing sampler).
        if isinstance(module, AdaptiveTokenSampler):
            _zeros_(module.pos_embed)
            return
        super()._init_weights(module)

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
        distributed = _distributed()
        if self._mask_seed is None and not distributed:
            return None
        key = str(device)
        gen = self._mask_generators.get(key)
        if gen is None:
            base = torch.initial_seed() if self._mask_seed is None else self._mask_seed
            gen = torch.Generator(device=device)
            gen.manual_seed(_rank_seed(base, dist.get_rank() if distributed else 0))
            self._mask_generators[key] = gen
        return gen

    # -- targets ----------------------------------------------------------------------------

    def reconstruction_targets(self, pixel_values: Tensor) -> Tensor:
        """pixel_values (B, T, C, H, W) -> targets (B, N, tubelet*patch*patch*C) float32 for every
        token, as the stock loss builds them: ImageNet-un-normalised (3 channels), then per-patch
        normalised if ``config.norm_pix_loss``."""
        cfg = self.config
        tubelet = (int(cfg.tubelet_size), int(cfg.patch_size), int(cfg.patch_size))
        frames = pixel_values.float()
        if cfg.num_channels == 3:  # Python scalars: no host-to-device copy
            frames = torch.stack([frames[:, :, c] * s + m for c, (m, s) in
                                  enumerate(zip(IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD))], dim=2)
        elif not cfg.norm_pix_loss:
            raise ValueError("norm_pix_loss=False needs 3-channel (ImageNet-normalised) pixel_values")
        if cfg.norm_pix_loss:
            return normalized_targets(frames, tubelet, layout="btchw")
        return patchify(frames, tubelet, layout="btchw")

    # -- forward ----------------------------------------------------------------------------

    def _check_pixel_values(self, pixel_values: Any) -> None:
        if not isinstance(pixel_values, Tensor):
            raise TypeError(f"pixel_values must be a torch.Tensor (B, T, C, H, W), got {type(pixel_values).__name__}")
        cfg, pe = self.config, self.videomae.embeddings.patch_embeddings
        want = (cfg.num_frames, cfg.num_channels, pe.image_size[0], pe.image_size[1])
        if pixel_values.dim() != 5 or tuple(pixel_values.shape[1:]) != want:
            raise ValueError(f"pixel_values must have shape (B, T, C, H, W) = (B, {', '.join(map(str, want))}) "
                             f"per the config, got {tuple(pixel_values.shape)}")
        sampler = self.mask_sampler
        n = self.videomae.embeddings.num_patches
        if sampler.num_tokens != n or sampler.embed_dim != cfg.hidden_size:
            raise ValueError(f"mask_sampler expects {sampler.num_tokens} tokens of size {sampler.embed_dim} but the "
                             f"model's token grid {self.token_grid()} has {n} tokens of size {cfg.hidden_size}")

    def patch_tokens(self, pixel_values: Tensor) -> Tensor:
        """pixel_values (B, T, C, H, W) -> patch embeddings (B, N, hidden) the sampler scores
        (computed without autograd when the sampler detaches its input)."""
        pe = self.videomae.embeddings.patch_embeddings
        if self.mask_sampler.detach_input:
            with torch.no_grad():
                return pe(pixel_values)
        return pe(pixel_values)

    def forward(self, pixel_values: Tensor, bool_masked_pos: Optional[Tensor] = None, *,
                generator: Optional[torch.Generator] = None, return_loss: bool = True,
                **kwargs: Any) -> Union[AdaptiveVideoMAEForPreTrainingOutput, Tuple[Tensor, ...]]:
        """pixel_values (B, T, C, H, W) -> AdaptiveVideoMAEForPreTrainingOutput.

        bool_masked_pos: None to sample the mask adaptively (no host sync), or a caller-given (B, N)
        mask, True = masked (validated, see `check_bool_masked_pos`; no sampling loss then).
        generator: optional torch.Generator for the draw (default: `mask_generator`).
        return_loss: always computed; the argument only tells ``Trainer.evaluate`` that this model
        returns a loss without labels (so it reports ``eval_loss``).
        """
        return_dict = kwargs.pop("return_dict", None)
        if return_dict is None:
            return_dict = getattr(self.config, "return_dict", True)
        self._check_pixel_values(pixel_values)
        b, n = pixel_values.shape[0], self.mask_sampler.num_tokens
        masking = None
        if bool_masked_pos is None:
            tokens = self.patch_tokens(pixel_values)
            if tokens.shape[1:] != (n, self.mask_sampler.embed_dim):
                raise ValueError(f"the patch embedding gives {tuple(tokens.shape[1:])} tokens x size but mask_sampler "
                                 f"expects ({n}, {self.mask_sampler.embed_dim}); token grid {self.token_grid()}")
            gen = generator if generator is not None else self.mask_generator(tokens.device)
            masking = self.mask_sampler(tokens, generator=gen)
            mask, masked_idx = masking.mask, masking.masked_idx
        else:
            mask, n_masked = check_bool_masked_pos(bool_masked_pos, b, n, pixel_values.device)
            masked_idx = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)[:, :n_masked]

        out = super().forward(pixel_values, bool_masked_pos=mask, return_dict=True, **kwargs)

        with torch.no_grad():
            target = self.reconstruction_targets(pixel_values)
            labels = target.gather(1, masked_idx.unsqueeze(-1).expand(-1, -1, target.shape[-1]))
            token_error = (out.logits.detach().float() - labels).pow(2).mean(-1)

        rec = out.loss
        ls = None
        loss = rec
        if masking is not None:
            cfg = self.config
            ls = sampling_loss(masking.probs, mask, token_error, estimator=cfg.adamask_sampling_estimator,
                               baseline=cfg.adamask_sampling_baseline, draw_order=masking.draw_order)
            loss = rec + float(cfg.adamask_sampling_weight) * ls
        output = AdaptiveVideoMAEForPreTrainingOutput(
            loss=loss, logits=out.logits, hidden_states=out.hidden_states, attentions=out.attentions,
            bool_masked_pos=mask, probs=None if masking is None else masking.probs,
            reconstruction_loss=rec, sampling_loss=ls, token_error=token_error,
        )
        return output if return_dict else output.to_tuple()


def wrap(model: VideoMAEForPreTraining, **adamask_options: Any) -> AdaptiveVideoMAEForPreTraining:
    """Make an already-built ``VideoMAEForPreTraining`` adaptive, **in place**, and return it.

    The model's class becomes `AdaptiveVideoMAEForPreTraining` and a fresh ``mask_sampler`` is
    added on the model's device and dtype; every existing parameter stays the same object, so call
    ``wrap`` before building the optimizer and before DDP. ``model.config`` gains ``adamask_*``
    entries (``adamask_options`` override them).
    """
    if isinstance(model, AdaptiveVideoMAEForPreTraining):
        if adamask_options:
            raise ValueError("model is already adaptive; build a new AdaptiveVideoMAEForPreTraining to change options")
        return model
    if type(model) is not VideoMAEForPreTraining:
        hint = " (wrap the model before DistributedDataParallel)" if hasattr(model, "module") else ""
        raise TypeError(f"model must be a transformers.VideoMAEForPreTraining, got {type(model).__name__}{hint}")
    model.__class__ = AdaptiveVideoMAEForPreTraining
    try:
        model._setup_adamask(adamask_options)
    except Exception:
        model.__class__ = VideoMAEForPreTraining
        raise
    model.mask_sampler.train(model.training)
    return model


class AdaMaskTrainer(Trainer):
    """``transformers.Trainer`` that also logs ``reconstruction_loss`` and (unweighted)
    ``sampling_loss``, averaged over the training steps since the last log and across ranks.
    Values are accumulated on the device and read only when the Trainer logs."""

    def compute_loss(self, model: torch.nn.Module, inputs: Dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Optional[Any] = None) -> Any:
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True,
                                             num_items_in_batch=num_items_in_batch)
        if model.training and isinstance(outputs, Mapping):
            sums = self.__dict__.setdefault("_adamask_sums", {})
            for key in ("reconstruction_loss", "sampling_loss"):
                value = outputs.get(key)
                if value is not None:
                    value = value.detach().float()
                    sums[key] = value if key not in sums else sums[key] + value
            self._adamask_count = getattr(self, "_adamask_count", 0) + 1
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: Dict[str, float], *args: Any, **kwargs: Any) -> None:
        count = getattr(self, "_adamask_count", 0)
        if "loss" in logs and count:
            for key, total in self._adamask_sums.items():
                mean = total / count
                if _distributed():
                    mean = mean.clone()
                    dist.all_reduce(mean)
                    mean = mean / dist.get_world_size()
                logs[key] = float(mean)
            self._adamask_sums, self._adamask_count = {}, 0
        super().log(logs, *args, **kwargs)
