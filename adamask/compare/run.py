"""A comparison run, stage by stage: check everything the run can be refused for, count each strategy's cost
and steps under the run's budget, hold the run folder, load the clips, train and evaluate each strategy once per
seed (loading what a previous run of the same configuration finished, resuming what it left), probe the
untrained encoder, compute the statistics, write the report and the figures, and results.json."""

from __future__ import annotations

import platform
import time
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import torch

from .config import CompareConfig, StrategySpec, check_device, check_extras
from .costs import RunCost, run_costs
from .data import RunClips, check_embedded, data_notes, load_data, with_video_defaults
from .errors import user_input
from .evaluate import evaluate_strategy, untrained_probes
from .metrics import METRICS, Metric
from .model import check_on_grid, strategy_options
from .report import build_report
from .rundir import (
    atomic_write_text,
    check_run_dir,
    identity_hash,
    open_run_dir,
    run_dir_lock,
    stored_result,
    write_json,
)
from .stats import compare_results
from .train import train_model

__all__ = ["SCHEMA", "check_run", "train_strategy", "run_compare"]

SCHEMA = "adamask.compare/2"


def check_run(cfg: CompareConfig, figures: bool = True) -> torch.device:
    """Everything the run ``cfg`` can be refused for without reading its data, checked before anything is
    written: each setting, the device, the optional dependencies, every strategy, ratio and schedule on the
    token grid, the embedded data's settings. Returns the device to run on; a `UserError` (a ValueError)
    naming what is wrong. A run that passes these checks does not fail later on its input."""
    with user_input():
        cfg.validate()
    device = check_device(cfg.device)
    check_extras(cfg, figures)
    check_on_grid(cfg)
    check_embedded(cfg)
    return device


@contextmanager
def _threads(threads: int) -> Iterator[None]:
    """torch's CPU threads set to ``threads`` within the block (0: left as they are), restored after it."""
    saved = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def train_strategy(
    cfg: CompareConfig,
    spec: StrategySpec,
    clips: RunClips,
    run_dir: Path,
    *,
    replicate: int = 0,
    gflops_per_step: Optional[float] = None,
    metrics: Sequence[Metric] = METRICS,
    progress: str = "bar",
    log: Callable[[str], None] = print,
) -> Dict[str, Any]:
    """Pretrain, checkpoint and evaluate one strategy with the seed and steps of ``cfg`` (the run of seed
    ``replicate``: `CompareConfig.for_seed`); returns its result dict (also written to strategies/<stem>.json,
    ``stem`` = `StrategySpec.stem`), which records the options the strategy was built with, the hash of what
    produced it (`CompareConfig.run_identity`), its steps and, given ``gflops_per_step`` (`run_costs`), its
    training FLOPs. A strategy whose loss (or learned strategy) turned non-finite stops there and is not
    evaluated: its result holds ``diverged_at_step`` (the 1-based training step), ``diverged_reason`` and no
    measurements."""
    stem = spec.stem(replicate)
    checkpoint = run_dir / "checkpoints" / f"{stem}.pt"
    trained = train_model(cfg, spec, clips, checkpoint, name=stem, progress=progress, log=log)
    result = dict(
        name=spec.name,
        mask_ratio=spec.mask_ratio,
        label=spec.label,
        masking_options=strategy_options(spec, cfg.masking_options),
        config_hash=identity_hash(cfg.run_identity(spec)),
        seed=cfg.seed,
        replicate=replicate,
        steps=cfg.steps,
        budget=cfg.budget,
        gflops_per_step=gflops_per_step,
        train_gflops=None if gflops_per_step is None else gflops_per_step * cfg.steps,
        train_seconds=trained.train_seconds,
        timing=trained.timing(),
        memory=trained.memory,
        history=trained.history,
        checkpoint=str(checkpoint.relative_to(run_dir)),
    )
    schedule = cfg.schedule()
    if schedule is not None:
        result["ratio_schedule"] = asdict(schedule)
        result["history"] = dict(trained.history, mask_ratio=[schedule(s) for s in trained.history["step"]])
    if trained.diverged_at_step is not None:
        log(f"{stem}: diverged at step {trained.diverged_at_step} ({trained.diverged_reason}); not evaluated")
        result.update(
            diverged_at_step=trained.diverged_at_step,
            diverged_reason=trained.diverged_reason,
            learned=trained.model.is_adaptive,
            num_tokens=trained.model.num_tokens,
            grid=list(trained.model.grid),
        )
    else:
        result.update(evaluate_strategy(trained.model, spec, cfg, clips, metrics))
    write_json(run_dir / "strategies" / f"{stem}.json", result)
    return result


def _runs_of(
    cfg: CompareConfig,
    spec: StrategySpec,
    cost: RunCost,
    clips: RunClips,
    run_dir: Path,
    metrics: Sequence[Metric],
    progress: str,
    log: Callable[[str], None],
) -> List[Dict[str, Any]]:
    """The result of each seed of ``spec`` (``cost.steps`` steps each): loaded where a previous run of the same
    configuration finished it, else trained now."""
    runs = []
    for k in range(cfg.seeds):
        run_cfg = replace(cfg, steps=cost.steps).for_seed(k)
        stem = spec.stem(k)
        result = stored_result(run_dir, stem, spec.label, run_cfg.run_identity(spec))
        if result is not None:
            log(f"{stem}: already done, loaded {run_dir / 'strategies' / f'{stem}.json'}")
        else:
            result = train_strategy(
                run_cfg,
                spec,
                clips,
                run_dir,
                replicate=k,
                gflops_per_step=cost.gflops_per_step,
                metrics=metrics,
                progress=progress,
                log=log,
            )
        runs.append(result)
    return runs


def run_compare(
    cfg: CompareConfig,
    *,
    overwrite: bool = False,
    progress: str = "bar",
    figures: bool = True,
    command: Optional[str] = None,
    log: Callable[[str], None] = print,
    metrics: Sequence[Metric] = METRICS,
) -> Dict[str, Any]:
    """Run (or resume) a comparison into ``cfg.out``; returns the results dict also written to results.json.

    Each strategy runs ``cfg.seeds`` times, with seeds ``cfg.seed``, ``cfg.seed + 1``, ... (the same for every
    strategy; the clips are those of ``cfg.seed``), for the steps of the run's budget (`run_costs`); a finished
    (strategy, seed) of the same configuration is loaded, not run again. Everything that can be wrong with the
    input (settings, device, extras, strategies and ratios on the token grid, the run folder, the videos) is
    checked before the run folder is written: a `UserError` (a ValueError) naming it. The run holds its folder
    (`run_dir_lock`): another run on it meanwhile is refused. progress: "bar" (tqdm, where stderr is a
    terminal), "lines" or "none". metrics: the metric table of the summary and the table.
    """
    t_start = time.perf_counter()
    cfg = with_video_defaults(cfg)
    device = check_run(cfg, figures)
    with _threads(cfg.threads):
        costs = run_costs(cfg)
        check_run_dir(Path(cfg.out), cfg.identity(), overwrite)
        with run_dir_lock(Path(cfg.out)):
            clips = load_data(cfg, log)
            config = dict(config=asdict(cfg), identity=cfg.identity())
            run_dir = open_run_dir(Path(cfg.out), config, overwrite, log)
            log(
                f"data: {clips.description['source']}, {len(clips.train)} training and {len(clips.test)} "
                f"held-out clips of {tuple(clips.train.videos.shape[1:])}; {cfg.seeds} seed(s) per strategy"
            )
            if cfg.budget == "flops":
                steps = ", ".join(f"{label} {c.steps}" for label, c in costs.items())
                log(f"budget: the training FLOPs of {cfg.steps} steps of random_{cfg.common_ratio:g}; steps: {steps}")
            seeds = [cfg.seed + k for k in range(cfg.seeds)]
            strategies: Dict[str, Dict[str, Any]] = {}
            for spec in cfg.specs():
                runs = _runs_of(cfg, spec, costs[spec.label], clips, run_dir, metrics, progress, log)
                strategies[spec.label] = dict(
                    name=spec.name, mask_ratio=spec.mask_ratio, label=spec.label, seeds=seeds, runs=runs
                )
            untrained = untrained_probes(cfg, clips, device)
            statistics = compare_results(strategies, untrained, metrics)
            report = build_report(
                strategies,
                untrained,
                statistics,
                cfg,
                metrics,
                command=command,
                data_note=data_notes(clips.description),
            )
            fig_paths: List[str] = []
            if figures:
                from .figures import write_run_figures

                written = write_run_figures(run_dir, strategies, clips.figure, cfg, untrained)
                fig_paths = [str(p.relative_to(run_dir)) for p in written]
            results = dict(
                schema=SCHEMA,
                command=command,
                config=asdict(cfg),
                data=clips.description,
                environment=dict(
                    torch=torch.__version__,
                    python=platform.python_version(),
                    device=str(torch.device(cfg.device)),
                    threads=torch.get_num_threads(),
                ),
                strategies=strategies,
                untrained_probe=untrained,
                summary=report.summary,
                figures=fig_paths,
                runtime_s=time.perf_counter() - t_start,
            )
            write_json(run_dir / "results.json", results)
            atomic_write_text(run_dir / "results.md", report.markdown)
            return results
