"""The comparison app's names stay importable from where they were before it became a package."""

import importlib
from pathlib import Path

import pytest

MOVED = [
    ("adamask.atomic", "adamask.compare.io"),
    ("adamask.data", "adamask.compare.data"),
    ("adamask.metrics", "adamask.compare.metrics"),
    ("adamask.figures", "adamask.compare.figures"),
    ("adamask.flops", "adamask.compare.costs"),
]


@pytest.mark.parametrize("old,new", MOVED)
def test_old_module_names_are_the_moved_objects(old, new):
    o, n = importlib.import_module(old), importlib.import_module(new)
    # the module of the old name belongs to the app (adamask/compare/old_names/), not to the core
    assert Path(o.__file__).parent == Path(importlib.import_module("adamask.compare").__file__).parent / "old_names"
    renamed = {"build_model": "build_cost_model"}
    assert o.__all__
    for name in o.__all__:
        assert getattr(o, name) is getattr(n, renamed.get(name, name)), name


def test_compare_and_cli_names():
    import adamask.cli
    import adamask.compare

    for name in (
        "DEFAULT_STRATEGIES",
        "SCHEMA",
        "CHECKPOINT_FORMAT",
        "StrategySpec",
        "CompareConfig",
        "parse_strategy",
        "build_strategy",
        "build_model",
        "load_checkpoint",
        "train_step",
        "evaluate_reconstruction",
        "clip_features",
        "probe",
        "train_strategy",
        "load_data",
        "markdown_table",
        "run_compare",
    ):
        assert hasattr(adamask.compare, name), name
    for name in ("main", "build_parser", "PRESETS", "SAMPLER_OPTIONS", "parse_sampler_options"):
        assert hasattr(adamask.cli, name), name
    assert adamask.cli.PRESETS["paper"]["pixel_loss"] == "normalized"
