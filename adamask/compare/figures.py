"""Figures for `adamask compare` / `adamask visualize` (matplotlib, Agg backend; PNG written atomically).

- masks figure (like AdaMAE's Fig. 1/4): rows of frames, the ground-truth foreground, each strategy's
  probability map as a heat map and each strategy's mask (visible patches shown, masked patches dimmed), one
  column per time slice;
- errors figure (like AdaMAE's Fig. 3): frames, then per strategy with probabilities its per-token
  reconstruction error under its own masks (visible tokens dimmed) beside its probability map;
- learning curves, foreground allocation over training, allocation per strategy (`adamask.compare.plots`);
- GIF / MP4 of a clip with its probability map and sampled mask (`adamask.compare.animation`).

Panels are sized to the clip's resolution (at least 2 screen pixels per pixel); a clip centre-cropped from a
video with another aspect ratio is shown inside its full frame, the crop outlined and the rest dimmed.
Images are (3, T, H, W) float in [0, 1]; per-token values are (N,) over the grid (T', H', W') in (t, h, w)
order; masks are (N,) bool with True = masked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .animation import write_animation
from .config import CompareConfig
from .data import ClipSet
from .drawing import (  # noqa: F401 (re-exported)
    CELL_IN,
    DIM,
    DPI,
    LABEL_IN,
    PLOT_DPI,
    TITLE_IN,
    clip_panels,
    grid_size,
    in_context,
    panels_figure,
)
from .plots import (  # noqa: F401 (re-exported)
    ALLOCATION_SIZE,
    CURVES_SIZE,
    PRESET_CURVES_SIZE,
    SUMMARY_SIZE,
    allocation_curves_figure,
    learning_curves_figure,
    preset_curves_figure,
    summary_figure,
)
from .verdicts import runs_of

__all__ = [
    "CELL_IN",
    "DPI",
    "masks_figure",
    "masks_figure_size",
    "learning_curves_figure",
    "summary_figure",
    "write_run_figures",
    "clip_panels",
    "write_animation",
]

Context = Tuple[np.ndarray, Tuple[int, int]]  # full frames (3, T, H, W) and the crop's (top, left)


def masks_figure_size(num_slices: int, num_rows: int, image_hw: Optional[Tuple[int, int]] = None) -> Tuple[int, int]:
    """Pixel (width, height) of `masks_figure` with ``num_slices`` columns and ``num_rows`` image rows, for
    images of ``image_hw`` (H, W) pixels (None: small images, cells CELL_IN high)."""
    return grid_size(num_slices, num_rows, image_hw)


def masks_figure(
    video: np.ndarray,
    grid: Sequence[int],
    tubelet: Sequence[int],
    rows: Sequence[Tuple[str, np.ndarray]],
    path: os.PathLike,
    probs: Optional[np.ndarray] = None,
    title: str = "",
    prob_label: str = "adaptive: P(visible)",
    foreground: Optional[np.ndarray] = None,
    maps: Sequence[Tuple[str, str, np.ndarray]] = (),
    context: Optional[Context] = None,
) -> Path:
    """One clip (3, T, H, W) in [0, 1]: a row of frames (one per time slice), the ground-truth ``foreground``
    (N,) bool if given (other tokens dimmed), the probability map ``probs`` (N,) as a heat map if given, a row
    per ``maps`` entry (label, "probs" or "errors", values (N,)), then one row per (label, mask (N,) bool
    True = masked) with masked patches dimmed. ``context``: the full frames the clip was centre-cropped from
    and the crop's (top, left), shown around each panel. Size: `masks_figure_size(T', rows, image size)`."""
    panels = [("frames", clip_panels(video, grid, tubelet)["frames"])]
    if foreground is not None:
        fg = np.asarray(foreground, dtype=bool)
        panels.append(("foreground\n(ground truth)", clip_panels(video, grid, tubelet, mask=~fg)["mask"]))
    if probs is not None:
        panels.append((prob_label, clip_panels(video, grid, tubelet, probs=probs)["probs"]))
    for label, kind, values in maps:
        panels.append((label, clip_panels(video, grid, tubelet, **{kind: values})[kind]))
    for label, mask in rows:
        vis = int((~np.asarray(mask, dtype=bool)).sum())
        panels.append((f"{label}\n{vis} visible", clip_panels(video, grid, tubelet, mask=mask)["mask"]))
    if context is not None:
        frames = np.clip(np.asarray(context[0], np.float32)[:, :: tubelet[0]].transpose(1, 2, 3, 0), 0.0, 1.0)
        panels = [(label, in_context(imgs, frames, context[1])) for label, imgs in panels]
    return panels_figure(panels, path, title, [f"t={c * tubelet[0]}" for c in range(grid[0])])


def errors_figure(
    video: np.ndarray,
    grid: Sequence[int],
    tubelet: Sequence[int],
    strategies: Sequence[Tuple[str, Optional[np.ndarray], Optional[np.ndarray]]],
    path: os.PathLike,
    title: str = "",
    context: Optional[Context] = None,
) -> Path:
    """Why a sampler goes where it goes (AdaMAE's Fig. 3): the frames, then per (label, errors (N,), probs (N,))
    the reconstruction error of each masked token under the strategy's own masks (None / NaN where visible:
    dimmed) beside its probability map (either may be None). Size: `masks_figure_size(T', rows, image size)`."""
    maps: List[Tuple[str, str, np.ndarray]] = []
    for label, errors, probs in strategies:
        if errors is not None:
            maps.append((f"{label}:\nerror (masked tokens)", "errors", errors))
        if probs is not None:
            maps.append((f"{label}:\nP(visible)", "probs", probs))
    return masks_figure(video, grid, tubelet, [], path, title=title, maps=maps, context=context)


def video_context(cfg: CompareConfig, name: str) -> Optional[Context]:
    """The full frames (3, T, H, W) a video clip named "path#k" was centre-cropped from, and the crop's (top, left),
    read again as `load_video_clips` read it; None for square frames or a file that cannot be read any more."""
    from .videos import VideoReadError, crop_box, read_video

    path, _, k = name.rpartition("#")
    try:
        clips = read_video(
            path,
            num_frames=cfg.num_frames,
            stride=cfg.stride,
            img_size=cfg.img_size,
            num_clips=cfg.clips_per_video,
            crop=False,
        )
        clip = clips[int(k)]
    except (VideoReadError, OSError, ValueError, IndexError):
        return None
    h, w = clip.shape[-2:]
    return None if h == w else (clip.numpy(), crop_box(h, w, cfg.img_size))


def _shown_run(entry: Any) -> Optional[Dict[str, Any]]:
    """The run whose masks the figures show: the first seed that was evaluated."""
    return next((r for r in runs_of(entry) if isinstance(r.get("figure"), dict)), None)


def _values(values: list, i: int) -> np.ndarray:
    """Row ``i`` of per-token values stored in results.json (None: NaN) as (N,) float32."""
    return np.array([np.nan if v is None else v for v in values[i]], dtype=np.float32)


def _maybe(values: Optional[list], i: int) -> Optional[np.ndarray]:
    return None if values is None else _values(values, i)


def _clip_figures(
    run_dir: Path, shown: Dict[str, Dict[str, Any]], clips: ClipSet, i: int, grid: Sequence[int], cfg: CompareConfig
) -> List[Path]:
    """masks_clip<i>.png and errors_clip<i>.png of figure clip ``i``."""
    tub = tuple(cfg.tubelet)
    video = clips.videos[i].numpy()
    fg = clips.foreground[i]
    binary = bool(((fg == 0) | (fg == 1)).all())  # embedded data; videos carry motion-energy weights
    context = video_context(cfg, clips.names[i]) if cfg.videos else None
    with_probs = [(k, r["figure"]) for k, r in shown.items() if r["figure"].get("probs") is not None]
    rows = [(k, np.array(r["figure"]["masks"][i], dtype=bool)) for k, r in shown.items()]
    maps = [(f"{k}:\nP(visible)", "probs", _values(f["probs"], i)) for k, f in with_probs]
    title = f"held-out clip {i} ({clips.names[i]})"
    out = [
        masks_figure(
            video,
            grid,
            tub,
            rows,
            run_dir / "figures" / f"masks_clip{i}.png",
            title=title,
            foreground=fg.numpy() > 0 if binary else None,
            maps=maps,
            context=context,
        )
    ]
    if with_probs:
        strategies = [(k, _maybe(f.get("errors"), i), _maybe(f["probs"], i)) for k, f in with_probs]
        out.append(
            errors_figure(
                video,
                grid,
                tub,
                strategies,
                run_dir / "figures" / f"errors_clip{i}.png",
                title=f"{title}: reconstruction error and P(visible)",
                context=context,
            )
        )
    return out


def write_run_figures(run_dir: os.PathLike, results: Dict[str, Any], clips: ClipSet, cfg: CompareConfig) -> List[Path]:
    """All figures of a comparison run into run_dir/figures: masks_clip<k>.png, errors_clip<k>.png (with a
    strategy that has probabilities), learning_curves.png, allocation_curves.png, summary.png. ``results``:
    {label: results.json entry}; ``clips``: the ClipSet whose masks the strategies stored under each run's
    "figure" (the first evaluated seed is shown). Strategies that diverged in every seed (no measurements)
    appear in the learning curves only."""
    run_dir = Path(run_dir)
    curves = learning_curves_figure(results, run_dir / "figures" / "learning_curves.png")
    shown = {k: r for k, r in ((k, _shown_run(e)) for k, e in results.items()) if r is not None}
    if not shown:
        return [curves]
    grid = tuple(next(iter(shown.values()))["grid"])
    out: List[Path] = []
    for i in range(len(clips)):
        out += _clip_figures(run_dir, shown, clips, i, grid, cfg)
    evaluated = {k: e for k, e in results.items() if k in shown}
    out += [
        curves,
        allocation_curves_figure(evaluated, run_dir / "figures" / "allocation_curves.png"),
        summary_figure(evaluated, run_dir / "figures" / "summary.png"),
    ]
    return out
