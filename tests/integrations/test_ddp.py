"""A real 2-process torchrun (CPU, gloo) of the HF integration: per-rank masks differ, weights agree."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist
from _upstream_helpers import free_port

pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().with_name("ddp_worker.py")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with the gloo backend is not available")
    trainer = importlib.util.find_spec("accelerate") is not None  # transformers.Trainer needs it
    out = tmp_path_factory.mktemp("ddp") / "report.json"
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--nnodes=1",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        str(WORKER),
        str(out),
    ]
    if trainer:
        cmd.append("--trainer")
    proc = subprocess.run(cmd, env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"torchrun failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return json.loads(out.read_text())


def test_two_ranks_ran(report):
    assert report["world_size"] == 2 and len(report["steps"]) == 3


def test_ddp_broadcasts_rank0_weights(report):
    assert report["init_sampler_diff_before_ddp"] > 0  # ranks built different weights
    assert report["init_sampler_diff_after_ddp"] == 0.0


def test_masks_differ_across_ranks_for_the_same_input(report):
    # with identically seeded global RNGs a plain draw would agree on every rank...
    assert report["control_masks_equal"] is True
    # ...the model's per-rank streams do not
    for step in report["steps"]:
        assert step["masks_equal_across_ranks"] is False
        assert step["masked_per_row"] == [24, 24]
        assert step["reconstruction_loss"][0] != step["reconstruction_loss"][1]


def test_weights_stay_identical_without_find_unused_parameters(report):
    checksums = []
    for step in report["steps"]:
        assert step["params_without_grad"] == []  # every parameter, sampler included, gets a gradient
        assert step["sampler_max_diff"] == 0.0 and step["all_params_max_diff"] == 0.0
        assert step["sampler_checksums"][0] == step["sampler_checksums"][1]
        checksums.append(step["sampler_checksums"][0])
    assert report["sampler_changed"] is True
    assert len(set(checksums)) == len(checksums)  # the sampler trains: its weights move every step


@pytest.mark.parametrize("strategy", ["motion", "error_predictor"])
def test_other_strategies_need_no_find_unused_parameters(report, strategy):
    for step in report[strategy]:
        assert step["params_without_grad"] == [] and step["all_params_max_diff"] == 0.0
        assert step["masks_equal_across_ranks"] is False and step["masked_per_row"] == [24, 24]
        assert step["has_sampling_loss"] is (strategy == "error_predictor")


def test_adamask_trainer_under_ddp(report):
    if "trainer" not in report:
        pytest.skip("transformers.Trainer needs accelerate")
    t = report["trainer"]
    assert t["world_size"] == 2
    assert t["sampler_max_diff"] == 0.0 and t["all_params_max_diff"] == 0.0
    assert len(t["logs"]) == 2
    for h in t["logs"]:
        assert h["reconstruction_loss"] > 0 and h["sampling_loss"] > 0
        assert h["loss"] == pytest.approx(h["reconstruction_loss"] + 1e-4 * h["sampling_loss"], rel=1e-5)
    # the logged terms are averaged across ranks, so every rank logs the same numbers
    assert t["logged_losses_by_rank"][0] == t["logged_losses_by_rank"][1]
