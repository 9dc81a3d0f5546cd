"""The launchers' shared argument handling (adamask.integrations.launch)."""

from __future__ import annotations

import sys

import pytest

from adamask.integrations.launch import (
    Swaps,
    launcher_parser,
    parse_launcher_argv,
    pop_option,
    run_options,
    split_launcher_argv,
    wrap_options,
)


def test_split_and_pop_options():
    ours, theirs = split_launcher_argv(["--repo", "x", "--", "--batch_size", "2", "--mask_type=adaptive"])
    assert ours == ["--repo", "x"] and theirs == ["--batch_size", "2", "--mask_type=adaptive"]
    rest, value = pop_option(theirs, "--mask_type")
    assert rest == ["--batch_size", "2"] and value == "adaptive"
    rest, value = pop_option(["--mask_type", "tube", "--x", "1", "--mask_type", "frame"], "--mask_type")
    assert rest == ["--x", "1"] and value == "frame"
    assert pop_option(["--x"], "--mask_type") == (["--x"], None)
    with pytest.raises(ValueError, match="needs a value"):
        pop_option(["--mask_type"], "--mask_type")


def parser():
    return launcher_parser("prog", "description", "a checkout", "run.py")


def test_shared_options_reach_run_and_wrap():
    args, theirs = parse_launcher_argv(
        parser(),
        [
            "--repo",
            "r",
            "--sampling-weight",
            "0.5",
            "--sampling-estimator",
            "plackett_luce",
            "--sampling-baseline",
            "mean",
            "--sampler-depth",
            "2",
            "--",
            "--epochs",
            "1",
        ],
    )
    assert theirs == ["--epochs", "1"]
    opts = run_options(args)
    assert opts == dict(
        script="run.py",
        sampling_weight=0.5,
        sampling_estimator="plackett_luce",
        sampling_baseline="mean",
        sampler_depth=2,
        sampler_heads=None,
        sampler_width=None,
        sampling_entropy_weight=0.0,
    )
    del opts["script"]
    assert wrap_options(**opts) == dict(
        sampling_weight=0.5,
        sampling_estimator="plackett_luce",
        sampling_baseline="mean",
        depth=2,
        num_heads=None,
        width=None,
        sampling_entropy_weight=0.0,
    )


def test_defaults_leave_the_strategy_its_own_sizes():
    args, _ = parse_launcher_argv(parser(), ["--repo", "r", "--", "x"])
    assert run_options(args) == dict(
        script="run.py",
        sampling_weight=1e-4,
        sampling_estimator="paper",
        sampling_baseline=None,
        sampler_depth=None,
        sampler_heads=None,
        sampler_width=None,
        sampling_entropy_weight=0.0,
    )


def test_import_option_imports_modules_and_bad_options_exit(monkeypatch):
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    parse_launcher_argv(parser(), ["--repo", "r", "--import", "colorsys", "--", "x"])
    assert "colorsys" in sys.modules
    with pytest.raises(SystemExit):
        parse_launcher_argv(parser(), ["--repo", "r"])  # no '--'
    with pytest.raises(SystemExit):
        parse_launcher_argv(parser(), ["--repo", "r", "--sampling-estimator", "reinforce", "--", "x"])
    with pytest.raises(ModuleNotFoundError):
        parse_launcher_argv(parser(), ["--repo", "r", "--import", "no_such_module_here", "--", "x"])


def test_entropy_weight_and_the_rloo_baseline_reach_run_and_wrap():
    args, _ = parse_launcher_argv(
        parser(), ["--repo", "r", "--sampling-entropy-weight", "0.25", "--sampling-baseline", "rloo", "--", "x"]
    )
    opts = run_options(args)
    assert opts["sampling_entropy_weight"] == 0.25 and opts["sampling_baseline"] == "rloo"
    del opts["script"]
    w = wrap_options(**opts)
    assert w["sampling_entropy_weight"] == 0.25 and w["sampling_baseline"] == "rloo"


def test_swaps_are_undone_also_when_the_run_fails():
    import types

    target = types.SimpleNamespace(kept="old")
    with pytest.raises(RuntimeError, match="their script failed"):
        with Swaps() as swap:
            swap(target, "kept", "new")
            swap(target, "added", "new")
            swap(target, "kept", "newer")
            assert (target.kept, target.added) == ("newer", "new")
            raise RuntimeError("their script failed")
    assert vars(target) == {"kept": "old"}
