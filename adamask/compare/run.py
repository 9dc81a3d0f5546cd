"""A comparison run: load the clips, train and evaluate each strategy once per seed (resuming what a previous
run left), probe the untrained encoder of each seed, draw the figures and write results.json and results.md."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

import torch

from .config import CompareConfig, StrategySpec
from .data import ClipSet, SyntheticDigitClips, load_video_clips
from .errors import UserError
from .evaluate import evaluate_strategy
from .io import atomic_write_text, write_json
from .metrics import METRICS, Metric
from .model import build_model
from .preflight import check_run, embedded_data_options
from .probes import probe, probe_clips
from .report import markdown_table, results_summary
from .rundir import check_run_dir, open_run_dir, stored_result
from .train import train_model

__all__ = ["SCHEMA", "load_data", "load_probe_clips", "train_strategy", "run_compare"]

SCHEMA = "adamask.compare/2"
ONE_VIDEO_NOTE = (
    "a single video: the held-out clips are other clips of the same video, so they overlap its "
    "training content and the held-out numbers (and their spread) are optimistic; pass more videos, or "
    "name held-out videos with --held-out"
)


def _embedded_data(cfg: CompareConfig) -> Tuple[ClipSet, ClipSet, Dict[str, Any]]:
    kw = embedded_data_options(cfg)
    train = SyntheticDigitClips(cfg.train_clips, **kw).clipset()
    test = SyntheticDigitClips(cfg.test_clips, offset=cfg.train_clips, **kw).clipset()
    desc = dict(
        source="embedded",
        description="handwritten digits (scikit-learn load_digits) moving over crops of "
        "matplotlib's sample photo grace_hopper.jpg; label = digit class; "
        "ground truth = tokens touched by the digit's strokes",
        ground_truth="foreground tokens (bool)",
    )
    return train, test, desc


def _named_videos(videos: Sequence[str], names: Sequence[str]) -> Set[str]:
    """The videos that ``--held-out NAME...`` names (each NAME: a file name, a stem or a path)."""
    chosen: Set[str] = set()
    for name in names:
        hits = {
            v
            for v in videos
            if name in (v, Path(v).name, Path(v).stem) or (Path(name).exists() and os.path.samefile(name, v))
        }
        if not hits:
            raise UserError(f"--held-out {name!r} names none of the videos ({', '.join(Path(v).name for v in videos)})")
        chosen |= hits
    if len(chosen) == len(videos):
        raise UserError(
            f"--held-out {' '.join(names)} holds out every video ({len(videos)}); leave at least one for training"
        )
    return chosen


def _video_data(cfg: CompareConfig, log: Callable[[str], None]) -> Tuple[ClipSet, ClipSet, Dict[str, Any]]:
    """The user's videos: those named by ``held_out``, else every 4th video (the last of two or three) held out;
    with a single video, every 4th clip (which overlaps the training clips: warned and noted)."""
    clips, errors = load_video_clips(
        cfg.videos,
        num_frames=cfg.num_frames,
        stride=cfg.stride,
        img_size=cfg.img_size,
        tubelet=tuple(cfg.tubelet),
        clips_per_video=cfg.clips_per_video,
        log=log,
    )
    videos = sorted({n.rsplit("#", 1)[0] for n in clips.names})
    held = {v for i, v in enumerate(videos) if i % 4 == 3} if len(videos) >= 2 else set()
    if cfg.held_out:
        held = _named_videos(videos, cfg.held_out)
    elif not held and len(videos) >= 2:
        held = {videos[-1]}
    note = None
    if held:
        te = [i for i, n in enumerate(clips.names) if n.rsplit("#", 1)[0] in held]
    else:  # a single video: hold out every 4th clip
        te = [i for i in range(len(clips)) if i % 4 == 3] or [len(clips) - 1]
        note = ONE_VIDEO_NOTE
        log(f"warning: {note}")
    tr = [i for i in range(len(clips)) if i not in set(te)] or te
    desc = dict(
        source="videos",
        files=videos,
        skipped_files=errors,
        classes=clips.class_names,
        description=f"{len(videos)} video files, {cfg.clips_per_video} clips each, "
        f"{cfg.num_frames} frames at stride {cfg.stride}",
        ground_truth="motion energy (mean absolute frame difference per token)",
        held_out=sorted(held),
    )
    if note:
        desc["note"] = note
    return clips.subset(tr), clips.subset(te), desc


def load_data(cfg: CompareConfig, log: Callable[[str], None] = print) -> Tuple[ClipSet, ClipSet, Dict[str, Any]]:
    """(train, test, description) for the embedded data or the user's videos."""
    train, test, desc = _video_data(cfg, log) if cfg.videos else _embedded_data(cfg)
    fg = torch.cat([train.foreground, test.foreground])
    desc.update(
        train_clips=len(train),
        test_clips=len(test),
        foreground_share=float((fg > 0).float().mean()) if desc["source"] == "embedded" else None,
    )
    return train, test, desc


def load_probe_clips(cfg: CompareConfig, train: ClipSet, test: ClipSet) -> Tuple[ClipSet, ClipSet, Dict[str, Any]]:
    """The probes' (train, test) clips and their description: `adamask.compare.probes.probe_clips`."""
    return probe_clips(cfg, train, test, {} if cfg.videos else embedded_data_options(cfg))


def train_strategy(
    cfg: CompareConfig,
    spec: StrategySpec,
    train: ClipSet,
    test: ClipSet,
    figure_clips: ClipSet,
    run_dir: Path,
    progress: str = "bar",
    log: Callable[[str], None] = print,
    metrics: Sequence[Metric] = METRICS,
    *,
    replicate: int = 0,
    probe_sets: Optional[Tuple[ClipSet, ClipSet]] = None,
) -> Dict[str, Any]:
    """Pretrain, checkpoint and evaluate one strategy with the seed of ``cfg`` (the run of seed ``replicate``:
    `CompareConfig.for_seed`); returns its result dict (also written to strategies/<stem>.json, ``stem`` =
    `StrategySpec.stem`). The probes are fitted and scored on ``probe_sets`` (default: ``train``, ``test``). A
    strategy whose loss (or learned strategy) turned non-finite stops there and is not evaluated: its result
    holds ``diverged_at_step`` (the 1-based training step), ``diverged_reason`` and no measurements."""
    stem = spec.stem(replicate)
    ckpt_path = run_dir / "checkpoints" / f"{stem}.pt"
    trained = train_model(cfg, spec, train, test, ckpt_path, progress, log, name=stem)
    result = dict(
        name=spec.name,
        mask_ratio=spec.mask_ratio,
        label=spec.label,
        seed=cfg.seed,
        replicate=replicate,
        steps=cfg.steps,
        train_seconds=trained.train_seconds,
        timing=trained.timing(),
        memory=trained.memory,
        history=trained.history,
        checkpoint=str(ckpt_path.relative_to(run_dir)),
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
        result.update(evaluate_strategy(trained.model, spec, cfg, train, test, figure_clips, metrics, probe_sets))
    write_json(run_dir / "strategies" / f"{stem}.json", result)
    return result


def _strategy_entry(spec: StrategySpec, runs: List[Dict[str, Any]], seeds: List[int]) -> Dict[str, Any]:
    """A strategy's entry in results.json: its name, ratio and label, the seeds and each seed's result."""
    return dict(name=spec.name, mask_ratio=spec.mask_ratio, label=spec.label, seeds=seeds, runs=runs)


def _write_results(
    run_dir: Path,
    cfg: CompareConfig,
    results: Dict[str, Dict[str, Any]],
    untrained: Dict[str, Any],
    data_desc: Dict[str, Any],
    fig_paths: List[str],
    command: Optional[str],
    metrics: Sequence[Metric],
    t_start: float,
) -> Dict[str, Any]:
    summary = results_summary(results, metrics, untrained, cfg.common_ratio, cfg.pixel_loss)
    out = dict(
        schema=SCHEMA,
        command=command,
        config=asdict(cfg),
        data=data_desc,
        environment=dict(
            torch=torch.__version__,
            python=platform.python_version(),
            device=str(torch.device(cfg.device)),
            threads=torch.get_num_threads(),
        ),
        strategies=results,
        untrained_probe=untrained,
        summary=summary,
        figures=fig_paths,
        runtime_s=time.perf_counter() - t_start,
    )
    write_json(run_dir / "results.json", out)
    head = f"Command: `{command}`\n\n" if command else ""
    note = f"\nNote on the data: {data_desc['note']}\n" if data_desc.get("note") else ""
    atomic_write_text(
        run_dir / "results.md",
        head + markdown_table(results, untrained, cfg.common_ratio, cfg.pixel_loss, metrics, summary) + note,
    )
    return out


def _run_strategies(
    cfg: CompareConfig,
    run_dir: Path,
    data: Tuple[ClipSet, ClipSet, ClipSet],
    probe_sets: Tuple[ClipSet, ClipSet],
    progress: str,
    log: Callable[[str], None],
    metrics: Sequence[Metric],
) -> Dict[str, Dict[str, Any]]:
    """Every strategy's run of every seed, loaded where an earlier run finished it, else trained (or resumed)
    and evaluated: {label: its results.json entry}."""
    train, test, fig_clips = data
    seeds = [cfg.seed + k for k in range(cfg.seeds)]
    results: Dict[str, Dict[str, Any]] = {}
    for spec in cfg.specs():
        runs = []
        for k in range(cfg.seeds):
            stored = stored_result(run_dir, spec, k)
            if stored is not None:
                log(f"{spec.stem(k)}: already done, loaded {run_dir / 'strategies' / f'{spec.stem(k)}.json'}")
                runs.append(stored)
                continue
            runs.append(
                train_strategy(
                    cfg.for_seed(k),
                    spec,
                    train,
                    test,
                    fig_clips,
                    run_dir,
                    progress,
                    log,
                    metrics,
                    replicate=k,
                    probe_sets=probe_sets,
                )
            )
        results[spec.label] = _strategy_entry(spec, runs, seeds)
    return results


def _untrained_probes(
    cfg: CompareConfig, probe_sets: Tuple[ClipSet, ClipSet], probe_desc: Dict[str, Any], device: torch.device
) -> Dict[str, Any]:
    """The probes of the encoder as every strategy's training starts, once per seed (the strategy does not
    change it; the common ratio is one that was checked on this grid)."""
    runs = []
    for k in range(cfg.seeds):
        seed = cfg.seed + k
        encoder = build_model(cfg.model_config(), StrategySpec("random", cfg.common_ratio), seed=seed).to(device)
        runs.append(probe(encoder, *probe_sets, device, cfg.knn_k, seed))
    return dict(probe_desc, seeds=[cfg.seed + k for k in range(cfg.seeds)], runs=runs)


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
    strategy; the clips are those of ``cfg.seed``); a finished (strategy, seed) is loaded, not run again.
    Everything that can be wrong with the input (settings, device, extras, strategies and ratios on the token
    grid, the run folder, the videos) is checked before the run folder is written: a `UserError` (a ValueError)
    naming it. progress: "bar" (tqdm, where stderr is a terminal), "lines" or "none". metrics: the metric
    table of the summary and the table.
    """
    t_start = time.perf_counter()
    device = check_run(cfg, figures)
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _run(cfg, device, overwrite, progress, figures, command, log, metrics, t_start)
    finally:
        torch.set_num_threads(threads)


def _run(
    cfg: CompareConfig,
    device: torch.device,
    overwrite: bool,
    progress: str,
    figures: bool,
    command: Optional[str],
    log: Callable[[str], None],
    metrics: Sequence[Metric],
    t_start: float,
) -> Dict[str, Any]:
    """`run_compare` after its checks, with its threads set."""
    check_run_dir(cfg, overwrite)
    train, test, data_desc = load_data(cfg, log)
    ptrain, ptest, probe_desc = load_probe_clips(cfg, train, test)
    data_desc["probe"] = probe_desc
    run_dir = open_run_dir(cfg, overwrite, log)
    log(
        f"data: {data_desc['source']}, {len(train)} training and {len(test)} held-out clips of "
        f"{tuple(train.videos.shape[1:])}; {cfg.seeds} seed(s) per strategy"
    )
    fig_clips = test.subset(range(min(cfg.figure_clips, len(test))))
    results = _run_strategies(cfg, run_dir, (train, test, fig_clips), (ptrain, ptest), progress, log, metrics)
    untrained = _untrained_probes(cfg, (ptrain, ptest), probe_desc, device)
    fig_paths: List[str] = []
    if figures:
        from .figures import write_run_figures

        fig_paths = [str(p.relative_to(run_dir)) for p in write_run_figures(run_dir, results, fig_clips, cfg)]
    return _write_results(run_dir, cfg, results, untrained, data_desc, fig_paths, command, metrics, t_start)
