"""Statistics over seeds: the mean with a 95% interval (Student t, K - 1 degrees of freedom), the paired
difference of two strategies run with the same seeds, and the verdict it supports.

Imports nothing heavy (no torch, no scipy): the quantiles of Student's t are tabulated for 1-30 degrees of
freedom and expanded (Cornish-Fisher) beyond, accurate to 1e-4.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Optional, Sequence

__all__ = ["T_975", "t_quantile", "interval", "paired_difference", "verdict", "VERDICTS"]

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


def interval(values: Sequence[Any], resolution: Optional[float] = None, _spread: float = 12.0) -> Dict[str, Any]:
    """Mean and 95% interval of the finite numbers among ``values`` (one per seed; None / NaN are left out).

    Returns dict(mean, half_width, low, high, n, values): ``half_width`` = t_{0.975, n-1} * sd / sqrt(n) with
    the sample standard deviation; None (and low = high = mean) with a single value; mean None with none.
    ``resolution``: the step of a discrete metric (an accuracy on M clips: 1 / M); its values are only known to
    within it, so sd is at least that of the rounding, resolution / sqrt(12) (a few seeds that happen to agree
    exactly do not give a zero-width interval).
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
    hw = t_quantile(n - 1) * sd / math.sqrt(n)
    return dict(mean=mean, half_width=hw, low=mean - hw, high=mean + hw, n=n, values=xs)


def paired_difference(
    values: Sequence[Any], reference: Sequence[Any], resolution: Optional[float] = None
) -> Dict[str, Any]:
    """The differences values[k] - reference[k] of runs with the same seed k (pairs with a missing or
    non-finite value are left out), summarised by `interval` (a difference of two values rounded to
    ``resolution`` has at least the sd resolution / sqrt(6))."""
    if len(values) != len(reference):
        raise ValueError(f"paired values need one per seed on both sides, got {len(values)} and {len(reference)}")
    pairs = [(a, b) for a, b in zip(values, reference, strict=True) if _finite([a]) and _finite([b])]
    return interval([float(a) - float(b) for a, b in pairs], resolution, _spread=6.0)


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
