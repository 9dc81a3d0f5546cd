"""Figures for `adamask compare` / `adamask visualize` (matplotlib, Agg backend; PNG written atomically).

- masks figure (like AdaMAE's Fig. 1/4): rows of frames, the adaptive sampler's probability map as a heat map,
  and each strategy's mask (visible patches shown, masked patches dimmed), one column per time slice;
- learning curves per strategy; foreground allocation and visible tokens per time slice;
- GIF / MP4 of a clip with its probability map and sampled mask.

Images are (3, T, H, W) float in [0, 1]; per-token values are (N,) over the grid (T', H', W') in (t, h, w)
order; masks are (N,) bool with True = masked.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .config import CompareConfig
from .data import ClipSet
from .errors import missing_extra
from .io import atomic_path

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

CELL_IN = 0.9  # inches per image cell
LABEL_IN = 1.5  # inches for the row labels
TITLE_IN = 0.35
DPI = 80
CURVES_SIZE = (11.0, 3.4)
SUMMARY_SIZE = (10.0, 3.4)
PLOT_DPI = 90
DIM = 0.22  # brightness of masked patches


def _plt():
    try:
        import matplotlib
    except ImportError as e:
        raise missing_extra("matplotlib", "drawing figures") from e

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save_png(fig, path: os.PathLike, quantize: bool = True) -> Path:
    """Render ``fig`` at its own size (no tight bbox: the pixel size is figsize * dpi) and write a PNG
    atomically; quantized to 256 colours to keep files small."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.canvas.draw()
    img = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    _plt().close(fig)
    if quantize:
        img = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG", optimize=True)
    return path


def _token_map(values: np.ndarray, grid: Sequence[int], tubelet: Sequence[int]) -> np.ndarray:
    """(N,) per-token values -> (T', H, W) pixel map (one map per time slice)."""
    t, h, w = grid
    v = np.asarray(values, dtype=np.float32).reshape(t, h, w)
    return np.repeat(np.repeat(v, tubelet[1], axis=1), tubelet[2], axis=2)


def clip_panels(video: np.ndarray, grid: Sequence[int], tubelet: Sequence[int], probs: Optional[np.ndarray] = None,
                mask: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """Per-time-slice RGB panels (T', H, W, 3) float in [0, 1] of a clip (3, T, H, W):
    "frames" (first frame of each slice), "probs" (heat map over the frame, if given) and "mask"
    (masked patches dimmed, if given; mask (N,) bool True = masked)."""
    import matplotlib

    v = np.asarray(video, dtype=np.float32)
    frames = np.clip(v[:, :: tubelet[0]].transpose(1, 2, 3, 0), 0.0, 1.0)  # (T', H, W, 3)
    out = dict(frames=frames)
    if probs is not None:
        p = _token_map(probs, grid, tubelet)
        vmax = max(float(p.max()), 4.0 / p.size * tubelet[1] * tubelet[2])  # 4x uniform at least
        heat = matplotlib.colormaps["inferno"](np.clip(p / vmax, 0.0, 1.0))[..., :3]
        out["probs"] = np.clip(0.35 * frames + 0.65 * heat, 0.0, 1.0)
    if mask is not None:
        m = _token_map(np.asarray(mask, dtype=np.float32), grid, tubelet)[..., None]
        out["mask"] = frames * np.where(m > 0.5, DIM, 1.0)
    return out


def masks_figure_size(num_slices: int, num_rows: int) -> Tuple[int, int]:
    """Pixel (width, height) of `masks_figure` with ``num_slices`` columns and ``num_rows`` image rows."""
    return (int(round((LABEL_IN + num_slices * CELL_IN) * DPI)),
            int(round((TITLE_IN + num_rows * CELL_IN) * DPI)))


def masks_figure(video: np.ndarray, grid: Sequence[int], tubelet: Sequence[int], rows: Sequence[Tuple[str, np.ndarray]],
                 path: os.PathLike, probs: Optional[np.ndarray] = None, title: str = "",
                 prob_label: str = "adaptive: P(visible)", foreground: Optional[np.ndarray] = None) -> Path:
    """One clip (3, T, H, W) in [0, 1]: a row of frames (one per time slice), the ground-truth ``foreground``
    (N,) bool if given (other tokens dimmed), the probability map ``probs`` (N,) as a heat map if given, then one
    row per (label, mask (N,) bool True = masked) with masked patches dimmed. Size: `masks_figure_size(T', rows)`."""
    plt = _plt()
    t = grid[0]
    panels = [("frames", clip_panels(video, grid, tubelet)["frames"])]
    if foreground is not None:
        fg = np.asarray(foreground, dtype=bool)
        panels.append(("foreground\n(ground truth)", clip_panels(video, grid, tubelet, mask=~fg)["mask"]))
    if probs is not None:
        panels.append((prob_label, clip_panels(video, grid, tubelet, probs=probs)["probs"]))
    for label, mask in rows:
        vis = int((~np.asarray(mask, dtype=bool)).sum())
        panels.append((f"{label}\n{vis} visible", clip_panels(video, grid, tubelet, mask=mask)["mask"]))
    wpx, hpx = masks_figure_size(t, len(panels))
    W, H = wpx / DPI, hpx / DPI
    fig = plt.figure(figsize=(W, H), dpi=DPI)
    if title:
        fig.text(0.5, 1 - TITLE_IN * 0.5 / H, title, ha="center", va="center", fontsize=9)
    for r, (label, imgs) in enumerate(panels):
        y = 1 - (TITLE_IN + (r + 1) * CELL_IN) / H
        fig.text(0.08 / W, y + CELL_IN * 0.5 / H, label, ha="left", va="center", fontsize=8)
        for c in range(t):
            ax = fig.add_axes((LABEL_IN / W + c * CELL_IN / W + 0.02 / W, y + 0.02 / H, (CELL_IN - 0.04) / W,
                               (CELL_IN - 0.04) / H))
            ax.imshow(imgs[c], interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(f"t={c * tubelet[0]}", fontsize=7, pad=1)
    return _save_png(fig, path)


def _smooth(x: Sequence[Optional[float]], k: int) -> np.ndarray:
    a = np.array([np.nan if v is None else v for v in x], dtype=np.float64)
    if k <= 1 or a.size < k:
        return a
    ok = np.isfinite(a)
    num = np.convolve(np.where(ok, a, 0.0), np.ones(k), "valid")
    den = np.convolve(ok.astype(float), np.ones(k), "valid")
    return np.concatenate([np.full(k - 1, np.nan), num / np.maximum(den, 1)])


def learning_curves_figure(results: Dict[str, Dict[str, Any]], path: os.PathLike) -> Path:
    """Training reconstruction loss (smoothed), held-out reconstruction loss (own ratio) and the sampling loss
    of learned strategies, per strategy, against the step. Size: CURVES_SIZE * PLOT_DPI."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=CURVES_SIZE, dpi=PLOT_DPI)
    for i, (label, r) in enumerate(results.items()):
        h, color = r["history"], f"C{i % 10}"
        k = max(1, len(h["step"]) // 25)
        axes[0].plot(h["step"], _smooth(h["reconstruction_loss"], k), label=label, color=color)
        axes[1].plot(h["eval_step"], _smooth(h["eval_loss"], 1), marker="o", ms=3, label=label, color=color)
        if r.get("learned"):
            axes[2].plot(h["step"], _smooth(h["sampling_loss"], k), label=label, color=color)
    axes[0].set_title("training reconstruction loss", fontsize=9)
    axes[1].set_title("held-out reconstruction loss (own ratio)", fontsize=9)
    axes[2].set_title("sampling loss (learned strategies)", fontsize=9)
    for ax in axes:
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7)
    if not any(r.get("learned") for r in results.values()):
        axes[2].text(0.5, 0.5, "no learned strategy", ha="center", va="center", transform=axes[2].transAxes)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.15, top=0.9, wspace=0.25)
    return _save_png(fig, path)


def summary_figure(results: Dict[str, Dict[str, Any]], path: os.PathLike) -> Path:
    """Foreground allocation per strategy (bars, mean +- std over held-out clips; 1.0 = uniform) and the mean
    number of visible tokens per time slice. Size: SUMMARY_SIZE * PLOT_DPI."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=SUMMARY_SIZE, dpi=PLOT_DPI)
    labels = list(results)
    means = [results[k]["foreground_allocation"]["mean"] or 0.0 for k in labels]
    stds = [results[k]["foreground_allocation"]["std"] or 0.0 for k in labels]
    axes[0].bar(range(len(labels)), means, yerr=stds, color="tab:blue", capsize=3)
    axes[0].axhline(1.0, color="k", lw=1, ls="--")
    axes[0].set_xticks(range(len(labels)))
    axes[0].set_xticklabels(labels, fontsize=7, rotation=15)
    axes[0].set_title("foreground allocation (1.0 = uniform)", fontsize=9)
    for k in labels:
        v = results[k]["mask_statistics"]["visible_per_time_slice"]
        axes[1].plot(range(len(v)), v, marker="o", ms=3, label=k)
    axes[1].set_title("visible tokens per time slice (held-out mean)", fontsize=9)
    axes[1].set_xlabel("time slice", fontsize=8)
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.tick_params(labelsize=7)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.16, top=0.9, wspace=0.2)
    return _save_png(fig, path)


def write_run_figures(run_dir: os.PathLike, results: Dict[str, Dict[str, Any]], clips: ClipSet,
                      cfg: CompareConfig) -> List[Path]:
    """All figures of a comparison run into run_dir/figures: masks_clip<k>.png, learning_curves.png,
    summary.png. ``clips``: the ClipSet whose masks the strategies stored under result["figure"]. Strategies
    that diverged (no measurements) appear in the learning curves only."""
    run_dir = Path(run_dir)
    out: List[Path] = []
    tub = tuple(cfg.tubelet)
    evaluated = {k: r for k, r in results.items() if isinstance(r.get("figure"), dict)}
    if not evaluated:
        return [learning_curves_figure(results, run_dir / "figures" / "learning_curves.png")]
    grid = tuple(next(iter(evaluated.values()))["grid"])
    learned = [k for k, r in evaluated.items() if r["figure"]["probs"] is not None]
    for i in range(len(clips)):
        rows = [(k, np.array(r["figure"]["masks"][i], dtype=bool)) for k, r in evaluated.items()]
        probs = np.array(results[learned[0]]["figure"]["probs"][i]) if learned else None
        fg = clips.foreground[i]
        binary = bool(((fg == 0) | (fg == 1)).all())  # embedded data; videos carry motion-energy weights
        out.append(masks_figure(clips.videos[i].numpy(), grid, tub, rows, run_dir / "figures" / f"masks_clip{i}.png",
                                probs=probs, title=f"held-out clip {i} ({clips.names[i]})",
                                prob_label=f"{learned[0]}:\nP(visible)" if learned else "",
                                foreground=fg.numpy() > 0 if binary else None))
    out.append(learning_curves_figure(results, run_dir / "figures" / "learning_curves.png"))
    out.append(summary_figure(evaluated, run_dir / "figures" / "summary.png"))
    return out


def write_animation(video: np.ndarray, grid: Sequence[int], tubelet: Sequence[int], path: os.PathLike,
                    probs: Optional[np.ndarray] = None, mask: Optional[np.ndarray] = None, scale: int = 4,
                    fps: int = 4) -> Path:
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
        pan = clip_panels(v[:, sl * tubelet[0]:(sl + 1) * tubelet[0]], (1, *grid[1:]), tubelet,
                          probs=None if probs is None else np.asarray(probs).reshape(grid[0], -1)[sl],
                          mask=None if mask is None else np.asarray(mask).reshape(grid[0], -1)[sl])
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

