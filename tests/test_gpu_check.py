"""The device check (benchmarks/gpu_check.py): its CPU smoke run end to end, and the host-sync recorder
it proves "no sync" with (it must see syncs, attribute them to the right file, and undo its patches)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import adamask

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
CHECK = BENCH / "gpu_check.py"

pytestmark = pytest.mark.skipif(not CHECK.exists(), reason="benchmarks/ not present")
sys.path.insert(0, str(BENCH))
BUILT_IN = ("adaptive", "error_predictor", "frame", "motion", "motion_pixels", "random", "running_cell", "tube")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("gpu_check")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, str(CHECK), "--device", "cpu", "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((out / "gpu_check.json").read_text()), proc.stdout


def test_smoke_runs_every_section_and_judges_nothing(smoke):
    res, stdout = smoke
    assert res["mode"] == "smoke" and res["schema_version"] == 1
    assert {"device_name", "torch", "torch_cuda", "cudnn"} <= set(res["environment"])
    assert list(res["sections"]) == ["sync", "masks", "loss", "hf", "compare", "compile", "train", "ddp"]
    for key, sec in res["sections"].items():
        assert sec["status"] in ("ok", "not run"), (key, sec.get("error"))
        assert sec["seconds"] >= 0 and sec["estimate_s"] >= 0
    assert len(res["targets"]) >= 10
    assert all(t["met"] is None for t in res["targets"])  # smoke: nothing judged
    assert "| section | target | value | goal | met |" in stdout and "-- train: ok in" in stdout


def test_smoke_sync_section_covers_every_strategy_and_sees_transformers_syncs(smoke):
    sync = smoke[0]["sections"]["sync"]
    regions = {r["region"]: r for r in sync["regions"]}
    # the registry of the smoke's own process (this one may hold the test suite's toy strategies)
    assert set(BUILT_IN) <= set(sync["strategies"])
    for name in sync["strategies"]:
        assert any(label.startswith(f"strategy {name} (") for label in regions), name
    assert any(label.startswith("reference MAE step") and "adaptive" in label for label in regions)
    assert sync["adamask_syncs"] == 0 and all(r["status"] == "ok" for r in regions.values())
    hf = next(r for label, r in regions.items() if label.startswith("HF "))
    # the adaptive model selects tokens by index: no sync at all, neither adamask's nor transformers'
    assert hf["status"] == "ok" and hf["ours"] == [] and hf["others"] == []


def test_smoke_figures(smoke):
    s = smoke[0]["sections"]
    loss = s["loss"]["rows"][0]
    assert loss["target"] == ">= 50x" and loss["check"]["agree"] and loss["ours_ms"]["median"] > 0
    assert [r["name"].split()[0] for r in s["masks"]["rows"]] == ["random", "tube", "frame"]
    train = s["train"]
    rows = {(r["config"], r["mode"]): r for r in train["rows"]}
    configs = {
        "tube 0.90",
        "random 0.90",
        "adaptive 0.95, paper block",
        "adaptive 0.95, cheapest",
        "adaptive 0.95, cheapest + running cell 0.5",
        "motion 0.95",
    }
    assert {c for c, mode in rows if mode == "eager"} == configs
    assert ("tube 0.90", "compiled") in rows  # the smoke compiles the first configuration (aot_eager)
    eager = {c: r for (c, mode), r in rows.items() if mode == "eager"}
    assert eager["adaptive 0.95, paper block"]["gflops_vs_tube"] > 1.1  # paper scale, as in BENCHMARKS.md
    assert 0.45 < eager["adaptive 0.95, cheapest + running cell 0.5"]["gflops_vs_tube"] < 0.55
    assert eager["adaptive 0.95, cheapest"]["gflops_vs_tube"] < 0.85
    assert all(r["mfu"] is None and r["peak_mb"] is None and r["time_ms"]["median"] > 0 for r in rows.values())
    assert all(r["work_per_step"] > 0 for r in eager.values())  # aten ops of an eager step on the CPU
    modes = train["modes"]["adaptive 0.95, cheapest @ 2"]
    assert modes["eager + CUDA graph"]["status"].startswith("not run") and modes["eager"]["status"] == "ok"
    assert s["compile"]["graph_breaks"] == 0 and all(r["graphs"] == 1 for r in s["compile"]["rows"])
    assert s["hf"]["loss_rel_diff"] <= 1e-5 and s["hf"]["sampler_grad_finite_nonzero"]
    # a whole training step: none in the wrapped model's; the stock model's boolean indexing, seen and attributed
    assert s["hf"]["sync"]["count"] == 0 and s["hf"]["stock_sync"]["count"] > 0
    stock = s["hf"]["stock_sync"]["others"]
    assert any("bool_masked_pos" in f["code"] and f["origin"] == "transformers" for f in stock)
    from adamask.compare import DEFAULT_STRATEGIES  # --quick compares the default set

    assert s["compare"]["same_header"] is True and s["compare"]["strategies"] == len(DEFAULT_STRATEGIES) == 9
    assert s["ddp"]["status"] == "not run" and "2 GPUs" in s["ddp"]["reason"]


# ---------------------------------------------------------------------------------------------
# the recorder

FAKE = Path(adamask.__file__).resolve().parent / "_fake_sync.py"  # never written: only the frames' filename


def _in_adamask(src: str):
    """A function whose frames claim to be adamask/_fake_sync.py (so the recorder attributes them to adamask)."""
    scope: dict = {"torch": torch}
    exec(compile(src, str(FAKE), "exec"), scope)
    return scope["f"]


def test_recorder_names_adamask_syncs_with_file_line_and_op():
    from gpu_sync import check_region

    f = _in_adamask("def f(x):\n    y = x.sum()\n    return y.item() + float(x[x > 0].sum())\n")
    x = torch.randn(8)
    res = check_region("fake", [("forward", lambda _: f(x))], torch.device("cpu"))
    assert res["status"] == "failed"
    ops = {(g["site"], g["op"]) for g in res["ours"]}
    assert ("adamask/_fake_sync.py:3", "Tensor.item") in ops
    assert ("adamask/_fake_sync.py:3", "aten.index") in ops  # boolean indexing, seen in the dispatcher
    assert all(g["origin"] == "adamask" and g["phase"] == "forward" for g in res["ours"])


def test_recorder_attributes_cuda_sync_warnings():
    """The CUDA path: torch.cuda.set_sync_debug_mode("warn") turns each sync into a UserWarning raised in the
    calling Python frame; the recorder catches it with that frame's stack and lets other warnings through."""
    from gpu_sync import SyncRecorder

    f = _in_adamask("import warnings\ndef f():\n    warnings.warn('called a synchronizing CUDA operation')\n")
    rec = SyncRecorder(torch.device("cpu"))
    rec.catch_warnings()
    try:
        f()
        with pytest.warns(UserWarning, match="unrelated"):
            import warnings

            warnings.warn("unrelated", stacklevel=1)
    finally:
        rec.release_warnings()
    (found,) = rec.findings()
    assert found["site"] == "adamask/_fake_sync.py:3" and found["ours"]
    assert found["op"] == "synchronizing CUDA operation"


def test_recorder_ignores_sync_free_code_and_counts_backward_syncs_as_ours():
    from gpu_sync import check_region

    x = torch.randn(4, 5, requires_grad=True)
    clean = check_region(
        "clean",
        [("forward", lambda _: (x * 2).topk(2, 1).values.sum()), ("backward", lambda y: y.backward())],
        torch.device("cpu"),
    )
    assert clean["status"] == "ok" and not clean["ours"] and not clean["others"]
    here = check_region("here", [("forward", lambda _: x.detach().sum().item())], torch.device("cpu"))
    assert here["status"] == "ok" and here["others"][0]["op"] == "Tensor.item"  # not adamask's code
    back = check_region(
        "back", [("forward", lambda _: x), ("backward", lambda t: bool(t.sum() > 0))], torch.device("cpu")
    )
    assert back["status"] == "failed" and back["ours"][0]["phase"] == "backward"


def test_recorder_restores_what_it_patched():
    from gpu_sync import PATCHED, SyncRecorder

    before = {name: getattr(torch.Tensor, name) for name in PATCHED}
    nonzero = torch.nonzero
    with pytest.raises(RuntimeError):
        with SyncRecorder(torch.device("cpu")):
            raise RuntimeError("boom")
    assert {name: getattr(torch.Tensor, name) for name in PATCHED} == before
    assert torch.nonzero is nonzero
    assert torch.tensor([1.0, 2.0]).sum().item() == 3.0


def test_sections_option_and_peak_table():
    from gpu_check import pick_sections
    from gpu_sections import peak_bf16_flops

    assert [s.key for s in pick_sections("train,1")] == ["sync", "train"]
    assert [s.key for s in pick_sections("4,compare")] == ["compare", "train"]  # run order: the compiling step last
    assert len(pick_sections(None)) == 8
    with pytest.raises(ValueError, match="allowed"):
        pick_sections("sync,gpu")
    assert peak_bf16_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert peak_bf16_flops("NVIDIA H100 PCIe") == 756e12
    assert peak_bf16_flops("NVIDIA H200") == 989e12
    assert peak_bf16_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert peak_bf16_flops("NVIDIA GeForce RTX 4090") is None and peak_bf16_flops("AMD EPYC") is None
