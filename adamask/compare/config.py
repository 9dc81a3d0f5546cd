"""What defines a comparison run: the strategies (`StrategySpec`, parsed from ``"name:ratio"``), every
setting (`CompareConfig`, saved as config.json), the presets and the ``--sampler KEY=VALUE`` options."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..loss import DEFAULT_SAMPLING_WEIGHT
from ..mae import MAE_CONFIGS
from ..masking import default_ratio, list_maskings
from ..validation import check_choice, check_mask_ratio, check_positive_int
from .io import json_default

__all__ = [
    "DEFAULT_STRATEGIES",
    "PRESETS",
    "SAMPLER_OPTIONS",
    "StrategySpec",
    "CompareConfig",
    "parse_strategy",
    "parse_sampler_options",
]

DEFAULT_STRATEGIES = ("random:0.9", "tube:0.9", "frame:0.9", "adaptive:0.95")

PRESETS: Dict[str, Dict[str, Any]] = {
    "demo": dict(),  # the CompareConfig defaults: raw pixels, background contrast 0.3, mean baseline
    "paper": dict(pixel_loss="normalized", background_contrast=0.8, sampling_baseline=None),
}

# the keyword arguments of AdaptiveTokenSampler that ``--sampler KEY=VALUE`` accepts, with their types
SAMPLER_OPTIONS = {"variant": str, "width": int, "depth": int, "num_heads": int, "mlp_ratio": float,
                   "token_pool": tuple, "checkpoint": bool, "detach_input": bool}


@dataclass(frozen=True)
class StrategySpec:
    """A strategy to compare: a registered name and its mask ratio (None = the strategy's default)."""

    name: str
    mask_ratio: float

    @property
    def label(self) -> str:
        return f"{self.name}_{self.mask_ratio:g}"


def parse_strategy(spec: str) -> StrategySpec:
    """``"name"`` or ``"name:ratio"`` -> StrategySpec; the name must be registered (see list_maskings())."""
    if not isinstance(spec, str) or not spec.strip():
        raise TypeError(f"strategy must be a non-empty string 'name' or 'name:ratio', got {spec!r}")
    name, _, ratio = spec.strip().partition(":")
    if name not in list_maskings():
        raise ValueError(f"unknown masking strategy {name!r} in {spec!r}; registered: {list_maskings()} "
                         f"(register your own with adamask.register_masking and load it with --import)")
    if ratio:
        try:
            value = float(ratio)
        except ValueError:
            raise ValueError(f"mask ratio in strategy {spec!r} must be a number in (0, 1), got {ratio!r}") from None
        check_mask_ratio(value, f"mask ratio of {spec!r}")
    else:
        value = default_ratio(name)
    return StrategySpec(name, float(value))


@dataclass
class CompareConfig:
    """Everything that defines a comparison run (saved as config.json)."""

    strategies: List[str] = field(default_factory=lambda: list(DEFAULT_STRATEGIES))
    out: str = "runs/compare"
    size: str = "tiny"
    img_size: int = 64
    num_frames: int = 16
    tubelet: Tuple[int, int, int] = (2, 8, 8)
    model_overrides: Dict[str, Any] = field(default_factory=dict)
    masking_options: Dict[str, Any] = field(default_factory=dict)
    steps: int = 200
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 20
    sampling_weight: float = DEFAULT_SAMPLING_WEIGHT
    sampler_lr_scale: float = 1.0
    pixel_loss: str = "raw"
    sampling_estimator: str = "paper"
    sampling_baseline: Optional[str] = "mean"
    train_clips: int = 256
    test_clips: int = 64
    common_ratio: float = 0.9
    eval_draws: int = 2
    eval_points: int = 6
    knn_k: int = 10
    sprite_size: Optional[int] = None
    background_contrast: float = 0.3
    videos: List[str] = field(default_factory=list)
    stride: int = 4
    clips_per_video: int = 4
    figure_clips: int = 3
    seed: int = 0
    device: str = "cpu"
    checkpoint_every: int = 100

    @classmethod
    def quick(cls, **kw: Any) -> "CompareConfig":
        """A few-second configuration for tests: 32x32 px, 8 frames, a 1-layer 32-wide model, 6 steps."""
        base = dict(size="nano", img_size=32, num_frames=8, tubelet=(2, 8, 8), steps=6, batch_size=4,
                    warmup_steps=2, train_clips=16, test_clips=8, eval_draws=1, eval_points=2, knn_k=3,
                    figure_clips=2, checkpoint_every=3, clips_per_video=2)
        base.update(kw)
        return cls(**base)

    def specs(self) -> List[StrategySpec]:
        """The parsed strategies, in order."""
        return [parse_strategy(s) for s in self.strategies]

    def validate(self) -> None:
        if not self.strategies:
            raise ValueError("strategies must name at least one masking strategy")
        labels = [s.label for s in self.specs()]
        if len(set(labels)) != len(labels):
            raise ValueError(f"strategies list repeats a strategy: {self.strategies}")
        if self.size not in MAE_CONFIGS:
            raise ValueError(f"size must be one of {sorted(MAE_CONFIGS)}, got {self.size!r}")
        for name in ("steps", "batch_size", "train_clips", "test_clips", "eval_draws", "knn_k", "stride",
                     "clips_per_video", "img_size", "num_frames", "checkpoint_every"):
            check_positive_int(getattr(self, name), name)
        check_mask_ratio(self.common_ratio, "common_ratio")
        check_choice(self.pixel_loss, ("normalized", "raw"), "pixel_loss")
        if not (isinstance(self.sampler_lr_scale, (int, float)) and self.sampler_lr_scale > 0):
            raise ValueError(f"sampler_lr_scale must be a positive number, got {self.sampler_lr_scale!r}")
        if not (isinstance(self.background_contrast, (int, float)) and 0 <= self.background_contrast <= 1):
            raise ValueError(f"background_contrast must be in [0, 1], got {self.background_contrast!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not (isinstance(self.sampling_weight, (int, float)) and self.sampling_weight >= 0):
            raise ValueError(f"sampling_weight must be a number >= 0, got {self.sampling_weight!r}")

    def model_config(self) -> Dict[str, Any]:
        """Keyword arguments of the reference MAE: the named size with this run's input and pixel loss."""
        cfg = dict(MAE_CONFIGS[self.size])
        cfg.update(img_size=self.img_size, num_frames=self.num_frames, tubelet=tuple(self.tubelet))
        cfg["norm_pix_loss"] = self.pixel_loss == "normalized"
        cfg.update(self.model_overrides)
        return cfg

    def identity(self) -> Dict[str, Any]:
        """The fields a resumed run must share with the run it continues."""
        d = asdict(self)
        for k in ("out", "device", "strategies", "checkpoint_every", "figure_clips"):
            d.pop(k)
        d["tubelet"] = list(d["tubelet"])
        return json.loads(json.dumps(d, default=json_default))


def parse_sampler_options(items: Sequence[str]) -> Dict[str, Any]:
    """["variant=attention", "token_pool=1x2x2", ...] -> AdaptiveTokenSampler keyword arguments."""
    out: Dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in SAMPLER_OPTIONS:
            raise ValueError(f"--sampler takes KEY=VALUE with KEY in {sorted(SAMPLER_OPTIONS)}, got {item!r}")
        kind = SAMPLER_OPTIONS[key]
        try:
            if kind is tuple:
                out[key] = tuple(int(v) for v in value.lower().split("x"))
            elif kind is bool:
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                out[key] = value.lower() in ("true", "1")
            else:
                out[key] = kind(value)
        except ValueError:
            raise ValueError(f"--sampler {key} must be {'TxHxW ints' if kind is tuple else kind.__name__}, "
                             f"got {value!r}") from None
    return out
