"""Runs that must neither die after training nor poison their folder: runs too short to time a step, strategies
that diverge, options that do not fit the token grid (refused before anything is written), and a folder that
holds no finished work."""

import json
import math

import pytest
import torch

pytest.importorskip("matplotlib")
pytest.importorskip("av")

import adamask.compare.train as train_mod  # noqa: E402
from adamask import AdaptiveTokenSampler, register_masking  # noqa: E402
from adamask.cli import main  # noqa: E402
from adamask.compare import CompareConfig, markdown_table, run_compare  # noqa: E402
from adamask.compare.metrics import METRICS  # noqa: E402
from adamask.compare.report import results_summary  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = ["compare", "--quick", "--train-clips", "4", "--test-clips", "4", "--quiet"]


@pytest.mark.parametrize("steps", [1, 2])
def test_runs_too_short_to_time_a_step_finish_and_rerun(tmp_path, steps):
    out = tmp_path / "run"
    argv = TINY + ["--strategies", "adaptive:0.95", "random", "--steps", str(steps), "--out", str(out)]
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    timing = res["strategies"]["adaptive_0.95"]["runs"][0]["timing"]
    assert timing == dict(step_ms=None, sampler_ms=None, sampler_share=None, timed_steps=0)
    assert "| n/a | n/a |" in (out / "results.md").read_text()  # step time, sampler share
    assert main(argv) == 0  # the strategy JSON written before the report does not poison the rerun


def test_every_metric_cell_survives_missing_values():
    """A result holding none of the values (a diverged strategy), or None / NaN everywhere, renders n/a."""
    empty = dict(label="x", history={})
    nones = dict(
        learned=True,
        num_visible=None,
        num_tokens=None,
        foreground_allocation=None,
        timing=dict(step_ms=None, sampler_share=float("nan")),
        probe=dict(knn_accuracy=None),
        memory=dict(peak_mb=float("nan")),
        mask_statistics=None,
    )
    for r in (empty, nones):
        assert {m.cell(r) for m in METRICS} == {"n/a"}
    results = dict(a=empty, b=nones)
    summary = results_summary(results)
    assert all(s["mean"] is None for r in summary["strategies"].values() for s in r["stats"].values())
    assert "| a | n/a |" in markdown_table(results)


class NanWhenPoisoned(AdaptiveTokenSampler):
    """A learned strategy whose loss term turns NaN once ``poisoned`` (a diverging sampler)."""

    poisoned = False

    def masking_loss(self, masking, token_error, settings):
        loss = super().masking_loss(masking, token_error, settings)
        return loss * float("nan") if self.poisoned else loss


def test_a_diverged_strategy_is_reported_while_the_others_complete(tmp_path, monkeypatch, capsys):
    register_masking("nan_after_two_test", default_ratio=0.5, override=True)(NanWhenPoisoned)  # when the test runs
    real_step, calls = train_mod.train_step, {"n": 0}

    def step(model, *a, **k):  # the third step of the learned strategy returns a NaN loss
        if isinstance(model.mask_sampler, NanWhenPoisoned):
            calls["n"] += 1
            model.mask_sampler.poisoned = calls["n"] >= 3
        return real_step(model, *a, **k)

    monkeypatch.setattr(train_mod, "train_step", step)
    out = tmp_path / "run"
    argv = TINY + ["--strategies", "nan_after_two_test", "random", "--steps", "6", "--out", str(out)]
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    bad, good = (res["strategies"][k]["runs"][0] for k in ("nan_after_two_test_0.5", "random_0.9"))
    assert bad["diverged_at_step"] == 3 and bad["history"]["step"] == [0, 1, 2]
    assert bad["diverged_reason"] == "its training loss was not finite"
    assert "recon_loss_own_ratio" not in bad and bad["learned"]
    assert math.isfinite(good["recon_loss_own_ratio"]) and good["probe"]["knn_accuracy"] is not None
    assert res["summary"]["strategies"]["nan_after_two_test_0.5"]["diverged"] == [
        dict(seed=0, step=3, reason="its training loss was not finite")
    ]
    md = (out / "results.md").read_text()
    assert "| nan_after_two_test_0.5 (diverged at step 3) | n/a |" in md
    assert "**nan_after_two_test_0.5** diverged with seed 0: its training loss was not finite at step 3" in md
    assert sorted(res["figures"]) == [
        "figures/allocation_curves.png",
        "figures/learning_curves.png",
        "figures/masks_clip0.png",
        "figures/masks_clip1.png",
        "figures/summary.png",
    ]
    ck = torch.load(out / "checkpoints" / "nan_after_two_test_0.5.pt", weights_only=False)
    assert ck["diverged_at_step"] == 3 and ck["completed"]
    assert main(["visualize", "v.mp4", "--checkpoint", str(out / "checkpoints" / "nan_after_two_test_0.5.pt")]) == 2
    assert "its strategy diverged at training step 3" in capsys.readouterr().err
    assert main(argv) == 0  # rerun loads both
    (out / "strategies" / "nan_after_two_test_0.5.json").unlink()
    assert main(argv) == 0  # resumes from the diverged checkpoint: nothing trains, nothing crashes
    again = json.loads((out / "results.json").read_text())["strategies"]["nan_after_two_test_0.5"]["runs"][0]
    assert again["diverged_at_step"] == 3


def test_a_huge_learning_rate_diverges_every_strategy_without_a_crash(tmp_path, capsys):
    out = tmp_path / "run"
    argv = TINY + ["--strategies", "random", "adaptive", "--lr", "1e6", "--out", str(out)]
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    assert all(e["runs"][0]["diverged_at_step"] >= 1 for e in res["strategies"].values())
    assert res["figures"] == ["figures/learning_curves.png"]
    assert main(argv) == 0


@pytest.mark.parametrize(
    "option,words",
    [
        (["--common-ratio", "0.99"], "common_ratio 0.99 on the 64 tokens"),
        (["--strategies", "random", "adaptive:0.99"], "strategy adaptive_0.99 on the 64 tokens"),
        (["--ratio-schedule", "0.5:0.99"], "--ratio-schedule 0.5:0.99: strategy random_0.9 at ratio 0.99"),
        (["--decoder-masking", "running_cell:0.2"], "--decoder-masking running_cell:0.2 on the 64 tokens"),
        (
            ["--sampler", "width=7", "num_heads=4"],
            "strategy adaptive_0.95 on the 64 tokens of grid (4, 4, 4): width (7)",
        ),
        (["--tubelet", "2", "16", "16", "--strategies", "random:0.95"], "strategy random_0.95 on the 16 tokens"),
        (
            ["--strategies", "motion:0.5", "--num-frames", "2", "--tubelet", "2", "8", "8"],
            "strategy motion_0.5 on the 16 tokens of grid (1, 4, 4): motion masking needs at least 2 time slices",
        ),
        (["--strategies", "random", "tube", "--sampler", "temperature=5"], "none of the strategies random_0.9, tube"),
        (["--strategies", "random", "motion:0.9:width=8"], "strategy motion_0.9_w8: motion takes no option 'width'"),
        (["--compile", "--ratio-schedule", "0.5:0.9"], "compile does not combine with ratio_schedule"),
        (["--budget", "flops", "--ratio-schedule", "0.5:0.9"], "budget flops does not combine with ratio_schedule"),
        (["--lr", "inf"], "lr must be a finite number"),
        (["--sampling-entropy-weight", "nan"], "sampling_entropy_weight"),
        (["--seed", "-1"], "seed must be an int in [0, 4294967295]"),
        (["--device", "nosuch"], "--device 'nosuch' is not a torch device"),
    ],
)
def test_options_that_do_not_fit_are_refused_before_anything_is_written(tmp_path, capsys, option, words):
    out = tmp_path / "run"
    assert main(TINY + ["--out", str(out)] + option) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_folder_without_finished_work_does_not_block_a_rerun(tmp_path, capsys):
    """A start that failed on its data leaves config.json only: a corrected command may use the folder."""
    out = tmp_path / "run"
    (tmp_path / "empty").mkdir()
    assert main(TINY + ["--steps", "7", "--out", str(out), "--videos", str(tmp_path / "empty")]) == 2
    assert "no video files" in capsys.readouterr().err
    out.mkdir()
    (out / "config.json").write_text(json.dumps(dict(identity=dict(steps=7))))
    assert main(TINY + ["--steps", "2", "--strategies", "random", "--no-figures", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["identity"]["steps"] == 2


def test_api_runs_raise_value_errors_for_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="common_ratio 0.99"):
        run_compare(CompareConfig.quick(out=str(tmp_path / "r"), common_ratio=0.99), progress="none", log=print)
    assert not (tmp_path / "r").exists()


def test_the_probe_of_an_overflowed_encoder_is_none_with_a_note():
    from adamask.compare import StrategySpec, build_model, probe
    from adamask.compare.data import SyntheticDigitClips

    cfg = CompareConfig.quick()
    clips = SyntheticDigitClips(6, num_frames=8, img_size=32, tubelet=(2, 8, 8), sprite_size=8).clipset()
    model = build_model(cfg.model_config(), StrategySpec("random", 0.9), seed=0)
    with torch.no_grad():
        model.norm.weight.fill_(float("inf"))
    res = probe(model, clips.subset(range(4)), clips.subset(range(4, 6)), torch.device("cpu"), k=3, seed=0)
    assert res["knn_accuracy"] is None and res["linear_accuracy"] is None and "not finite" in res["note"]
