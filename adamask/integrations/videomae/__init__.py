"""The integration of adamask's masking into the VideoMAE (MCG-NJU, v1) and VideoMAEv2 (OpenGVLab)
pretraining code; the ``TYPE_CHECKING`` block below is this package's export table.

Their loop builds the reconstruction targets from the data loader's mask *before* calling the
model, so a sampled mask must also change where the targets come from. Four modules:

- ``generators``: `MaskingGenerator` (and `TubeMaskingGenerator`, `TubeMaskingGeneratorV2`,
  `RandomMaskingGenerator`, `RunningCellMaskingGenerator`), drop-ins for their data-loader mask
  generators; masks of any registered strategy that needs nothing (random / tube / frame /
  running_cell decoder masks / ...) drawn by adamask, with their call and output format.
- ``model``: `wrap(model)` adds a strategy the model draws, from the tokens or the clip
  (``model.mask_sampler``, AdaMAE's sampler by default) to a ``PretrainVisionTransformer`` before the
  optimizer and DDP are built; ``model(videos)`` then samples the mask itself and returns ``(pred, masking)``.
  `pretraining_losses` computes one step's losses with the targets built from that mask.
- ``engine``: `train_one_epoch`, with their signature; builds the targets from the sampled mask and
  adds ``weight * L_S``; logs ``loss``, ``loss_rec`` and ``loss_sampling``.
- ``launcher``: ``python -m adamask.integrations.videomae --repo PATH -- <their args> --mask_type
  adaptive`` runs their own ``run_mae_pretraining.py`` with these swapped in.

Upstream code is never imported here at module import time; objects are taken as arguments.
Layouts: videos (B, C, T, H, W) normalised with the ImageNet mean/std; tokens (t, h, w) order;
masks (B, N) bool, True = masked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_attributes

if TYPE_CHECKING:
    from .engine import train_one_epoch as train_one_epoch
    from .generators import GENERATOR_SHAPES as GENERATOR_SHAPES
    from .generators import MASK_TYPES as MASK_TYPES
    from .generators import MaskingGenerator as MaskingGenerator
    from .generators import RandomMaskingGenerator as RandomMaskingGenerator
    from .generators import RunningCellMaskingGenerator as RunningCellMaskingGenerator
    from .generators import TubeMaskingGenerator as TubeMaskingGenerator
    from .generators import TubeMaskingGeneratorV2 as TubeMaskingGeneratorV2
    from .generators import mask_types as mask_types
    from .launcher import main as main
    from .launcher import run as run
    from .model import IMAGENET_MEAN as IMAGENET_MEAN
    from .model import IMAGENET_STD as IMAGENET_STD
    from .model import StepLosses as StepLosses
    from .model import model_grid as model_grid
    from .model import pretraining_losses as pretraining_losses
    from .model import wrap as wrap

__getattr__, __dir__, __all__ = lazy_attributes(__name__, globals())

# Every name is imported now, and the package is the import path of its functions and classes: they
# name it as their module, so pickled generators and the engine the launcher swaps into their code
# point here.
for _name in __all__:
    _obj = __getattr__(_name)
    if getattr(_obj, "__module__", "").startswith(__name__ + "."):
        _obj.__module__ = __name__
del _name, _obj
