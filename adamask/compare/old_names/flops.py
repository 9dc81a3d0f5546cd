"""Compatibility name: cost accounting lives in `adamask.compare.costs`.

python -m adamask.flops        # the paper-scale cost table (also: adamask costs)
"""

import sys

from adamask.compare.costs import (  # noqa: F401
    CHECKPOINT,
    COMPONENTS,
    build_cost_model,
    format_cost_table,
    main,
    paper_scale_configs,
    paper_scale_table,
    step_costs,
)

build_model = build_cost_model

__all__ = [
    "COMPONENTS",
    "CHECKPOINT",
    "build_model",
    "step_costs",
    "paper_scale_configs",
    "paper_scale_table",
    "format_cost_table",
]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
