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

from .config import CompareConfig
from .data import ClipSet, VideoReadError, crop_box, read_video
from .errors import missing_extra
from .rundir import atomic_path
from .stats import interval, runs_of

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
    "pyplot",
    "save_png",
    "token_map",
    "clip_panels",
    "in_context",
    "cell_inches",
    "grid_size",
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
        vmax = max(float(p.max()), 4.0 / p.size * tubelet[1] * tubelet[2])  # 4x uniform at least
        out["probs"] = np.clip(0.35 * frames + 0.65 * _heat(p, vmax, "inferno"), 0.0, 1.0)
    if mask is not None:
        m = token_map(np.asarray(mask, dtype=np.float32), grid, tubelet)[..., None]
        out["mask"] = frames * np.where(m > 0.5, DIM, 1.0)
    if errors is not None:
        e = token_map(np.asarray([np.nan if x is None else x for x in errors], dtype=np.float32), grid, tubelet)
        known = np.isfinite(e)
        vmax = float(e[known].max()) if known.any() else 1.0
        heat = 0.2 * frames + 0.8 * _heat(np.where(known, e, 0.0), vmax, "viridis")
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


def grid_size(num_columns: int, num_rows: int, image_hw: Optional[Tuple[int, int]] = None) -> Tuple[int, int]:
    """Pixel (width, height) of `panels_figure` with ``num_columns`` x ``num_rows`` cells of images ``image_hw``
    (H, W) pixels (default: square cells CELL_IN high)."""
    cw, ch = cell_inches(*image_hw) if image_hw is not None else (CELL_IN, CELL_IN)
    return int(round((LABEL_IN + num_columns * cw) * DPI)), int(round((TITLE_IN + num_rows * ch) * DPI))


def panels_figure(
    panels: List[Tuple[str, np.ndarray]],
    path: os.PathLike,
    title: str = "",
    column_titles: Sequence[str] = (),
    scaled: bool = True,
) -> Path:
    """A grid of images: one row per (label, panels (C, H, W, 3)), one column per panel; cells sized by
    `cell_inches` of the images (``scaled=False``: square cells CELL_IN high). Size: `grid_size`."""
    plt = pyplot()
    cols = panels[0][1].shape[0]
    hw = panels[0][1].shape[1:3] if scaled else None
    wpx, hpx = grid_size(cols, len(panels), hw)
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
    return save_png(fig, path)


# ---------------------------------------------------------------------------------------------
# clips: masks, errors, the frame around a crop

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


# ---------------------------------------------------------------------------------------------
# curves and bars

CURVES_SIZE = (11.0, 3.4)
SUMMARY_SIZE = (10.0, 3.4)
ALLOCATION_SIZE = (10.0, 3.6)
PRESET_CURVES_SIZE = (14.0, 3.8)


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


def learning_curves_figure(results: Dict[str, Any], path: os.PathLike) -> Path:
    """Training reconstruction loss (smoothed), held-out reconstruction loss (own masks) and the sampling loss
    of learned strategies, per strategy (mean over seeds), against the step. Size: CURVES_SIZE * PLOT_DPI."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=CURVES_SIZE, dpi=PLOT_DPI)
    for i, (label, entry) in enumerate(results.items()):
        color = f"C{i % 10}"
        steps, rec, _, _ = mean_curve(entry, "step", "reconstruction_loss")
        k = max(1, len(steps) // 25)
        axes[0].plot(steps, _smooth(list(rec), k), label=label, color=color)
        es, ev, _, _ = mean_curve(entry, "eval_step", "eval_loss")
        axes[1].plot(es, ev, marker="o", ms=3, label=label, color=color)
        if _learned(entry):
            steps, ls, _, _ = mean_curve(entry, "step", "sampling_loss")
            axes[2].plot(steps, _smooth(list(ls), k), label=label, color=color)
    axes[0].set_title("training reconstruction loss", fontsize=9)
    axes[1].set_title("held-out reconstruction loss (own masks)", fontsize=9)
    axes[2].set_title("sampling loss (learned strategies)", fontsize=9)
    for ax in axes:
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7)
    if not any(_learned(e) for e in results.values()):
        axes[2].text(0.5, 0.5, "no learned strategy", ha="center", va="center", transform=axes[2].transAxes)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.15, top=0.9, wspace=0.25)
    return save_png(fig, path)


def summary_figure(results: Dict[str, Any], path: os.PathLike) -> Path:
    """Foreground allocation per strategy (bars: mean over seeds with the 95% interval; 1.0 = uniform) and the
    mean number of visible tokens per time slice (first seed). Size: SUMMARY_SIZE * PLOT_DPI."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=SUMMARY_SIZE, dpi=PLOT_DPI)
    labels = list(results)
    stats = [
        interval([(r.get("foreground_allocation") or {}).get("mean") for r in runs_of(results[k])]) for k in labels
    ]
    axes[0].bar(
        range(len(labels)),
        [s["mean"] or 0.0 for s in stats],
        yerr=[s["half_width"] or 0.0 for s in stats],
        color="tab:blue",
        capsize=3,
    )
    axes[0].axhline(1.0, color="k", lw=1, ls="--")
    axes[0].set_xticks(range(len(labels)))
    axes[0].set_xticklabels(labels, fontsize=7, rotation=20)
    axes[0].set_title("foreground allocation (1.0 = uniform; 95% interval over seeds)", fontsize=9)
    for k in labels:
        run = next((r for r in runs_of(results[k]) if r.get("mask_statistics")), None)
        if run is not None:
            v = run["mask_statistics"]["visible_per_time_slice"]
            axes[1].plot(range(len(v)), v, marker="o", ms=3, label=k)
    axes[1].set_title("visible tokens per time slice (held-out mean)", fontsize=9)
    axes[1].set_xlabel("time slice", fontsize=8)
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.tick_params(labelsize=7)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.2, top=0.9, wspace=0.2)
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
    axes[0].set_title("foreground allocation of the sampled masks (held-out)", fontsize=9)
    axes[1].set_title("expected allocation of P (one draw)", fontsize=9)
    for ax in axes:
        ax.axhline(1.0, color="k", lw=1, ls="--")
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)


def allocation_curves_figure(results: Dict[str, Any], path: os.PathLike) -> Path:
    """The foreground allocation of each learned strategy's sampled masks and the expected allocation of its
    probabilities at each evaluation point of training (mean over seeds, band: smallest to largest seed);
    strategies with probabilities that do not learn (e.g. motion) dashed, as references; 1.0 = uniform.
    Size: ALLOCATION_SIZE * PLOT_DPI."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=ALLOCATION_SIZE, dpi=PLOT_DPI)
    for i, (label, entry) in enumerate(results.items()):
        if _learned(entry) or _has_probs(entry):
            _allocation_lines(axes[0], axes[1], label, entry, f"C{i % 10}", "-" if _learned(entry) else "--")
    _finish_allocation_axes(axes)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.15, top=0.9, wspace=0.2)
    return save_png(fig, path)


def preset_curves_figure(
    runs: Dict[str, Dict[str, Any]], path: os.PathLike, strategies: Optional[Sequence[str]] = None
) -> Path:
    """Several comparison runs side by side (e.g. one per preset): ``runs`` maps a name to its results.json
    dict; per run and learned strategy (``strategies``: these labels only) the held-out reconstruction loss
    under its own masks (each run's own target), the foreground allocation of its sampled masks and the
    expected allocation of its probabilities against the step, as in `allocation_curves_figure`.
    Size: PRESET_CURVES_SIZE * PLOT_DPI."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=PRESET_CURVES_SIZE, dpi=PLOT_DPI)
    i = 0
    for name, res in runs.items():
        target = "normalised" if res.get("config", {}).get("pixel_loss") == "normalized" else "raw"
        for label, entry in res["strategies"].items():
            if _learned(entry) and (strategies is None or label in strategies):
                color = f"C{i % 10}"
                steps, mean, low, high = mean_curve(entry, "eval_step", "eval_loss")
                if steps:
                    axes[0].plot(steps, mean, color=color, marker="o", ms=3, label=f"{name}: {label} ({target})")
                    axes[0].fill_between(steps, low, high, color=color, alpha=0.15, lw=0)
                _allocation_lines(axes[1], axes[2], f"{name}: {label}", entry, color)
                i += 1
    axes[0].set_title("held-out reconstruction loss (own masks)", fontsize=9)
    axes[0].set_xlabel("step", fontsize=8)
    axes[0].tick_params(labelsize=7)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=7)
    _finish_allocation_axes(axes[1:])
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.14, top=0.9, wspace=0.18)
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
