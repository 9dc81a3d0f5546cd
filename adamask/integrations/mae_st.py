"""The integration of adamask's masking into SpatiotemporalMAE (facebookresearch/mae_st): `wrap` and the launcher.

`wrap(model)` adapts a ``MaskedAutoencoderViT`` in place: its ``random_masking`` draws the mask from the
masking strategy (``model.mask_sampler``, AdaMAE's sampler by default) on the raw patch embeddings (or on
the clip given to the forward, for a strategy that draws from the video, e.g. ``motion_pixels``) and
keeps the 4-tuple contract (x_masked (B, N_v, D), mask (B, N) float 1 = removed, ids_restore (B, N),
ids_keep (B, N_v)); its ``forward_loss`` returns ``L_R + weight * L_S`` (``model.loss_settings``; no L_S
for a non-learned strategy). Their training loop needs no change. The two terms of the last loss are
kept, detached, in ``model.adamask_losses`` (a (2,) tensor: reconstruction, sampling).

``python -m adamask.integrations.mae_st --repo PATH/mae_st -- <their args>`` runs their own
``run_pretrain.py`` with every model wrapped, the strategy's position embedding out of weight
decay and ``loss_rec`` / ``loss_sampling`` in their log. Upstream code is never imported here at
module import time.
"""

from __future__ import annotations

import functools
import importlib
import os
import runpy
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, cast

import torch
from torch import Tensor, nn

from ..loss import DEFAULT_SAMPLING_WEIGHT
from ..masking import needs_video
from ..tokens import gather_tokens
from ..validation import check_grid, check_mask_ratio, check_tubelet, visible_count
from .adapter import (
    SAMPLER_NAME,
    AdaptedModel,
    Target,
    check_model_strategy,
    define_wrap,
    detaches_input,
    draw_masking,
    model_pixels,
    model_strategies,
    total_loss,
)
from .compat import install_compat_shims
from .launch import (
    Swaps,
    announce,
    launcher_parser,
    parse_launcher_argv,
    pop_option,
    run_options,
    script_path,
    wrap_options,
)

__all__ = ["wrap", "model_grid", "token_error", "run", "main", "MASK_TYPES", "mask_types"]

MASK_TYPES = ("adaptive", "random")  # the built-in ones; see `mask_types` for all


def mask_types() -> List[str]:
    """The launcher's ``--mask_type`` values: ``random`` (their own masking) or any registered
    strategy the model draws itself, from the tokens (``adaptive``, ...) or the clip (``motion_pixels``)."""
    return sorted({"random", *model_strategies()})


def model_grid(model: nn.Module) -> Tuple[int, int, int]:
    """(T', H', W') of a ``MaskedAutoencoderViT`` (``model.patch_embed.input_size``)."""
    pe = getattr(model, "patch_embed", None)
    if (
        pe is None
        or not hasattr(pe, "input_size")
        or not hasattr(model, "random_masking")
        or not hasattr(model, "forward_loss")
    ):
        raise TypeError(
            f"model must be an mae_st MaskedAutoencoderViT (with patch_embed.input_size, random_masking "
            f"and forward_loss), got {type(model).__name__}"
        )
    return check_grid(tuple(int(g) for g in pe.input_size), "patch_embed.input_size")


def token_error(model: nn.Module, imgs: Tensor, pred: Tensor) -> Tensor:
    """Per-token squared error (B, N) float32 with mae_st's targets: ``pred_t_dim`` frames picked
    evenly, ``model.patchify``, and per-patch normalisation (unbiased var, +1e-6 inside the sqrt)
    if ``model.norm_pix_loss``."""
    mae: Any = model  # mae_st's attributes, untyped
    frames = torch.linspace(0, imgs.shape[2] - 1, mae.pred_t_dim).long().to(imgs.device)
    target = mae.patchify(torch.index_select(imgs, 2, frames)).float()
    if mae.norm_pix_loss:
        target = (target - target.mean(dim=-1, keepdim=True)) / (target.var(dim=-1, keepdim=True) + 1.0e-6) ** 0.5
    return (pred.float() - target).pow(2).mean(dim=-1)


class _AdaptiveMAEST(AdaptedModel):
    """Mixed into the model's class by `wrap`; see `wrap`."""

    patch_embed: Any  # the upstream model's patch embedding (its proj)

    def forward(self, imgs: Tensor, *args: Any, **kwargs: Any) -> Any:
        """Their forward, with ``imgs`` (B, C, T, H, W) checked first: float pixels of another dtype are
        cast to the patch embedding's, integer pixels and an empty batch refused by name. A strategy
        that draws from the clip is handed ``imgs`` when their ``random_masking`` runs."""
        imgs = model_pixels(imgs, "imgs", "(B, C, T, H, W)", self.patch_embed.proj.weight.dtype)
        if needs_video(getattr(self, SAMPLER_NAME)):
            self._adamask_video = imgs
        try:
            return super().forward(imgs, *args, **kwargs)
        finally:
            self.__dict__.pop("_adamask_video", None)

    def _strategy_input(self, strategy: Any, x: Tensor) -> Tensor:
        """The tokens x (B, N, D) (detached when the strategy detaches them), or the clip the forward
        was called with, for a strategy that draws from the clip."""
        if not needs_video(strategy):
            return x.detach() if detaches_input(strategy) else x
        video = self.__dict__.get("_adamask_video")
        if video is None:
            raise TypeError(
                f"the mask_sampler ({type(strategy).__name__}) draws its masks from the video (needs='video'): "
                f"call the model, model(imgs, mask_ratio), which hands it the clip"
            )
        return cast(Tensor, video)

    def random_masking(self, x: Tensor, mask_ratio: float) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """x (B, N, D) patch embeddings -> (x_masked, mask float 1 = removed, ids_restore, ids_keep)."""
        strategy = getattr(self, SAMPLER_NAME)
        keep = visible_count(x.shape[1], check_mask_ratio(mask_ratio))
        masking = draw_masking(strategy, self._strategy_input(strategy, x), x.shape[1])
        if masking.num_visible != keep:
            raise ValueError(
                f"mask_ratio={mask_ratio} keeps {keep} of {x.shape[1]} tokens but the mask_sampler keeps "
                f"{masking.num_visible} (built with mask_ratio={getattr(strategy, 'mask_ratio', None)}); "
                f"give wrap() the mask_ratio the training loop passes"
            )
        ids_restore = torch.argsort(torch.cat([masking.visible_idx, masking.masked_idx], dim=1), dim=1)
        self._adamask_masking = masking
        return gather_tokens(x, masking.visible_idx), masking.mask.float(), ids_restore, masking.visible_idx

    def forward_loss(self, imgs: Tensor, pred: Tensor, mask: Tensor) -> Tensor:
        """Mean error of the removed tokens (their L_R) + weight * L_S of the last sampled mask."""
        err = token_error(self, imgs, pred)
        mask = mask.view(err.shape).float()
        rec = (err * mask).sum() / mask.sum()
        masking = self.__dict__.pop("_adamask_masking", None)
        term = None
        if masking is not None and masking.mask.shape == err.shape:
            loss, term = total_loss(rec, getattr(self, SAMPLER_NAME), masking, err, self.loss_settings)
        else:  # forward_loss called on its own: no sampled mask to score
            loss = rec
        ls = rec.new_zeros(()) if term is None else term
        self.adamask_losses = torch.stack([rec.detach(), ls.detach().to(rec.dtype)])
        return loss


def _patch_projection(model: nn.Module) -> Any:
    """The Conv3d of the model's patch embedding (an upstream attribute, untyped)."""
    return cast(Any, model).patch_embed.proj


wrap = define_wrap(
    Target(
        model="an mae_st ``MaskedAutoencoderViT``",
        mixin=_AdaptiveMAEST,
        mask_ratio=0.9,
        grid=model_grid,
        embed_dim=lambda model: int(_patch_projection(model).out_channels),
        tubelet=lambda model: check_tubelet(_patch_projection(model).kernel_size, "patch_embed.proj.kernel_size"),
        device=lambda model: _patch_projection(model).weight.device,
        usage=(
            "Their training loop then runs unchanged: ``model(imgs, mask_ratio)`` draws the mask from the\n"
            "strategy and returns their (loss, pred, mask), the loss with the strategy's term. ``mask_ratio``\n"
            "must be the ratio the loop passes (checked on every call); a ratio schedule changes both,\n"
            "``model.set_mask_ratio(r)`` and ``model(imgs, mask_ratio=r)``."
        ),
    )
)


# ---------------------------------------------------------------------------------------------
# launcher


def _wrapped_constructor(
    fn: Callable[..., nn.Module], models: List[nn.Module], strategy: str, **options: Any
) -> Callable[..., nn.Module]:
    @functools.wraps(fn)
    def build(*args: Any, **kwargs: Any) -> nn.Module:
        model = fn(*args, **kwargs)
        ratio = kwargs.get("mask_ratio", 0.75)
        wrap(model, mask_ratio=ratio, strategy=strategy, **options)
        announce(model, strategy, fn.__name__, model_grid(model), ratio)
        models.append(model)
        return model

    return build


def _swap_for_strategy(
    misc: Any, models_mae: Any, strategy: str, options: Dict[str, Any], swap: Callable[[Any, str, Any], None]
) -> None:
    """Wrap every model their ``mae_vit_*`` functions build, keep the strategy's names out of weight
    decay and add ``loss_rec`` / ``loss_sampling`` to their metric log."""
    models: List[nn.Module] = []
    for name in [n for n in vars(models_mae) if n.startswith("mae_vit_") and callable(vars(models_mae)[n])]:
        swap(models_mae, name, _wrapped_constructor(vars(models_mae)[name], models, strategy, **options))
    add_weight_decay = misc.add_weight_decay

    def add_weight_decay_with_sampler(
        model: nn.Module, weight_decay: float = 1e-5, skip_list: Any = (), bias_wd: bool = False
    ) -> Any:
        skip = set(skip_list) | set(getattr(model, "no_weight_decay", lambda: set())())
        return add_weight_decay(model, weight_decay, skip_list=tuple(sorted(skip)), bias_wd=bias_wd)

    swap(misc, "add_weight_decay", add_weight_decay_with_sampler)
    update = misc.MetricLogger.update

    def update_with_terms(self: Any, **kwargs: Any) -> None:
        # read after their own loss.item() of the same step: the values are already computed
        losses = getattr(models[-1], "adamask_losses", None) if "loss" in kwargs and models else None
        if losses is not None:
            rec, ls = losses.tolist()
            kwargs.update(loss_rec=rec, loss_sampling=ls)
        update(self, **kwargs)

    swap(misc.MetricLogger, "update", update_with_terms)


def _check_repo(repo: str, script: str) -> str:
    repo = os.path.abspath(repo)
    if os.path.basename(repo) != "mae_st":
        raise ValueError(
            f"--repo must be a folder named 'mae_st' (the code imports itself as the package mae_st), got {repo!r}"
        )
    return script_path(repo, script)[0]


def run(
    repo: str,
    argv: Sequence[str],
    *,
    sampling_weight: float = DEFAULT_SAMPLING_WEIGHT,
    sampler_depth: Optional[int] = None,
    sampler_heads: Optional[int] = None,
    sampler_width: Optional[int] = None,
    script: str = "run_pretrain.py",
    sampling_estimator: str = "paper",
    sampling_baseline: Optional[str] = None,
    sampling_entropy_weight: float = 0.0,
) -> None:
    """Run mae_st's pretraining script with ``argv`` (their arguments), unmodified on disk.

    ``--mask_type`` may be added to ``argv``: ``adaptive`` (default) or any registered strategy the
    model draws itself (from the tokens, or from the clip: ``motion_pixels``), or ``random`` (theirs,
    only the compatibility shims). The checkout folder
    must be named ``mae_st``: its parent goes on sys.path. Every replacement is undone when the run
    ends, also when it fails.
    """
    repo = _check_repo(repo, script)
    argv, mask_type = pop_option(list(argv), "--mask_type")
    mask_type = mask_type or "adaptive"
    if mask_type not in mask_types():
        raise ValueError(f"--mask_type must be one of {mask_types()}, got {mask_type!r}")
    parent = os.path.dirname(repo)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    if repo not in sys.path:
        sys.path.append(repo)  # their run_pretrain.py imports main_pretrain as a top-level module
    install_compat_shims()
    models_mae = importlib.import_module("mae_st.models_mae")
    misc = importlib.import_module("mae_st.util.misc")
    with Swaps() as swap:
        if mask_type != "random":
            check_model_strategy(mask_type, "--mask_type")
            options = wrap_options(
                sampling_weight,
                sampling_estimator,
                sampling_baseline,
                sampler_depth,
                sampler_heads,
                sampler_width,
                sampling_entropy_weight,
            )
            _swap_for_strategy(misc, models_mae, mask_type, options, swap)
        swap(sys, "argv", [os.path.join(repo, script), *argv])
        runpy.run_path(sys.argv[0], run_name="__main__")


def main(argv: Optional[List[str]] = None) -> None:
    """``python -m adamask.integrations.mae_st --repo PATH/mae_st [options] -- <their arguments>``."""
    p = launcher_parser(
        "python -m adamask.integrations.mae_st",
        "Run mae_st pretraining (their run_pretrain.py, unmodified) with adaptive masking. Their arguments "
        "follow '--' ('--mask_type random' keeps their masking; '--mask_type NAME' picks another registered "
        "strategy the model draws, from its tokens or its clip).",
        "path of an mae_st checkout (a folder named mae_st)",
        "run_pretrain.py",
    )
    args, theirs = parse_launcher_argv(p, argv)
    run(args.repo, theirs, **run_options(args))


if __name__ == "__main__":  # run the importable module's main, so its classes have their real module name
    from adamask.integrations.mae_st import main as _main

    _main()
