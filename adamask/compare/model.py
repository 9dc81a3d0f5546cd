"""The reference MAE of a comparison: built from a `StrategySpec` by the learned-strategy contract (never
by a strategy's name), read back from a checkpoint, and its strategy rebuilt at another mask ratio."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from ..loss import DEFAULT_SAMPLING_WEIGHT
from ..mae import MAE_CONFIGS, MaskedVideoAutoencoder
from ..masking import Masking, create_masking, list_maskings, strategy_info
from ..tokens import token_grid
from .config import StrategySpec

__all__ = ["CHECKPOINT_FORMAT", "build_strategy", "build_model", "load_checkpoint", "strategy_at_ratio"]

CHECKPOINT_FORMAT = "adamask-compare-checkpoint/1"


def build_strategy(spec: StrategySpec, grid: Sequence[int], embed_dim: int,
                   options: Optional[Dict[str, Any]] = None) -> Callable[..., Masking]:
    """The strategy object for ``spec`` on the model's grid (T', H', W'). Every strategy gets the token width
    ``embed_dim`` if it takes one; ``options`` (the ``--sampler`` options) go to learned strategies only
    (``strategy_info(name).learned``), where an ``embed_dim`` among them overrides the model's width."""
    opts = dict(options or {}) if strategy_info(spec.name).learned else {}
    width = opts.pop("embed_dim", embed_dim)
    return create_masking(spec.name, grid=tuple(grid), mask_ratio=spec.mask_ratio, embed_dim=width, **opts)


def build_model(model_config: Dict[str, Any], spec: StrategySpec, *, seed: int,
                masking_options: Optional[Dict[str, Any]] = None, sampling_weight: float = DEFAULT_SAMPLING_WEIGHT,
                sampling_estimator: str = "paper", sampling_baseline: Optional[str] = None) -> MaskedVideoAutoencoder:
    """The reference MAE with ``spec``'s strategy. The backbone's initial weights depend on ``seed`` only, so
    every strategy starts from the same network."""
    c = {**MAE_CONFIGS["base"], **model_config}
    grid = token_grid((1, c.get("in_chans", 3), c["num_frames"], c["img_size"], c["img_size"]), tuple(c["tubelet"]))
    torch.manual_seed(seed + 1)
    strategy = build_strategy(spec, grid, c["embed_dim"], masking_options)
    torch.manual_seed(seed)
    return MaskedVideoAutoencoder(**model_config, masking=strategy, sampling_weight=sampling_weight,
                                  sampling_estimator=sampling_estimator, sampling_baseline=sampling_baseline)


def load_checkpoint(path: os.PathLike, device: str = "cpu") -> Tuple[MaskedVideoAutoencoder, Dict[str, Any]]:
    """A checkpoint written by `run_compare` -> (model with its trained sampler, in eval mode, checkpoint dict)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=False)
    except Exception as e:
        raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not an adamask compare checkpoint")
    spec = StrategySpec(**ckpt["strategy"])
    if spec.name not in list_maskings():
        raise ValueError(f"{path}: strategy {spec.name!r} is not registered here; import the module that "
                         f"registers it (--import MODULE)")
    model = build_model(ckpt["model_config"], spec, seed=0, masking_options=ckpt.get("masking_options"),
                        sampling_weight=ckpt.get("sampling_weight", DEFAULT_SAMPLING_WEIGHT))
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval(), ckpt


def strategy_at_ratio(model: MaskedVideoAutoencoder, spec: StrategySpec, ratio: float,
                      options: Dict[str, Any]) -> Tuple[Optional[Callable[..., Masking]], Optional[str]]:
    """The strategy of ``model`` at another mask ratio, carrying over learned weights; (None, reason) if not."""
    try:
        other = build_strategy(StrategySpec(spec.name, ratio), model.grid, model.embed_dim, options)
    except (ValueError, TypeError) as e:
        return None, f"{spec.name} cannot run at mask ratio {ratio}: {e}"
    trained = model.mask_sampler
    if isinstance(trained, nn.Module) and isinstance(other, nn.Module) and len(trained.state_dict()):
        try:
            other.load_state_dict(trained.state_dict())
        except RuntimeError as e:
            return None, f"trained {spec.name} weights do not fit at ratio {ratio}: {e}"
    if isinstance(other, nn.Module):
        other = other.to(next(model.parameters()).device).eval()
    return other, None
