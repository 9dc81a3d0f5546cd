"""Drawing primitives of the figures (matplotlib, Agg backend; PNG written atomically): per-token maps over a
clip's frames, grids of panels sized to the image's resolution and aspect ratio, and a clip's panels placed
in the full frame it was cropped from.

Images are (3, T, H, W) float in [0, 1]; panels (T', H, W, 3); per-token values are (N,) over the grid
(T', H', W') in (t, h, w) order; masks are (N,) bool with True = masked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import missing_extra
from .io import atomic_path

__all__ = [
    "CELL_IN",
    "LABEL_IN",
    "TITLE_IN",
    "DPI",
    "PLOT_DPI",
    "DIM",
    "MIN_SCALE",
    "pyplot",
    "save_png",
    "token_map",
    "clip_panels",
    "in_context",
    "cell_inches",
    "grid_size",
    "panels_figure",
]

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
