"""Adaptive masking for the VideoMAE (MCG-NJU, v1) and VideoMAEv2 (OpenGVLab) pretraining code.

Their loop builds the reconstruction targets from the data loader's mask *before* calling the
model, so a sampled mask must also change where the targets come from. Three pieces:

- `MaskingGenerator` (and `TubeMaskingGenerator`, `TubeMaskingGeneratorV2`,
  `RandomMaskingGenerator`, `RunningCellMaskingGenerator`; module ``generators``): drop-ins for
  their data-loader mask generators; masks of any registered strategy that needs nothing (random /
  tube / frame / running_cell decoder masks / ...) drawn by adamask, with their call and output
  format.
- `wrap(model)` (module ``model``): adds a strategy that draws from the tokens (``model.mask_sampler``,
  AdaMAE's sampler by default) to a ``PretrainVisionTransformer`` before the optimizer and DDP are
  built; ``model(videos)`` then samples the mask itself and returns ``(pred, masking)``.
- `train_one_epoch` (module ``engine``; the losses: `pretraining_losses`, module ``loss``): same
  signature as theirs; builds the targets from the sampled mask and adds ``weight * L_S``; logs
  ``loss``, ``loss_rec`` and ``loss_sampling``.

``python -m adamask.integrations.videomae --repo PATH -- <their args> --mask_type adaptive`` runs
their own ``run_mae_pretraining.py`` with these swapped in (module ``launcher``). Upstream code is
never imported here at module import time; objects are taken as arguments.

Layouts: videos (B, C, T, H, W) normalised with the ImageNet mean/std; tokens (t, h, w) order;
masks (B, N) bool, True = masked.
"""

# ``name as name``: importable from this package, not in ``__all__``
from ...loss import DEFAULT_SAMPLING_WEIGHT as DEFAULT_SAMPLING_WEIGHT
from ..adapter import SAMPLER_NAME as SAMPLER_NAME
from ..adapter import unwrap_model as unwrap_model
from ..compat import install_compat_shims
from .engine import train_one_epoch
from .generators import GENERATOR_SHAPES as GENERATOR_SHAPES
from .generators import MASK_TYPES as MASK_TYPES
from .generators import (
    MaskingGenerator,
    RandomMaskingGenerator,
    RunningCellMaskingGenerator,
    TubeMaskingGenerator,
    TubeMaskingGeneratorV2,
    mask_types,
)
from .launcher import main, run
from .loss import IMAGENET_MEAN as IMAGENET_MEAN
from .loss import IMAGENET_STD as IMAGENET_STD
from .loss import StepLosses, pretraining_losses
from .model import model_grid, wrap

__all__ = [
    "MaskingGenerator",
    "TubeMaskingGenerator",
    "TubeMaskingGeneratorV2",
    "RandomMaskingGenerator",
    "RunningCellMaskingGenerator",
    "wrap",
    "model_grid",
    "StepLosses",
    "pretraining_losses",
    "train_one_epoch",
    "run",
    "main",
    "install_compat_shims",
    "mask_types",
]

# The public functions and classes name this package as their module, their import path (as when
# it was one module): pickled generators and the launcher's swapped-in engine point here.
for _obj in (
    MaskingGenerator,
    TubeMaskingGenerator,
    TubeMaskingGeneratorV2,
    RandomMaskingGenerator,
    RunningCellMaskingGenerator,
    wrap,
    model_grid,
    pretraining_losses,
    train_one_epoch,
    run,
    main,
):
    _obj.__module__ = __name__
del _obj
