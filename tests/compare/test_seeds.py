"""Several seeds per strategy: one run per (strategy, seed) with its own files, the same seeds and clips for every
strategy, resumed per (strategy, seed), more seeds added to a finished run; and a learned strategy whose weights
turn non-finite while its loss stays finite is reported as diverged."""

import json
import math

import pytest
import torch

pytest.importorskip("matplotlib")
pytest.importorskip("av")

import adamask.compare.train as train_mod  # noqa: E402
from adamask.cli import main  # noqa: E402
from adamask.compare import CompareConfig, StrategySpec  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = [
    "compare",
    "--quick",
    "--train-clips",
    "8",
    "--test-clips",
    "4",
    "--probe-train-clips",
    "12",
    "--probe-test-clips",
    "8",
    "--steps",
    "3",
    "--no-figures",
    "--quiet",
]


def test_seeds_run_each_strategy_once_per_seed_and_resume_per_seed(tmp_path, monkeypatch, interrupt_at_step):
    out = tmp_path / "run"
    argv = TINY + [
        "--checkpoint-every",
        "1",
        "--strategies",
        "random:0.9",
        "adaptive:0.9",
        "--seeds",
        "2",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    for label in ("random_0.9", "adaptive_0.9"):
        e = res["strategies"][label]
        assert e["seeds"] == [0, 1] and [r["seed"] for r in e["runs"]] == [0, 1]
        assert [r["replicate"] for r in e["runs"]] == [0, 1]
        for stem in (label, f"{label}_seed1"):
            assert (out / "strategies" / f"{stem}.json").is_file() and (out / "checkpoints" / f"{stem}.pt").is_file()
        a, b = e["runs"]
        assert a["history"]["reconstruction_loss"] != b["history"]["reconstruction_loss"]  # another init and order
        assert a["figure"]["clips"] == b["figure"]["clips"]  # the same clips
    # each seed starts every strategy from the same network: their first training losses match
    first = {k: [r["history"]["reconstruction_loss"][0] for r in e["runs"]] for k, e in res["strategies"].items()}
    assert first["random_0.9"] == pytest.approx(first["adaptive_0.9"], rel=1e-5)
    assert res["untrained_probe"]["seeds"] == [0, 1] and len(res["untrained_probe"]["runs"]) == 2
    s = res["summary"]
    assert s["seeds"] == 2
    assert s["strategies"]["adaptive_0.9"]["vs_reference"]["recon_loss_random_masks"]["n"] == 2
    md = (out / "results.md").read_text()
    assert "over 2 seeds (Student t, 1 degree of freedom" in md and " ± " in md

    # interrupted in the second seed of the second strategy: resumes that seed only
    (out / "strategies" / "adaptive_0.9_seed1.json").unlink()
    (out / "checkpoints" / "adaptive_0.9_seed1.pt").unlink()
    real_step = interrupt_at_step(2)
    assert main(argv) == 130
    monkeypatch.setattr(train_mod, "train_step", real_step)
    calls = []
    monkeypatch.setattr(train_mod, "train_step", lambda *a, **k: calls.append(1) or real_step(*a, **k))
    assert main(argv) == 0
    # steps 2 and 3 of adaptive_0.9_seed1 (step 1 was checkpointed); every other (strategy, seed) was loaded
    assert len(calls) == 2
    again = json.loads((out / "results.json").read_text())
    assert again["strategies"]["adaptive_0.9"]["runs"][1]["history"]["reconstruction_loss"] == pytest.approx(
        res["strategies"]["adaptive_0.9"]["runs"][1]["history"]["reconstruction_loss"], rel=1e-5
    )

    # a third seed: the folder's configuration is the same, seeds 0 and 1 are loaded, seed 2 trains
    calls.clear()
    assert main(argv[:-4] + ["--seeds", "3", "--out", str(out)]) == 0
    assert len(calls) == 2 * 3
    more = json.loads((out / "results.json").read_text())
    assert more["strategies"]["random_0.9"]["seeds"] == [0, 1, 2] and more["summary"]["seeds"] == 3
    assert more["strategies"]["random_0.9"]["runs"][:2] == again["strategies"]["random_0.9"]["runs"]


def test_seed_configuration():
    cfg = CompareConfig.quick(seed=5, seeds=3)
    run = cfg.for_seed(2)
    assert run.seed == 7 and run.seeds == 1 and cfg.identity() == CompareConfig.quick(seed=5, seeds=1).identity()
    assert run.identity() != cfg.identity()  # a seed's checkpoint belongs to that seed
    assert (
        StrategySpec("random", 0.9).stem(0) == "random_0.9"
        and StrategySpec("random", 0.9).stem(2) == "random_0.9_seed2"
    )
    with pytest.raises(ValueError, match="seeds must be a positive int"):
        CompareConfig.quick(seeds=0).validate()
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 4294967293\]"):
        CompareConfig.quick(seed=2**32 - 2, seeds=3).validate()


def test_a_learned_strategy_with_non_finite_weights_is_reported_as_diverged(tmp_path, monkeypatch):
    """NaN weights make the sampler's scores NaN; its probabilities fall back to uniform and every loss stays
    finite, so only the weights tell: the run stops at that step and is reported as diverged."""
    real_step, calls = train_mod.train_step, {"n": 0}

    def step(model, *a, **k):
        r = real_step(model, *a, **k)
        calls["n"] += 1
        if model.mask_sampler is not None and calls["n"] == 3:
            with torch.no_grad():
                next(model.mask_sampler.parameters()).fill_(float("nan"))
        return r

    monkeypatch.setattr(train_mod, "train_step", step)
    out = tmp_path / "run"
    assert main(TINY + ["--strategies", "adaptive:0.9", "--steps", "6", "--out", str(out)]) == 0
    r = json.loads((out / "results.json").read_text())["strategies"]["adaptive_0.9"]["runs"][0]
    assert r["diverged_at_step"] == 3 and "weights were not finite" in r["diverged_reason"]
    assert all(math.isfinite(v) for v in r["history"]["loss"])  # the loss alone would not have shown it
    md = (out / "results.md").read_text()
    assert "| adaptive_0.9 (diverged at step 3) |" in md
    assert "**adaptive_0.9** diverged with seed 0: its learned strategy's weights were not finite" in md
