"""Compatibility name: the comparison's figures live in `adamask.compare.figures`."""

from adamask.compare.figures import (  # noqa: F401
    CELL_IN,
    CURVES_SIZE,
    DIM,
    DPI,
    LABEL_IN,
    PLOT_DPI,
    SUMMARY_SIZE,
    TITLE_IN,
    __all__,
    clip_panels,
    learning_curves_figure,
    masks_figure,
    masks_figure_size,
    summary_figure,
    write_animation,
    write_run_figures,
)
