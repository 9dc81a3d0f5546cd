"""Compatibility name: cost accounting lives in `adamask.compare.costs`.

    python -m adamask.flops        # the paper-scale cost table (also: adamask costs)
"""
from .compare.costs import (  # noqa: F401
    CHECKPOINT,
    COMPONENTS,
    __all__,
    build_model,
    format_cost_table,
    main,
    paper_scale_configs,
    paper_scale_table,
    step_costs,
)

if __name__ == "__main__":  # pragma: no cover
    main()
