"""The integration of adamask's masking into Hugging Face ``transformers`` VideoMAE pre-training; the
``TYPE_CHECKING`` block below is this package's export table (names are imported on first use, so the
model does not import the ``Trainer``).

One-line swap::

    from adamask.integrations.hf import AdaptiveVideoMAEForPreTraining as VideoMAEForPreTraining

``AdaptiveVideoMAEForPreTraining`` (module ``model``) subclasses ``transformers.VideoMAEForPreTraining``.
Its forward samples ``bool_masked_pos`` from the patch embeddings with a masking strategy (the
sub-module ``mask_sampler``; AdaMAE's sampler by default, or any registered strategy that draws from
the tokens), runs the stock forward with that mask and returns
``loss = reconstruction_loss + sampling_weight * sampling_loss`` (no sampling loss for a non-learned
strategy); `wrap` makes a built ``VideoMAEForPreTraining`` adaptive in place and
`check_bool_masked_pos` validates a caller-given mask. `AdaMaskTrainer` (module ``trainer``) logs both
loss terms.

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

from typing import TYPE_CHECKING

from ..._lazy import lazy_attributes

if TYPE_CHECKING:
    from .model import ADAMASK_DEFAULTS as ADAMASK_DEFAULTS
    from .model import AdaptiveVideoMAEForPreTraining as AdaptiveVideoMAEForPreTraining
    from .model import AdaptiveVideoMAEForPreTrainingOutput as AdaptiveVideoMAEForPreTrainingOutput
    from .model import adamask_settings as adamask_settings
    from .model import check_bool_masked_pos as check_bool_masked_pos
    from .model import wrap as wrap
    from .trainer import AdaMaskTrainer as AdaMaskTrainer

__getattr__, __dir__, __all__ = lazy_attributes(__name__, globals())
