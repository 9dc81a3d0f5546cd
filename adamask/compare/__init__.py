"""The experiment behind ``adamask compare``: pretrain the reference MAE once per masking strategy on the same
clips for the same number of steps, then measure and compare.

Per strategy: masked reconstruction loss on held-out clips (own ratio and a common ratio), foreground
allocation, k-NN and linear probes of the frozen encoder and, if asked, the fine-tuning probe, step time, peak
memory, the sampler's share of the step and mask statistics. Everything lands in a run folder, written
atomically (tmp file + os.replace):

    config.json  results.json  results.md  strategies/<label>.json  checkpoints/<label>.pt  figures/*.png

A run interrupted at any point leaves only complete files; running the same command again resumes it
(finished strategies are loaded, an unfinished one continues from its last checkpoint).

A run is a pipeline of stages, each a module that takes the previous stage's result as data and returns data,
called in order by ``run`` (`run_compare`): ``config`` (CompareConfig, StrategySpec; what can run here) -> ``data``
(the embedded clips and the user's videos: `RunClips`) -> ``train`` (pretraining, progress, checkpoints) ->
``evaluate`` (reconstruction, allocation, probes; the fine-tuning probe in ``finetune``) -> ``stats`` (intervals,
paired differences, verdicts) -> ``report`` (results.json's summary, results.md) -> ``figures``. Beside them:
``rundir`` (the run folder, resuming, atomic writes), ``model`` (the reference MAE per strategy, its masks and its
reconstruction, read back from a checkpoint) and ``metrics`` (the measures and the table of what is reported, read
by the stages); ``costs`` (FLOPs and memory of a step), ``options`` and ``commands`` (the ``adamask`` subcommands:
their options, torch-free, and what they run) and ``errors`` (what the command reports as bad input). Public names
are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

if TYPE_CHECKING:
    from .config import DEFAULT_STRATEGIES as DEFAULT_STRATEGIES
    from .config import CompareConfig as CompareConfig
    from .config import StrategySpec as StrategySpec
    from .config import parse_strategy as parse_strategy
    from .data import RunClips as RunClips
    from .data import load_data as load_data
    from .evaluate import clip_features as clip_features
    from .evaluate import evaluate_strategy as evaluate_strategy
    from .evaluate import probe as probe
    from .metrics import METRICS as METRICS
    from .metrics import Metric as Metric
    from .metrics import MetricContext as MetricContext
    from .model import CHECKPOINT_FORMAT as CHECKPOINT_FORMAT
    from .model import build_model as build_model
    from .model import build_strategy as build_strategy
    from .model import evaluate_reconstruction as evaluate_reconstruction
    from .model import load_checkpoint as load_checkpoint
    from .options import PRESETS as PRESETS
    from .options import parse_sampler_options as parse_sampler_options
    from .report import markdown_table as markdown_table
    from .report import results_summary as results_summary
    from .run import SCHEMA as SCHEMA
    from .run import run_compare as run_compare
    from .run import train_strategy as train_strategy
    from .train import train_step as train_step

__getattr__, __dir__, __all__ = lazy_attributes(__name__, globals())
