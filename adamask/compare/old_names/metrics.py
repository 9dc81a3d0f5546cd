"""Compatibility name: the comparison's metrics live in `adamask.compare.metrics`."""

from adamask.compare.metrics import (  # noqa: F401
    foreground_allocation,
    knn_probe,
    linear_probe,
    mask_statistics,
    probability_allocation,
    summarize,
)

__all__ = ["foreground_allocation", "probability_allocation", "mask_statistics", "knn_probe", "linear_probe"]
