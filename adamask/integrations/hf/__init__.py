"""Adaptive token masking for Hugging Face ``transformers`` VideoMAE pre-training.

One-line swap::

    from adamask.integrations.hf import AdaptiveVideoMAEForPreTraining as VideoMAEForPreTraining

``AdaptiveVideoMAEForPreTraining`` (module ``model``) subclasses ``transformers.VideoMAEForPreTraining``.
Its forward samples ``bool_masked_pos`` from the patch embeddings with a masking strategy (the
sub-module ``mask_sampler``; AdaMAE's sampler by default, or any registered strategy that draws from
the tokens), runs the stock forward with that mask and returns
``loss = reconstruction_loss + sampling_weight * sampling_loss`` (no sampling loss for a non-learned
strategy). `AdaMaskTrainer` (module ``trainer``) logs both terms; `check_bool_masked_pos` (module
``masks``) validates a caller-given mask.

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

# ``name as name`` and the private aliases: importable from this package, not in ``__all__``
from .masks import check_bool_masked_pos
from .masks import distributed as _distributed  # noqa: F401
from .masks import rank_seed as _rank_seed  # noqa: F401
from .model import (
    ADAMASK_DEFAULTS,
    AdaptiveVideoMAEForPreTraining,
    AdaptiveVideoMAEForPreTrainingOutput,
    adamask_settings,
    wrap,
)
from .settings import CONFIG_PREFIX as CONFIG_PREFIX
from .trainer import AdaMaskTrainer

__all__ = [
    "ADAMASK_DEFAULTS",
    "AdaptiveVideoMAEForPreTraining",
    "AdaptiveVideoMAEForPreTrainingOutput",
    "AdaMaskTrainer",
    "adamask_settings",
    "check_bool_masked_pos",
    "wrap",
]
