"""The user's videos for `adamask compare` and `adamask visualize`, read with PyAV: found in folders (one
folder per class gives probe labels), decoded, resized (shorter side = the model's input size) and
centre-cropped, with a message naming every file that cannot be used and why.

Shapes: a clip is (C, T, H, W) float32 in [0, 1].
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from ..validation import check_positive_int, check_tubelet
from .errors import MissingFileError, UserError, brief, missing_extra

if TYPE_CHECKING:
    from .data import ClipSet

__all__ = [
    "VIDEO_EXTENSIONS",
    "VideoReadError",
    "find_videos",
    "read_video",
    "load_video_clips",
    "centre_crop",
    "crop_box",
]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".ogv", ".gif")


class VideoReadError(UserError):
    """A video file that cannot be used; the message names the file and the reason (a ValueError)."""


def find_videos(
    paths: Union[str, os.PathLike, Iterable[Union[str, os.PathLike]]], skipped: Optional[List[str]] = None
) -> List[Path]:
    """Folders (searched recursively for VIDEO_EXTENSIONS) and files -> sorted list of video files. Files of
    other types found in the folders (not hidden ones) are named in ``skipped``, if given."""
    given = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    folders_and_files: List[Path] = [Path(p) for p in given]
    out: List[Path] = []
    others: List[Path] = []
    for p in folders_and_files:
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
            out.extend(f for f in files if f.suffix.lower() in VIDEO_EXTENSIONS)
            others.extend(f for f in files if f.suffix.lower() not in VIDEO_EXTENSIONS)
        elif p.is_file():
            out.append(p)
        else:
            raise MissingFileError(f"video path {str(p)!r} does not exist")
    if not out:
        found = f" (only other files: {', '.join(f.name for f in others[:5])}{', ...' if len(others) > 5 else ''})"
        raise UserError(
            f"no video files ({', '.join(VIDEO_EXTENSIONS)}) found in {[str(p) for p in folders_and_files]}"
            f"{found if others else ''}"
        )
    if skipped is not None:
        skipped.extend(f"{f}: not a video file (not one of {', '.join(VIDEO_EXTENSIONS)})" for f in others)
    return out


def _scaled_size(w: int, h: int, size: int) -> Tuple[int, int]:
    """Shorter side -> size, keeping the aspect ratio (even numbers for the scaler)."""
    s = size / min(w, h)
    return max(size, int(round(w * s))), max(size, int(round(h * s)))


def _decode_frames(
    av: Any, path: Path, img_size: int, min_size: int, budget: int, crop: bool = True
) -> Tuple[List[np.ndarray], int]:
    """Up to ``budget`` frames of the file's first video stream, resized (shorter side img_size) and, if ``crop``,
    centre-cropped to img_size, and the frame count its header declares (0 if unknown); `VideoReadError` naming
    the file if it cannot be decoded."""
    frames: List[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path}: no video stream")
            stream = container.streams.video[0]
            w, h = stream.codec_context.width, stream.codec_context.height
            if min(w, h) < min_size:
                raise VideoReadError(f"{path}: frames are {w}x{h}, smaller than the minimum of {min_size} pixels")
            sw, sh = _scaled_size(w, h, img_size)
            top, left = ((sh - img_size) // 2, (sw - img_size) // 2) if crop else (0, 0)
            ch, cw = (img_size, img_size) if crop else (sh, sw)
            for frame in container.decode(stream):
                rgb = frame.to_ndarray(width=sw, height=sh, format="rgb24")
                frames.append(rgb[top : top + ch, left : left + cw])
                if len(frames) >= budget:
                    break
            declared = int(stream.frames or 0)
    except VideoReadError:
        raise
    except Exception as e:  # PyAV raises several error types for broken files
        raise VideoReadError(f"{path}: cannot decode it - truncated, damaged or not a video ({brief(e)})") from e
    return frames, declared


def crop_box(height: int, width: int, size: int) -> Tuple[int, int]:
    """(top, left) of the centre size x size crop that `read_video` takes of frames ``height`` x ``width``."""
    return (height - size) // 2, (width - size) // 2


def centre_crop(clip: Tensor, size: int) -> Tensor:
    """The centre ``size`` x ``size`` crop of a clip (..., H, W), as `read_video` takes it."""
    top, left = crop_box(clip.shape[-2], clip.shape[-1], size)
    return clip[..., top : top + size, left : left + size]


def _too_short(path: Path, decoded: int, declared: int, num_frames: int, stride: int) -> str:
    """Why a file with ``decoded`` frames (``declared`` by its header, 0 if unknown) gives no clip."""
    need = (num_frames - 1) * stride + 1
    clip = f"a clip of {num_frames} frames at stride {stride} needs {need}"
    if decoded == 0:
        return f"{path}: no frame could be decoded - truncated, damaged or not a video"
    if declared > decoded:
        return f"{path}: truncated or damaged - only {decoded} of its {declared} frames could be decoded; {clip}"
    if decoded == 1:
        return f"{path}: a still image (1 frame), not a video; {clip}"
    hint = (
        f"lower --stride (at stride 1 it needs {num_frames}) or use a longer video"
        if stride > 1
        else "use a longer video"
    )
    return f"{path}: only {decoded} frames; {clip}; {hint}"


def read_video(
    path: Union[str, os.PathLike],
    *,
    num_frames: int = 16,
    stride: int = 4,
    img_size: int = 64,
    num_clips: int = 1,
    min_size: int = 16,
    crop: bool = True,
) -> Tensor:
    """Decode a video file with PyAV -> (K, 3, T, H, W) float32 clips in [0, 1], H = W = img_size.

    Frames are resized (shorter side = img_size) and centre-cropped while decoding (``crop=False``: not
    cropped, H x W at the video's aspect ratio, from which `centre_crop` takes the same clips); each clip takes
    ``num_frames`` frames every ``stride`` frames, the K = ``num_clips`` windows spread evenly over the decoded
    frames (fewer if the video is short, at least one). Decoding stops after 4 * K clip spans, so long videos
    contribute clips from their beginning. Raises `VideoReadError` naming the file if it cannot be
    decoded, has no video stream, is shorter than (num_frames - 1) * stride + 1 frames or has frames smaller
    than ``min_size`` pixels.
    """
    try:
        import av
    except ImportError as e:  # pragma: no cover
        raise missing_extra("av (PyAV)", "reading videos") from e
    for name, v in (("num_frames", num_frames), ("stride", stride), ("img_size", img_size), ("num_clips", num_clips)):
        check_positive_int(v, name)
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"video {str(path)!r} does not exist")
    need = (num_frames - 1) * stride + 1
    frames, declared = _decode_frames(av, path, img_size, min_size, budget=need * num_clips * 4, crop=crop)
    if len(frames) < need:
        raise VideoReadError(_too_short(path, len(frames), declared, num_frames, stride))
    arr = torch.from_numpy(np.stack(frames))  # (F, H, W, 3) uint8
    k = min(num_clips, len(frames) - need + 1)
    starts = torch.linspace(0, len(frames) - need, k).round().long().unique()
    clips = [arr[s : s + need : stride] for s in starts.tolist()]
    return torch.stack(clips).permute(0, 4, 1, 2, 3).float().div_(255.0)


def load_video_clips(
    paths: Union[str, os.PathLike, Iterable[Union[str, os.PathLike]]],
    *,
    num_frames: int = 16,
    stride: int = 4,
    img_size: int = 64,
    tubelet: Sequence[int] = (2, 8, 8),
    clips_per_video: int = 4,
    log=print,
) -> Tuple["ClipSet", List[str]]:
    """Read every video under ``paths`` into a `ClipSet` with motion-energy ground truth.

    Labels are the videos' parent folder names (``class/video.mp4`` layout); -1 if all share one folder.
    Files that cannot be used (and files of other types in the folders) are skipped, each with a message
    naming it (returned as the second value); raises `UserError` (a ValueError) if no file is usable.
    """
    from .data import ClipSet, motion_energy

    errors: List[str] = []
    files = find_videos(paths, skipped=errors)
    for e in errors:
        log(f"skipping {e}")
    tub = check_tubelet(tubelet)
    videos, names, folders = [], [], []
    for f in files:
        try:
            clips = read_video(f, num_frames=num_frames, stride=stride, img_size=img_size, num_clips=clips_per_video)
        except VideoReadError as e:
            errors.append(str(e))
            log(f"skipping {e}")
            continue
        for j in range(clips.shape[0]):
            videos.append(clips[j])
            names.append(f"{f}#{j}")
            folders.append(f.parent.name)
    if not videos:
        raise UserError("none of the videos could be used: " + "; ".join(errors))
    classes = sorted(set(folders))
    labels = [classes.index(c) for c in folders] if len(classes) > 1 else [-1] * len(folders)
    v = torch.stack(videos)
    fg = torch.stack([motion_energy(x, tub) for x in v])
    return ClipSet(v, fg, torch.tensor(labels, dtype=torch.long), names, classes if len(classes) > 1 else []), errors
