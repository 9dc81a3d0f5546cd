"""The figures of ``adamask compare`` and ``adamask visualize`` (matplotlib, Agg backend; PNG written
atomically): clips with per-token maps and masks, learning and allocation curves, summary bars, animations.

- masks figure (like AdaMAE's Fig. 1/4): rows of frames, the ground-truth foreground, each strategy's
  probability map as a heat map and each strategy's mask (visible patches shown, masked patches dimmed), one
  column per time slice;
- errors figure (like AdaMAE's Fig. 3): frames, then per strategy with probabilities its per-token
  reconstruction error under its own masks (visible tokens dimmed) beside its probability map;
- learning curves, the foreground allocation over training of the learned (and content-aware) strategies,
  the allocation per strategy with its interval over seeds, and the allocation against the step of several
  run folders side by side (e.g. the presets);
- GIF / MP4 of a clip with its probability map and sampled mask, frame by frame.

Panels are sized to the clip's resolution (at least 2 screen pixels per pixel); a clip centre-cropped from a
video with another aspect ratio is shown inside its full frame, the crop outlined and the rest dimmed.
Images are (3, T, H, W) float in [0, 1]; panels (T', H, W, 3); per-token values are (N,) over the grid
(T', H', W') in (t, h, w) order; masks are (N,) bool with True = masked. ``results``: {label: results.json
entry}, each entry holding ``runs`` (one result dict per seed; a single result dict counts as one seed); curves
show the mean over the seeds that did not diverge.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import ArrayLike

from .config import CompareConfig
from .data import ClipSet, VideoReadError, crop_box, read_video, video_clip_count
from .errors import missing_extra
from .metrics import METRICS, Metric
from .rundir import atomic_path
from .stats import over_seeds, runs_of, untrained_runs

__all__ = [
    "CELL_IN",
    "LABEL_IN",
    "TITLE_IN",
    "DPI",
    "PLOT_DPI",
    "DIM",
    "MIN_SCALE",
    "CURVES_SIZE",
    "SUMMARY_SIZE",
    "ALLOCATION_SIZE",
    "PRESET_CURVES_SIZE",
    "LEGEND_SHARE",
    "pyplot",
    "save_png",
    "token_map",
    "clip_panels",
    "in_context",
    "cell_inches",
    "grid_size",
    "SCALE_IN",
    "PROBS_CMAP",
    "ERRORS_CMAP",
    "probs_vmax",
    "errors_vmax",
    "panels_figure",
    "masks_figure_size",
    "masks_figure",
    "errors_figure",
    "video_context",
    "mean_curve",
    "learning_curves_figure",
    "summary_figure",
    "allocation_curves_figure",
    "preset_curves_figure",
    "write_animation",
    "write_run_figures",
]

# ---------------------------------------------------------------------------------------------
# drawing

CELL_IN = 0.9  # inches of an image cell's height, at least
LABEL_IN = 1.5  # inches for the row labels
SCALE_IN = 0.75  # inches right of the panels for the colour scales of heat-map rows
TITLE_IN = 0.35
DPI = 80
PLOT_DPI = 90
DIM = 0.22  # brightness of masked patches
MIN_SCALE = 2  # screen pixels per image pixel, at least
OUTSIDE = 0.45  # brightness of the frame outside the model's crop


def pyplot() -> Any:
    """matplotlib.pyplot with the Agg backend (a `MissingExtraError` saying how to install it if missing)."""
    try:
        import matplotlib
    except ImportError as e:
        raise missing_extra("matplotlib", "drawing figures") from e

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: os.PathLike, quantize: bool = True) -> Path:
    """Render ``fig`` at its own size (no tight bbox: the pixel size is figsize * dpi) and write a PNG
    atomically; quantized to 256 colours to keep files small."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.canvas.draw()
    img = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    pyplot().close(fig)
    if quantize:
        img = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG", optimize=True)
    return path


def token_map(values: np.ndarray, grid: Sequence[int], tubelet: Sequence[int]) -> np.ndarray:
    """(N,) per-token values -> (T', H, W) pixel map (one map per time slice)."""
    t, h, w = grid
    v = np.asarray(values, dtype=np.float32).reshape(t, h, w)
    return np.repeat(np.repeat(v, tubelet[1], axis=1), tubelet[2], axis=2)


def _heat(values: np.ndarray, vmax: float, cmap: str) -> np.ndarray:
    import matplotlib

    return matplotlib.colormaps[cmap](np.clip(values / max(vmax, 1e-12), 0.0, 1.0))[..., :3]


PROBS_CMAP = "inferno"
ERRORS_CMAP = "viridis"


def probs_vmax(probs: ArrayLike) -> float:
    """The top of the colour scale of a probability map (N,): its largest probability, at least 4x uniform."""
    p = np.asarray(probs, dtype=np.float64)
    return max(float(p.max()), 4.0 / p.size)


def errors_vmax(errors: ArrayLike) -> float:
    """The top of the colour scale of an error map (N,) (None / NaN where visible): its largest error (1.0
    without any)."""
    e = np.asarray([np.nan if x is None else x for x in np.asarray(errors, dtype=object).ravel()], dtype=np.float64)
    return float(np.nanmax(e)) if np.isfinite(e).any() else 1.0


def clip_panels(
    video: np.ndarray,
    grid: Sequence[int],
    tubelet: Sequence[int],
    probs: Optional[np.ndarray] = None,
    mask: Optional[np.ndarray] = None,
    errors: Optional[np.ndarray] = None,
) -> Dict[str, np.ndarray]:
    """Per-time-slice RGB panels (T', H, W, 3) float in [0, 1] of a clip (3, T, H, W):
    "frames" (first frame of each slice), "probs" (heat map over the frame, if given), "mask" (masked patches
    dimmed, if given; mask (N,) bool True = masked) and "errors" (each token's error (N,) as a heat map scaled to
    the clip's largest error; tokens without one, NaN, show the frame dimmed)."""
    v = np.asarray(video, dtype=np.float32)
    frames = np.clip(v[:, :: tubelet[0]].transpose(1, 2, 3, 0), 0.0, 1.0)  # (T', H, W, 3)
    out = dict(frames=frames)
    if probs is not None:
        p = token_map(probs, grid, tubelet)
        out["probs"] = np.clip(0.35 * frames + 0.65 * _heat(p, probs_vmax(probs), PROBS_CMAP), 0.0, 1.0)
    if mask is not None:
        m = token_map(np.asarray(mask, dtype=np.float32), grid, tubelet)[..., None]
        out["mask"] = frames * np.where(m > 0.5, DIM, 1.0)
    if errors is not None:
        e = token_map(np.asarray([np.nan if x is None else x for x in errors], dtype=np.float32), grid, tubelet)
        known = np.isfinite(e)
        heat = 0.2 * frames + 0.8 * _heat(np.where(known, e, 0.0), errors_vmax(errors), ERRORS_CMAP)
        out["errors"] = np.where(known[..., None], heat, DIM * frames)
    return out


def in_context(panels: np.ndarray, context: np.ndarray, box: Tuple[int, int]) -> np.ndarray:
    """Panels (T', S, S, 3) of a centre crop placed in the full frames ``context`` (T', H, W, 3) they were
    cropped from at ``box`` (top, left): the frame outside the crop dimmed, the crop outlined in white."""
    top, left = box
    s0, s1 = panels.shape[1:3]
    out = OUTSIDE * np.asarray(context, dtype=np.float32).copy()
    out[:, top : top + s0, left : left + s1] = panels
    for y in (top, top + s0 - 1):
        out[:, y, left : left + s1] = 1.0
    for x in (left, left + s1 - 1):
        out[:, top : top + s0, x] = 1.0
    return out


def cell_inches(height: int, width: int) -> Tuple[float, float]:
    """(width, height) in inches of an image cell for an image of ``height`` x ``width`` pixels: at least
    CELL_IN high and MIN_SCALE screen pixels per image pixel, at the image's aspect ratio."""
    h = max(CELL_IN, MIN_SCALE * height / DPI)
    return h * width / height, h


def grid_size(
    num_columns: int, num_rows: int, image_hw: Optional[Tuple[int, int]] = None, colour_scales: bool = False
) -> Tuple[int, int]:
    """Pixel (width, height) of `panels_figure` with ``num_columns`` x ``num_rows`` cells of images ``image_hw``
    (H, W) pixels (default: square cells CELL_IN high), and a strip of SCALE_IN for colour scales if
    ``colour_scales``."""
    cw, ch = cell_inches(*image_hw) if image_hw is not None else (CELL_IN, CELL_IN)
    width = LABEL_IN + num_columns * cw + (SCALE_IN if colour_scales else 0.0)
    return int(round(width * DPI)), int(round((TITLE_IN + num_rows * ch) * DPI))


Scale = Tuple[str, float, str]  # a heat-map row's colour scale: colormap, top value, its label


def _colour_scale(fig: Any, rect: Tuple[float, float, float, float], scale: Scale) -> None:
    """A vertical colour bar from 0 to the scale's top value in the figure rectangle ``rect``."""
    import matplotlib

    cmap, vmax, label = scale
    ax = fig.add_axes(rect)
    mappable = matplotlib.cm.ScalarMappable(norm=matplotlib.colors.Normalize(0.0, vmax), cmap=cmap)
    bar = fig.colorbar(mappable, cax=ax)
    bar.ax.tick_params(labelsize=6, length=2, pad=1)
    bar.set_label(label, fontsize=6, labelpad=2)


def panels_figure(
    panels: List[Tuple[str, np.ndarray]],
    path: os.PathLike,
    title: str = "",
    column_titles: Sequence[str] = (),
    scaled: bool = True,
    scales: Sequence[Optional[Scale]] = (),
) -> Path:
    """A grid of images: one row per (label, panels (C, H, W, 3)), one column per panel; cells sized by
    `cell_inches` of the images (``scaled=False``: square cells CELL_IN high); a row with a colour scale in
    ``scales`` (one entry per row, None for none) gets its colour bar right of its panels. Size: `grid_size`."""
    plt = pyplot()
    cols = panels[0][1].shape[0]
    hw = panels[0][1].shape[1:3] if scaled else None
    with_scales = any(sc is not None for sc in scales)
    wpx, hpx = grid_size(cols, len(panels), hw, with_scales)
    cw, ch = cell_inches(*hw) if hw is not None else (CELL_IN, CELL_IN)
    W, H = wpx / DPI, hpx / DPI
    fig = plt.figure(figsize=(W, H), dpi=DPI)
    if title:
        fig.text(0.5, 1 - TITLE_IN * 0.5 / H, title, ha="center", va="center", fontsize=9)
    for r, (label, imgs) in enumerate(panels):
        y = 1 - (TITLE_IN + (r + 1) * ch) / H
        fig.text(0.08 / W, y + ch * 0.5 / H, label, ha="left", va="center", fontsize=8)
        for c in range(cols):
            ax = fig.add_axes((LABEL_IN / W + c * cw / W + 0.02 / W, y + 0.02 / H, (cw - 0.04) / W, (ch - 0.04) / H))
            ax.imshow(imgs[c], interpolation="nearest", aspect="auto")
            ax.set_axis_off()
            if r == 0 and c < len(column_titles):
                ax.set_title(column_titles[c], fontsize=7, pad=1)
        scale = scales[r] if r < len(scales) else None
        if scale is not None:
            left = (LABEL_IN + cols * cw + 0.08) / W
            _colour_scale(fig, (left, y + 0.08 / H, 0.1 / W, (ch - 0.16) / H), scale)
    return save_png(fig, path)


# ---------------------------------------------------------------------------------------------
# clips: masks, errors, the frame around a crop

Context = Tuple[np.ndarray, Tuple[int, int]]  # full frames (3, T, H, W) and the crop's (top, left)


def masks_figure_size(
    num_slices: int, num_rows: int, image_hw: Optional[Tuple[int, int]] = None, heat_maps: bool = False
) -> Tuple[int, int]:
    """Pixel (width, height) of `masks_figure` with ``num_slices`` columns and ``num_rows`` image rows, for
    images of ``image_hw`` (H, W) pixels (None: small images, cells CELL_IN high), with colour scales if it has
    ``heat_maps`` (probability or error maps)."""
    return grid_size(num_slices, num_rows, image_hw, heat_maps)


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
    scales: List[Optional[Scale]] = [None]
    if foreground is not None:
        fg = np.asarray(foreground, dtype=bool)
        panels.append(("foreground\n(ground truth)", clip_panels(video, grid, tubelet, mask=~fg)["mask"]))
        scales.append(None)
    heat = ([(prob_label, "probs", probs)] if probs is not None else []) + list(maps)
    for label, kind, values in heat:
        panels.append((label, clip_panels(video, grid, tubelet, **{kind: values})[kind]))
        scales.append(_heat_scale(kind, values))
    for label, mask in rows:
        vis = int((~np.asarray(mask, dtype=bool)).sum())
        panels.append((f"{label}\n{vis} visible", clip_panels(video, grid, tubelet, mask=mask)["mask"]))
        scales.append(None)
    if context is not None:
        frames = np.clip(np.asarray(context[0], np.float32)[:, :: tubelet[0]].transpose(1, 2, 3, 0), 0.0, 1.0)
        panels = [(label, in_context(imgs, frames, context[1])) for label, imgs in panels]
    return panels_figure(panels, path, title, [f"t={c * tubelet[0]}" for c in range(grid[0])], scales=scales)


def _heat_scale(kind: str, values: Any) -> Scale:
    """The colour scale of a "probs" map (its probabilities x N: 1 = uniform) or an "errors" map (MSE)."""
    if kind == "probs":
        n = len(values)
        return PROBS_CMAP, probs_vmax(values) * n, "P x N\n(1 = uniform)"
    return ERRORS_CMAP, errors_vmax(values), "error (MSE)"


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
    path, _, k = name.rpartition("#")
    try:
        clips = read_video(
            path,
            num_frames=cfg.num_frames,
            stride=cfg.stride,
            img_size=cfg.img_size,
            num_clips=video_clip_count(cfg),
            crop=False,
        )
        clip = clips[int(k)]
    except (VideoReadError, OSError, ValueError, IndexError):
        return None
    h, w = clip.shape[-2:]
    return None if h == w else (clip.numpy(), crop_box(h, w, cfg.img_size))


# ---------------------------------------------------------------------------------------------
# curves and bars

CURVES_SIZE = (14.0, 3.6)
SUMMARY_SIZE = (14.0, 7.4)
ALLOCATION_SIZE = (12.5, 3.8)
PRESET_CURVES_SIZE = (16.0, 4.2)
LEGEND_SHARE = 0.17  # the share of a curves figure's width, on its right, that holds the legend


def _smooth(x: Sequence[Optional[float]], k: int) -> np.ndarray:
    a = np.array([np.nan if v is None else v for v in x], dtype=np.float64)
    if k <= 1 or a.size < k:
        return a
    ok = np.isfinite(a)
    num = np.convolve(np.where(ok, a, 0.0), np.ones(k), "valid")
    den = np.convolve(ok.astype(float), np.ones(k), "valid")
    return np.concatenate([np.full(k - 1, np.nan), num / np.maximum(den, 1)])


def mean_curve(entry: Any, x: str, y: str) -> Tuple[List[float], np.ndarray, np.ndarray, np.ndarray]:
    """(steps, mean, low, high) of history series ``y`` against ``x`` over the runs of ``entry`` that did not
    diverge and have the series (low / high: the smallest and largest seed); empty without any."""
    runs = [r for r in runs_of(entry) if r.get("diverged_at_step") is None and r.get("history", {}).get(y)]
    if not runs:
        runs = [r for r in runs_of(entry) if r.get("history", {}).get(y)][:1]
    if not runs:
        return [], np.array([]), np.array([]), np.array([])
    steps = runs[0]["history"][x]
    n = min(len(r["history"][y]) for r in runs)
    a = np.array([[np.nan if v is None else v for v in r["history"][y][:n]] for r in runs], dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a step where every seed is NaN stays NaN
        return list(steps[:n]), np.nanmean(a, 0), np.nanmin(a, 0), np.nanmax(a, 0)


def _learned(entry: Any) -> bool:
    return any(r.get("learned") for r in runs_of(entry))


def _legend_right(fig: Any, axes: Sequence[Any], share: float = LEGEND_SHARE) -> None:
    """One legend for the figure, in the strip of ``share`` of its width right of the axes (it covers no data):
    every labelled line of ``axes``, each label once."""
    handles: Dict[str, Any] = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    if handles:
        where = dict(loc="center left", bbox_to_anchor=(1 - share + 0.01, 0.5))
        fig.legend(list(handles.values()), list(handles), fontsize=7, frameon=False, **where)


def _label_axes(ax: Any, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)


def learning_curves_figure(results: Dict[str, Any], path: os.PathLike) -> Path:
    """Per strategy (mean over seeds) against the training step: the training reconstruction loss (smoothed, each
    on its own masks), the held-out loss on the same random masks (the comparable one; the held-out loss on its
    own masks where a run has no such series) and the sampling loss of learned strategies; one legend right of
    the panels. Size: CURVES_SIZE * PLOT_DPI."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=CURVES_SIZE, dpi=PLOT_DPI)
    fair = all(mean_curve(e, "eval_step", "eval_loss_random_masks")[0] for e in results.values())
    held_out = "eval_loss_random_masks" if fair else "eval_loss"
    for i, (label, entry) in enumerate(results.items()):
        color = f"C{i % 10}"
        steps, rec, _, _ = mean_curve(entry, "step", "reconstruction_loss")
        k = max(1, len(steps) // 25)
        axes[0].plot(steps, _smooth(list(rec), k), label=label, color=color)
        es, ev, _, _ = mean_curve(entry, "eval_step", held_out)
        axes[1].plot(es, ev, marker="o", ms=3, label=label, color=color)
        if _learned(entry):
            steps, ls, _, _ = mean_curve(entry, "step", "sampling_loss")
            axes[2].plot(steps, _smooth(list(ls), k), label=label, color=color)
    _label_axes(axes[0], "training loss (each on its own masks)", "training step", "reconstruction MSE")
    title = "held-out loss, same random masks (comparable)" if fair else "held-out loss (each on its own masks)"
    _label_axes(axes[1], title, "training step", "reconstruction MSE")
    _label_axes(axes[2], "sampling loss (learned strategies)", "training step", "sampling loss")
    if not any(_learned(e) for e in results.values()):
        axes[2].text(0.5, 0.5, "no learned strategy", ha="center", va="center", transform=axes[2].transAxes)
    _legend_right(fig, axes)
    fig.subplots_adjust(left=0.05, right=1 - LEGEND_SHARE, bottom=0.15, top=0.9, wspace=0.3)
    return save_png(fig, path)


def _in_range(stats: Sequence[Dict[str, Any]], low: float, high: float) -> Tuple[np.ndarray, np.ndarray]:
    """Means and asymmetric error bars (2, K) of intervals (`adamask.compare.stats.interval`), the bars cut at
    the quantity's range [low, high] (an allocation or a loss is never below 0, an accuracy never above 1)."""
    mean = np.array([np.nan if s["mean"] is None else s["mean"] for s in stats], dtype=np.float64)
    lo = np.array([m if s["low"] is None else max(s["low"], low) for m, s in zip(mean, stats, strict=True)])
    hi = np.array([m if s["high"] is None else min(s["high"], high) for m, s in zip(mean, stats, strict=True)])
    return mean, np.stack([np.maximum(mean - lo, 0.0), np.maximum(hi - mean, 0.0)])


def _dots(ax: Any, stats: Sequence[Dict[str, Any]], x: np.ndarray, low: float, high: float, **kw: Any) -> None:
    """Means with their 95% interval (cut at [low, high]) at positions ``x``."""
    mean, err = _in_range(stats, low, high)
    ax.errorbar(x, mean, yerr=err, fmt="o", ms=4, capsize=3, lw=1, **kw)


def _strategy_axis(ax: Any, labels: Sequence[str]) -> None:
    ax.set_xlabel("strategy", fontsize=8)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=7, rotation=25, ha="right")
    ax.set_xlim(-0.6, len(labels) - 0.4)


def _metric(name: str) -> Metric:
    return next(m for m in METRICS if m.name == name)


def _probe_panel(ax: Any, results: Dict[str, Any], untrained: Any) -> None:
    """Each probe that ran: accuracy per strategy (mean and 95% interval over seeds, in [0, 1]), the untrained
    encoder's (dashed) and chance (dotted)."""
    labels = list(results)
    probes = [m for m in METRICS if m.untrained and m.better]
    base = untrained_runs(untrained)
    shown = 0
    for j, m in enumerate(probes):
        stats = [over_seeds(m, runs_of(results[k])) for k in labels]
        if not any(s["n"] for s in stats):
            continue
        x = np.arange(len(labels)) + (j - (len(probes) - 1) / 2) * 0.18
        name = m.describe().removesuffix(" probe")
        _dots(ax, stats, x, 0.0, 1.0, color=f"C{j}", label=name)
        ref = over_seeds(m, base)["mean"] if base else None
        if ref is not None:
            ax.axhline(ref, color=f"C{j}", ls="--", lw=1, label=f"{name}, untrained encoder")
        shown += 1
    chance = next((r["probe"].get("chance") for r in base if isinstance(r["probe"], dict)), None)
    if chance is not None and shown:
        ax.axhline(chance, color="0.4", ls=":", lw=1, label="chance")
    if not shown:
        ax.text(0.5, 0.5, "no probe ran (no labels)", ha="center", va="center", transform=ax.transAxes)
    _label_axes(ax, "probes of each encoder (95% interval over seeds)", "", "held-out accuracy")
    _strategy_axis(ax, labels)
    if shown:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def summary_figure(results: Dict[str, Any], path: os.PathLike, untrained: Any = None) -> Path:
    """Per strategy (mean and 95% interval over seeds, as the table; bars cut at each quantity's range): the
    foreground allocation (1.0 = uniform), the held-out loss on the same random masks (the comparable
    reconstruction), the probes' accuracies with the untrained encoder's (``untrained``: its results.json entry)
    and chance, and the visible tokens per time slice (first seed). Size: SUMMARY_SIZE * PLOT_DPI."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=SUMMARY_SIZE, dpi=PLOT_DPI)
    labels = list(results)
    x = np.arange(len(labels))
    for ax, name, title, ylabel in (
        (axes[0, 0], "foreground_allocation", "foreground allocation (1.0 = uniform)", "allocation"),
        (axes[0, 1], "recon_loss_random_masks", "held-out loss, same random masks", "reconstruction MSE"),
    ):
        stats = [over_seeds(_metric(name), runs_of(results[k])) for k in labels]
        _dots(ax, stats, x, 0.0, np.inf, color="tab:blue")
        _label_axes(ax, f"{title}: 95% interval over seeds", "", ylabel)
        _strategy_axis(ax, labels)
    axes[0, 0].axhline(1.0, color="k", lw=1, ls="--")
    _probe_panel(axes[1, 0], results, untrained)
    for k in labels:
        run = next((r for r in runs_of(results[k]) if r.get("mask_statistics")), None)
        if run is not None:
            v = run["mask_statistics"]["visible_per_time_slice"]
            axes[1, 1].plot(range(len(v)), v, marker="o", ms=3, label=k)
    _label_axes(axes[1, 1], "visible tokens per time slice (held-out mean)", "time slice", "visible tokens")
    axes[1, 1].xaxis.get_major_locator().set_params(integer=True)
    if axes[1, 1].get_legend_handles_labels()[0]:
        axes[1, 1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.subplots_adjust(left=0.05, right=0.87, bottom=0.12, top=0.95, wspace=0.6, hspace=0.55)
    return save_png(fig, path)


def _has_probs(entry: Any) -> bool:
    return any(
        v is not None for r in runs_of(entry) for v in r.get("history", {}).get("eval_probability_allocation", [])
    )


def _allocation_lines(ax: Any, ax_p: Any, label: str, entry: Any, color: str, style: str = "-") -> None:
    steps, mean, low, high = mean_curve(entry, "eval_step", "eval_allocation")
    if steps:
        ax.plot(steps, mean, style, color=color, marker="o", ms=3, label=label)
        ax.fill_between(steps, low, high, color=color, alpha=0.15, lw=0)
    steps, mean, low, high = mean_curve(entry, "eval_step", "eval_probability_allocation")
    if steps and np.isfinite(mean).any():
        ax_p.plot(steps, mean, style, color=color, marker="o", ms=3, label=label)
        ax_p.fill_between(steps, low, high, color=color, alpha=0.15, lw=0)


def _finish_allocation_axes(axes: Sequence[Any]) -> None:
    _label_axes(axes[0], "foreground allocation of the sampled masks (held-out)", "training step", "allocation")
    _label_axes(axes[1], "expected allocation of P (one draw)", "training step", "allocation")
    for ax in axes:
        ax.axhline(1.0, color="k", lw=1, ls="--", label="uniform (1.0)")


def allocation_curves_figure(results: Dict[str, Any], path: os.PathLike) -> Path:
    """The foreground allocation of each learned strategy's sampled masks and the expected allocation of its
    probabilities at each evaluation point of training (mean over seeds, band: smallest to largest seed);
    strategies with probabilities that do not learn (e.g. motion) dashed, as references; 1.0 = uniform; one
    legend right of the panels. Size: ALLOCATION_SIZE * PLOT_DPI."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=ALLOCATION_SIZE, dpi=PLOT_DPI)
    for i, (label, entry) in enumerate(results.items()):
        if _learned(entry) or _has_probs(entry):
            _allocation_lines(axes[0], axes[1], label, entry, f"C{i % 10}", "-" if _learned(entry) else "--")
    _finish_allocation_axes(axes)
    _legend_right(fig, axes)
    fig.subplots_adjust(left=0.06, right=1 - LEGEND_SHARE, bottom=0.15, top=0.9, wspace=0.25)
    return save_png(fig, path)


def preset_curves_figure(
    runs: Dict[str, Dict[str, Any]], path: os.PathLike, strategies: Optional[Sequence[str]] = None
) -> Path:
    """Several comparison runs side by side (e.g. one per preset): ``runs`` maps a name to its results.json
    dict; per run and learned strategy (``strategies``: these labels only) the held-out reconstruction loss
    under its own masks (each run's own target), the foreground allocation of its sampled masks and the
    expected allocation of its probabilities against the step, as in `allocation_curves_figure`; one legend
    right of the panels. Size: PRESET_CURVES_SIZE * PLOT_DPI."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=PRESET_CURVES_SIZE, dpi=PLOT_DPI)
    i = 0
    for name, res in runs.items():
        target = "normalised" if res.get("config", {}).get("pixel_loss") == "normalized" else "raw"
        for label, entry in res["strategies"].items():
            if _learned(entry) and (strategies is None or label in strategies):
                color, shown = f"C{i % 10}", f"{name}: {label} ({target} pixels)"
                steps, mean, low, high = mean_curve(entry, "eval_step", "eval_loss")
                if steps:
                    axes[0].plot(steps, mean, color=color, marker="o", ms=3, label=shown)
                    axes[0].fill_between(steps, low, high, color=color, alpha=0.15, lw=0)
                _allocation_lines(axes[1], axes[2], shown, entry, color)
                i += 1
    _label_axes(axes[0], "held-out loss (own masks, each run's target)", "training step", "reconstruction MSE")
    _finish_allocation_axes(axes[1:])
    _legend_right(fig, axes, share=0.22)
    fig.subplots_adjust(left=0.04, right=0.78, bottom=0.14, top=0.9, wspace=0.25)
    return save_png(fig, path)


# ---------------------------------------------------------------------------------------------
# animation


def write_animation(
    video: np.ndarray,
    grid: Sequence[int],
    tubelet: Sequence[int],
    path: os.PathLike,
    probs: Optional[np.ndarray] = None,
    mask: Optional[np.ndarray] = None,
    scale: int = 4,
    fps: int = 4,
) -> Path:
    """Animate a clip (3, T, H, W) frame by frame as [frame | probability heat map | mask], upscaled ``scale``x.
    The format follows the suffix: .gif (Pillow) or .mp4 (PyAV)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"animation path must end in .gif or .mp4, got {str(path)!r}")
    v = np.asarray(video, dtype=np.float32)
    t_all = v.shape[1]
    frames = []
    for f in range(t_all):
        sl = f // tubelet[0]
        pan = clip_panels(
            v[:, sl * tubelet[0] : (sl + 1) * tubelet[0]],
            (1, *grid[1:]),
            tubelet,
            probs=None if probs is None else np.asarray(probs).reshape(grid[0], -1)[sl],
            mask=None if mask is None else np.asarray(mask).reshape(grid[0], -1)[sl],
        )
        raw = np.clip(v[:, f].transpose(1, 2, 0), 0, 1)
        parts = [raw] + [pan[k][0] for k in ("probs", "mask") if k in pan]
        img = np.concatenate(parts, axis=1)
        img = np.repeat(np.repeat(img, scale, 0), scale, 1)
        frames.append((img * 255).round().astype(np.uint8))
    with atomic_path(path) as tmp:
        _write_frames(frames, tmp, suffix, fps)
    return path


def _write_frames(frames: List[np.ndarray], tmp: Path, suffix: str, fps: int) -> None:
    """(H, W, 3) uint8 frames -> an animation at ``tmp`` in the format of ``suffix`` (.gif or .mp4)."""
    if suffix == ".gif":
        from PIL import Image

        ims = [Image.fromarray(f) for f in frames]
        ims[0].save(tmp, format="GIF", save_all=True, append_images=ims[1:], duration=int(1000 / fps), loop=0)
    else:
        try:
            import av
        except ImportError as e:
            raise missing_extra("av (PyAV)", "writing MP4 files") from e

        h, w = frames[0].shape[:2]
        with av.open(str(tmp), mode="w", format="mp4") as out:
            stream = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
            stream.width, stream.height, stream.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
            for f in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: h - h % 2, : w - w % 2]), format="rgb24")
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)


# ---------------------------------------------------------------------------------------------
# a run's figures


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


def write_run_figures(
    run_dir: os.PathLike, results: Dict[str, Any], clips: ClipSet, cfg: CompareConfig, untrained: Any = None
) -> List[Path]:
    """All figures of a comparison run into run_dir/figures: masks_clip<k>.png, errors_clip<k>.png (with a
    strategy that has probabilities), learning_curves.png, allocation_curves.png, summary.png. ``results``:
    {label: results.json entry}; ``clips``: the ClipSet whose masks the strategies stored under each run's
    "figure" (the first evaluated seed is shown); ``untrained``: the untrained encoder's probes (results.json's
    "untrained_probe"), drawn beside the strategies' in the summary. Strategies that diverged in every seed (no
    measurements) appear in the learning curves only."""
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
        summary_figure(evaluated, run_dir / "figures" / "summary.png", untrained),
    ]
    return out
