"""The statistics of a comparison, from the metric table: every metric as a mean with a 95% interval over the
seeds (Student t, K - 1 degrees of freedom), strategies grouped by visible budget (their mask ratio) with random
at that ratio as the group's reference, differences to the reference and probes against the untrained encoder
paired by seed, and the verdict each difference supports ("better", "worse", "indistinguishable", ...).

A strategy's entry is its results.json entry (``runs``: one result dict per seed, in seed order), a list of
result dicts, or a single result dict (one seed). The untrained encoder: its probe dicts, one per seed. The
quantiles of Student's t are tabulated for 1-30 degrees of freedom and expanded (Cornish-Fisher) beyond,
accurate to 1e-4 (no scipy).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .metrics import METRICS, Metric, Result

__all__ = [
    "T_975",
    "VERDICTS",
    "t_quantile",
    "repeat_noise",
    "interval",
    "paired_difference",
    "verdict",
    "over_seeds",
    "runs_of",
    "untrained_runs",
    "Group",
    "budget_groups",
    "compare_results",
    "probe_discrimination",
]

# the 0.975 quantile of Student's t with 1..30 degrees of freedom
T_975 = (
    12.7062,
    4.3027,
    3.1824,
    2.7764,
    2.5706,
    2.4469,
    2.3646,
    2.3060,
    2.2622,
    2.2281,
    2.2010,
    2.1788,
    2.1604,
    2.1448,
    2.1314,
    2.1199,
    2.1098,
    2.1009,
    2.0930,
    2.0860,
    2.0796,
    2.0739,
    2.0687,
    2.0639,
    2.0595,
    2.0555,
    2.0518,
    2.0484,
    2.0452,
    2.0423,
)
Z_975 = 1.959964
VERDICTS = ("better", "worse", "indistinguishable", "negligible", "one seed")


def t_quantile(dof: int) -> float:
    """The 0.975 quantile of Student's t with ``dof`` >= 1 degrees of freedom (a 95% two-sided interval)."""
    if isinstance(dof, bool) or not isinstance(dof, numbers.Integral) or dof < 1:
        raise ValueError(f"dof must be an int >= 1, got {dof!r}")
    if dof <= len(T_975):
        return T_975[dof - 1]
    z = Z_975
    return (
        z
        + (z**3 + z) / (4 * dof)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * dof**3)
    )


def _finite(values: Sequence[Any]) -> list:
    return [float(v) for v in values if isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)]


def repeat_noise(repeats: Sequence[Any]) -> Optional[float]:
    """The standard error a value has from its own repeats, when each value is the mean of repeats (the
    fine-tuning probe's seeds): ``repeats`` holds, per value, the list of its repeats (or None); for each list of
    two or more finite repeats sd / sqrt(count) (sample sd), and the root mean square of these; None without."""
    ses = []
    for rep in repeats:
        xs = _finite(rep) if isinstance(rep, (list, tuple)) else []
        if len(xs) >= 2:
            mean = math.fsum(xs) / len(xs)
            ses.append(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1) / len(xs))
    return math.sqrt(math.fsum(ses) / len(ses)) if ses else None


def interval(
    values: Sequence[Any], resolution: Optional[float] = None, _spread: float = 12.0, floor: Optional[float] = None
) -> Dict[str, Any]:
    """Mean and 95% interval of the finite numbers among ``values`` (one per seed; None / NaN are left out).

    Returns dict(mean, half_width, low, high, n, values): ``half_width`` = t_{0.975, n-1} * sd / sqrt(n) with
    the sample standard deviation; None (and low = high = mean) with a single value; mean None with none.
    ``resolution``: the step of a discrete metric (an accuracy on M clips: 1 / M); its values are only known to
    within it, so sd is at least that of the rounding, resolution / sqrt(12) (a few seeds that happen to agree
    exactly do not give a zero-width interval). ``floor``: a standard error each value has on its own (the
    `repeat_noise` of the repeats it is the mean of), so sd is at least that: seeds whose means happen to agree
    do not hide their repeats' spread.
    """
    xs = _finite(values)
    n = len(xs)
    if n == 0:
        return dict(mean=None, half_width=None, low=None, high=None, n=0, values=[])
    mean = math.fsum(xs) / n
    if n == 1:
        return dict(mean=mean, half_width=None, low=mean, high=mean, n=1, values=xs)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    if resolution is not None:
        sd = max(sd, resolution / math.sqrt(_spread))
    if floor is not None:
        sd = max(sd, floor)
    hw = t_quantile(n - 1) * sd / math.sqrt(n)
    return dict(mean=mean, half_width=hw, low=mean - hw, high=mean + hw, n=n, values=xs)


def paired_difference(
    values: Sequence[Any], reference: Sequence[Any], resolution: Optional[float] = None, floor: Optional[float] = None
) -> Dict[str, Any]:
    """The differences values[k] - reference[k] of runs with the same seed k (pairs with a missing or
    non-finite value are left out), summarised by `interval` (a difference of two values rounded to
    ``resolution`` has at least the sd resolution / sqrt(6); ``floor``: the differences' own standard error,
    `repeat_noise` of their repeats' differences)."""
    if len(values) != len(reference):
        raise ValueError(f"paired values need one per seed on both sides, got {len(values)} and {len(reference)}")
    pairs = [(a, b) for a, b in zip(values, reference, strict=True) if _finite([a]) and _finite([b])]
    return interval([float(a) - float(b) for a, b in pairs], resolution, _spread=6.0, floor=floor)


def verdict(diff: Dict[str, Any], better: Optional[str], negligible: float = 0.0) -> Optional[str]:
    """What a paired difference (`paired_difference`) says for a metric where ``better`` is "lower" or
    "higher": "better" / "worse" when its 95% interval excludes 0 on that side, "indistinguishable" when it
    contains 0, "negligible" when it excludes 0 but its mean is smaller than ``negligible`` in size (a
    difference beyond noise that the table's precision does not show), "one seed" when there is no interval
    (a single pair); None without pairs or direction."""
    if better is None or diff.get("n", 0) == 0:
        return None
    if diff["half_width"] is None:
        return "one seed"
    low, high = diff["low"], diff["high"]
    if low <= 0.0 <= high:
        return "indistinguishable"
    if abs(diff["mean"]) < negligible:
        return "negligible"
    up = low > 0.0
    return "better" if up == (better == "higher") else "worse"


# ---------------------------------------------------------------------------------------------
# a comparison's statistics


def _repeats(metric: Metric, runs: Sequence[Result]) -> List[Any]:
    """The repeats of each run's value (None each for a metric without)."""
    read = metric.repeats
    return [read(r) if read is not None else None for r in runs]


def over_seeds(metric: Metric, runs: Sequence[Result]) -> Dict[str, Any]:
    """Mean and 95% interval (`interval`) of a metric's values over a strategy's runs (one per seed), at least as
    wide as the spread of each value's own repeats (`repeat_noise`)."""
    return interval(metric.values(runs), metric.step(runs), floor=repeat_noise(_repeats(metric, runs)))


def runs_of(entry: Any) -> List[Result]:
    """The result dicts (one per seed) of a strategy's entry."""
    if isinstance(entry, (list, tuple)):
        return list(entry)
    if isinstance(entry, dict) and isinstance(entry.get("runs"), list):
        return entry["runs"]
    return [entry]


def untrained_runs(untrained: Any) -> List[Result]:
    """The untrained encoder's runs as result dicts holding only "probe" (from its entry, its list of probe
    dicts or a single probe dict)."""
    if untrained is None:
        return []
    probes = untrained.get("runs") if isinstance(untrained, dict) and "runs" in untrained else untrained
    probes = probes if isinstance(probes, (list, tuple)) else [probes]
    return [dict(probe=p) for p in probes]


def _spec(label: str, runs: Sequence[Result]) -> Tuple[str, Optional[float]]:
    """(strategy name, mask ratio) of an entry: from its runs, else from its label ``name_ratio``."""
    first = runs[0] if runs else {}
    if isinstance(first.get("name"), str) and first.get("mask_ratio") is not None:
        return first["name"], float(first["mask_ratio"])
    name, _, ratio = label.rpartition("_")
    try:
        return name, float(ratio)
    except ValueError:
        return label, None


@dataclass
class Group:
    """Strategies at one mask ratio (one visible budget) and their reference: random at that ratio, if run."""

    ratio: Optional[float]
    labels: List[str]
    reference: Optional[str]


def budget_groups(results: Dict[str, Any]) -> List[Group]:
    """The strategies grouped by mask ratio, in the order each ratio first appears."""
    groups: Dict[Optional[float], Group] = {}
    for label, entry in results.items():
        name, ratio = _spec(label, runs_of(entry))
        g = groups.setdefault(ratio, Group(ratio, [], None))
        g.labels.append(label)
        if name == "random" and g.reference is None:
            g.reference = label
    return list(groups.values())


def _pairs(runs: Sequence[Result], others: Sequence[Result]) -> Tuple[List[Result], List[Result]]:
    """Runs of two strategies matched by seed (by position where a run does not say its seed)."""
    seeds = [r.get("seed", i) for i, r in enumerate(runs)]
    theirs = {r.get("seed", i): r for i, r in enumerate(others)}
    matched = [(r, theirs[s]) for r, s in zip(runs, seeds, strict=True) if s in theirs]
    return [a for a, _ in matched], [b for _, b in matched]


def _paired(m: Metric, runs: Sequence[Result], others: Sequence[Result]) -> Dict[str, Any]:
    mine, theirs = _pairs(runs, others)
    steps = [s for s in (m.step(mine), m.step(theirs)) if s is not None]
    repeats = [
        [float(x) - float(y) for x, y in zip(a, b, strict=True)] if a and b and len(a) == len(b) else None
        for a, b in zip(_repeats(m, mine), _repeats(m, theirs), strict=True)
    ]
    diff = paired_difference(m.values(mine), m.values(theirs), max(steps) if steps else None, repeat_noise(repeats))
    return dict(diff, verdict=verdict(diff, m.better, m.negligible()))


def _diverged(runs: Sequence[Result]) -> List[Dict[str, Any]]:
    """Each run that diverged: its seed, the step and why."""
    return [
        dict(
            seed=r.get("seed", i),
            step=r["diverged_at_step"],
            reason=r.get("diverged_reason") or "its training loss was not finite",
        )
        for i, r in enumerate(runs)
        if r.get("diverged_at_step") is not None
    ]


def compare_results(
    results: Dict[str, Any], untrained: Any = None, metrics: Sequence[Metric] = METRICS
) -> Dict[str, Any]:
    """The statistics behind the report (results.json's summary): ``seeds`` (runs per strategy), ``groups``
    (ratio, reference, strategies), per strategy its ``stats`` (each metric's mean and 95% interval over the
    seeds), its ``reference`` and ``vs_reference`` (differences paired by seed, with a verdict, for the ranked
    metrics), ``vs_untrained`` (the probes against the untrained encoder of the same seed) and the runs that
    ``diverged`` (seed, step, reason); ``untrained``: the untrained encoder's probe statistics and ``chance``."""
    ref_runs = untrained_runs(untrained)
    groups = budget_groups(results)
    reference = {label: g.reference for g in groups for label in g.labels}
    out: Dict[str, Any] = {}
    for label, entry in results.items():
        runs = runs_of(entry)
        ref = reference[label]
        one: Dict[str, Any] = dict(
            stats={m.name: over_seeds(m, runs) for m in metrics if m.text is None}, reference=ref
        )
        if ref is not None and ref != label:
            one["vs_reference"] = {m.name: _paired(m, runs, runs_of(results[ref])) for m in metrics if m.better}
        if ref_runs:
            one["vs_untrained"] = {m.name: _paired(m, runs, ref_runs) for m in metrics if m.untrained and m.better}
        if _diverged(runs):
            one["diverged"] = _diverged(runs)
        out[label] = one
    chance = interval([r["probe"].get("chance") for r in ref_runs if isinstance(r["probe"], dict)])["mean"]
    return dict(
        seeds=max((len(runs_of(e)) for e in results.values()), default=0),
        groups=[dict(ratio=g.ratio, reference=g.reference, strategies=g.labels) for g in groups],
        strategies=out,
        chance=chance,
        untrained=dict(stats={m.name: over_seeds(m, ref_runs) for m in metrics if m.untrained}),
        probes=probe_discrimination(out, chance, metrics),
    )


def probe_discrimination(
    strategies: Dict[str, Any], chance: Optional[float], metrics: Sequence[Metric] = METRICS
) -> Dict[str, Dict[str, Any]]:
    """Whether each probe tells a pretrained encoder from an untrained one: per probe metric, the strategies
    whose accuracy is above the untrained encoder's (paired by seed) AND whose 95% interval lies above chance
    (``discriminating``), those above the untrained encoder only (``above_untrained_only``: an untrained
    encoder below chance is the probe's noise, not learning), how many paired comparisons were made
    (``comparisons``) and ``discriminates``: True / False, None where no comparison had an interval.
    ``strategies``: `compare_results`' per-strategy entries."""
    out: Dict[str, Dict[str, Any]] = {}
    for m in (m for m in metrics if m.untrained and m.better):
        found: List[str] = []
        only: List[str] = []
        n, decided = 0, False
        for label, info in strategies.items():
            vs = info.get("vs_untrained", {}).get(m.name)
            if not vs or vs["n"] == 0:
                continue
            n += 1
            decided = decided or vs["verdict"] not in (None, "one seed")
            if vs["verdict"] != "better":
                continue
            low = info["stats"][m.name]["low"]
            (found if chance is None or (low is not None and low > chance) else only).append(label)
        out[m.name] = dict(
            discriminating=found,
            above_untrained_only=only,
            comparisons=n,
            discriminates=bool(found) if decided else None,
        )
    return out
