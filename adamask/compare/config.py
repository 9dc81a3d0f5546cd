"""What defines a comparison run: the strategies (`StrategySpec`, parsed from ``"NAME[:RATIO][:KEY=VALUE,...]"``),
every setting (`CompareConfig`, saved as config.json) and whether this machine can run it (the device, the
optional dependencies)."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, List, Optional, Tuple

import torch

from ..loss import BASELINES, DEFAULT_SAMPLING_WEIGHT, ESTIMATORS
from ..mae import MAE_CONFIGS
from ..registry import default_ratio, list_maskings, strategy_info
from ..schedules import RatioSchedule, parse_ratio_schedule
from ..validation import (
    check_choice,
    check_mask_ratio,
    check_positive_int,
    check_real,
    check_sampling_weight,
    check_tubelet,
)
from .errors import UserError, missing_extra
from .options import CHEAP_SAMPLER, SAMPLER_OPTIONS, parse_sampler_options
from .rundir import json_default, strict_json

__all__ = [
    "DEFAULT_STRATEGIES",
    "PROBE_LABELS",
    "MAX_SEED",
    "StrategySpec",
    "CompareConfig",
    "parse_strategy",
    "check_device",
    "check_extras",
]

# equal-budget controls: every method at its own ratio, and random (the reference of each budget) and tube at
# the ratio of the learned and content-aware strategies; the paper's sampler block and the cheap setting
DEFAULT_STRATEGIES = (
    "random:0.9",
    "tube:0.9",
    "frame:0.9",
    "random:0.95",
    "tube:0.95",
    "motion:0.95",
    "adaptive:0.95",
    f"adaptive:0.95:{CHEAP_SAMPLER}",
    "error_predictor:0.95",
)
BUDGETS = ("steps", "flops")
PROBE_LABELS = ("direction", "digit")  # the embedded data's probe labels; the first is the default
# the settings that do not change what a run computes: a run resumed with other values of these continues
_NOT_IDENTITY = ("out", "device", "threads", "strategies", "checkpoint_every", "figure_clips", "seeds")
MAX_SEED = 2**32 - 1


# how a strategy's label shows each option: a short prefix before the value ("" for variant: the value alone)
_TAGS = dict(variant="", width="w", depth="d", num_heads="h", mlp_ratio="mlp", token_pool="pool",
             checkpoint="ckpt", detach_input="detach", temperature="t")  # fmt: skip


def _tag(key: str, value: Any) -> str:
    """One option as the label shows it: width=24 -> w24, token_pool=(1, 2, 2) -> pool1x2x2, checkpoint=True ->
    ckpt (False: nockpt), variant=attention -> attention."""
    prefix = _TAGS.get(key, key)
    if isinstance(value, bool):
        return prefix if value else f"no{prefix}"
    if isinstance(value, (tuple, list)):
        return prefix + "x".join(str(v) for v in value)
    return prefix + (f"{value:g}" if isinstance(value, float) else str(value))


@dataclass(frozen=True)
class StrategySpec:
    """A strategy to compare: a registered name, its mask ratio and its own options (keyword arguments of its
    constructor, as (key, value) pairs in `SAMPLER_OPTIONS` order; they win over the run's ``--sampler``
    options)."""

    name: str
    mask_ratio: float
    options: Tuple[Tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        """``<name>_<ratio>``, with the options after an underscore, compactly (`_tag`): e.g.
        adaptive_0.95_attention-w24-pool1x2x2."""
        base = f"{self.name}_{self.mask_ratio:g}"
        return f"{base}_{'-'.join(_tag(k, v) for k, v in self.options)}" if self.options else base

    def record(self) -> Dict[str, Any]:
        """The strategy as a JSON value: name, mask_ratio and options (a dict)."""
        return dict(name=self.name, mask_ratio=self.mask_ratio, options={k: v for k, v in self.options})

    def stem(self, replicate: int = 0) -> str:
        """The file name (without suffix) of this strategy's run with seed ``--seed + replicate``: the label for
        the first seed (as a single-seed run names it), ``<label>_seed<replicate>`` for the others."""
        return self.label if replicate == 0 else f"{self.label}_seed{replicate}"


def _option_order(key: str) -> Tuple[int, str]:
    keys = list(SAMPLER_OPTIONS)
    return (keys.index(key) if key in keys else len(keys), key)


def parse_strategy(spec: str) -> StrategySpec:
    """``"NAME[:RATIO][:KEY=VALUE,...]"`` -> StrategySpec, e.g. ``"adaptive:0.95:variant=attention,width=24"``;
    the name must be registered (see list_maskings()), the options are those of ``--sampler``
    (`SAMPLER_OPTIONS`)."""
    if not isinstance(spec, str) or not spec.strip():
        raise TypeError(f"strategy must be a non-empty string NAME[:RATIO][:KEY=VALUE,...], got {spec!r}")
    name, *rest = spec.strip().split(":")
    options_text = rest.pop() if rest and "=" in rest[-1] else None
    if len(rest) > 1 or any("=" in part for part in rest):
        raise ValueError(f"strategy {spec!r} must be NAME[:RATIO][:KEY=VALUE,...]")
    ratio = rest[0] if rest else ""
    if name not in list_maskings():
        raise ValueError(
            f"unknown masking strategy {name!r} in {spec!r}; registered: {list_maskings()} "
            f"(register your own with adamask.register_masking and load it with --import)"
        )
    options: Tuple[Tuple[str, Any], ...] = ()
    if options_text is not None:
        parsed = parse_sampler_options(options_text.split(","), what=f"strategy {spec!r}: option")
        options = tuple(sorted(parsed.items(), key=lambda kv: _option_order(kv[0])))
    if ratio:
        try:
            value = float(ratio)
        except ValueError:
            raise ValueError(f"mask ratio in strategy {spec!r} must be a number in (0, 1), got {ratio!r}") from None
        check_mask_ratio(value, f"mask ratio of {spec!r}")
    else:
        value = default_ratio(name)
    return StrategySpec(name, float(value), options)


@dataclass
class CompareConfig:
    """Everything that defines a comparison run (saved as config.json)."""

    strategies: List[str] = field(default_factory=lambda: list(DEFAULT_STRATEGIES))
    out: str = "runs/compare"
    size: str = "tiny"
    img_size: int = 32
    num_frames: int = 16
    tubelet: Tuple[int, int, int] = (2, 8, 8)
    model_overrides: Dict[str, Any] = field(default_factory=dict)
    masking_options: Dict[str, Any] = field(default_factory=dict)
    steps: int = 150
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
    clips_per_video: Optional[int] = None  # None: chosen from the number of videos (data.clips_per_video_for)
    figure_clips: int = 3
    seed: int = 0
    seeds: int = 3  # runs per strategy, with seeds seed, seed + 1, ...: the same for every strategy
    probe_label: Optional[str] = None  # the embedded data's probe label: "direction" (8 classes, None) or "digit"
    probe_train_clips: int = 512  # embedded clips the probes are fitted on (none of them trained on)
    probe_test_clips: int = 256  # embedded clips the probes are scored on
    finetune_steps: int = 0  # the fine-tuning probe's steps per fine-tuning seed (0: no fine-tuning probe)
    finetune_seeds: int = 2  # fine-tuning seeds per encoder (the fine-tuning probe's own noise)
    device: str = "cpu"
    threads: int = 1  # torch's CPU threads during the run (0: torch's default)
    checkpoint_every: int = 100
    ratio_schedule: Optional[str] = None  # "START:END[:KIND[:STEPS]]" applied to every strategy during training
    decoder_masking: Optional[str] = None  # "NAME[:RATIO]", e.g. "running_cell:0.5"
    sampling_entropy_weight: float = 0.0
    held_out: List[str] = field(default_factory=list)  # videos held out for evaluation (names, stems or paths)
    # "steps": every strategy trains `steps` steps; "flops": each trains for the training FLOPs of `steps` steps
    # of random masking at `common_ratio` (its steps scaled by its cost per step, `adamask.compare.costs`)
    budget: str = "steps"
    compile: bool = False  # the training step's forward and loss terms as one torch.compile graph

    @classmethod
    def quick(cls, **kw: Any) -> "CompareConfig":
        """A few-second configuration for tests: 32x32 px, 8 frames, a 1-layer 32-wide model, 6 steps."""
        base: Dict[str, Any] = dict(
            size="nano",
            img_size=32,
            num_frames=8,
            tubelet=(2, 8, 8),
            steps=6,
            batch_size=4,
            warmup_steps=2,
            train_clips=16,
            test_clips=8,
            eval_draws=1,
            eval_points=2,
            knn_k=3,
            figure_clips=2,
            checkpoint_every=3,
            clips_per_video=2,
            seeds=1,
            probe_train_clips=16,
            probe_test_clips=8,
        )
        base.update(kw)
        return cls(**base)

    def specs(self) -> List[StrategySpec]:
        """The parsed strategies, in order."""
        return [parse_strategy(s) for s in self.strategies]

    def validate(self) -> None:
        """Check every setting on its own (ValueError / TypeError naming the field); what depends on the
        token grid is checked by `adamask.compare.model.check_on_grid`."""
        if not isinstance(self.strategies, (list, tuple)) or not self.strategies:
            raise ValueError(f"strategies must name at least one masking strategy, got {self.strategies!r}")
        labels = [s.label for s in self.specs()]
        if len(set(labels)) != len(labels):
            raise ValueError(f"strategies list repeats a strategy: {self.strategies}")
        check_choice(self.size, tuple(sorted(MAE_CONFIGS)), "size")
        for name in (
            "steps",
            "batch_size",
            "train_clips",
            "test_clips",
            "eval_draws",
            "eval_points",
            "knn_k",
            "stride",
            "img_size",
            "num_frames",
            "checkpoint_every",
            "figure_clips",
            "seeds",
            "probe_train_clips",
            "probe_test_clips",
            "finetune_seeds",
        ):
            check_positive_int(getattr(self, name), name)
        limits = (
            ("warmup_steps", None),
            ("seed", MAX_SEED - self.seeds + 1),
            ("threads", None),
            ("finetune_steps", None),
        )
        for name, high in limits:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (high and value > high):
                raise ValueError(f"{name} must be an int in [0, {high or 'inf'}], got {value!r}")
        for name in ("sprite_size", "clips_per_video"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), name)
        check_tubelet(self.tubelet)
        check_mask_ratio(self.common_ratio, "common_ratio")
        check_choice(self.pixel_loss, ("normalized", "raw"), "pixel_loss")
        check_choice(self.sampling_estimator, ESTIMATORS, "sampling_estimator")
        check_choice(self.sampling_baseline, BASELINES, "sampling_baseline")
        check_real(self.lr, "lr", low=0.0, low_open=True)
        check_real(self.weight_decay, "weight_decay", low=0.0)
        check_real(self.sampler_lr_scale, "sampler_lr_scale", low=0.0, low_open=True)
        check_real(self.background_contrast, "background_contrast", low=0.0, high=1.0)
        check_sampling_weight(self.sampling_weight)
        check_sampling_weight(self.sampling_entropy_weight, "sampling_entropy_weight")
        if not isinstance(self.device, str):
            raise TypeError(f"device must be a str such as 'cpu' or 'cuda', got {self.device!r}")
        self.schedule()
        self.decoder_spec()
        if self.held_out and not self.videos:
            raise ValueError(f"held_out names videos to hold out; it needs videos, got held_out={self.held_out}")
        check_choice(self.probe_label, (None, *PROBE_LABELS), "probe_label")
        check_choice(self.budget, BUDGETS, "budget")
        if not isinstance(self.compile, bool):
            raise TypeError(f"compile must be a bool, got {self.compile!r}")
        for name, value, why in (
            ("compile", self.compile, "every new ratio is a new graph to compile"),
            ("budget flops", self.budget == "flops", "the cost of a step changes with the ratio"),
        ):
            if value and self.ratio_schedule is not None:
                raise ValueError(f"{name} does not combine with ratio_schedule ({why}); use one or the other")
        if self.videos and self.probe_label is not None:
            raise ValueError(
                f"probe_label {self.probe_label!r} is a label of the embedded data; with videos the "
                f"probe labels are their class folders (one folder per class)"
            )

    def for_seed(self, replicate: int) -> "CompareConfig":
        """The configuration of the ``replicate``-th run of each strategy: seed ``seed + replicate`` (model
        initialisation, batch order, mask draws); the clips stay those of ``seed``."""
        return replace(self, seed=self.seed + replicate, seeds=1)

    def schedule(self) -> Optional[RatioSchedule]:
        """The mask-ratio schedule of the training (None: each strategy's own ratio throughout)."""
        if self.ratio_schedule is None:
            return None
        if not isinstance(self.ratio_schedule, str):
            raise TypeError(f"ratio_schedule must be a str START:END[:KIND[:STEPS]], got {self.ratio_schedule!r}")
        steps = check_positive_int(self.steps, "steps")
        try:
            return parse_ratio_schedule(self.ratio_schedule, steps)
        except ValueError as e:
            raise ValueError(f"ratio_schedule {self.ratio_schedule!r}: {e}") from None

    def decoder_spec(self) -> Optional[StrategySpec]:
        """The decoder masking (a strategy that needs nothing, e.g. running_cell) and its ratio, or None."""
        if self.decoder_masking is None:
            return None
        if not isinstance(self.decoder_masking, str):
            raise TypeError(f"decoder_masking must be a str NAME[:RATIO], got {self.decoder_masking!r}")
        spec = parse_strategy(self.decoder_masking)
        if strategy_info(spec.name).needs != "nothing":
            raise ValueError(
                f"decoder_masking must name a strategy that needs no tokens (e.g. running_cell:0.5), "
                f"got {self.decoder_masking!r} (it needs {strategy_info(spec.name).needs})"
            )
        return spec

    def model_config(self) -> Dict[str, Any]:
        """Keyword arguments of the reference MAE: the named size with this run's input and pixel loss."""
        cfg = dict(MAE_CONFIGS[self.size])
        cfg.update(img_size=self.img_size, num_frames=self.num_frames, tubelet=tuple(self.tubelet))
        cfg["norm_pix_loss"] = self.pixel_loss == "normalized"
        decoder = self.decoder_spec()
        if decoder is not None:
            cfg.update(decoder_masking=decoder.name, decoder_mask_ratio=decoder.mask_ratio)
        cfg.update(self.model_overrides)
        return cfg

    def identity(self) -> Dict[str, Any]:
        """The settings a resumed run must share with the run it continues (every field but those that do not
        change what is computed), as config.json holds them."""
        d = {k: v for k, v in asdict(self).items() if k not in _NOT_IDENTITY}
        d["tubelet"] = list(d["tubelet"])
        return json.loads(json.dumps(strict_json(d), default=json_default))

    def run_identity(self, spec: StrategySpec) -> Dict[str, Any]:
        """What produced one strategy's run under this configuration (that of `for_seed`): the settings
        (`identity`) and the strategy with its options, as its checkpoint holds them and its result's
        ``config_hash`` hashes them."""
        return json.loads(json.dumps(dict(self.identity(), strategy=spec.record()), default=json_default))


def check_device(device: str) -> torch.device:
    """``device`` as a torch.device that exists here; a `UserError` saying so if it does not (e.g. cuda without
    CUDA)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise UserError(f"--device {device!r} is not a torch device (e.g. cpu, cuda, cuda:1): {e}") from e
    if dev.type == "meta":
        raise UserError("--device meta holds no data; use cpu or cuda")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(
                f"device {device!r} was requested but CUDA is not available here "
                f"(torch.cuda.is_available() is False); use --device cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(
                f"device {device!r} was requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif dev.type != "cpu":
        backend = getattr(torch, dev.type, None) or getattr(torch.backends, dev.type, None)
        if backend is None or not getattr(backend, "is_available", lambda: False)():
            raise UserError(f"device {device!r} was requested but {dev.type} is not available here; use --device cpu")
    return dev


def check_extras(cfg: CompareConfig, figures: bool) -> None:
    """The optional dependencies the run ``cfg`` needs are installed (a `MissingExtraError` naming the missing
    one and how to install it): PyAV for videos, scikit-learn and matplotlib for the embedded data, matplotlib
    for the figures."""
    needed = (
        [("av", "reading videos")]
        if cfg.videos
        else [("sklearn", "the embedded dataset (scikit-learn)"), ("matplotlib", "the embedded dataset")]
    )
    if figures:
        needed.append(("matplotlib", "drawing the figures (or pass --no-figures)"))
    for module, purpose in needed:
        if importlib.util.find_spec(module) is None:
            raise missing_extra(module, purpose)
