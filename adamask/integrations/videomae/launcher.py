"""The VideoMAE / VideoMAEv2 launcher, ``python -m adamask.integrations.videomae --repo PATH [options] --
<their arguments>``: their own ``run_mae_pretraining.py``, unmodified on disk, with adamask's mask
generators, `wrap` and `train_one_epoch` swapped in for the run."""

from __future__ import annotations

import importlib
import os
import runpy
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ...loss import DEFAULT_SAMPLING_WEIGHT
from ...registry import strategy_info
from ...validation import check_mask_ratio
from ..adapter import MODEL_NEEDS, model_strategies
from ..compat import install_compat_shims, timm_create_model_shim
from ..launch import (
    Swaps,
    announce,
    launcher_parser,
    parse_launcher_argv,
    pop_option,
    run_options,
    script_path,
    wrap_options,
)
from .engine import train_one_epoch
from .generators import MaskingGenerator, mask_types
from .model import model_grid, wrap

__all__ = ["run", "main", "launcher_mask_types", "decoder_mask_types"]


def _detect_version(repo: str) -> str:
    if os.path.isfile(os.path.join(repo, "models", "modeling_pretrain.py")):
        return "v2"
    if os.path.isfile(os.path.join(repo, "modeling_pretrain.py")):
        return "v1"
    raise ValueError(
        f"--repo {repo!r} is neither a VideoMAE (modeling_pretrain.py) nor a VideoMAEv2 "
        f"(models/modeling_pretrain.py) checkout"
    )


def _generator_factory(strategy: str, shape: str, model_draws: bool = False):
    def make(input_size: Sequence[int], mask_ratio: float) -> MaskingGenerator:
        return MaskingGenerator(input_size, mask_ratio, strategy=strategy, shape=shape, model_draws=model_draws)

    return make


def launcher_mask_types() -> List[str]:
    """``--mask_type`` values: every strategy a generator draws (needs nothing) and every strategy the
    wrapped model draws (from the tokens or the clip), sorted."""
    return sorted({*mask_types(), *model_strategies()})


def _float_option(value: Optional[str], name: str, default: float) -> float:
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {value!r}") from None


def _masking_arguments(argv: List[str], version: str) -> Tuple[List[str], str, float]:
    """Take ``--mask_type`` out of their arguments; read ``--mask_ratio`` (their defaults)."""
    argv, mask_type = pop_option(list(argv), "--mask_type")
    mask_type = mask_type or "tube"
    if mask_type not in launcher_mask_types():
        raise ValueError(f"--mask_type must be one of {launcher_mask_types()}, got {mask_type!r}")
    _, ratio = pop_option(list(argv), "--mask_ratio")
    mask_ratio = check_mask_ratio(
        _float_option(ratio, "--mask_ratio", 0.75 if version == "v1" else 0.9), "--mask_ratio"
    )
    return argv, mask_type, mask_ratio


def decoder_mask_types() -> List[str]:
    """v2's ``--decoder_mask_type`` values: their ``run_cell`` (adamask's ``running_cell``) or any
    registered strategy that needs nothing, drawn by `MaskingGenerator` as the decoder mask."""
    return ["run_cell", *[n for n in mask_types() if strategy_info(n).needs == "nothing"]]


def _decoder_arguments(argv: List[str], version: str) -> Tuple[List[str], Optional[str]]:
    """v2: take ``--decoder_mask_type`` out of their arguments (their default run_cell) and give their
    parser ``run_cell``; returns (arguments, the decoder strategy). v1 has no decoder mask."""
    if version != "v2":
        return argv, None
    argv, kind = pop_option(list(argv), "--decoder_mask_type")
    kind = kind or "run_cell"
    if kind not in decoder_mask_types():
        raise ValueError(f"--decoder_mask_type must be one of {decoder_mask_types()}, got {kind!r}")
    return [*argv, "--decoder_mask_type", "run_cell"], ("running_cell" if kind == "run_cell" else kind)


def _create_model_shim(strategy: Optional[str], mask_ratio: float, options: Dict[str, Any]) -> Any:
    """A ``timm.models.create_model`` that wraps models with an encoder (when ``strategy`` is given)."""
    import timm.models

    def post(model: nn.Module, name: str, kwargs: Dict[str, Any]) -> nn.Module:
        if strategy is not None and hasattr(model, "encoder"):
            wrap(model, mask_ratio=mask_ratio, strategy=strategy, **options)
            announce(model, strategy, name, model_grid(model), mask_ratio)
        return model

    return timm_create_model_shim(timm.models.create_model, post)


def _no_compile(model: Any = None, *args: Any, **kwargs: Any) -> Any:
    """torch.compile that compiles nothing (``--no-compile``)."""
    return model if model is not None else (lambda m: m)


def run(
    repo: str,
    argv: Sequence[str],
    *,
    sampling_weight: float = DEFAULT_SAMPLING_WEIGHT,
    sampler_depth: Optional[int] = None,
    sampler_heads: Optional[int] = None,
    sampler_width: Optional[int] = None,
    compile_model: bool = True,
    script: str = "run_mae_pretraining.py",
    sampling_estimator: str = "paper",
    sampling_baseline: Optional[str] = None,
    sampling_entropy_weight: float = 0.0,
) -> None:
    """Run ``repo``'s pretraining script with ``argv`` (their arguments), unmodified on disk.

    ``--mask_type`` in ``argv`` may name any registered strategy that needs nothing (random, tube,
    frame, ...: drawn by `MaskingGenerator` in their loader) or that the model draws, from the tokens
    (adaptive, motion, ...) or the clip (motion_pixels); their parser is given ``tube`` and their
    generator is replaced (a placeholder when the model draws). For a strategy the model draws,
    models built through ``timm.create_model`` are `wrap`-ped (mask_ratio from their
    ``--mask_ratio``) before the optimizer / DDP exist and their ``train_one_epoch`` is replaced by
    adamask's. VideoMAEv2: with ``--decoder_mask_ratio`` > 0 their decoder-mask generator is
    adamask's (``--decoder_mask_type run_cell``, their default: the ``running_cell`` strategy; or any
    registered strategy that needs nothing), and the loss of the sampled encoder mask counts only the
    tokens the decoder reconstructs. ``compile_model=False`` turns torch.compile into a no-op (v2).
    Every replacement is undone when the run ends, also when it fails.
    """
    repo, path = script_path(repo, script)
    version = _detect_version(repo)
    argv, mask_type, mask_ratio = _masking_arguments(list(argv), version)
    argv, decoder_type = _decoder_arguments(argv, version)
    in_model = strategy_info(mask_type).needs in MODEL_NEEDS
    options = wrap_options(
        sampling_weight,
        sampling_estimator,
        sampling_baseline,
        sampler_depth,
        sampler_heads,
        sampler_width,
        sampling_entropy_weight,
    )

    if repo not in sys.path:
        sys.path.insert(0, repo)
    install_compat_shims()
    import timm.models

    with Swaps() as swap:
        swap(timm.models, "create_model", _create_model_shim(mask_type if in_model else None, mask_ratio, options))
        data_mod = importlib.import_module("dataset.pretrain_datasets" if version == "v2" else "datasets")
        shape = "frames" if version == "v2" else "flat"
        swap(data_mod, "TubeMaskingGenerator", _generator_factory(mask_type, shape, model_draws=in_model))
        if decoder_type is not None and hasattr(data_mod, "RunningCellMaskingGenerator"):
            swap(data_mod, "RunningCellMaskingGenerator", _generator_factory(decoder_type, "frames"))
        if in_model:
            swap(importlib.import_module("engine_for_pretraining"), "train_one_epoch", train_one_epoch)
        if not compile_model:
            swap(torch, "compile", _no_compile)
        swap(sys, "argv", [path, *argv, "--mask_type", "tube"])
        runpy.run_path(path, run_name="__main__")


def main(argv: Optional[List[str]] = None) -> None:
    """``python -m adamask.integrations.videomae --repo PATH [options] -- <their arguments>``."""
    p = launcher_parser(
        "python -m adamask.integrations.videomae",
        "Run VideoMAE / VideoMAEv2 pretraining (their run_mae_pretraining.py, unmodified) with adamask masking. "
        "Their arguments follow '--'; add '--mask_type adaptive' (or random, tube, frame, or any registered "
        "strategy).",
        "path of a VideoMAE or VideoMAEv2 checkout",
        "run_mae_pretraining.py",
    )
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile (VideoMAEv2 compiles by default)")
    p.add_argument(
        "--local-rank",
        "--local_rank",
        dest="local_rank",
        default=None,
        help="set by torch.distributed.launch; passed on to their script",
    )
    args, theirs = parse_launcher_argv(p, argv)
    if args.local_rank is not None:
        theirs = [*theirs, "--local_rank", str(args.local_rank)]
    run(args.repo, theirs, compile_model=not args.no_compile, **run_options(args))
