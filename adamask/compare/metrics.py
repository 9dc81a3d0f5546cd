"""Metrics for comparing masking strategies: foreground allocation, mask statistics and frozen-feature
probes, and `METRICS`, the table of what the comparison reports.

Mask convention: (B, N) bool, True = masked; tokens in (t, h, w) order over the grid (T', H', W').
These run at reporting time (host syncs are fine here), never inside the masking path.

`METRICS` drives the results: each `Metric` row says how a strategy's value is read from its result dict
(or computed after training), whether lower or higher is better, the column's header, format and legend.
results.json's summary (the best strategy per metric), the markdown table and its legend all come from it,
so a new metric is one function (``compute``) and one row.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..mae import MaskedVideoAutoencoder
from ..validation import check_choice, check_positive_int
from .config import CompareConfig, StrategySpec
from .data import ClipSet

__all__ = [
    "foreground_allocation",
    "probability_allocation",
    "mask_statistics",
    "knn_probe",
    "linear_probe",
    "summarize",
    "Metric",
    "MetricContext",
    "METRICS",
    "at",
    "fmt_number",
    "is_number",
]

Result = Dict[str, Any]  # one strategy's entry in results.json["strategies"]


def _check_mask(mask: Tensor, name: str = "mask") -> None:
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.dim() != 2:
        raise TypeError(f"{name} must be a (B, N) bool tensor (True = masked), got "
                        f"{getattr(mask, 'dtype', type(mask).__name__)} {tuple(getattr(mask, 'shape', ()))}")


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


def _check_probe_inputs(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor) -> None:
    for name, x in (("train_features", train_x), ("test_features", test_x)):
        if not isinstance(x, Tensor) or x.dim() != 2:
            raise TypeError(f"{name} must be a (M, D) float tensor, got {getattr(x, 'shape', type(x).__name__)}")
    for name, y, x in (("train_labels", train_y, train_x), ("test_labels", test_y, test_x)):
        if not isinstance(y, Tensor) or y.dim() != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"{name} must be a (M,) int tensor matching its features, got "
                             f"{getattr(y, 'shape', type(y).__name__)}")
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"train and test features differ in width: {train_x.shape[1]} vs {test_x.shape[1]}")


def knn_probe(train_features: Tensor, train_labels: Tensor, test_features: Tensor, test_labels: Tensor,
              k: int = 10) -> float:
    """k-NN accuracy (cosine similarity, majority vote with similarity weights) of frozen features (M, D)."""
    _check_probe_inputs(train_features, train_labels, test_features, test_labels)
    check_positive_int(k, "k")
    a = F.normalize(train_features.float(), dim=1)
    b = F.normalize(test_features.float(), dim=1)
    sim = b @ a.T
    k = min(k, a.shape[0])
    top, idx = sim.topk(k, dim=1)
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    votes = torch.zeros(b.shape[0], num_classes).scatter_add_(1, train_labels[idx], (top + 1).clamp_min(0))
    return float((votes.argmax(1) == test_labels).float().mean())


def linear_probe(train_features: Tensor, train_labels: Tensor, test_features: Tensor, test_labels: Tensor,
                 weight_decay: float = 1e-3, steps: int = 100, seed: int = 0) -> float:
    """Accuracy of a multinomial logistic regression (L2 = weight_decay) on standardised frozen features (M, D);
    scikit-learn's L-BFGS solver when installed, else torch's; deterministic."""
    _check_probe_inputs(train_features, train_labels, test_features, test_labels)
    x, xt = train_features.double(), test_features.double()
    mu, sd = x.mean(0), x.std(0).clamp_min(1e-6)
    x, xt = (x - mu) / sd, (xt - mu) / sd
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        return _torch_linear_probe(x.float(), train_labels, xt.float(), test_labels, weight_decay, steps, seed)
    if len(set(train_labels.tolist())) < 2:
        return float((test_labels == train_labels[0]).double().mean())
    clf = LogisticRegression(C=1.0 / (2 * weight_decay * len(x)), max_iter=max(steps, 100), random_state=seed)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings at tiny budgets
        clf.fit(x.numpy(), train_labels.numpy())
    return float((torch.from_numpy(clf.predict(xt.numpy())) == test_labels).double().mean())


def _torch_linear_probe(x: Tensor, y: Tensor, xt: Tensor, yt: Tensor, weight_decay: float, steps: int,
                        seed: int) -> float:
    num_classes = int(max(y.max(), yt.max())) + 1
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(x.shape[1], num_classes, generator=g) * 0.01).requires_grad_(True)
    bias = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, bias], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + bias, y) + weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        return float(((xt @ w + bias).argmax(1) == yt).float().mean())


def summarize(values: List[float]) -> Dict[str, float]:
    """mean / std / n of finite values (reporting helper)."""
    t = torch.tensor([v for v in values if v == v], dtype=torch.float64)
    if t.numel() == 0:
        return dict(mean=float("nan"), std=float("nan"), n=0)
    return dict(mean=float(t.mean()), std=float(t.std(unbiased=False)), n=int(t.numel()))


# ---------------------------------------------------------------------------------------------
# the metric table

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
        for key in path:
            if not isinstance(result, dict):
                return None
            result = result.get(key)
        return result

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
    read: result dict -> value (default: result[name]); ``better``: "lower", "higher" or None (not ranked:
        never bold, not in the summary).
    digits: decimals of the cell; ``text``: result dict -> cell text, instead of the value with ``digits``.
    untrained: also shown for the untrained encoder, whose result holds only "probe".
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

    def __post_init__(self) -> None:
        check_choice(self.better, (None, "lower", "higher"), f"better of metric {self.name!r}")
        if self.read is None:
            object.__setattr__(self, "read", at(self.name))

    def value(self, result: Result) -> Any:
        return self.read(result)

    def cell(self, result: Result) -> str:
        return self.text(result) if self.text is not None else fmt_number(self.value(result), self.digits)


# the text cells read through `at`: a result without the value (a diverged strategy, a run too short to time
# its steps) shows n/a
def _visible(r: Result) -> str:
    visible, tokens = r.get("num_visible"), r.get("num_tokens")
    return f"{visible} / {tokens}" if visible is not None and tokens is not None else "n/a"


def _allocation(r: Result) -> str:
    fa = r.get("foreground_allocation")
    if not isinstance(fa, dict):
        return "n/a"
    return f"{fmt_number(fa.get('mean'), 2)} ± {fmt_number(fa.get('std'), 2)}"


def _sampler_share(r: Result) -> str:
    share = at("timing", "sampler_share")(r)
    return f"{100 * share:.0f}%" if r.get("learned") and is_number(share) else "n/a"


METRICS: Sequence[Metric] = (
    Metric("num_visible", "visible / tokens", text=_visible),
    Metric("recon_loss_own_ratio", "recon. loss, own ratio", digits=4,
           legend="Reconstruction losses: MSE of {target} on the masked tokens of held-out clips, lower is "
                  "better. Own-ratio losses are not comparable across ratios;"),
    Metric("recon_loss_common_ratio", "recon. loss @ {common_ratio:g}", better="lower", digits=4,
           legend="'@ {common_ratio:g}' uses each strategy's own masks at that ratio (a learned sampler lowers "
                  "it by choosing what to show);"),
    Metric("recon_loss_random_masks", "recon. loss, same random masks @ {common_ratio:g}", better="lower",
           digits=4, legend="'same random masks' evaluates every encoder-decoder on identical random masks, the "
                            "fairest comparison of what was learned."),
    Metric("foreground_allocation", "foreground allocation", at("foreground_allocation", "mean"), "higher",
           text=_allocation,
           legend="Foreground allocation = share of visible tokens on the foreground / the foreground's share "
                  "of tokens (1.0 = uniform), mean ± std over held-out clips."),
    Metric("knn_accuracy", "k-NN acc.", at("probe", "knn_accuracy"), "higher", untrained=True),
    Metric("linear_accuracy", "linear acc.", at("probe", "linear_accuracy"), "higher", untrained=True),
    Metric("step_ms", "step ms", at("timing", "step_ms"), "lower", digits=1),
    Metric("sampler_share", "sampler share", at("timing", "sampler_share"), text=_sampler_share,
           legend="Sampler share = the sampler's forward and backward passes / the whole training step."),
    Metric("peak_mb", "peak MB", at("memory", "peak_mb"), "lower", digits=1,
           legend="Peak MB on CPU is an estimate (weights, grads, AdamW state and tensors saved for backward)."),
    Metric("spatial_coverage", "spatial coverage", at("mask_statistics", "spatial_coverage"), digits=2),
)
