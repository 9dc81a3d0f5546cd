"""The benchmark suite runs end to end in smoke mode and writes the JSON it promises."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "benchmarks" / "run.py"

pytestmark = pytest.mark.skipif(not RUN.exists(), reason="benchmarks/ not present")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, str(RUN), "--smoke", "--json", str(out)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def test_smoke_writes_expected_keys(smoke: tuple[dict, str]) -> None:
    res, _ = smoke
    for key in (
        "schema_version",
        "mode",
        "command",
        "machine",
        "memory_method",
        "micro",
        "train",
        "train_targets",
        "paper_scale",
        "seconds",
    ):
        assert key in res, key
    assert res["mode"] == "smoke"
    assert {"device", "device_name", "threads", "torch"} <= set(res["machine"])


def test_smoke_micro_rows(smoke: tuple[dict, str]) -> None:
    res, _ = smoke
    timed = [r for r in res["micro"] if "ours_ms" in r]
    names = " ".join(r["name"] for r in timed)
    for part in ("sampling_loss", "random mask", "tube mask", "frame mask", "draw"):
        assert part in names, part
    for r in timed:
        for side in ("ours_ms", "baseline_ms"):
            s = r[side]
            assert 0 < s["min"] <= s["median"] <= s["max"] and math.isfinite(s["max"])
        assert r["speedup"] > 0 and r["met"] is None  # targets are judged on full runs only
    loss = next(r for r in timed if r["name"].startswith("sampling_loss fwd+bwd"))
    assert loss["check"]["agree"]
    assert any("multinomial" in r for r in res["micro"])


def test_smoke_train_and_paper_scale(smoke: tuple[dict, str]) -> None:
    res, stdout = smoke
    rows = res["train"]["rows"]
    assert rows[0]["config"] == "tube 0.90" and any("paper block" in r["config"] for r in rows)
    for r in rows:
        assert r["time_ms"]["median"] > 0 and r["gflops"] > 0 and r["activation_mb"] > 0
        assert "step_peak_mb" in r and "total_peak_mb" in r
    paper = res["paper_scale"]["rows"]
    assert {"tube 0.90", "random 0.90", "adaptive 0.95, paper block"} <= {r["config"] for r in paper}
    for r in paper:
        assert set(r["costs"]) >= {"tokenizer", "sampler", "encoder", "decoder", "total"}
    assert "| config |" in stdout and "paper block" in stdout


def test_lean_step_smoke_compares_each_change_with_what_it_replaces(tmp_path: Path) -> None:
    """benchmarks/lean_step.py checks, before timing, that each lean formulation computes what the one it replaces
    did (patch embedding, targets); its JSON has one row per comparison and the op counts of both steps."""
    out = tmp_path / "lean.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "lean_step.py"), "--smoke", "--no-compile", "--json", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    names = [r["name"] for r in res["rows"]]
    assert names[:3] == [
        "patch embedding, forward + backward",
        "normalised targets of the masked tokens",
        "encoder input + encoder, f+b",
    ]
    steps = [r for r in res["rows"] if r["name"].startswith("training step")]
    assert len(steps) == 2 and all(r["ops_new"] > 0 and r["kernels_old"] > 0 for r in steps)
    assert all(r["time_ratio"] > 0 for r in res["rows"]) and res["smoke"] is True


_COMPILED_ROWS = """
import functools, json, sys
import torch
torch.compile = functools.partial(torch.compile, backend="aot_eager")  # inductor's codegen takes minutes on CPU
import train_step
from timing import SMOKE
train_step.measure_memory = lambda spec, device: {"step_peak_mb": 1.0, "total_peak_mb": 2.0, "spec": spec}
res = train_step.bench_train(SMOKE, torch.device("cpu"), compile=True)
labels = [c[0] for c in train_step.train_configs(768)]
print(json.dumps({"compiled": res["compiled"], "rows": [r["config"] for r in res["rows"]], "labels": labels}))
"""


def test_the_training_step_rows_run_compiled() -> None:
    """``benchmarks/run.py --compile``: every training-step row compiles (fullgraph) and is timed; the rows are
    tube, the paper's block and the cheapest setting in smoke mode, and the full list keeps one decoder-masked
    row, the cheapest setting's (the moonshot's)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-c", _COMPILED_ROWS], capture_output=True, text=True, env=env, cwd=RUN.parent, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["compiled"] is True
    assert res["rows"] == ["tube 0.90", "adaptive 0.95, paper block", "adaptive 0.95, attention, width 8, pool 1x2x2"]
    assert [c for c in res["labels"] if "running cell" in c] == [
        "adaptive 0.95, attention, width 192, pool 1x2x2 + running cell 0.5"
    ]
    assert res["labels"][0] == "tube 0.90" and "motion 0.95" in res["labels"]
    assert "adaptive 0.95, depth 2" not in res["labels"]
