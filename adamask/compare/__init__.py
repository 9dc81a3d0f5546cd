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
    from .config import DEFAULT_STRATEGIES, PRESETS, CompareConfig, StrategySpec, parse_sampler_options, parse_strategy
    from .evaluate import clip_features, evaluate_reconstruction, evaluate_strategy, probe
    from .metrics import METRICS, Metric, MetricContext
    from .model import CHECKPOINT_FORMAT, build_model, build_strategy, load_checkpoint
    from .report import markdown_table, results_summary
    from .run import SCHEMA, load_data, run_compare, train_strategy
    from .train import train_step

_EXPORTS = {
    "config": (
        "DEFAULT_STRATEGIES",
        "PRESETS",
        "CompareConfig",
        "StrategySpec",
        "parse_sampler_options",
        "parse_strategy",
    ),
    "evaluate": ("clip_features", "evaluate_reconstruction", "evaluate_strategy", "probe"),
    "metrics": ("METRICS", "Metric", "MetricContext"),
    "model": ("CHECKPOINT_FORMAT", "build_model", "build_strategy", "load_checkpoint"),
    "report": ("markdown_table", "results_summary"),
    "run": ("SCHEMA", "load_data", "run_compare", "train_strategy"),
    "train": ("train_step",),
}

__all__ = [
    "DEFAULT_STRATEGIES",
    "StrategySpec",
    "CompareConfig",
    "parse_strategy",
    "build_strategy",
    "build_model",
    "load_checkpoint",
    "run_compare",
    "markdown_table",
    # also public
    "PRESETS",
    "SCHEMA",
    "CHECKPOINT_FORMAT",
    "METRICS",
    "Metric",
    "MetricContext",
    "parse_sampler_options",
    "load_data",
    "train_strategy",
    "train_step",
    "evaluate_reconstruction",
    "evaluate_strategy",
    "clip_features",
    "probe",
    "results_summary",
]

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _EXPORTS)
