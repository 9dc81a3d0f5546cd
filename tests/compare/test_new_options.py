"""The strategies and options beyond the paper in ``adamask compare``: ``adamask list``, motion and error-predictor
strategies (and the pixel one, fed the clip), ``--ratio-schedule``, ``--decoder-masking`` and the sampling-loss
options, end to end on --quick runs."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("matplotlib")
pytest.importorskip("av")

import adamask.compare.train as train_mod  # noqa: E402
from adamask.cli import main  # noqa: E402
from adamask.compare import load_checkpoint  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[2]
TINY = ["compare", "--quick", "--train-clips", "4", "--test-clips", "4", "--no-figures", "--quiet"]


def test_list_shows_ratio_learned_and_needs(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = {
        cmd: subprocess.run(
            [sys.executable, "-m", "adamask", *cmd], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
        )
        for cmd in (("list",), ("compare", "--list"))
    }
    assert all(p.returncode == 0 for p in out.values())
    assert out[("list",)].stdout == out[("compare", "--list")].stdout
    rows = {r.split()[0]: r.split()[1:] for r in out[("list",)].stdout.splitlines()[1:]}
    assert out[("list",)].stdout.split()[:5] == ["strategy", "default", "ratio", "learned", "needs"]
    assert rows["adaptive"] == ["0.95", "yes", "tokens"] and rows["error_predictor"] == ["0.95", "yes", "tokens"]
    assert rows["motion"] == ["0.95", "no", "tokens"] and rows["motion_pixels"] == ["0.95", "no", "video"]
    assert rows["random"] == ["0.9", "no", "nothing"] and rows["running_cell"] == ["0.5", "no", "nothing"]


def test_content_aware_and_learned_strategies_compare(tmp_path, monkeypatch):
    drawn = []
    real = train_mod.draw_masking
    monkeypatch.setattr(
        train_mod,
        "draw_masking",
        lambda model, video, tokens, *a: (
            drawn.append((type(model.strategy).__name__, tuple(video.shape), tuple(tokens.shape)))
            or real(model, video, tokens, *a)
        ),
    )
    out = tmp_path / "run"
    argv = TINY + [
        "--out",
        str(out),
        "--steps",
        "3",
        "--strategies",
        "motion:0.95",
        "error_predictor:0.95",
        "motion_pixels:0.9",
    ]
    assert main(argv) == 0
    res = {k: e["runs"][0] for k, e in json.loads((out / "results.json").read_text())["strategies"].items()}
    assert [res[k]["learned"] for k in ("motion_0.95", "error_predictor_0.95", "motion_pixels_0.9")] == [
        False,
        True,
        False,
    ]
    assert [res[k]["num_visible"] for k in ("motion_0.95", "error_predictor_0.95", "motion_pixels_0.9")] == [3, 3, 6]
    for r in res.values():
        assert math.isfinite(r["recon_loss_own_ratio"]) and math.isfinite(r["recon_loss_common_ratio"])
    assert all(math.isfinite(v) for v in res["error_predictor_0.95"]["history"]["sampling_loss"])
    assert ("PixelMotionMasking", (4, 3, 8, 32, 32), (4, 64, 32)) in drawn  # the clip reaches the pixel strategy
    model, _ = load_checkpoint(out / "checkpoints" / "motion_pixels_0.9.pt")
    assert model.strategy.tubelet == (2, 8, 8)


def test_ratio_schedule_is_applied_recorded_and_resume_safe(tmp_path, monkeypatch, interrupt_at_step):
    visible = []
    real = train_mod.draw_masking

    def spy(model, video, tokens, generator, strategy=None):
        m = real(model, video, tokens, generator, strategy)
        visible.append(int((~m.mask[0]).sum()))
        return m

    monkeypatch.setattr(train_mod, "draw_masking", spy)
    argv = TINY + ["--strategies", "random:0.9", "--steps", "6", "--ratio-schedule", "0.5:0.9:linear:4"]
    assert main(argv + ["--out", str(tmp_path / "a")]) == 0
    res = json.loads((tmp_path / "a" / "results.json").read_text())
    r = res["strategies"]["random_0.9"]["runs"][0]
    assert res["config"]["ratio_schedule"] == "0.5:0.9:linear:4"
    assert r["ratio_schedule"] == dict(start=0.5, end=0.9, steps=4, kind="linear", every=1)
    assert r["history"]["mask_ratio"] == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9, 0.9])
    # N_v = int(64 * (1 - ratio)) in each training step; evaluated at the strategy's own 0.9
    assert visible == [32, 25, 19, 12, 6, 6] and r["num_visible"] == 6

    real_step = interrupt_at_step(5)
    assert main(argv + ["--out", str(tmp_path / "b")]) == 130
    monkeypatch.setattr(train_mod, "train_step", real_step)
    assert main(argv + ["--out", str(tmp_path / "b")]) == 0
    resumed = json.loads((tmp_path / "b" / "results.json").read_text())["strategies"]["random_0.9"]["runs"][0]
    assert resumed["history"]["reconstruction_loss"] == pytest.approx(r["history"]["reconstruction_loss"], rel=1e-5)
    assert resumed["recon_loss_own_ratio"] == pytest.approx(r["recon_loss_own_ratio"], rel=1e-5)
    # the memory column is that of step 0 (ratio 0.5, 32 visible tokens), not of the step the run resumed at
    assert resumed["memory"] == r["memory"]


def test_sampler_options_reach_every_strategy_whose_constructor_takes_them(tmp_path):
    """--sampler temperature=5 goes to motion too (its constructor takes temperature), not to random; each
    checkpoint and result records the options its strategy was built with."""
    out = tmp_path / "run"
    argv = TINY + ["--out", str(out), "--steps", "2", "--strategies", "random", "motion:0.9", "--sampler"]
    assert main(argv + ["temperature=5"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["masking_options"] == {"temperature": 5.0}
    runs = {k: e["runs"][0] for k, e in res["strategies"].items()}
    assert runs["motion_0.9"]["masking_options"] == {"temperature": 5.0} and runs["random_0.9"]["masking_options"] == {}
    model, ck = load_checkpoint(out / "checkpoints" / "motion_0.9.pt")
    assert model.strategy.temperature == 5.0 and ck["masking_options"] == {"temperature": 5.0}
    assert load_checkpoint(out / "checkpoints" / "random_0.9.pt")[1]["masking_options"] == {}


def test_a_strategys_own_options_win_and_name_it(tmp_path):
    """NAME:RATIO:KEY=VALUE,...: the options of one strategy, over the --sampler options, shown in its label;
    the same strategy with other options is another row."""
    out = tmp_path / "run"
    argv = TINY + ["--out", str(out), "--steps", "2", "--sampler", "width=16", "--strategies", "adaptive:0.95"]
    assert main(argv + ["adaptive:0.95:variant=mlp,width=8"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert list(res["strategies"]) == ["adaptive_0.95", "adaptive_0.95_mlp-w8"]
    own = res["strategies"]["adaptive_0.95_mlp-w8"]["runs"][0]
    assert own["masking_options"] == {"width": 8, "variant": "mlp"}
    model, ck = load_checkpoint(out / "checkpoints" / "adaptive_0.95_mlp-w8.pt")
    assert (model.strategy.width, model.strategy.variant) == (8, "mlp")
    assert ck["strategy"] == dict(name="adaptive", mask_ratio=0.95, options=dict(variant="mlp", width=8))
    assert load_checkpoint(out / "checkpoints" / "adaptive_0.95.pt")[0].strategy.width == 16
    assert math.isfinite(own["recon_loss_common_ratio"])  # rebuilt at the common ratio with its own options
    assert "| adaptive_0.95_mlp-w8 | 3 / 64 |" in (out / "results.md").read_text()


def test_decoder_masking_and_sampling_options_reach_the_model(tmp_path, monkeypatch):
    built = []
    real = train_mod.model_for
    monkeypatch.setattr(train_mod, "model_for", lambda cfg, spec: built.append(real(cfg, spec)) or built[-1])
    out = tmp_path / "run"
    argv = TINY + [
        "--out",
        str(out),
        "--steps",
        "3",
        "--strategies",
        "adaptive:0.95",
        "--decoder-masking",
        "running_cell:0.5",
        "--sampling-baseline",
        "rloo",
        "--sampling-entropy-weight",
        "0.01",
        "--sampler",
        "temperature=2",
    ]
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    cfg = res["config"]
    assert cfg["decoder_masking"] == "running_cell:0.5" and cfg["sampling_baseline"] == "rloo"
    assert cfg["sampling_entropy_weight"] == 0.01 and cfg["masking_options"] == {"temperature": 2.0}
    for model in built:
        assert type(model.decoder_masking).__name__ == "RunningCellMasking" and model.decoder_masking.mask_ratio == 0.5
        assert model.loss_settings.baseline == "rloo" and model.loss_settings.entropy_weight == 0.01
        assert model.mask_sampler.temperature == 2.0
    for r in (e["runs"][0] for e in res["strategies"].values()):
        assert math.isfinite(r["recon_loss_own_ratio"]) and all(math.isfinite(v) for v in r["history"]["loss"])
    model, ck = load_checkpoint(out / "checkpoints" / "adaptive_0.95.pt")
    assert ck["model_config"]["decoder_masking"] == "running_cell" and model.decoder_masking is not None
    torch.manual_seed(0)


def test_an_entropy_bonus_the_error_predictor_cannot_apply_is_refused_before_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    argv = TINY + ["--out", str(out), "--strategies", "adaptive:0.95", "error_predictor:0.95"]
    assert main(argv + ["--sampling-entropy-weight", "0.01"]) == 2
    err = capsys.readouterr().err
    assert "error_predictor" in err and "sampling_entropy_weight must be 0" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_an_equal_compute_budget_gives_each_strategy_the_flops_of_the_reference(tmp_path):
    """--budget flops: each strategy trains for the FLOPs of --steps steps of random at the common ratio, its
    steps scaled by its cost per step; its learning-rate schedule runs over its own steps; each result records
    its steps and FLOPs and the table shows them."""
    out = tmp_path / "run"
    argv = TINY + ["--out", str(out), "--steps", "6", "--budget", "flops", "--strategies", "random", "adaptive:0.95"]
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["budget"] == "flops"
    ref, ada = (res["strategies"][k]["runs"][0] for k in ("random_0.9", "adaptive_0.95"))
    assert ref["steps"] == 6 and ada["gflops_per_step"] > ref["gflops_per_step"] > 0
    assert ada["steps"] == round(6 * ref["gflops_per_step"] / ada["gflops_per_step"]) == 4
    for r in (ref, ada):
        assert r["budget"] == "flops" and r["train_gflops"] == pytest.approx(r["steps"] * r["gflops_per_step"])
        assert r["history"]["step"] == list(range(r["steps"])) and r["history"]["eval_step"][-1] == r["steps"]
    assert ada["train_gflops"] == pytest.approx(ref["train_gflops"], rel=0.1)
    # cosine decay to 0.1x the peak over its own 4 steps (2 of warm-up): at its last step t = 1/2
    ck = torch.load(out / "checkpoints" / "adaptive_0.95.pt", weights_only=False)
    lrs = [g["lr"] for g in ck["optimizer"]["param_groups"]]
    assert lrs == pytest.approx([1e-3 * (0.1 + 0.45)] * len(lrs))
    md = (out / "results.md").read_text()
    assert f"| {ada['gflops_per_step']:.3g} x 4 = {ada['train_gflops']:.3g} |" in md
    assert main(argv) == 0  # the same budget again: every run loaded
