"""Adaptive masking for the VideoMAE (MCG-NJU, v1) and VideoMAEv2 (OpenGVLab) pretraining code.

Their loop builds the reconstruction targets from the data loader's mask *before* calling the
model, so a sampled mask must also change where the targets come from. Three pieces:

- `MaskingGenerator` (and `TubeMaskingGenerator`, `TubeMaskingGeneratorV2`,
  `RandomMaskingGenerator`): drop-ins for their data-loader mask generators; random / tube / frame
  masks drawn by adamask, with their call and output format.
- `wrap(model)`: adds the sampler (``model.mask_sampler``) to a ``PretrainVisionTransformer``
  before the optimizer and DDP are built; ``model(videos)`` then samples the mask itself and
  returns ``(pred, masking)``.
- `train_one_epoch`: same signature as theirs; builds the targets from the sampled mask and adds
  ``sampling_weight * L_S``; logs ``loss``, ``loss_rec`` and ``loss_sampling``.

``python -m adamask.integrations.videomae --repo PATH -- <their args> --mask_type adaptive`` runs
their own ``run_mae_pretraining.py`` with these swapped in. Upstream code is never imported here
at module import time; objects are taken as arguments.

Layouts: videos (B, C, T, H, W) normalised with the ImageNet mean/std; tokens (t, h, w) order;
masks (B, N) bool, True = masked.
"""
from __future__ import annotations

import argparse
import math
import os
import runpy
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..loss import sampling_loss
from ..masking import Masking, check_grid, check_mask_ratio, create_masking
from ..mae import gather_tokens
from ..patches import normalized_targets, patchify, token_mse
from ..strategies import lowest_k_mask
from ._common import (
    add_sampler_arguments,
    DEFAULT_SAMPLING_WEIGHT,
    MASK_TYPES,
    SAMPLER_NAME,
    adaptive_subclass,
    attach_sampler,
    build_sampler,
    check_sampling_weight,
    check_sampler_grid,
    install_compat_shims,
    pop_option,
    split_launcher_argv,
    timm_create_model_shim,
    unwrap_model,
)

__all__ = [
    "MaskingGenerator",
    "TubeMaskingGenerator",
    "TubeMaskingGeneratorV2",
    "RandomMaskingGenerator",
    "wrap",
    "model_grid",
    "StepLosses",
    "pretraining_losses",
    "train_one_epoch",
    "run",
    "main",
    "install_compat_shims",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GENERATOR_SHAPES = ("flat", "frames")


# ---------------------------------------------------------------------------------------------
# data-loader mask generators

class MaskingGenerator:
    """Drop-in for VideoMAE's data-loader mask generators: ``MaskingGenerator(input_size,
    mask_ratio)()`` returns one clip's mask as a float64 numpy array, 1 = masked.

    input_size: (T', H', W') token grid (an int n means (n, n, n), as VideoMAEv2's generators).
    strategy:   "tube" (default; int(mask_ratio * H'W') per slice, repeated over time), "random"
                (int(mask_ratio * N) anywhere), "frame" (int(mask_ratio * T') whole slices), or
                "adaptive": a placeholder of zeros, because the model samples the mask itself
                (`wrap`) and `train_one_epoch` ignores the loader's mask.
    shape:      "flat" -> (T'H'W',) as v1's TubeMaskingGenerator and v2's RandomMaskingGenerator;
                "frames" -> (T', H'W') as v2's TubeMaskingGenerator.

    Masks are drawn with torch's global generator, which the DataLoader seeds per worker.
    """

    def __init__(self, input_size: Sequence[int] | int, mask_ratio: float, strategy: str = "tube",
                 shape: str = "flat") -> None:
        if isinstance(input_size, int) and not isinstance(input_size, bool):
            input_size = (input_size,) * 3
        self.grid = check_grid(tuple(input_size) if isinstance(input_size, (list, tuple)) else input_size,
                               "input_size")
        self.mask_ratio = check_mask_ratio(mask_ratio)
        if strategy not in MASK_TYPES:
            raise ValueError(f"strategy must be one of {MASK_TYPES}, got {strategy!r}")
        if shape not in GENERATOR_SHAPES:
            raise ValueError(f"shape must be one of {GENERATOR_SHAPES}, got {shape!r}")
        self.strategy, self.shape = strategy, shape
        t, h, w = self.grid
        self.num_tokens = t * h * w
        self._draw = None
        if strategy == "random":
            self.num_masked = int(self.mask_ratio * self.num_tokens)  # VideoMAE's count
            if not 0 < self.num_masked < self.num_tokens:
                raise ValueError(f"mask_ratio={mask_ratio} masks {self.num_masked} of {self.num_tokens} tokens; "
                                 f"it must leave at least one visible and one masked token")
        elif strategy == "adaptive":
            self.num_masked = 0
        else:
            self._draw = create_masking(strategy, grid=self.grid, mask_ratio=self.mask_ratio)
            self.num_masked = self._draw.num_masked

    def sample(self) -> Tensor:
        """One mask (N,) bool, True = masked (all False for the adaptive placeholder)."""
        if self.strategy == "random":
            return lowest_k_mask(torch.rand(1, self.num_tokens), self.num_masked)[0]
        if self._draw is None:
            return torch.zeros(self.num_tokens, dtype=torch.bool)
        return self._draw.sample(1).mask[0]

    def __call__(self):
        out = self.sample().to(torch.float64).numpy()
        return out.reshape(self.grid[0], -1) if self.shape == "frames" else out

    def __repr__(self) -> str:
        what = "placeholder, the model samples the mask" if self.strategy == "adaptive" else \
            f"{self.num_masked} of {self.num_tokens} masked"
        return f"adamask {self.strategy} masking generator ({what}, grid={self.grid}, shape={self.shape!r})"


class TubeMaskingGenerator(MaskingGenerator):
    """v1's ``TubeMaskingGenerator(input_size, mask_ratio)``: flat (N,) output."""

    def __init__(self, input_size: Sequence[int], mask_ratio: float, strategy: str = "tube") -> None:
        super().__init__(input_size, mask_ratio, strategy, shape="flat")


class TubeMaskingGeneratorV2(MaskingGenerator):
    """v2's ``TubeMaskingGenerator(input_size, mask_ratio)``: (T', H'W') output."""

    def __init__(self, input_size: Sequence[int], mask_ratio: float, strategy: str = "tube") -> None:
        super().__init__(input_size, mask_ratio, strategy, shape="frames")


class RandomMaskingGenerator(MaskingGenerator):
    """v2's ``RandomMaskingGenerator(input_size, mask_ratio)``: flat (N,) output."""

    def __init__(self, input_size: Sequence[int] | int, mask_ratio: float, strategy: str = "random") -> None:
        super().__init__(input_size, mask_ratio, strategy, shape="flat")


# ---------------------------------------------------------------------------------------------
# the model

def model_grid(model: nn.Module) -> Tuple[int, int, int]:
    """(T', H', W') of a ``PretrainVisionTransformer`` from its ``encoder.patch_embed``."""
    pe = getattr(getattr(model, "encoder", None), "patch_embed", None)
    if pe is None or not all(hasattr(pe, a) for a in ("num_patches", "img_size", "patch_size")):
        raise TypeError(f"model must be a VideoMAE PretrainVisionTransformer (with .encoder.patch_embed having "
                        f"num_patches, img_size, patch_size), got {type(model).__name__}")
    img = pe.img_size if isinstance(pe.img_size, (tuple, list)) else (pe.img_size,) * 2
    ps = pe.patch_size if isinstance(pe.patch_size, (tuple, list)) else (pe.patch_size,) * 2
    h, w = int(img[0]) // int(ps[0]), int(img[1]) // int(ps[1])
    if int(pe.num_patches) % (h * w):
        raise ValueError(f"patch_embed.num_patches={pe.num_patches} is not a multiple of H'*W'={h * w}")
    return (int(pe.num_patches) // (h * w), h, w)


class _AdaptiveVideoMAE:
    """Mixed into the model's class by `wrap`; see `wrap`."""

    def sample_mask(self, x: Tensor) -> Masking:
        """videos (B, C, T, H, W) -> Masking from the sampler on the raw patch embeddings."""
        sampler = getattr(self, SAMPLER_NAME)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not getattr(sampler, "detach_input", True)):
            tokens = self.encoder.patch_embed(x)
        return sampler(tokens)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None, decode_mask: Optional[Tensor] = None):
        """``model(videos)`` -> (pred (B, N_m or N_d, P), Masking). ``decode_mask`` (v2, (B, N) bool, True =
        not reconstructed) is passed on. An explicit ``mask`` runs the original model (eval only)."""
        if mask is not None:
            if self.training:
                raise ValueError("this model samples its own mask: call model(videos) and build the targets from "
                                 "the returned masking (adamask.integrations.videomae.train_one_epoch does); an "
                                 "explicit mask is only accepted in eval mode")
            return super().forward(x, mask) if decode_mask is None else super().forward(x, mask, decode_mask)
        masking = self.sample_mask(x)
        if decode_mask is None:
            return super().forward(x, masking.mask), masking
        return super().forward(x, masking.mask, decode_mask), masking

    def no_weight_decay(self) -> set:
        names = set(super().no_weight_decay()) if hasattr(super(), "no_weight_decay") else set()
        sampler = getattr(self, SAMPLER_NAME)
        own = {f"{SAMPLER_NAME}.{n}" for n in getattr(sampler, "no_weight_decay", lambda: set())()}
        # also under torch.compile's prefix: their optimizer factory reads names off the compiled module
        return names | own | {f"_orig_mod.{n}" for n in own}


def wrap(model: nn.Module, *, mask_ratio: float = 0.95, sampling_weight: float = DEFAULT_SAMPLING_WEIGHT,
         depth: int = 1, num_heads: Optional[int] = None, width: Optional[int] = None,
         grid: Optional[Sequence[int]] = None, sampler: Optional[nn.Module] = None,
         **sampler_options: Any) -> nn.Module:
    """Add adaptive masking to a VideoMAE / VideoMAEv2 ``PretrainVisionTransformer``, in place.

    Call it before the optimizer, DDP and torch.compile. Adds ``model.mask_sampler`` (an
    `AdaptiveTokenSampler` on the encoder's patch embeddings: ``depth`` blocks of ``width``,
    ``num_heads`` heads, drawing int(N * (1 - mask_ratio)) visible tokens), stores
    ``model.sampling_weight`` (lambda), extends ``no_weight_decay()`` with the sampler's position
    embedding, and makes ``model(videos)`` return ``(pred, masking)``. Existing parameter names are
    unchanged. ``grid`` (T', H', W'), if given, must equal the model's; a ready ``sampler`` must
    match the model's grid and embedding width. Returns the model.
    """
    if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) or hasattr(model, "_orig_mod"):
        raise TypeError("wrap the bare model, before DistributedDataParallel / torch.compile")
    check_sampling_weight(sampling_weight)
    if getattr(model, SAMPLER_NAME, None) is not None:
        raise ValueError(f"model already has a '{SAMPLER_NAME}'; it was adapted before")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    mgrid = model_grid(model)
    if grid is not None and check_grid(grid) != mgrid:
        raise ValueError(f"grid {tuple(grid)} does not match the model's token grid {mgrid} "
                         f"(from encoder.patch_embed)")
    embed_dim = int(model.encoder.embed_dim)
    if sampler is None:
        sampler = build_sampler(embed_dim, mgrid, mask_ratio, depth=depth, num_heads=num_heads, width=width,
                                **sampler_options)
    else:
        check_sampler_grid(sampler, mgrid)
        if getattr(sampler, "embed_dim", embed_dim) != embed_dim:
            raise ValueError(f"the sampler takes embed_dim={sampler.embed_dim} but the encoder's patch embeddings "
                             f"have {embed_dim}")
    ref = model.encoder.patch_embed.proj.weight
    attach_sampler(model, sampler.to(ref.device), sampling_weight)
    model.__class__ = adaptive_subclass(_AdaptiveVideoMAE, type(model), globals())
    return model


# ---------------------------------------------------------------------------------------------
# the loss

@dataclass
class StepLosses:
    """loss = reconstruction_loss + sampling_weight * sampling_loss (scalars).

    pred, target: (B, K, P) for the K reconstructed tokens; token_error (B, N), zero where the
    loss does not look; masking: the sampled Masking the targets were built from.
    """

    loss: Tensor
    reconstruction_loss: Tensor
    sampling_loss: Tensor
    pred: Tensor
    target: Tensor
    token_error: Tensor
    masking: Masking


def _ascending_false(mask: Tensor, count: int) -> Tensor:
    """(B, N) bool with ``count`` False per row -> (B, count) ascending indices of the False."""
    return torch.argsort(mask.to(torch.uint8), dim=1, stable=True)[:, :count]


def pretraining_losses(model: nn.Module, videos: Tensor, decode_mask: Optional[Tensor] = None, *,
                       patch_size: int = 16, normlize_target: bool = True,
                       num_decoded: Optional[int] = None) -> StepLosses:
    """One forward of a wrapped model (bare, DDP or compiled) with targets from the sampled mask.

    videos: (B, C, T, H, W), ImageNet-normalised. Targets: un-normalised pixels split into
    tubelet x patch_size^2 patches, normalised per patch and channel if ``normlize_target``.
    decode_mask (v2): (B, N) bool, True = not reconstructed; the loss is the mean error of the
    tokens both decoded and masked (masked, not reshaped); ``num_decoded`` = N - True count per
    row (computed from row 0 if not given).
    """
    base = unwrap_model(model)
    if getattr(base, SAMPLER_NAME, None) is None or not hasattr(base, "sampling_weight"):
        raise TypeError("model has no mask_sampler: adapt it with adamask.integrations.videomae.wrap(model) first")
    if not isinstance(videos, Tensor) or videos.dim() != 5:
        raise ValueError(f"videos must be a (B, C, T, H, W) tensor, got "
                         f"{tuple(videos.shape) if isinstance(videos, Tensor) else type(videos).__name__}")
    tubelet = (int(getattr(base.encoder.patch_embed, "tubelet_size", 2)), int(patch_size), int(patch_size))
    with torch.no_grad():
        mean = videos.new_tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, -1, 1, 1, 1)
        std = videos.new_tensor(IMAGENET_STD, dtype=torch.float32).view(1, -1, 1, 1, 1)
        pixels = videos.float() * std + mean
        targets = normalized_targets(pixels, tubelet) if normlize_target else patchify(pixels, tubelet)
    if decode_mask is None:
        pred, masking = model(videos)
        target = gather_tokens(targets, masking.masked_idx)
        err = token_mse(pred, target)
        rec = err.mean()
        token_error = err
    else:
        if decode_mask.dtype != torch.bool or decode_mask.shape != targets.shape[:2]:
            raise ValueError(f"decode_mask must be a (B, N) = {tuple(targets.shape[:2])} bool tensor (True = not "
                             f"reconstructed), got {decode_mask.dtype} {tuple(decode_mask.shape)}")
        if num_decoded is None:
            num_decoded = int((~decode_mask[0]).sum())
        decode_idx = _ascending_false(decode_mask, num_decoded)
        pred, masking = model(videos, None, decode_mask)
        target = gather_tokens(targets, decode_idx)
        weight = masking.mask.gather(1, decode_idx).float()
        err = token_mse(pred, target) * weight
        rec = err.sum() / weight.sum().clamp_min(1.0)
        token_error = err.new_zeros(masking.mask.shape).scatter(1, decode_idx, err)
    ls = sampling_loss(masking.probs, masking.mask, token_error)
    loss = rec + base.sampling_weight * ls
    return StepLosses(loss, rec, ls, pred, target, token_error, masking)


class _Meters:
    """Running sums of scalars; averaged over all ranks at the end of an epoch."""

    def __init__(self) -> None:
        self.sums: Dict[str, float] = {}
        self.counts: Dict[str, int] = {}
        self.last: Dict[str, float] = {}

    def update(self, **values: Any) -> None:
        for k, v in values.items():
            if v is None:
                continue
            v = float(v.item() if isinstance(v, Tensor) else v)
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1
            self.last[k] = v

    def line(self) -> str:
        return "  ".join(f"{k}: {self.last[k]:.6g} ({self.sums[k] / self.counts[k]:.6g})" for k in self.sums)

    def synchronize(self) -> None:
        dist = torch.distributed
        if not (dist.is_available() and dist.is_initialized()) or not self.sums:
            return
        keys = sorted(self.sums)
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        t = torch.tensor([[self.sums[k], self.counts[k]] for k in keys], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        for k, (s, c) in zip(keys, t.tolist()):
            self.sums[k], self.counts[k] = s, int(c)

    def averages(self) -> Dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in self.sums}


def train_one_epoch(model: nn.Module, data_loader: Iterable, optimizer: torch.optim.Optimizer,
                    device: torch.device, epoch: int, loss_scaler: Any, max_norm: float = 0,
                    patch_size: int = 16, normlize_target: bool = True, log_writer: Any = None,
                    lr_scheduler: Any = None, start_steps: Optional[int] = None,
                    lr_schedule_values: Any = None, wd_schedule_values: Any = None,
                    print_freq: int = 10) -> Dict[str, float]:
    """VideoMAE's ``engine_for_pretraining.train_one_epoch`` for a `wrap`-ped model.

    Batches: (videos, mask) (v1) or (videos, mask, decoder_mask) (v2). The loader's encoder mask
    is ignored (the model samples one); a v2 decoder mask is used unless it is just the complement
    of the loader's mask (no decoder masking). Per step: the same lr / wd schedule, AMP (fp16 on
    CUDA when ``loss_scaler`` is given), ``loss_scaler(loss, optimizer, clip_grad=max_norm, ...)``
    or a plain backward/step when it is None, and one host read of (loss, loss_rec,
    loss_sampling) for the finiteness check and the log. Returns the epoch's averaged metrics.
    """
    model.train()
    device = torch.device(device)
    meters = _Meters()
    start_steps = 0 if start_steps is None else start_steps
    try:
        num_steps: Optional[int] = len(data_loader)  # type: ignore[arg-type]
    except TypeError:
        num_steps = None
    use_amp = device.type == "cuda" and loss_scaler is not None
    t0 = time.time()
    for step, batch in enumerate(data_loader):
        it = start_steps + step
        if lr_schedule_values is not None or wd_schedule_values is not None:
            for group in optimizer.param_groups:
                if lr_schedule_values is not None:
                    group["lr"] = lr_schedule_values[it] * group.get("lr_scale", 1.0)
                if wd_schedule_values is not None and group["weight_decay"] > 0:
                    group["weight_decay"] = wd_schedule_values[it]

        videos = batch[0].to(device, non_blocking=True)
        decode_mask, num_decoded = None, None
        if len(batch) >= 3:
            enc = torch.as_tensor(batch[1]).flatten(1).to(torch.bool)
            dec = torch.as_tensor(batch[2]).flatten(1).to(torch.bool)
            if not bool((dec == ~enc).all()):
                num_decoded = int((~dec[0]).sum())
                decode_mask = dec.to(device, non_blocking=True)

        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
            out = pretraining_losses(model, videos, decode_mask, patch_size=patch_size,
                                     normlize_target=normlize_target, num_decoded=num_decoded)
        loss_value, rec_value, samp_value = torch.stack(
            [out.loss.detach(), out.reconstruction_loss.detach(), out.sampling_loss.detach()]).float().tolist()
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"loss is {loss_value} (reconstruction {rec_value}, sampling {samp_value}) "
                                     f"at epoch {epoch} step {step}; stopping training")

        optimizer.zero_grad()
        if loss_scaler is None:
            out.loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm if max_norm else math.inf)
            optimizer.step()
            loss_scale_value = 0.0
        else:
            second_order = bool(getattr(optimizer, "is_second_order", False))
            grad_norm = loss_scaler(out.loss, optimizer, clip_grad=max_norm, parameters=model.parameters(),
                                    create_graph=second_order)
            loss_scale_value = loss_scaler.state_dict().get("scale", 1.0)

        lrs = [g["lr"] for g in optimizer.param_groups]
        wd = [g["weight_decay"] for g in optimizer.param_groups if g["weight_decay"] > 0]
        values = dict(loss=loss_value, loss_rec=rec_value, loss_sampling=samp_value, loss_scale=loss_scale_value,
                      lr=max(lrs), min_lr=min(lrs), weight_decay=wd[-1] if wd else None, grad_norm=grad_norm)
        meters.update(**values)
        if log_writer is not None:
            values = {k: meters.last[k] for k in values if k in meters.last}
            log_writer.update(loss=values["loss"], loss_rec=values["loss_rec"],
                              loss_sampling=values["loss_sampling"], head="loss")
            log_writer.update(head="opt", **{k: v for k, v in values.items() if not k.startswith("loss")
                                             or k == "loss_scale"})
            log_writer.set_step()
        if lr_scheduler is not None:
            lr_scheduler.step_update(start_steps + step)
        if step % print_freq == 0 or (num_steps is not None and step == num_steps - 1):
            total = "?" if num_steps is None else num_steps
            print(f"Epoch: [{epoch}] [{step}/{total}]  {meters.line()}  time: {time.time() - t0:.1f}s", flush=True)
    meters.synchronize()
    print(f"Averaged stats: {meters.line()}", flush=True)
    return meters.averages()


# ---------------------------------------------------------------------------------------------
# launcher

def _detect_version(repo: str) -> str:
    if os.path.isfile(os.path.join(repo, "models", "modeling_pretrain.py")):
        return "v2"
    if os.path.isfile(os.path.join(repo, "modeling_pretrain.py")):
        return "v1"
    raise ValueError(f"--repo {repo!r} is neither a VideoMAE (modeling_pretrain.py) nor a VideoMAEv2 "
                     f"(models/modeling_pretrain.py) checkout")


def _generator_factory(strategy: str, shape: str):
    def make(input_size: Sequence[int], mask_ratio: float) -> MaskingGenerator:
        return MaskingGenerator(input_size, mask_ratio, strategy=strategy, shape=shape)

    return make


def run(repo: str, argv: Sequence[str], *, sampling_weight: float = DEFAULT_SAMPLING_WEIGHT,
        sampler_depth: int = 1, sampler_heads: Optional[int] = None, sampler_width: Optional[int] = None,
        compile_model: bool = True, script: str = "run_mae_pretraining.py") -> None:
    """Run ``repo``'s pretraining script with ``argv`` (their arguments), unmodified on disk.

    ``--mask_type`` in ``argv`` may be adaptive, random, tube or frame: their parser is given
    ``tube`` and their generator is replaced by `MaskingGenerator` with the requested strategy.
    For ``adaptive``, models built through ``timm.create_model`` are `wrap`-ped (mask_ratio from
    their ``--mask_ratio``) before the optimizer / DDP exist and their ``train_one_epoch`` is
    replaced by this module's. ``compile_model=False`` turns torch.compile into a no-op (v2).
    """
    repo = os.path.abspath(repo)
    path = os.path.join(repo, script)
    if not os.path.isfile(path):
        raise ValueError(f"no {script} in --repo {repo!r}")
    version = _detect_version(repo)
    argv, mask_type = pop_option(list(argv), "--mask_type")
    mask_type = mask_type or "tube"
    if mask_type not in MASK_TYPES:
        raise ValueError(f"--mask_type must be one of {MASK_TYPES}, got {mask_type!r}")
    _, ratio = pop_option(list(argv), "--mask_ratio")
    mask_ratio = check_mask_ratio(float(ratio) if ratio is not None else (0.75 if version == "v1" else 0.9))
    adaptive = mask_type == "adaptive"

    if repo not in sys.path:
        sys.path.insert(0, repo)
    install_compat_shims()
    import importlib

    import timm.models

    def post(model: nn.Module, name: str, kwargs: Dict[str, Any]) -> nn.Module:
        if adaptive and hasattr(model, "encoder"):
            wrap(model, mask_ratio=mask_ratio, sampling_weight=sampling_weight, depth=sampler_depth,
                 num_heads=sampler_heads, width=sampler_width)
            n = sum(p.numel() for p in getattr(model, SAMPLER_NAME).parameters())
            print(f"adamask: adaptive masking on {name}: {SAMPLER_NAME} ({n} parameters), grid {model_grid(model)}, "
                  f"mask_ratio {mask_ratio}, sampling_weight {sampling_weight}", flush=True)
        return model

    original = timm.models.create_model
    original = getattr(original, "_adamask_original", original)
    shim = timm_create_model_shim(original, post)
    shim._adamask_original = original  # type: ignore[attr-defined]
    timm.models.create_model = shim
    data_mod = importlib.import_module("dataset.pretrain_datasets" if version == "v2" else "datasets")
    data_mod.TubeMaskingGenerator = _generator_factory(mask_type, "frames" if version == "v2" else "flat")
    engine = importlib.import_module("engine_for_pretraining")
    if adaptive:
        engine.train_one_epoch = train_one_epoch
    saved_compile, saved_argv = torch.compile, sys.argv
    if not compile_model:
        torch.compile = lambda model=None, *a, **k: model if model is not None else (lambda m: m)  # type: ignore
    sys.argv = [path, *argv, "--mask_type", "tube"]
    try:
        runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv, torch.compile = saved_argv, saved_compile
        timm.models.create_model = original


def main(argv: Optional[List[str]] = None) -> None:
    """``python -m adamask.integrations.videomae --repo PATH [options] -- <their arguments>``."""
    ours, theirs = split_launcher_argv(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(
        prog="python -m adamask.integrations.videomae",
        description="Run VideoMAE / VideoMAEv2 pretraining (their run_mae_pretraining.py, unmodified) with adamask "
                    "masking. Their arguments follow '--'; add '--mask_type adaptive' (or random, tube, frame).")
    p.add_argument("--repo", required=True, help="path of a VideoMAE or VideoMAEv2 checkout")
    p.add_argument("--script", default="run_mae_pretraining.py", help="their pretraining script, relative to --repo")
    add_sampler_arguments(p)
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile (VideoMAEv2 compiles by default)")
    p.add_argument("--local-rank", "--local_rank", dest="local_rank", default=None,
                   help="set by torch.distributed.launch; passed on to their script")
    args = p.parse_args(ours)
    if not theirs:
        p.error("give the pretraining script's arguments after '--'")
    if args.local_rank is not None:
        theirs = [*theirs, "--local_rank", str(args.local_rank)]
    run(args.repo, theirs, sampling_weight=args.sampling_weight, sampler_depth=args.sampler_depth,
        sampler_heads=args.sampler_heads, sampler_width=args.sampler_width, compile_model=not args.no_compile,
        script=args.script)


if __name__ == "__main__":  # run the importable module's main, so its classes have their real module name
    from adamask.integrations.videomae import main as _main

    _main()
