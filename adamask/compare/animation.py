"""A clip with its probability map and sampled mask, animated frame by frame: GIF (Pillow) or MP4 (PyAV).

Images are (3, T, H, W) float in [0, 1]; per-token values are (N,) over the grid (T', H', W') in (t, h, w)
order; masks are (N,) bool with True = masked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from .drawing import clip_panels
from .errors import missing_extra
from .io import atomic_path

__all__ = ["write_animation"]


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
