"""Clips for `adamask compare`: an embedded synthetic dataset with per-token ground truth, and the user's
videos read with PyAV (`adamask.compare.videos`, re-exported here).

Embedded data: handwritten digits from scikit-learn's bundled ``load_digits`` (8x8 images, 10 classes)
move over crops of the photograph ``grace_hopper.jpg`` shipped in matplotlib's ``mpl-data/sample_data``.
Everything is generated on the fly from (seed, clip index); nothing is downloaded.

Shapes: a clip is (C, T, H, W) float32 in [0, 1]; per-token ground truth is (N,) over the token grid
(T', H', W') in (t, h, w) order, N = T'H'W' (True / larger = information-rich foreground).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import BinaryIO, List, Optional, Sequence, Tuple, Union, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..validation import check_positive_int, check_tubelet
from .errors import missing_extra
from .videos import VIDEO_EXTENSIONS, VideoReadError, find_videos, load_video_clips, read_video

__all__ = [
    "VIDEO_EXTENSIONS",
    "ClipSet",
    "VideoReadError",
    "SyntheticDigitClips",
    "digit_sprites",
    "photo_background",
    "render_clip",
    "token_ground_truth",
    "motion_energy",
    "normalize_video",
    "find_videos",
    "read_video",
    "load_video_clips",
]

MEAN, STD = 0.45, 0.225
DIRECTIONS = 8  # motion directions, 45 degrees apart


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
    """scikit-learn's bundled handwritten digits: (1797, 8, 8) float32 alpha in [0, 1] and (1797,) int labels."""
    global _SPRITES
    if _SPRITES is None:
        try:
            from sklearn.datasets import load_digits
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise missing_extra("scikit-learn", "the embedded dataset") from e
        d = load_digits()
        _SPRITES = ((d.images / 16.0).astype(np.float32), d.target.astype(np.int64))
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


def _bounce_path(start: np.ndarray, velocity: np.ndarray, steps: int, limit: float) -> np.ndarray:
    """(steps, 2) integer positions moving at ``velocity`` px/frame inside [0, limit], reflecting at walls."""
    pos = start[None] + velocity[None] * np.arange(steps)[:, None]
    period = 2 * limit
    pos = np.mod(pos, period)
    pos = np.where(pos > limit, period - pos, pos)
    return np.rint(pos).astype(np.int64)


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


class SyntheticDigitClips:
    """Deterministic clips of one handwritten digit (scikit-learn ``load_digits``) moving in a straight line,
    bouncing off the borders, over a static crop of matplotlib's ``grace_hopper.jpg``.

    Clip ``i`` depends only on (seed, i). Labels: the digit class (0-9); ``directions`` holds the motion
    direction (0-7, 45 degrees apart). Ground truth: a token is foreground if the digit's strokes
    (alpha > 0.25) touch its tubelet in any of its frames.
    """

    def __init__(
        self,
        num_clips: int,
        *,
        num_frames: int = 16,
        img_size: int = 64,
        tubelet: Sequence[int] = (2, 8, 8),
        sprite_size: int = 16,
        speed: Tuple[float, float] = (1.5, 3.0),
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
        self.speed, self.seed, self.offset = speed, int(seed), int(offset)
        self.background_contrast = float(background_contrast)
        self.grid = (num_frames // self.tubelet[0], img_size // self.tubelet[1], img_size // self.tubelet[2])

    def __len__(self) -> int:
        return self.num_clips

    def sample(self, i: int) -> dict:
        """Clip ``i`` -> dict(video (3, T, H, W) float32, alpha (T, H, W), foreground (N,) bool, label, direction)."""
        if not 0 <= i < self.num_clips:
            raise IndexError(f"clip index {i} out of range [0, {self.num_clips})")
        rng = np.random.default_rng([self.seed, self.offset + i])
        images, targets = digit_sprites()
        k = int(rng.integers(len(images)))
        sprite = np.clip(_resize(images[k], (self.sprite_size, self.sprite_size)), 0.0, 1.0)
        photo = photo_background()
        ph, pw, _ = photo.shape
        crop = int(rng.integers(min(ph, pw) // 4, min(ph, pw) // 2 + 1))
        y, x = int(rng.integers(ph - crop + 1)), int(rng.integers(pw - crop + 1))
        bg = _resize(photo[y : y + crop, x : x + crop], (self.img_size, self.img_size))
        bg = np.clip(0.5 + self.background_contrast * (bg - bg.mean()), 0.0, 1.0)
        color = rng.uniform(0.0, 1.0, 3)
        color[int(rng.integers(3))] = 1.0  # bright, saturated digits
        direction = int(rng.integers(DIRECTIONS))
        angle = 2 * math.pi * direction / DIRECTIONS
        speed = rng.uniform(*self.speed)
        velocity = speed * np.array([math.sin(angle), math.cos(angle)])
        limit = self.img_size - self.sprite_size
        start = rng.uniform(0, limit, 2)
        positions = _bounce_path(start, velocity, self.num_frames, limit)
        frames, alpha = render_clip(bg, sprite, color, positions)
        video = torch.from_numpy(frames).permute(3, 0, 1, 2).contiguous()
        fg = token_ground_truth(torch.from_numpy(alpha), self.tubelet)
        return dict(
            video=video,
            alpha=torch.from_numpy(alpha),
            foreground=fg,
            label=int(targets[k]),
            direction=direction,
            positions=positions,
        )

    def clipset(self, label: str = "digit") -> ClipSet:
        """All clips as a `ClipSet`; its labels: the digit class (``label="digit"``, 10 classes) or the motion
        direction (``"direction"``, 8 classes 45 degrees apart; bounces change the direction during a clip)."""
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
