"""Training one strategy: same seed -> same numbers, an interrupted run resumes to the numbers of the
uninterrupted one, and a trained adaptive sampler learns to show the foreground."""

import json
import math

import pytest
import torch

pytest.importorskip("matplotlib")
pytest.importorskip("av")

import adamask.compare.train as train_mod  # noqa: E402
from adamask.cli import main  # noqa: E402
from adamask.compare import CompareConfig, run_compare  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_seed_repeatable_and_interrupted_run_resumes(quick_run, tmp_path, monkeypatch):
    """Same seed -> the same numbers; a run killed mid-training leaves complete files and resumes to the
    numbers of the uninterrupted run."""
    ref = json.loads((quick_run[0] / "results.json").read_text())["strategies"]["adaptive_0.95"]["runs"][0]
    out = tmp_path / "run"
    real_step, calls = train_mod.train_step, {"n": 0}

    def dying_step(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_step(*a, **k)

    monkeypatch.setattr(train_mod, "train_step", dying_step)
    argv = ["compare", "--quick", "--out", str(out), "--quiet", "--strategies", "adaptive:0.95", "--no-figures"]
    assert main(argv) == 130
    assert not (out / "results.json").exists() and not list(out.rglob(".*tmp*"))
    ck = torch.load(out / "checkpoints" / "adaptive_0.95.pt", weights_only=False)
    assert ck["step"] == 3 and not ck["completed"]  # quick mode checkpoints every 3 steps
    monkeypatch.setattr(train_mod, "train_step", real_step)
    assert main(argv) == 0
    got = json.loads((out / "results.json").read_text())["strategies"]["adaptive_0.95"]["runs"][0]
    for key in ("recon_loss_own_ratio", "recon_loss_common_ratio"):
        assert got[key] == pytest.approx(ref[key], rel=1e-5, abs=1e-6)
    assert got["history"]["reconstruction_loss"] == pytest.approx(ref["history"]["reconstruction_loss"], rel=1e-5)
    assert got["foreground_allocation"] == ref["foreground_allocation"]
    assert got["figure"]["masks"] == ref["figure"]["masks"]
    assert got["history"]["eval_allocation"] == pytest.approx(ref["history"]["eval_allocation"], rel=1e-5)


def test_trained_adaptive_sampler_favours_the_foreground(tmp_path, capsys):
    """The documented 'foreground' setting (raw-pixel loss, background contrast 0.3, mean baseline in the
    sampling loss) on the embedded data: after 150 steps the sampled masks put clearly more visible tokens on
    the moving digits than uniform masking would (measured 2.5 with one thread, 2.7 with two, 2.6 with seed 1;
    asserted > 1.5)."""
    cfg = CompareConfig.quick(
        out=str(tmp_path / "fg"),
        strategies=["adaptive:0.95"],
        steps=150,
        batch_size=16,
        train_clips=128,
        test_clips=64,
        eval_draws=2,
        sprite_size=10,
        pixel_loss="raw",
        background_contrast=0.3,
        sampling_baseline="mean",
        sampler_lr_scale=10.0,
        checkpoint_every=1000,
        eval_points=1,
    )
    res = run_compare(cfg, progress="none", figures=False, log=lambda s: None)
    r = res["strategies"]["adaptive_0.95"]["runs"][0]
    alloc, palloc = r["foreground_allocation"], r["probability_allocation"]
    with capsys.disabled():
        print(
            f"\ntrained adaptive sampler: foreground allocation {alloc['mean']:.2f} ± {alloc['std']:.2f} "
            f"(n={alloc['n']}), probability allocation {palloc['mean']:.2f}"
        )
    assert alloc["n"] == 128
    assert alloc["mean"] > 1.5 and alloc["mean"] - 1.0 > 4 * alloc["std"] / math.sqrt(alloc["n"])
    assert palloc["mean"] > 1.5


def test_a_finished_checkpoint_without_its_result_is_finished_and_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["compare", "--quick", "--steps", "2", "--train-clips", "4", "--test-clips", "4", "--no-figures"]
    argv += ["--no-progress", "--strategies", "random", "--out", str(out)]
    assert main(argv + ["--quiet"]) == 0
    (out / "strategies" / "random_0.9.json").unlink()
    capsys.readouterr()
    assert main(argv) == 0
    assert "random_0.9: finishing from its checkpoint at step 2" in capsys.readouterr().err
    assert (out / "strategies" / "random_0.9.json").is_file()


@pytest.fixture
def aot_eager(monkeypatch):
    """torch.compile with the aot_eager backend: the same graph capture (fullgraph, forward and backward) as
    inductor without its code generation, which takes minutes on CPU."""
    import functools

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))


def test_compiled_losses_are_the_eager_ones_for_every_model_sharing_the_graph(aot_eager):
    """Models of one strategy share the compiled graph (no recompilation per seed), each with its own weights:
    with the global RNG seeded alike, the compiled losses equal the eager forward's."""
    from torch._dynamo.utils import counters

    from adamask.compare import StrategySpec
    from adamask.compare.model import model_for

    spec = StrategySpec("adaptive", 0.75)
    video = torch.randn(2, 3, 8, 32, 32)
    for seed in (0, 1):
        model = model_for(CompareConfig.quick(seed=seed), spec)
        losses = train_mod.compile_losses(model, ("test", spec))
        torch.manual_seed(5)
        eager = model(video)
        torch.manual_seed(5)
        loss, rec, ls = losses(video)
        assert torch.allclose(loss, eager.loss) and torch.allclose(rec, eager.reconstruction_loss)
        assert torch.allclose(ls, eager.sampling_loss)
        assert counters["stats"]["unique_graphs"] == 1


def test_a_compiled_run_is_reproducible_and_resumes_to_the_same_numbers(tmp_path, monkeypatch, aot_eager):
    """--compile: the masks come from the global RNG, seeded per run and kept in the checkpoints, so the same
    command gives the same numbers and an interrupted run resumes to them; the sampler's share is not timed."""
    argv = ["compare", "--quick", "--train-clips", "4", "--test-clips", "4", "--no-figures", "--quiet", "--compile"]
    argv += ["--strategies", "random", "adaptive:0.95", "--steps", "6"]
    assert main(argv + ["--out", str(tmp_path / "a")]) == 0
    res = json.loads((tmp_path / "a" / "results.json").read_text())
    assert res["config"]["compile"] is True
    runs = {k: e["runs"][0] for k, e in res["strategies"].items()}
    assert runs["adaptive_0.95"]["timing"]["sampler_share"] is None and runs["adaptive_0.95"]["timing"]["step_ms"] > 0
    assert all(math.isfinite(v) for v in runs["adaptive_0.95"]["history"]["sampling_loss"])

    real, calls = train_mod.train_step_compiled, {"n": 0}

    def dying_step(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(train_mod, "train_step_compiled", dying_step)
    assert main(argv + ["--out", str(tmp_path / "b")]) == 130
    monkeypatch.setattr(train_mod, "train_step_compiled", real)
    assert main(argv + ["--out", str(tmp_path / "b")]) == 0
    again = json.loads((tmp_path / "b" / "results.json").read_text())["strategies"]
    for label, r in runs.items():
        got = again[label]["runs"][0]
        assert got["history"]["loss"] == pytest.approx(r["history"]["loss"], rel=1e-6)
        assert got["figure"]["masks"] == r["figure"]["masks"]
        assert got["recon_loss_own_ratio"] == pytest.approx(r["recon_loss_own_ratio"], rel=1e-6)
