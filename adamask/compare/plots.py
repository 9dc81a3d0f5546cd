"""Curves and bars of a comparison: learning curves, the foreground allocation over training of the learned
(and content-aware) strategies, the allocation per strategy with its interval over seeds, and the allocation
against the step of several run folders side by side (e.g. the presets).

``results``: {label: results.json entry}, each entry holding ``runs`` (one result dict per seed; a single
result dict counts as one seed). Curves show the mean over the seeds that did not diverge.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .drawing import PLOT_DPI, pyplot, save_png
from .stats import interval
from .verdicts import runs_of

__all__ = [
    "CURVES_SIZE",
    "SUMMARY_SIZE",
    "ALLOCATION_SIZE",
    "PRESET_CURVES_SIZE",
    "learning_curves_figure",
    "summary_figure",
    "allocation_curves_figure",
    "preset_curves_figure",
    "mean_curve",
]

CURVES_SIZE = (11.0, 3.4)
SUMMARY_SIZE = (10.0, 3.4)
ALLOCATION_SIZE = (10.0, 3.6)
PRESET_CURVES_SIZE = (14.0, 3.8)


def _smooth(x: Sequence[Optional[float]], k: int) -> np.ndarray:
    a = np.array([np.nan if v is None else v for v in x], dtype=np.float64)
    if k <= 1 or a.size < k:
        return a
    ok = np.isfinite(a)
    num = np.convolve(np.where(ok, a, 0.0), np.ones(k), "valid")
    den = np.convolve(ok.astype(float), np.ones(k), "valid")
    return np.concatenate([np.full(k - 1, np.nan), num / np.maximum(den, 1)])


def mean_curve(entry: Any, x: str, y: str) -> Tuple[List[float], np.ndarray, np.ndarray, np.ndarray]:
    """(steps, mean, low, high) of history series ``y`` against ``x`` over the runs of ``entry`` that did not
    diverge and have the series (low / high: the smallest and largest seed); empty without any."""
    runs = [r for r in runs_of(entry) if r.get("diverged_at_step") is None and r.get("history", {}).get(y)]
    if not runs:
        runs = [r for r in runs_of(entry) if r.get("history", {}).get(y)][:1]
    if not runs:
        return [], np.array([]), np.array([]), np.array([])
    steps = runs[0]["history"][x]
    n = min(len(r["history"][y]) for r in runs)
    a = np.array([[np.nan if v is None else v for v in r["history"][y][:n]] for r in runs], dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a step where every seed is NaN stays NaN
        return list(steps[:n]), np.nanmean(a, 0), np.nanmin(a, 0), np.nanmax(a, 0)


def _learned(entry: Any) -> bool:
    return any(r.get("learned") for r in runs_of(entry))


def learning_curves_figure(results: Dict[str, Any], path: os.PathLike) -> Path:
    """Training reconstruction loss (smoothed), held-out reconstruction loss (own masks) and the sampling loss
    of learned strategies, per strategy (mean over seeds), against the step. Size: CURVES_SIZE * PLOT_DPI."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=CURVES_SIZE, dpi=PLOT_DPI)
    for i, (label, entry) in enumerate(results.items()):
        color = f"C{i % 10}"
        steps, rec, _, _ = mean_curve(entry, "step", "reconstruction_loss")
        k = max(1, len(steps) // 25)
        axes[0].plot(steps, _smooth(list(rec), k), label=label, color=color)
        es, ev, _, _ = mean_curve(entry, "eval_step", "eval_loss")
        axes[1].plot(es, ev, marker="o", ms=3, label=label, color=color)
        if _learned(entry):
            steps, ls, _, _ = mean_curve(entry, "step", "sampling_loss")
            axes[2].plot(steps, _smooth(list(ls), k), label=label, color=color)
    axes[0].set_title("training reconstruction loss", fontsize=9)
    axes[1].set_title("held-out reconstruction loss (own masks)", fontsize=9)
    axes[2].set_title("sampling loss (learned strategies)", fontsize=9)
    for ax in axes:
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7)
    if not any(_learned(e) for e in results.values()):
        axes[2].text(0.5, 0.5, "no learned strategy", ha="center", va="center", transform=axes[2].transAxes)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.15, top=0.9, wspace=0.25)
    return save_png(fig, path)


def summary_figure(results: Dict[str, Any], path: os.PathLike) -> Path:
    """Foreground allocation per strategy (bars: mean over seeds with the 95% interval; 1.0 = uniform) and the
    mean number of visible tokens per time slice (first seed). Size: SUMMARY_SIZE * PLOT_DPI."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=SUMMARY_SIZE, dpi=PLOT_DPI)
    labels = list(results)
    stats = [
        interval([(r.get("foreground_allocation") or {}).get("mean") for r in runs_of(results[k])]) for k in labels
    ]
    axes[0].bar(
        range(len(labels)),
        [s["mean"] or 0.0 for s in stats],
        yerr=[s["half_width"] or 0.0 for s in stats],
        color="tab:blue",
        capsize=3,
    )
    axes[0].axhline(1.0, color="k", lw=1, ls="--")
    axes[0].set_xticks(range(len(labels)))
    axes[0].set_xticklabels(labels, fontsize=7, rotation=20)
    axes[0].set_title("foreground allocation (1.0 = uniform; 95% interval over seeds)", fontsize=9)
    for k in labels:
        run = next((r for r in runs_of(results[k]) if r.get("mask_statistics")), None)
        if run is not None:
            v = run["mask_statistics"]["visible_per_time_slice"]
            axes[1].plot(range(len(v)), v, marker="o", ms=3, label=k)
    axes[1].set_title("visible tokens per time slice (held-out mean)", fontsize=9)
    axes[1].set_xlabel("time slice", fontsize=8)
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.tick_params(labelsize=7)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.2, top=0.9, wspace=0.2)
    return save_png(fig, path)


def _has_probs(entry: Any) -> bool:
    return any(
        v is not None for r in runs_of(entry) for v in r.get("history", {}).get("eval_probability_allocation", [])
    )


def _allocation_lines(ax: Any, ax_p: Any, label: str, entry: Any, color: str, style: str = "-") -> None:
    steps, mean, low, high = mean_curve(entry, "eval_step", "eval_allocation")
    if steps:
        ax.plot(steps, mean, style, color=color, marker="o", ms=3, label=label)
        ax.fill_between(steps, low, high, color=color, alpha=0.15, lw=0)
    steps, mean, low, high = mean_curve(entry, "eval_step", "eval_probability_allocation")
    if steps and np.isfinite(mean).any():
        ax_p.plot(steps, mean, style, color=color, marker="o", ms=3, label=label)
        ax_p.fill_between(steps, low, high, color=color, alpha=0.15, lw=0)


def _finish_allocation_axes(axes: Sequence[Any]) -> None:
    axes[0].set_title("foreground allocation of the sampled masks (held-out)", fontsize=9)
    axes[1].set_title("expected allocation of P (one draw)", fontsize=9)
    for ax in axes:
        ax.axhline(1.0, color="k", lw=1, ls="--")
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)


def allocation_curves_figure(results: Dict[str, Any], path: os.PathLike) -> Path:
    """The foreground allocation of each learned strategy's sampled masks and the expected allocation of its
    probabilities at each evaluation point of training (mean over seeds, band: smallest to largest seed);
    strategies with probabilities that do not learn (e.g. motion) dashed, as references; 1.0 = uniform.
    Size: ALLOCATION_SIZE * PLOT_DPI."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=ALLOCATION_SIZE, dpi=PLOT_DPI)
    for i, (label, entry) in enumerate(results.items()):
        if _learned(entry) or _has_probs(entry):
            _allocation_lines(axes[0], axes[1], label, entry, f"C{i % 10}", "-" if _learned(entry) else "--")
    _finish_allocation_axes(axes)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.15, top=0.9, wspace=0.2)
    return save_png(fig, path)


def preset_curves_figure(
    runs: Dict[str, Dict[str, Any]], path: os.PathLike, strategies: Optional[Sequence[str]] = None
) -> Path:
    """Several comparison runs side by side (e.g. one per preset): ``runs`` maps a name to its results.json
    dict; per run and learned strategy (``strategies``: these labels only) the held-out reconstruction loss
    under its own masks (each run's own target), the foreground allocation of its sampled masks and the
    expected allocation of its probabilities against the step, as in `allocation_curves_figure`.
    Size: PRESET_CURVES_SIZE * PLOT_DPI."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=PRESET_CURVES_SIZE, dpi=PLOT_DPI)
    i = 0
    for name, res in runs.items():
        target = "normalised" if res.get("config", {}).get("pixel_loss") == "normalized" else "raw"
        for label, entry in res["strategies"].items():
            if _learned(entry) and (strategies is None or label in strategies):
                color = f"C{i % 10}"
                steps, mean, low, high = mean_curve(entry, "eval_step", "eval_loss")
                if steps:
                    axes[0].plot(steps, mean, color=color, marker="o", ms=3, label=f"{name}: {label} ({target})")
                    axes[0].fill_between(steps, low, high, color=color, alpha=0.15, lw=0)
                _allocation_lines(axes[1], axes[2], f"{name}: {label}", entry, color)
                i += 1
    axes[0].set_title("held-out reconstruction loss (own masks)", fontsize=9)
    axes[0].set_xlabel("step", fontsize=8)
    axes[0].tick_params(labelsize=7)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=7)
    _finish_allocation_axes(axes[1:])
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.14, top=0.9, wspace=0.18)
    return save_png(fig, path)
