"""The clips of a comparison run: an embedded synthetic dataset with per-token ground truth, the user's videos
read with PyAV, and how a run splits them into training, held-out, probe and figure clips (`load_data`).

Embedded data: white handwritten digits from scikit-learn's bundled ``load_digits`` (8x8 images, 10 classes)
move in straight lines (8 directions) over crops of the photograph ``grace_hopper.jpg`` shipped in
matplotlib's ``mpl-data/sample_data``; both labels, the digit and the direction, are what every clip shows.
Everything is generated on the fly from (seed, clip index); nothing is downloaded.

Videos: found in folders (one folder per class gives probe labels), decoded, resized (shorter side = the
model's input size) and centre-cropped, with a message naming every file that cannot be used and why.

Shapes: a clip is (C, T, H, W) float32 in [0, 1]; per-token ground truth is (N,) over the token grid
(T', H', W') in (t, h, w) order, N = T'H'W' (True / larger = information-rich foreground).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..validation import check_positive_int, check_tubelet
from .config import PROBE_LABELS, CompareConfig
from .errors import MissingFileError, UserError, brief, missing_extra, user_input

__all__ = [
    "MEAN",
    "STD",
    "DIRECTIONS",
    "DIGIT_COLOR",
    "VIDEO_EXTENSIONS",
    "NO_LABELS",
    "ONE_VIDEO_NOTE",
    "ClipSet",
    "RunClips",
    "VideoReadError",
    "SyntheticDigitClips",
    "digit_sprites",
    "photo_background",
    "render_clip",
    "straight_path",
    "token_ground_truth",
    "motion_energy",
    "normalize_video",
    "labelled",
    "find_videos",
    "read_video",
    "load_video_clips",
    "centre_crop",
    "crop_box",
    "embedded_options",
    "check_embedded",
    "VIDEO_CLIPS_TARGET",
    "FEW_CLIPS",
    "clips_per_video_for",
    "video_clip_count",
    "with_video_defaults",
    "data_notes",
    "load_data",
]

MEAN = 0.45  # the normalisation of the model input: (x - MEAN) / STD
STD = 0.225
DIRECTIONS = 8  # motion directions, 45 degrees apart
DIGIT_COLOR = (1.0, 1.0, 1.0)  # every digit is white: its colour says nothing about its class


def normalize_video(video: Tensor) -> Tensor:
    """Clips in [0, 1] (any shape) -> model input, (x - 0.45) / 0.225, float32."""
    return (video.float() - MEAN) / STD


# ---------------------------------------------------------------------------------------------
# ground truth


def token_ground_truth(alpha: Tensor, tubelet: Sequence[int], threshold: float = 0.25) -> Tensor:
    """Foreground alpha (T, H, W) float in [0, 1] -> (N,) bool, True where any pixel of the token's
    tubelet (pt frames x ph x pw pixels) has alpha > threshold. N = (T/pt)(H/ph)(W/pw), (t, h, w) order."""
    pt, ph, pw = check_tubelet(tubelet)
    a = torch.as_tensor(alpha, dtype=torch.float32)
    if a.dim() != 3 or a.shape[0] % pt or a.shape[1] % ph or a.shape[2] % pw:
        raise ValueError(f"alpha must be (T, H, W) divisible by tubelet {(pt, ph, pw)}, got {tuple(a.shape)}")
    pooled = F.max_pool3d(a[None, None], kernel_size=(pt, ph, pw))
    return (pooled > threshold).flatten()


def motion_energy(video: Tensor, tubelet: Sequence[int]) -> Tensor:
    """Motion-energy proxy per token: video (C, T, H, W) float -> (N,) float32 >= 0, the mean absolute
    frame difference |x_t - x_{t-1}| (channel mean) over each tubelet; frame 0 reuses frame 1's difference."""
    pt, ph, pw = check_tubelet(tubelet)
    if not isinstance(video, Tensor) or video.dim() != 4:
        raise ValueError(f"video must be a (C, T, H, W) tensor, got {getattr(video, 'shape', type(video))}")
    v = video.float()
    if v.shape[1] < 2:
        raise ValueError(f"video needs at least 2 frames for frame differences, got {v.shape[1]}")
    d = (v[:, 1:] - v[:, :-1]).abs().mean(0)  # (T-1, H, W)
    d = torch.cat([d[:1], d], 0)
    return F.avg_pool3d(d[None, None], kernel_size=(pt, ph, pw)).flatten()


# ---------------------------------------------------------------------------------------------
# embedded synthetic data

_SPRITES: Optional[Tuple[np.ndarray, np.ndarray]] = None
_PHOTO: Optional[np.ndarray] = None


def digit_sprites() -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits as opaque strokes: (1797, 8, 8) float32 alpha in [0, 1] (twice
    the digits' ink, 0-16, over 16, capped at 1) and (1797,) int labels."""
    global _SPRITES
    if _SPRITES is None:
        try:
            from sklearn.datasets import load_digits
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise missing_extra("scikit-learn", "the embedded dataset") from e
        d = load_digits()
        _SPRITES = (np.clip(d.images / 8.0, 0.0, 1.0).astype(np.float32), d.target.astype(np.int64))
    return _SPRITES


def photo_background() -> np.ndarray:
    """matplotlib's bundled photograph ``grace_hopper.jpg`` as (H, W, 3) float32 in [0, 1]."""
    global _PHOTO
    if _PHOTO is None:
        try:
            import matplotlib.cbook as cbook
            import matplotlib.image as mpimg
        except ImportError as e:  # pragma: no cover
            raise missing_extra("matplotlib", "the embedded dataset") from e
        with cast(BinaryIO, cbook.get_sample_data("grace_hopper.jpg")) as f:
            img = mpimg.imread(f, format="jpg")
        img = np.asarray(img, dtype=np.float32)
        _PHOTO = img / 255.0 if img.max() > 1.0 else img
    return _PHOTO


def _resize(img: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """(H, W) or (H, W, C) float -> resized with bilinear + antialias."""
    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))
    t = t[None, None] if t.dim() == 2 else t.permute(2, 0, 1)[None]
    out = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    return (out[0] if img.ndim == 2 else out.permute(1, 2, 0)).numpy()


def render_clip(
    background: np.ndarray, sprite: np.ndarray, color: Union[Sequence[float], np.ndarray], positions: np.ndarray
) -> Tuple[np.ndarray, np.ndarray]:
    """Paste ``sprite`` (s, s) alpha in [0, 1] in ``color`` over a static ``background`` (H, W, 3) at the
    integer top-left ``positions`` (T, 2) (y, x), clipped at the borders.
    Returns frames (T, H, W, 3) float32 in [0, 1] and the foreground alpha (T, H, W) float32."""
    h, w, _ = background.shape
    s0, s1 = sprite.shape
    t = positions.shape[0]
    alpha = np.zeros((t, h, w), np.float32)
    for i, (y, x) in enumerate(np.asarray(positions, dtype=np.int64)):
        y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + s0, h), min(x + s1, w)
        if y1 > y0 and x1 > x0:
            alpha[i, y0:y1, x0:x1] = sprite[y0 - y : y1 - y, x0 - x : x1 - x]
    col = np.asarray(color, np.float32)[None, None, None]
    frames = background[None] * (1 - alpha[..., None]) + col * alpha[..., None]
    return frames.astype(np.float32), alpha


def straight_path(start: np.ndarray, velocity: np.ndarray, steps: int) -> np.ndarray:
    """(steps, 2) integer positions (y, x) from ``start`` (2,) moving at ``velocity`` (2,) px/frame in a
    straight line (rounded to whole pixels)."""
    return np.rint(start[None] + velocity[None] * np.arange(steps)[:, None]).astype(np.int64)


@dataclass
class ClipSet:
    """A batch of clips with ground truth.

    videos: (M, C, T, H, W) float32 in [0, 1].
    foreground: (M, N) float32 >= 0 per-token ground truth (1/0 for the embedded data, motion energy for videos).
    labels: (M,) int64 class per clip (-1 where unknown).
    names: M strings naming each clip (file and start frame for videos).
    class_names: the label names.
    """

    videos: Tensor
    foreground: Tensor
    labels: Tensor
    names: List[str]
    class_names: List[str]

    def __len__(self) -> int:
        return self.videos.shape[0]

    def subset(self, idx: Sequence[int]) -> "ClipSet":
        i = torch.as_tensor(list(idx), dtype=torch.long)
        return ClipSet(
            self.videos[i], self.foreground[i], self.labels[i], [self.names[j] for j in i.tolist()], self.class_names
        )


def labelled(train: ClipSet, test: ClipSet) -> bool:
    """Whether a probe can be fitted on ``train`` and scored on ``test``: every clip has a label and ``train``
    has at least two classes."""
    return not (bool((train.labels < 0).any()) or bool((test.labels < 0).any()) or len(set(train.labels.tolist())) < 2)


class SyntheticDigitClips:
    """Deterministic clips of one white handwritten digit (scikit-learn ``load_digits``) moving in a straight
    line over a static crop of matplotlib's ``grace_hopper.jpg``, never leaving the frame.

    Clip ``i`` depends only on (seed, i). Labels: the digit class (0-9) and the direction of its motion
    (0-7, 45 degrees apart, counter-clockwise from "right" in image coordinates: 2 = down), both shown by
    every clip: the digit is white (DIGIT_COLOR, the same for every class) and ``sprite_size`` pixels high, and
    it does not bounce - its speed is drawn from ``speed`` px/frame (default: between half and all of the room
    the frame leaves it, (img_size - sprite_size) / (num_frames - 1)) and its start so that the whole path lies
    inside the frame. Ground truth: a token is foreground if the digit's strokes (alpha > 0.25) touch its
    tubelet in any of its frames. ``background_contrast`` scales the photo around grey 0.5 (0: flat grey).
    """

    def __init__(
        self,
        num_clips: int,
        *,
        num_frames: int = 16,
        img_size: int = 64,
        tubelet: Sequence[int] = (2, 8, 8),
        sprite_size: int = 16,
        speed: Optional[Tuple[float, float]] = None,
        seed: int = 0,
        offset: int = 0,
        background_contrast: float = 0.8,
    ) -> None:
        self.num_clips = check_positive_int(num_clips, "num_clips")
        self.num_frames = check_positive_int(num_frames, "num_frames")
        self.img_size = check_positive_int(img_size, "img_size")
        self.sprite_size = check_positive_int(sprite_size, "sprite_size")
        self.tubelet = check_tubelet(tubelet)
        if sprite_size >= img_size:
            raise ValueError(f"sprite_size ({sprite_size}) must be smaller than img_size ({img_size})")
        if num_frames % self.tubelet[0] or img_size % self.tubelet[1] or img_size % self.tubelet[2]:
            raise ValueError(
                f"num_frames x img_size x img_size = {(num_frames, img_size, img_size)} is not "
                f"divisible by tubelet {self.tubelet}"
            )
        self.room = img_size - sprite_size  # the positions the digit's top-left corner can take, per axis
        self.speed = self._check_speed(speed)
        self.seed, self.offset = int(seed), int(offset)
        self.background_contrast = float(background_contrast)
        self.grid = (num_frames // self.tubelet[0], img_size // self.tubelet[1], img_size // self.tubelet[2])

    def _check_speed(self, speed: Optional[Tuple[float, float]]) -> Tuple[float, float]:
        """The speed range (low, high) in px/frame: ``speed``, checked to be a range whose fastest path fits
        in the frame, or the default half to all of the room the frame leaves."""
        fastest = self.room / max(1, self.num_frames - 1)
        if speed is None:
            return 0.5 * fastest, fastest
        ok = isinstance(speed, (tuple, list)) and len(speed) == 2
        low, high = (float(v) for v in speed) if ok else (math.nan, math.nan)
        if not (0.0 < low <= high <= fastest):
            raise ValueError(
                f"speed must be (low, high) px/frame with 0 < low <= high <= {fastest:g} (the fastest digit that "
                f"stays inside the frame: (img_size - sprite_size) / (num_frames - 1)), got {speed!r}"
            )
        return low, high

    def __len__(self) -> int:
        return self.num_clips

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        """A random square crop of the photo, resized to the clip and scaled around grey 0.5: (H, W, 3)."""
        photo = photo_background()
        ph, pw, _ = photo.shape
        crop = int(rng.integers(min(ph, pw) // 4, min(ph, pw) // 2 + 1))
        y, x = int(rng.integers(ph - crop + 1)), int(rng.integers(pw - crop + 1))
        bg = _resize(photo[y : y + crop, x : x + crop], (self.img_size, self.img_size))
        return np.clip(0.5 + self.background_contrast * (bg - bg.mean()), 0.0, 1.0)

    def _path(self, rng: np.random.Generator, direction: int) -> np.ndarray:
        """(T, 2) integer top-left positions (y, x) of a straight path in ``direction`` that stays in the frame."""
        angle = 2 * math.pi * direction / DIRECTIONS
        velocity = rng.uniform(*self.speed) * np.array([math.sin(angle), math.cos(angle)])
        travel = velocity * (self.num_frames - 1)
        low, high = np.maximum(0.0, -travel), self.room - np.maximum(0.0, travel)
        return straight_path(low + rng.uniform(0.0, 1.0, 2) * (high - low), velocity, self.num_frames)

    def sample(self, i: int) -> dict:
        """Clip ``i`` -> dict(video (3, T, H, W) float32, background (3, T, H, W) (the static photo crop),
        alpha (T, H, W), foreground (N,) bool, label, direction, positions (T, 2) (y, x))."""
        if not 0 <= i < self.num_clips:
            raise IndexError(f"clip index {i} out of range [0, {self.num_clips})")
        rng = np.random.default_rng([self.seed, self.offset + i])
        images, targets = digit_sprites()
        k = int(rng.integers(len(images)))
        sprite = np.clip(_resize(images[k], (self.sprite_size, self.sprite_size)), 0.0, 1.0)
        bg = self._background(rng)
        direction = int(rng.integers(DIRECTIONS))
        positions = self._path(rng, direction)
        frames, alpha = render_clip(bg, sprite, DIGIT_COLOR, positions)
        video = torch.from_numpy(frames).permute(3, 0, 1, 2).contiguous()
        return dict(
            video=video,
            background=torch.from_numpy(bg).permute(2, 0, 1)[:, None].expand_as(video),
            alpha=torch.from_numpy(alpha),
            foreground=token_ground_truth(torch.from_numpy(alpha), self.tubelet),
            label=int(targets[k]),
            direction=direction,
            positions=positions,
        )

    def clipset(self, label: str = "digit") -> ClipSet:
        """All clips as a `ClipSet`; its labels: the digit class (``label="digit"``, 10 classes) or the motion
        direction (``"direction"``, 8 classes 45 degrees apart)."""
        if label not in ("digit", "direction"):
            raise ValueError(f"label must be 'digit' or 'direction', got {label!r}")
        samples = [self.sample(i) for i in range(self.num_clips)]
        key = "label" if label == "digit" else "direction"
        names = [str(c) for c in range(10)] if label == "digit" else [f"{45 * d} deg" for d in range(DIRECTIONS)]
        return ClipSet(
            videos=torch.stack([s["video"] for s in samples]),
            foreground=torch.stack([s["foreground"] for s in samples]).float(),
            labels=torch.tensor([s[key] for s in samples], dtype=torch.long),
            names=[f"digits-seed{self.seed}-clip{self.offset + i}" for i in range(self.num_clips)],
            class_names=names,
        )


# ---------------------------------------------------------------------------------------------
# the user's videos

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
    log: Callable[[str], None] = print,
) -> Tuple[ClipSet, List[str]]:
    """Read every video under ``paths`` into a `ClipSet` with motion-energy ground truth.

    Labels are the videos' parent folder names (``class/video.mp4`` layout); -1 if all share one folder.
    Files that cannot be used (and files of other types in the folders) are skipped, each with a message
    naming it (returned as the second value); raises `UserError` (a ValueError) if no file is usable.
    """
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


# ---------------------------------------------------------------------------------------------
# the clips of a run

NO_LABELS = "no labels: put the videos in one folder per class to get a probe"
ONE_VIDEO_NOTE = (
    "a single video: the held-out clips are other clips of the same video, so they overlap its "
    "training content and the held-out numbers (and their spread) are optimistic; pass more videos, or "
    "name held-out videos with --held-out"
)


@dataclass
class RunClips:
    """The clips of a comparison run: ``train`` (pretraining), ``test`` (held out: evaluation), ``probe_train``
    and ``probe_test`` (the probes of the frozen encoder), ``figure`` (the first held-out clips, shown in the
    figures) and ``description``, results.json's "data" (with the probes' clips under "probe")."""

    train: ClipSet
    test: ClipSet
    probe_train: ClipSet
    probe_test: ClipSet
    figure: ClipSet
    description: Dict[str, Any]


def embedded_options(cfg: CompareConfig) -> Dict[str, Any]:
    """The keyword arguments of `SyntheticDigitClips` for the run ``cfg`` (all but the clip count)."""
    return dict(
        num_frames=cfg.num_frames,
        img_size=cfg.img_size,
        tubelet=tuple(cfg.tubelet),
        sprite_size=cfg.sprite_size or max(4, cfg.img_size // 2),
        seed=cfg.seed,
        background_contrast=cfg.background_contrast,
    )


def check_embedded(cfg: CompareConfig) -> None:
    """The embedded data of the run ``cfg`` can be drawn (a `UserError` naming the setting if not); a run on
    videos is checked when they are read."""
    if not cfg.videos:
        with user_input("embedded data: "):
            SyntheticDigitClips(1, **embedded_options(cfg))


def _embedded_data(cfg: CompareConfig) -> Tuple[ClipSet, ClipSet, Dict[str, Any]]:
    kw = embedded_options(cfg)
    train = SyntheticDigitClips(cfg.train_clips, **kw).clipset()
    test = SyntheticDigitClips(cfg.test_clips, offset=cfg.train_clips, **kw).clipset()
    desc = dict(
        source="embedded",
        description="white handwritten digits (scikit-learn load_digits) half the frame high, each moving "
        "in a straight line without leaving the frame, over crops of matplotlib's sample photo "
        "grace_hopper.jpg; ground truth = tokens touched by the digit's strokes",
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


VIDEO_CLIPS_TARGET = 256  # the clips in all that the default number of clips per video aims at
FEW_CLIPS = 128  # fewer training clips than this: the run is told that it is too small to mean much


def clips_per_video_for(num_videos: int) -> int:
    """The clips taken from each of ``num_videos`` videos when the run does not say: about VIDEO_CLIPS_TARGET in
    all, between 4 and 32 per video."""
    return max(4, min(32, math.ceil(VIDEO_CLIPS_TARGET / max(1, num_videos))))


def video_clip_count(cfg: CompareConfig) -> int:
    """The clips the run ``cfg`` takes from each video: its ``clips_per_video``, else `clips_per_video_for` the
    number of video files found (a `MissingFileError` naming a missing path)."""
    return cfg.clips_per_video or clips_per_video_for(len(find_videos(cfg.videos)))


def with_video_defaults(cfg: CompareConfig) -> CompareConfig:
    """``cfg`` with ``clips_per_video`` chosen from the videos (`video_clip_count`) where it is None; unchanged for
    the embedded data or an explicit value."""
    if not cfg.videos or cfg.clips_per_video is not None:
        return cfg
    return replace(cfg, clips_per_video=video_clip_count(cfg))


def _advice(cfg: CompareConfig, clips: ClipSet, train: ClipSet, test: ClipSet) -> List[str]:
    """What was extracted from the videos, and what this run lacks for a meaningful comparison."""
    per_video: Dict[str, int] = {}
    for name in clips.names:
        per_video[name.rsplit("#", 1)[0]] = per_video.get(name.rsplit("#", 1)[0], 0) + 1
    short = sorted(Path(v).name for v, k in per_video.items() if k < (cfg.clips_per_video or 0))
    fewer = f" (shorter videos gave fewer: {', '.join(short[:3])}{', ...' if len(short) > 3 else ''})" if short else ""
    span = (cfg.num_frames - 1) * cfg.stride + 1
    out = [
        f"extracted {len(clips)} clips of {cfg.num_frames} frames at stride {cfg.stride} (each spans {span} frames), "
        f"{cfg.img_size}x{cfg.img_size} px, from {len(per_video)} video(s), up to {cfg.clips_per_video} per "
        f"video{fewer}: {len(train)} to pretrain on, {len(test)} held out"
    ]
    if len(train) < FEW_CLIPS:
        out.append(
            f"{len(train)} training clips are too few for the comparison to mean much: it needs a few hundred, from "
            f"dozens of videos (clips of one video overlap; --clips-per-video beyond a video's length repeats it)"
        )
    if cfg.img_size < 64:
        out.append(
            f"frames are scaled to {cfg.img_size} px (--img-size), enough for coarse motion only; 64 px shows 4x the "
            f"detail at about 4x the cost of a step"
        )
    if clips.class_names:
        seen = {int(c) for c in test.labels.tolist()}
        unscored = [c for i, c in enumerate(clips.class_names) if i not in seen]
        if unscored:
            out.append(
                f"the probes score on the held-out videos, and class(es) {', '.join(unscored)} have none held out: "
                f"hold out a video of each class (--held-out)"
            )
    return out


def data_notes(description: Dict[str, Any]) -> Optional[str]:
    """The data's caveat (``note``) and advice (``advice``) of a run's data description, as one paragraph; None
    without either."""
    parts = ([description["note"]] if description.get("note") else []) + list(description.get("advice", []))
    return "; ".join(parts) + "." if parts else None


def _video_data(cfg: CompareConfig, log: Callable[[str], None]) -> Tuple[ClipSet, ClipSet, Dict[str, Any]]:
    """The user's videos: those named by ``held_out``, else every 4th video (the last of two or three) held out;
    with a single video, every 4th clip (which overlaps the training clips: warned and noted). What was extracted
    and what the run lacks are logged and kept as the description's "advice"."""
    cfg = with_video_defaults(cfg)
    clips, errors = load_video_clips(
        cfg.videos,
        num_frames=cfg.num_frames,
        stride=cfg.stride,
        img_size=cfg.img_size,
        tubelet=tuple(cfg.tubelet),
        clips_per_video=video_clip_count(cfg),
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
    train, test = clips.subset(tr), clips.subset(te)
    desc["advice"] = _advice(cfg, clips, train, test)
    for line in desc["advice"]:
        log(f"note: {line}")
    return train, test, desc


def _probe_clips(cfg: CompareConfig, train: ClipSet, test: ClipSet) -> Tuple[ClipSet, ClipSet, Dict[str, Any]]:
    """The clips the probes are fitted on and scored on, and their description. Embedded data:
    ``cfg.probe_train_clips`` and ``cfg.probe_test_clips`` clips of the same seed after the training and
    held-out ones, labelled by ``cfg.probe_label`` (default: the direction). Videos: the training and held-out
    clips, labelled by class folder."""
    if cfg.videos:
        ok = labelled(train, test)
        return (
            train,
            test,
            dict(
                label="class folder" if ok else None,
                train_clips=len(train),
                test_clips=len(test),
                note=None if ok else NO_LABELS,
            ),
        )
    kw = embedded_options(cfg)
    first = cfg.train_clips + cfg.test_clips
    label = cfg.probe_label or PROBE_LABELS[0]
    ptrain = SyntheticDigitClips(cfg.probe_train_clips, offset=first, **kw).clipset(label)
    ptest = SyntheticDigitClips(cfg.probe_test_clips, offset=first + cfg.probe_train_clips, **kw).clipset(label)
    return ptrain, ptest, dict(label=label, train_clips=len(ptrain), test_clips=len(ptest), classes=ptrain.class_names)


def load_data(cfg: CompareConfig, log: Callable[[str], None] = print) -> RunClips:
    """The clips of the run ``cfg``, from the embedded data or the user's videos (a `UserError` naming the file
    or option when the videos cannot be used)."""
    train, test, desc = _video_data(cfg, log) if cfg.videos else _embedded_data(cfg)
    fg = torch.cat([train.foreground, test.foreground])
    desc.update(
        train_clips=len(train),
        test_clips=len(test),
        foreground_share=float((fg > 0).float().mean()) if desc["source"] == "embedded" else None,
    )
    probe_train, probe_test, desc["probe"] = _probe_clips(cfg, train, test)
    figure = test.subset(range(min(cfg.figure_clips, len(test))))
    return RunClips(train, test, probe_train, probe_test, figure, desc)
