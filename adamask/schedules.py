"""Mask-ratio schedules: change the ratio during training (e.g. linear 0.75 -> 0.95), for every
strategy that supports `set_mask_ratio` (all built-in ones). The count stays the same for every
sample of a batch, as the models require; it changes between steps.

    schedule = RatioSchedule(0.75, 0.95, steps=10_000)
    for step, video in enumerate(loader):
        model.set_mask_ratio(schedule(step))          # reference MAE; or strategy.set_mask_ratio(...)

Each distinct count is a new tensor shape: under torch.compile, prefer a schedule with few distinct
ratios (``every=...``) or compile with dynamic shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from .validation import check_choice, check_mask_ratio, check_positive_int

__all__ = ["RatioSchedule", "SCHEDULE_KINDS", "parse_ratio_schedule"]

SCHEDULE_KINDS = ("linear", "cosine", "step")


@dataclass(frozen=True)
class RatioSchedule:
    """Mask ratio from ``start`` (step 0) to ``end`` (step ``steps`` and after).

    kind: "linear", "cosine" (slow at both ends) or "step" (``start`` until ``steps``, then ``end``).
    every: hold each value for this many steps (fewer distinct counts), default 1.
    """

    start: float
    end: float
    steps: int
    kind: str = "linear"
    every: int = 1

    def __post_init__(self) -> None:
        check_mask_ratio(self.start, "start")
        check_mask_ratio(self.end, "end")
        check_positive_int(self.steps, "steps")
        check_positive_int(self.every, "every")
        check_choice(self.kind, SCHEDULE_KINDS, "kind")

    def __call__(self, step: int) -> float:
        """The mask ratio at training step ``step`` (an int >= 0)."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be an int >= 0, got {step!r}")
        s = (step // self.every) * self.every
        f = min(s / self.steps, 1.0)
        if self.kind == "step":
            f = 1.0 if s >= self.steps else 0.0
        elif self.kind == "cosine":
            f = 0.5 - 0.5 * math.cos(math.pi * f)
        return self.start + (self.end - self.start) * f


def parse_ratio_schedule(text: str, steps: Optional[int] = None) -> RatioSchedule:
    """ "START:END[:KIND[:STEPS]]" -> RatioSchedule, e.g. "0.75:0.95" or "0.75:0.95:cosine:500";
    STEPS defaults to ``steps`` (the run's length)."""
    parts = text.split(":") if isinstance(text, str) else []
    if not 2 <= len(parts) <= 4:
        raise ValueError(f"a ratio schedule is START:END[:KIND[:STEPS]] (e.g. 0.75:0.95:linear), got {text!r}")
    try:
        start, end = float(parts[0]), float(parts[1])
        n = int(parts[3]) if len(parts) == 4 else steps
    except ValueError:
        raise ValueError(f"a ratio schedule is START:END[:KIND[:STEPS]] with numbers, got {text!r}") from None
    if n is None:
        raise ValueError(f"ratio schedule {text!r} needs STEPS (START:END:KIND:STEPS)")
    return RatioSchedule(start, end, n, parts[2] if len(parts) >= 3 else "linear")
