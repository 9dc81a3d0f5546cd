"""Everything a comparison run can be refused for, checked before anything is written or trained: each
setting, the device, the optional dependencies, and every strategy, ratio and schedule on the data's token
grid (each strategy's model is built on the meta device, at no cost). A run that passes these checks
does not fail later on its input. Problems raise `UserError` naming the option or strategy."""

from __future__ import annotations

import importlib.util
import math
from typing import Any, Dict

import torch

from ..mae import MAE_CONFIGS
from ..registry import create_masking
from ..tokens import token_grid
from .config import CompareConfig
from .errors import UserError, missing_extra, user_input
from .model import model_for

__all__ = ["check_device", "check_run", "embedded_data_options"]


def check_device(device: str) -> torch.device:
    """``device`` as a torch.device that exists here; a `UserError` saying so if it does not (e.g. cuda without
    CUDA)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise UserError(f"--device {device!r} is not a torch device (e.g. cpu, cuda, cuda:1): {e}") from e
    if dev.type == "meta":
        raise UserError("--device meta holds no data; use cpu or cuda")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(
                f"device {device!r} was requested but CUDA is not available here "
                f"(torch.cuda.is_available() is False); use --device cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(
                f"device {device!r} was requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif dev.type != "cpu":
        backend = getattr(torch, dev.type, None) or getattr(torch.backends, dev.type, None)
        if backend is None or not getattr(backend, "is_available", lambda: False)():
            raise UserError(f"device {device!r} was requested but {dev.type} is not available here; use --device cpu")
    return dev


def embedded_data_options(cfg: CompareConfig) -> Dict[str, Any]:
    """The keyword arguments of `SyntheticDigitClips` for the run ``cfg`` (all but the clip count)."""
    return dict(
        num_frames=cfg.num_frames,
        img_size=cfg.img_size,
        tubelet=tuple(cfg.tubelet),
        sprite_size=cfg.sprite_size or max(4, cfg.img_size // 4),
        seed=cfg.seed,
        background_contrast=cfg.background_contrast,
    )


def _check_extras(cfg: CompareConfig, figures: bool) -> None:
    needed = (
        [("av", "reading videos")]
        if cfg.videos
        else [("sklearn", "the embedded dataset (scikit-learn)"), ("matplotlib", "the embedded dataset")]
    )
    if figures:
        needed.append(("matplotlib", "drawing the figures (or pass --no-figures)"))
    for module, purpose in needed:
        if importlib.util.find_spec(module) is None:
            raise missing_extra(module, purpose)


def _check_on_grid(cfg: CompareConfig) -> None:
    """Each strategy's model (with the decoder masking, sampler options and loss settings) at its ratio and at
    both ends of the ratio schedule, and the common ratio, on the run's token grid."""
    with user_input("model: "):
        c = {**MAE_CONFIGS["base"], **cfg.model_config()}
        grid = token_grid((1, 3, c["num_frames"], c["img_size"], c["img_size"]), tuple(c["tubelet"]))
    n = math.prod(grid)
    with user_input(f"common_ratio {cfg.common_ratio:g} on the {n} tokens of grid {grid}: "):
        create_masking("random", grid=grid, mask_ratio=cfg.common_ratio)
    decoder = cfg.decoder_spec()
    if decoder is not None:
        with user_input(f"--decoder-masking {cfg.decoder_masking} on the {n} tokens of grid {grid}: "):
            create_masking(decoder.name, grid=grid, mask_ratio=decoder.mask_ratio)
    schedule = cfg.schedule()
    for spec in cfg.specs():
        with user_input(f"strategy {spec.label} on the {n} tokens of grid {grid}: "), torch.device("meta"):
            model = model_for(cfg, spec)
        if schedule is None:
            continue
        for ratio in (schedule.start, schedule.end):  # every kind of schedule lies between its two ends
            with user_input(
                f"--ratio-schedule {cfg.ratio_schedule}: strategy {spec.label} at ratio {ratio:g} on "
                f"the {n} tokens of grid {grid}: "
            ):
                model.set_mask_ratio(ratio)


def check_run(cfg: CompareConfig, figures: bool = True) -> torch.device:
    """Check everything about the run ``cfg`` that does not need the data (see the module's docstring); the
    device to run on. Raises `UserError` (a ValueError) naming what is wrong."""
    with user_input():
        cfg.validate()
    device = check_device(cfg.device)
    _check_extras(cfg, figures)
    _check_on_grid(cfg)
    if not cfg.videos:
        from .data import SyntheticDigitClips

        with user_input("embedded data: "):
            SyntheticDigitClips(1, **embedded_data_options(cfg))
    return device
