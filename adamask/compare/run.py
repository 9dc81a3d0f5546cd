"""A comparison run: load the clips, train and evaluate each strategy (resuming what a previous run left),
probe the untrained encoder, draw the figures and write results.json and results.md."""
from __future__ import annotations

import json
import platform
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from .config import CompareConfig, StrategySpec
from .data import ClipSet, SyntheticDigitClips, load_video_clips
from .evaluate import evaluate_strategy, probe
from .io import atomic_write_text, write_json
from .metrics import METRICS, Metric
from .model import build_model
from .report import markdown_table, results_summary
from .train import train_model

__all__ = ["SCHEMA", "load_data", "train_strategy", "run_compare"]

SCHEMA = "adamask.compare/1"


def _embedded_data(cfg: CompareConfig) -> Tuple[ClipSet, ClipSet, Dict[str, Any]]:
    sprite = cfg.sprite_size or max(4, cfg.img_size // 4)
    kw = dict(num_frames=cfg.num_frames, img_size=cfg.img_size, tubelet=tuple(cfg.tubelet), sprite_size=sprite,
              seed=cfg.seed, background_contrast=cfg.background_contrast)
    train = SyntheticDigitClips(cfg.train_clips, **kw).clipset()
    test = SyntheticDigitClips(cfg.test_clips, offset=cfg.train_clips, **kw).clipset()
    desc = dict(source="embedded",
                description="handwritten digits (scikit-learn load_digits) moving over crops of "
                            "matplotlib's sample photo grace_hopper.jpg; label = digit class; "
                            "ground truth = tokens touched by the digit's strokes",
                ground_truth="foreground tokens (bool)")
    return train, test, desc


def _video_data(cfg: CompareConfig, log: Callable[[str], None]) -> Tuple[ClipSet, ClipSet, Dict[str, Any]]:
    """The user's videos, every 4th video held out (the last of two or three; every 4th clip of a single one)."""
    clips, errors = load_video_clips(cfg.videos, num_frames=cfg.num_frames, stride=cfg.stride,
                                     img_size=cfg.img_size, tubelet=tuple(cfg.tubelet),
                                     clips_per_video=cfg.clips_per_video, log=log)
    videos = sorted({n.rsplit("#", 1)[0] for n in clips.names})
    held = {v for i, v in enumerate(videos) if i % 4 == 3} if len(videos) >= 2 else set()
    if not held and len(videos) >= 2:
        held = {videos[-1]}
    if held:
        te = [i for i, n in enumerate(clips.names) if n.rsplit("#", 1)[0] in held]
    else:  # a single video: hold out every 4th clip
        te = [i for i in range(len(clips)) if i % 4 == 3] or [len(clips) - 1]
    tr = [i for i in range(len(clips)) if i not in set(te)] or te
    desc = dict(source="videos", files=videos, skipped_files=errors, classes=clips.class_names,
                description=f"{len(videos)} video files, {cfg.clips_per_video} clips each, "
                            f"{cfg.num_frames} frames at stride {cfg.stride}",
                ground_truth="motion energy (mean absolute frame difference per token)")
    return clips.subset(tr), clips.subset(te), desc


def load_data(cfg: CompareConfig, log: Callable[[str], None] = print) -> Tuple[ClipSet, ClipSet, Dict[str, Any]]:
    """(train, test, description) for the embedded data or the user's videos."""
    train, test, desc = _video_data(cfg, log) if cfg.videos else _embedded_data(cfg)
    fg = torch.cat([train.foreground, test.foreground])
    desc.update(train_clips=len(train), test_clips=len(test),
                foreground_share=float((fg > 0).float().mean()) if desc["source"] == "embedded" else None)
    return train, test, desc


def train_strategy(cfg: CompareConfig, spec: StrategySpec, train: ClipSet, test: ClipSet, figure_clips: ClipSet,
                   run_dir: Path, progress: str = "bar", log: Callable[[str], None] = print,
                   metrics: Sequence[Metric] = METRICS) -> Dict[str, Any]:
    """Pretrain, checkpoint and evaluate one strategy; returns its result dict (also written to
    strategies/<label>.json)."""
    ckpt_path = run_dir / "checkpoints" / f"{spec.label}.pt"
    trained = train_model(cfg, spec, train, test, ckpt_path, progress, log)
    result = dict(name=spec.name, mask_ratio=spec.mask_ratio, label=spec.label, steps=cfg.steps,
                  train_seconds=trained.train_seconds, timing=trained.timing(), memory=trained.memory,
                  history=trained.history, checkpoint=str(ckpt_path.relative_to(run_dir)))
    result.update(evaluate_strategy(trained.model, spec, cfg, train, test, figure_clips, metrics))
    write_json(run_dir / "strategies" / f"{spec.label}.json", result)
    return result


def _open_run_dir(cfg: CompareConfig, overwrite: bool) -> Path:
    """The run folder, emptied if ``overwrite``; refuses a folder holding a run of another configuration."""
    run_dir = Path(cfg.out)
    cfg_path = run_dir / "config.json"
    if run_dir.exists() and overwrite:
        for sub in ("strategies", "checkpoints", "figures"):
            shutil.rmtree(run_dir / sub, ignore_errors=True)
        for f in ("config.json", "results.json", "results.md"):
            (run_dir / f).unlink(missing_ok=True)
    if cfg_path.exists():
        old = json.loads(cfg_path.read_text())
        if old.get("identity") != cfg.identity():
            raise ValueError(f"run folder {str(run_dir)!r} holds a run with a different configuration; "
                             f"pass --overwrite or choose another --out")
    write_json(cfg_path, dict(config=asdict(cfg), identity=cfg.identity()))
    return run_dir


def run_compare(cfg: CompareConfig, *, overwrite: bool = False, progress: str = "bar", figures: bool = True,
                command: Optional[str] = None, log: Callable[[str], None] = print,
                metrics: Sequence[Metric] = METRICS) -> Dict[str, Any]:
    """Run (or resume) a comparison into ``cfg.out``; returns the results dict also written to results.json.

    progress: "bar" (tqdm), "lines" or "none". metrics: the metric table of the summary and the table.
    """
    t_start = time.perf_counter()
    cfg.validate()
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but torch.cuda.is_available() is False")
    specs = cfg.specs()
    run_dir = _open_run_dir(cfg, overwrite)
    train, test, data_desc = load_data(cfg, log)
    log(f"data: {data_desc['source']}, {len(train)} training and {len(test)} held-out clips of "
        f"{tuple(train.videos.shape[1:])}")
    fig_clips = test.subset(range(min(cfg.figure_clips, len(test))))

    results: Dict[str, Dict[str, Any]] = {}
    for spec in specs:
        done, ck = run_dir / "strategies" / f"{spec.label}.json", run_dir / "checkpoints" / f"{spec.label}.pt"
        if done.exists() and ck.exists():
            results[spec.label] = json.loads(done.read_text())
            log(f"{spec.label}: already done, loaded {done}")
            continue
        results[spec.label] = train_strategy(cfg, spec, train, test, fig_clips, run_dir, progress, log, metrics)

    torch.manual_seed(cfg.seed)
    untrained = probe(build_model(cfg.model_config(), StrategySpec("random", 0.9), seed=cfg.seed).to(device),
                      train, test, device, cfg.knn_k, cfg.seed)
    fig_paths: List[str] = []
    if figures:
        from .figures import write_run_figures
        fig_paths = [str(p.relative_to(run_dir)) for p in write_run_figures(run_dir, results, fig_clips, cfg)]
    out = dict(schema=SCHEMA, command=command, config=asdict(cfg), data=data_desc,
               environment=dict(torch=torch.__version__, python=platform.python_version(), device=str(device),
                                threads=torch.get_num_threads()),
               strategies=results, untrained_probe=untrained, summary=results_summary(results, metrics),
               figures=fig_paths, runtime_s=time.perf_counter() - t_start)
    write_json(run_dir / "results.json", out)
    head = f"Command: `{command}`\n\n" if command else ""
    atomic_write_text(run_dir / "results.md", head + markdown_table(results, untrained, cfg.common_ratio,
                                                                    cfg.pixel_loss, metrics))
    return out
