"""What the comparison measures and reports: the measures of masks, errors and foregrounds (foreground
allocation of sampled masks and of probabilities, the mean error of foreground and background tokens, mask
statistics) and `METRICS`, the table of the report's columns.

`METRICS` drives the results: each `Metric` row says how one run's value is read from its result dict (or
computed after training), whether lower or higher is better, the column's header, format and legend, and
whether the honest summary names it. Over the seeds of a strategy every value becomes a mean with a 95%
interval (`adamask.compare.stats`), compared with the reference of its budget (random at the same ratio)
pairwise by seed; the markdown table, its legend, its paired differences and the summary all come from it, so
a new metric is one function (``compute``) and one row.

Mask convention: (B, N) bool, True = masked; tokens in (t, h, w) order over the grid (T', H', W'). The measures
run at reporting time (host syncs are fine here), never inside the masking path.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from torch import Tensor

from ..mae import MaskedVideoAutoencoder
from ..validation import check_choice
from .config import CompareConfig, StrategySpec
from .data import ClipSet

__all__ = [
    "foreground_allocation",
    "probability_allocation",
    "region_errors",
    "mask_statistics",
    "summarize",
    "Result",
    "Metric",
    "MetricContext",
    "METRICS",
    "at",
    "fmt_number",
    "is_number",
]


def _check_mask(mask: Tensor, name: str = "mask") -> None:
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.dim() != 2:
        raise TypeError(
            f"{name} must be a (B, N) bool tensor (True = masked), got "
            f"{getattr(mask, 'dtype', type(mask).__name__)} {tuple(getattr(mask, 'shape', ()))}"
        )


def _check_foreground(foreground: Tensor, shape: torch.Size) -> Tensor:
    if not isinstance(foreground, Tensor):
        raise TypeError(f"foreground must be a (B, N) tensor, got {type(foreground).__name__}")
    if foreground.shape != shape:
        raise ValueError(f"foreground must have shape {tuple(shape)} like the mask, got {tuple(foreground.shape)}")
    fg = foreground.float()
    if bool((fg < 0).any()):
        raise ValueError("foreground weights must be >= 0")
    return fg


def foreground_allocation(mask: Tensor, foreground: Tensor) -> Tensor:
    """Share of the visible tokens on the foreground divided by the foreground's share of all tokens.

    mask: (B, N) bool, True = masked. foreground: (B, N) bool, or float weights >= 0 (e.g. motion energy).
    Returns (B,) float32: (sum_{i visible} g_i / N_v) / (sum_i g_i / N); 1.0 = uniform, > 1 = the visible
    tokens favour the foreground. NaN for clips with no foreground. For uniform random masking its
    expectation is exactly 1 for every clip.
    """
    _check_mask(mask)
    g = _check_foreground(foreground, mask.shape)
    vis = (~mask).float()
    n_vis = vis.sum(1)
    share_visible = (g * vis).sum(1) / n_vis.clamp_min(1.0)
    share_all = g.mean(1)
    out = share_visible / share_all
    return torch.where(share_all > 0, out, torch.full_like(out, float("nan")))


def region_errors(errors: Tensor, foreground: Tensor) -> Tensor:
    """Mean reconstruction error of the masked tokens on the foreground and on the background, per clip.

    errors: (B, N) float, each masked token's error, NaN where visible. foreground: (B, N) bool, or float
    weights >= 0 (motion energy: scaled to [0, 1] by each clip's largest, a token counting as foreground by its
    weight and as background by the rest). Returns (B, 2) float32 (foreground, background); NaN where a clip
    has no masked token of that kind. The sampler's REINFORCE signal follows the difference of the two.
    """
    if not isinstance(errors, Tensor) or errors.dim() != 2:
        raise TypeError(f"errors must be a (B, N) float tensor, got {getattr(errors, 'shape', type(errors).__name__)}")
    g = _check_foreground(foreground, errors.shape)
    g = g / g.amax(1, keepdim=True).clamp_min(1e-12)
    masked = torch.isfinite(errors).float()
    e = torch.nan_to_num(errors.float(), nan=0.0)
    out = []
    for w in (g * masked, (1.0 - g) * masked):
        total = w.sum(1)
        out.append(torch.where(total > 0, (e * w).sum(1) / total.clamp_min(1e-12), float("nan")))
    return torch.stack(out, 1)


def probability_allocation(probs: Tensor, foreground: Tensor) -> Tensor:
    """Expected allocation of one draw from ``probs`` (B, N): N * sum_i p_i g_i / sum_i g_i, (B,) float32
    (1.0 for uniform probabilities, NaN for clips with no foreground)."""
    if not isinstance(probs, Tensor) or probs.dim() != 2:
        raise TypeError(f"probs must be a (B, N) tensor, got {getattr(probs, 'shape', type(probs).__name__)}")
    g = _check_foreground(foreground, probs.shape)
    p = probs.float() / probs.float().sum(1, keepdim=True)
    total = g.sum(1)
    out = probs.shape[1] * (p * g).sum(1) / total
    return torch.where(total > 0, out, torch.full_like(out, float("nan")))


def mask_statistics(mask: Tensor, grid: Sequence[int]) -> Dict[str, object]:
    """Summary of masks (B, N) bool (True = masked) over the grid (T', H', W'):

    visible_per_time_slice: list of T' floats, the mean number of visible tokens in each time slice;
    spatial_coverage: mean fraction of the H'W' positions visible in at least one time slice;
    visible_fraction: mean fraction of visible tokens;
    visible_per_slice_std: mean over clips of the std of the per-slice visible counts (0 = even in time).
    """
    _check_mask(mask)
    if len(grid) != 3:
        raise ValueError(f"grid must be (T', H', W'), got {grid!r}")
    t, h, w = (int(g) for g in grid)
    if mask.shape[1] != t * h * w:
        raise ValueError(f"mask has {mask.shape[1]} tokens but grid {tuple(grid)} has {t * h * w}")
    vis = (~mask).view(-1, t, h * w).float()
    per_slice = vis.sum(2)  # (B, T')
    covered = (vis.amax(1) > 0).float().mean(1)  # (B,)
    return dict(
        visible_per_time_slice=[round(float(v), 4) for v in per_slice.mean(0)],
        spatial_coverage=float(covered.mean()),
        visible_fraction=float(vis.mean()),
        visible_per_slice_std=float(per_slice.std(1, unbiased=False).mean()),
    )


def summarize(values: List[float]) -> Dict[str, float]:
    """mean / std / n of finite values (reporting helper)."""
    t = torch.tensor([v for v in values if v == v], dtype=torch.float64)
    if t.numel() == 0:
        return dict(mean=float("nan"), std=float("nan"), n=0)
    return dict(mean=float(t.mean()), std=float(t.std(unbiased=False)), n=int(t.numel()))


# ---------------------------------------------------------------------------------------------
# the metric table

Result = Dict[str, Any]  # one run (strategy and seed): an entry of results.json["strategies"][label]["runs"]


@dataclass
class MetricContext:
    """What a computed metric sees after a strategy's training: the trained model, the strategy, the run's
    configuration, the training and held-out clips, the device, and ``own``, the held-out evaluation under
    the strategy's own masks (`evaluate_reconstruction`: loss, allocation (M,), masks (M, N) bool with
    True = masked, probs (M, N) or None)."""

    model: MaskedVideoAutoencoder
    spec: StrategySpec
    config: CompareConfig
    train: ClipSet
    test: ClipSet
    device: torch.device
    own: Dict[str, Any]


def at(*path: str) -> Callable[[Result], Any]:
    """A reader of a result dict: ``at("probe", "knn_accuracy")(r)`` is r["probe"]["knn_accuracy"], None
    where a key is missing."""

    def read(result: Result) -> Any:
        value: Any = result
        for key in path:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return read


def is_number(value: Any) -> bool:
    """Whether ``value`` is a real number other than NaN (a value a column can rank): not None, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value == value


def fmt_number(value: Optional[float], digits: int = 3) -> str:
    """``value`` with ``digits`` decimals; "n/a" for None, NaN and anything that is not a number."""
    return f"{value:.{digits}f}" if is_number(value) else "n/a"


@dataclass(frozen=True)
class Metric:
    """One column of the comparison table.

    name: its key in the summary (and in the result dict, for a computed metric).
    header: the column header; ``legend``: its sentence under the table (both may use {common_ratio} and
        {target}, the reconstruction target's name).
    read: result dict of one run -> value (default: result[name]); ``better``: "lower", "higher" or None (not
        compared: never bold, not in the summary).
    digits, scale, unit: a value v shows as ``v * scale`` with ``digits`` decimals and ``unit``; over several
        seeds as "mean ± half-width of the 95% interval".
    text: result dict -> cell text, instead of the value (a column that is the same for every seed, shown
        from the first run).
    untrained: also shown for the untrained encoder, whose result holds only "probe" (and compared with it).
    key: named in the honest summary, as ``words`` (default: the header).
    resolution: result dict -> the step of a discrete value (an accuracy on M clips: 1 / M) or None; widens
        the intervals of seeds that agree exactly (`adamask.compare.stats.interval`).
    repeats: result dict -> the values of the run's own repeats whose mean is its value (the fine-tuning
        probe's seeds), or None; their spread is a floor under the spread over seeds
        (`adamask.compare.stats.repeat_noise`).
    compute: MetricContext -> value, stored as result[name] after training (None: the value is already in
        the result dict).
    """

    name: str
    header: str
    read: Optional[Callable[[Result], Any]] = None
    better: Optional[str] = None
    digits: int = 3
    text: Optional[Callable[[Result], str]] = None
    legend: str = ""
    untrained: bool = False
    compute: Optional[Callable[[MetricContext], Any]] = None
    key: bool = False
    words: str = ""
    scale: float = 1.0
    unit: str = ""
    resolution: Optional[Callable[[Result], Optional[float]]] = None
    repeats: Optional[Callable[[Result], Optional[List[float]]]] = None

    def __post_init__(self) -> None:
        check_choice(self.better, (None, "lower", "higher"), f"better of metric {self.name!r}")
        if self.read is None:
            object.__setattr__(self, "read", at(self.name))

    def value(self, result: Result) -> Any:
        read = self.read if self.read is not None else at(self.name)
        return read(result)

    def values(self, runs: Sequence[Result]) -> List[Any]:
        """The value of each run (one per seed; None where missing)."""
        return [self.value(r) for r in runs]

    def step(self, runs: Sequence[Result]) -> Optional[float]:
        """The coarsest resolution of the runs' values (None for a continuous metric)."""
        resolution = self.resolution
        steps = (
            [float(s) for s in (resolution(r) for r in runs) if s is not None and is_number(s)] if resolution else []
        )
        return max(steps) if steps else None

    def format(self, value: Any, sign: bool = False, unit: bool = True) -> str:
        """A value as the column shows it ("n/a" if it is not a number); ``sign``: always with + or -;
        ``unit``: followed by the unit."""
        if not is_number(value):
            return "n/a"
        return f"{value * self.scale:{'+' if sign else ''}.{self.digits}f}{self.unit if unit else ''}"

    def format_interval(self, stats: Dict[str, Any], sign: bool = False) -> str:
        """`adamask.compare.stats.interval` output as "mean ± half-width" (the mean alone without an interval)."""
        if stats.get("half_width") is None:
            return self.format(stats.get("mean"), sign)
        hw = f"{stats['half_width'] * self.scale:.{self.digits}f}"
        return f"{self.format(stats['mean'], sign, unit=False)} ± {hw}{self.unit}"

    def format_difference(self, diff: Dict[str, Any]) -> str:
        """A paired difference (`adamask.compare.stats.paired_difference`) as "+mean [+low, +high]" (the mean
        alone without an interval), the unit at the end."""
        if diff.get("half_width") is None:
            return self.format(diff.get("mean"), sign=True)
        low, high = (self.format(diff[k], sign=True, unit=False) for k in ("low", "high"))
        return f"{self.format(diff['mean'], sign=True, unit=False)} [{low}, {high}]{self.unit}"

    def cell(self, result: Result) -> str:
        """The cell of one run."""
        return self.text(result) if self.text is not None else self.format(self.value(result))

    def negligible(self) -> float:
        """Half a unit of the cell's last digit: a difference smaller than this does not show in the table."""
        return 0.5 * 10.0**-self.digits / self.scale

    def describe(self, **words: Any) -> str:
        """How the summary names this metric."""
        return (self.words or self.header).format(**words)


# the text cells read through `at`: a result without the value (a diverged strategy, a run too short to time
# its steps) shows n/a
def _visible(r: Result) -> str:
    visible, tokens = r.get("num_visible"), r.get("num_tokens")
    return f"{visible} / {tokens}" if visible is not None and tokens is not None else "n/a"


def _sampler_share(r: Result) -> Any:
    return at("timing", "sampler_share")(r) if r.get("learned") else None


def _budget(r: Result) -> str:
    """GFLOP per step x steps = training GFLOP ("n/a" for what is unknown)."""
    steps, per_step, total = r.get("steps"), r.get("gflops_per_step"), r.get("train_gflops")
    if not is_number(per_step) or not is_number(total):
        return "n/a" if steps is None else f"n/a x {steps}"
    return f"{per_step:.3g} x {steps} = {total:.3g}"


def _per_probe_clip(r: Result) -> Optional[float]:
    """An accuracy's step: 1 / the number of clips the probe was scored on."""
    n = at("probe", "test_clips")(r)
    return 1.0 / n if is_number(n) and n > 0 else None


METRICS: Sequence[Metric] = (
    Metric("num_visible", "visible / tokens", text=_visible),
    Metric(
        "recon_loss_own_ratio",
        "recon. loss, own masks",
        digits=4,
        legend="Reconstruction losses: MSE of {target} on the masked tokens of held-out clips: under each "
        "strategy's own masks (what it trains on; a sampler that shows the hard tokens lowers it);",
    ),
    Metric(
        "recon_loss_common_ratio",
        "recon. loss @ {common_ratio:g}",
        digits=4,
        legend="'@ {common_ratio:g}': under each strategy's own masks at that ratio (a learned sampler lowers "
        "it by choosing what to show);",
    ),
    Metric(
        "recon_loss_random_masks",
        "recon. loss, same random masks @ {common_ratio:g}",
        better="lower",
        digits=4,
        key=True,
        words="held-out loss on the same random masks",
        legend="'same random masks': every encoder-decoder on identical random masks, the fairest "
        "comparison of what was learned.",
    ),
    Metric(
        "foreground_allocation",
        "foreground allocation",
        at("foreground_allocation", "mean"),
        "higher",
        digits=2,
        key=True,
        legend="Foreground allocation = share of visible tokens on the foreground / the foreground's share "
        "of tokens (1.0 = uniform), mean over held-out clips;",
    ),
    Metric(
        "probability_allocation",
        "allocation of P",
        at("probability_allocation", "mean"),
        digits=2,
        legend="'allocation of P' = the same for one draw from the strategy's probabilities (n/a without).",
    ),
    Metric(
        "knn_accuracy",
        "k-NN acc.",
        at("probe", "knn_accuracy"),
        "higher",
        untrained=True,
        key=True,
        words="k-NN probe",
        resolution=_per_probe_clip,
    ),
    Metric(
        "linear_accuracy",
        "linear acc.",
        at("probe", "linear_accuracy"),
        "higher",
        untrained=True,
        key=True,
        words="linear probe",
        resolution=_per_probe_clip,
    ),
    Metric(
        "finetune_accuracy",
        "fine-tune acc.",
        at("probe", "finetune", "accuracy"),
        "higher",
        untrained=True,
        key=True,
        words="fine-tuning probe",
        resolution=_per_probe_clip,
        repeats=at("probe", "finetune", "accuracies"),
        legend="Fine-tune acc.: held-out accuracy of the encoder on every token with a new head, trained end to "
        "end on the probe clips (the downstream measure of video MAE papers), the mean over its fine-tuning "
        "seeds, whose spread is part of the interval; n/a where it did not run (--finetune STEPS).",
    ),
    Metric("step_ms", "step time", at("timing", "step_ms"), "lower", digits=1, key=True, unit=" ms"),
    Metric(
        "sampler_share",
        "sampler share",
        _sampler_share,
        digits=0,
        scale=100.0,
        unit="%",
        legend="Sampler share = the sampler's forward and backward passes / the whole training step.",
    ),
    Metric(
        "peak_mb",
        "peak MB",
        at("memory", "peak_mb"),
        "lower",
        digits=1,
        legend="Peak MB on CPU is an estimate (weights, grads, AdamW state and tensors saved for backward).",
    ),
    Metric(
        "train_gflops",
        "GFLOP / step x steps = train GFLOP",
        text=_budget,
        digits=0,
        legend="GFLOP / step x steps = train GFLOP: the training FLOPs of one step (forward + backward, from the "
        "cost accounting), the steps each strategy trained and their product - the same steps for every "
        "strategy with --budget steps, the same FLOPs with --budget flops (those of --steps steps of random "
        "masking at the common ratio).",
    ),
    Metric("spatial_coverage", "spatial coverage", at("mask_statistics", "spatial_coverage"), digits=2),
    Metric("error_foreground", "masked error fg, same random masks", at("masked_error", "foreground"), digits=3),
    Metric(
        "error_background",
        "masked error bg, same random masks",
        at("masked_error", "background"),
        digits=3,
        legend="Masked error fg / bg: the mean error of the masked foreground tokens and of the masked background "
        "tokens under the same random masks; the learned samplers follow their difference (equal errors "
        "give them nothing to follow, a background error near 0 means only the background is "
        "reconstructed).",
    ),
)
