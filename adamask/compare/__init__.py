"""The experiment behind ``adamask compare``: pretrain the reference MAE once per masking strategy on the same
clips for the same number of steps, then measure and compare.

Per strategy: masked reconstruction loss on held-out clips (own ratio and a common ratio), foreground
allocation, k-NN and linear probes of the frozen encoder, step time, peak memory, the sampler's share of the
step and mask statistics. Everything lands in a run folder, written atomically (tmp file + os.replace):

    config.json  results.json  results.md  strategies/<label>.json  checkpoints/<label>.pt  figures/*.png

A run interrupted at any point leaves only complete files; running the same command again resumes it
(finished strategies are loaded, an unfinished one continues from its last checkpoint).

Modules (each imports only the core library and the modules above it):
``config`` (CompareConfig, StrategySpec), ``io`` (atomic writes), ``data`` (clips), ``metrics`` (measurements
and the metric table), ``model`` (the reference MAE per strategy, checkpoints), ``evaluate``, ``train``,
``report`` (summary, markdown table), ``figures``, ``costs`` (FLOPs and memory of a step), ``run``
(run_compare), ``options`` and ``commands`` (the ``adamask`` subcommands: their options and what they run)
and ``errors`` (what the command reports as bad input). Public names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

if TYPE_CHECKING:
    from .config import DEFAULT_STRATEGIES as DEFAULT_STRATEGIES
    from .config import PRESETS as PRESETS
    from .config import CompareConfig as CompareConfig
    from .config import StrategySpec as StrategySpec
    from .config import parse_sampler_options as parse_sampler_options
    from .config import parse_strategy as parse_strategy
    from .evaluate import clip_features as clip_features
    from .evaluate import evaluate_reconstruction as evaluate_reconstruction
    from .evaluate import evaluate_strategy as evaluate_strategy
    from .evaluate import probe as probe
    from .metrics import METRICS as METRICS
    from .metrics import Metric as Metric
    from .metrics import MetricContext as MetricContext
    from .model import CHECKPOINT_FORMAT as CHECKPOINT_FORMAT
    from .model import build_model as build_model
    from .model import build_strategy as build_strategy
    from .model import load_checkpoint as load_checkpoint
    from .report import markdown_table as markdown_table
    from .report import results_summary as results_summary
    from .run import SCHEMA as SCHEMA
    from .run import load_data as load_data
    from .run import run_compare as run_compare
    from .run import train_strategy as train_strategy
    from .train import train_step as train_step

__getattr__, __dir__, __all__ = lazy_attributes(__name__, globals())
