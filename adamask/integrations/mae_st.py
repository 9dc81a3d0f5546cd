"""Adaptive masking for SpatiotemporalMAE (facebookresearch/mae_st).

`patch(model)` adapts a ``MaskedAutoencoderViT`` in place: its ``random_masking`` draws the mask
from the sampler (``model.mask_sampler``) on the raw patch embeddings and keeps the 4-tuple
contract (x_masked (B, N_v, D), mask (B, N) float 1 = removed, ids_restore (B, N), ids_keep
(B, N_v)); its ``forward_loss`` returns ``L_R + sampling_weight * L_S``. Their training loop
needs no change. The two terms of the last loss are kept, detached, in ``model.adamask_losses``
(a (2,) tensor: reconstruction, sampling).

``python -m adamask.integrations.mae_st --repo PATH/mae_st -- <their args>`` runs their own
``run_pretrain.py`` with every model patched, the sampler's position embedding out of weight
decay and ``loss_rec`` / ``loss_sampling`` in their log. Upstream code is never imported here at
module import time.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import os
import runpy
import sys
from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..loss import sampling_loss
from ..mae import gather_tokens
from ..masking import check_grid, check_mask_ratio
from ._common import (
    add_sampler_arguments,
    DEFAULT_SAMPLING_WEIGHT,
    SAMPLER_NAME,
    adaptive_subclass,
    attach_sampler,
    build_sampler,
    check_sampling_weight,
    check_sampler_grid,
    install_compat_shims,
    pop_option,
    split_launcher_argv,
)

__all__ = ["patch", "model_grid", "token_error", "run", "main", "install_compat_shims", "MASK_TYPES"]

MASK_TYPES = ("adaptive", "random")


def model_grid(model: nn.Module) -> Tuple[int, int, int]:
    """(T', H', W') of a ``MaskedAutoencoderViT`` (``model.patch_embed.input_size``)."""
    pe = getattr(model, "patch_embed", None)
    if pe is None or not hasattr(pe, "input_size") or not hasattr(model, "random_masking") \
            or not hasattr(model, "forward_loss"):
        raise TypeError(f"model must be an mae_st MaskedAutoencoderViT (with patch_embed.input_size, random_masking "
                        f"and forward_loss), got {type(model).__name__}")
    return check_grid(tuple(int(g) for g in pe.input_size), "patch_embed.input_size")


def token_error(model: nn.Module, imgs: Tensor, pred: Tensor) -> Tensor:
    """Per-token squared error (B, N) float32 with mae_st's targets: ``pred_t_dim`` frames picked
    evenly, ``model.patchify``, and per-patch normalisation (unbiased var, +1e-6 inside the sqrt)
    if ``model.norm_pix_loss``."""
    frames = torch.linspace(0, imgs.shape[2] - 1, model.pred_t_dim).long().to(imgs.device)
    target = model.patchify(torch.index_select(imgs, 2, frames)).float()
    if model.norm_pix_loss:
        target = (target - target.mean(dim=-1, keepdim=True)) / (target.var(dim=-1, keepdim=True) + 1.0e-6) ** 0.5
    return (pred.float() - target).pow(2).mean(dim=-1)


class _AdaptiveMAEST:
    """Mixed into the model's class by `patch`; see `patch`."""

    def random_masking(self, x: Tensor, mask_ratio: float):
        """x (B, N, D) patch embeddings -> (x_masked, mask float 1 = removed, ids_restore, ids_keep)."""
        sampler = getattr(self, SAMPLER_NAME)
        keep = int(x.shape[1] * (1 - mask_ratio))
        if keep != sampler.num_visible:
            raise ValueError(f"mask_ratio={mask_ratio} keeps {keep} of {x.shape[1]} tokens but the mask_sampler keeps "
                             f"{sampler.num_visible} (built with mask_ratio={sampler.mask_ratio}); give patch() the "
                             f"mask_ratio the training loop passes")
        masking = sampler(x)
        ids_shuffle = torch.cat([masking.visible_idx, masking.masked_idx], dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        self._adamask_masking = masking
        return gather_tokens(x, masking.visible_idx), masking.mask.float(), ids_restore, masking.visible_idx

    def forward_loss(self, imgs: Tensor, pred: Tensor, mask: Tensor) -> Tensor:
        """Mean error of the removed tokens (their L_R) + sampling_weight * L_S of the last sampled mask."""
        err = token_error(self, imgs, pred)
        mask = mask.view(err.shape).float()
        rec = (err * mask).sum() / mask.sum()
        masking = self.__dict__.pop("_adamask_masking", None)
        if masking is not None and masking.mask.shape == err.shape:
            ls = sampling_loss(masking.probs, masking.mask, err)
        else:  # forward_loss called on its own: no sampled mask to score
            ls = rec.new_zeros(())
        self.adamask_losses = torch.stack([rec.detach(), ls.detach()])
        return rec + self.sampling_weight * ls

    def no_weight_decay(self) -> set:
        names = set(super().no_weight_decay()) if hasattr(super(), "no_weight_decay") else set()
        sampler = getattr(self, SAMPLER_NAME)
        return names | {f"{SAMPLER_NAME}.{n}" for n in getattr(sampler, "no_weight_decay", lambda: set())()}


def patch(model: nn.Module, *, mask_ratio: float = 0.9, sampling_weight: float = DEFAULT_SAMPLING_WEIGHT,
          depth: int = 1, num_heads: Optional[int] = None, width: Optional[int] = None,
          sampler: Optional[nn.Module] = None, **sampler_options: Any) -> nn.Module:
    """Add adaptive masking to an mae_st ``MaskedAutoencoderViT``, in place; returns the model.

    Call it before the optimizer and DDP. ``mask_ratio`` must be the ratio the training loop
    passes to ``model(imgs, mask_ratio)`` (checked on every call). The sampler (``depth`` blocks,
    ``width``, ``num_heads``; or a ready ``sampler`` for the model's grid) becomes
    ``model.mask_sampler``; lambda is ``model.sampling_weight``; ``no_weight_decay()`` names the
    sampler's position embedding. Existing parameter names are unchanged.
    """
    if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) or hasattr(model, "_orig_mod"):
        raise TypeError("patch the bare model, before DistributedDataParallel / torch.compile")
    check_sampling_weight(sampling_weight)
    if getattr(model, SAMPLER_NAME, None) is not None:
        raise ValueError(f"model already has a '{SAMPLER_NAME}'; it was adapted before")
    grid = model_grid(model)
    embed_dim = int(model.patch_embed.proj.out_channels)
    if sampler is None:
        sampler = build_sampler(embed_dim, grid, check_mask_ratio(mask_ratio), depth=depth, num_heads=num_heads,
                                width=width, **sampler_options)
    else:
        check_sampler_grid(sampler, grid)
        if getattr(sampler, "embed_dim", embed_dim) != embed_dim:
            raise ValueError(f"the sampler takes embed_dim={sampler.embed_dim} but the patch embeddings have "
                             f"{embed_dim}")
    attach_sampler(model, sampler.to(model.patch_embed.proj.weight.device), sampling_weight)
    model.__class__ = adaptive_subclass(_AdaptiveMAEST, type(model), globals())
    return model


# ---------------------------------------------------------------------------------------------
# launcher

def _patched_constructor(fn: Callable[..., nn.Module], models: List[nn.Module], **options: Any) -> Callable:
    @functools.wraps(fn)
    def build(*args: Any, **kwargs: Any) -> nn.Module:
        model = fn(*args, **kwargs)
        ratio = kwargs.get("mask_ratio", 0.75)
        patch(model, mask_ratio=ratio, **options)
        n = sum(p.numel() for p in getattr(model, SAMPLER_NAME).parameters())
        print(f"adamask: adaptive masking on {fn.__name__}: {SAMPLER_NAME} ({n} parameters), grid "
              f"{model_grid(model)}, mask_ratio {ratio}, sampling_weight {model.sampling_weight}", flush=True)
        models.append(model)
        return model

    return build


def run(repo: str, argv: Sequence[str], *, sampling_weight: float = DEFAULT_SAMPLING_WEIGHT,
        sampler_depth: int = 1, sampler_heads: Optional[int] = None, sampler_width: Optional[int] = None,
        script: str = "run_pretrain.py") -> None:
    """Run mae_st's pretraining script with ``argv`` (their arguments), unmodified on disk.

    ``--mask_type adaptive`` (default) or ``random`` (theirs, only the compatibility shims) may
    be added to ``argv``. The checkout folder must be named ``mae_st``: its parent goes on
    sys.path.
    """
    repo = os.path.abspath(repo)
    path = os.path.join(repo, script)
    if os.path.basename(repo) != "mae_st":
        raise ValueError(f"--repo must be a folder named 'mae_st' (the code imports itself as the package mae_st), "
                         f"got {repo!r}")
    if not os.path.isfile(path):
        raise ValueError(f"no {script} in --repo {repo!r}")
    argv, mask_type = pop_option(list(argv), "--mask_type")
    mask_type = mask_type or "adaptive"
    if mask_type not in MASK_TYPES:
        raise ValueError(f"--mask_type must be one of {MASK_TYPES}, got {mask_type!r}")
    parent = os.path.dirname(repo)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    if repo not in sys.path:
        sys.path.append(repo)  # their run_pretrain.py imports main_pretrain as a top-level module
    install_compat_shims()
    models_mae = importlib.import_module("mae_st.models_mae")
    misc = importlib.import_module("mae_st.util.misc")
    saved_argv = sys.argv
    undo: List[Tuple[Any, str, Any]] = []

    def swap(obj: Any, name: str, value: Any) -> None:
        undo.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    if mask_type == "adaptive":
        models: List[nn.Module] = []
        options = dict(sampling_weight=sampling_weight, depth=sampler_depth, num_heads=sampler_heads,
                       width=sampler_width)
        for name in [n for n in vars(models_mae) if n.startswith("mae_vit_") and callable(vars(models_mae)[n])]:
            swap(models_mae, name, _patched_constructor(vars(models_mae)[name], models, **options))

        add_weight_decay = misc.add_weight_decay

        def add_weight_decay_with_sampler(model: nn.Module, weight_decay: float = 1e-5, skip_list: Any = (),
                                          bias_wd: bool = False):
            skip = set(skip_list) | set(getattr(model, "no_weight_decay", lambda: set())())
            return add_weight_decay(model, weight_decay, skip_list=tuple(sorted(skip)), bias_wd=bias_wd)

        swap(misc, "add_weight_decay", add_weight_decay_with_sampler)
        update = misc.MetricLogger.update

        def update_with_terms(self: Any, **kwargs: Any) -> None:
            # read after their own loss.item() of the same step: the values are already computed
            if "loss" in kwargs and models and getattr(models[-1], "adamask_losses", None) is not None:
                rec, ls = models[-1].adamask_losses.tolist()
                kwargs.update(loss_rec=rec, loss_sampling=ls)
            update(self, **kwargs)

        swap(misc.MetricLogger, "update", update_with_terms)
    sys.argv = [path, *argv]
    try:
        runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv = saved_argv
        for obj, name, value in reversed(undo):
            setattr(obj, name, value)


def main(argv: Optional[List[str]] = None) -> None:
    """``python -m adamask.integrations.mae_st --repo PATH/mae_st [options] -- <their arguments>``."""
    ours, theirs = split_launcher_argv(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(
        prog="python -m adamask.integrations.mae_st",
        description="Run mae_st pretraining (their run_pretrain.py, unmodified) with adaptive masking. Their "
                    "arguments follow '--' ('--mask_type random' keeps their masking).")
    p.add_argument("--repo", required=True, help="path of an mae_st checkout (a folder named mae_st)")
    p.add_argument("--script", default="run_pretrain.py", help="their pretraining script, relative to --repo")
    add_sampler_arguments(p)
    args = p.parse_args(ours)
    if not theirs:
        p.error("give the pretraining script's arguments after '--'")
    run(args.repo, theirs, sampling_weight=args.sampling_weight, sampler_depth=args.sampler_depth,
        sampler_heads=args.sampler_heads, sampler_width=args.sampler_width, script=args.script)


if __name__ == "__main__":  # run the importable module's main, so its classes have their real module name
    from adamask.integrations.mae_st import main as _main

    _main()
