"""The fine-tuning probe: it trains, is deterministic and paired by seed (the same batches and head for every
encoder of a seed), its noise over fine-tuning seeds is in its intervals, and its verdict row says "no" or "n/a"
when it cannot tell a pretrained encoder from the untrained one."""

import json
import math

import pytest
import torch

from adamask.compare import CompareConfig, StrategySpec, build_model
from adamask.compare.data import SyntheticDigitClips, embedded_options
from adamask.compare.finetune import FineTuneRecipe, finetune_accuracy, finetune_probe, finetune_seeds
from adamask.compare.report import markdown_table, results_summary
from adamask.compare.stats import interval, t_quantile

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def clips():
    """Direction-labelled embedded clips of the --quick size: 64 to fine-tune on, 32 to score on."""
    ds = SyntheticDigitClips(96, **embedded_options(CompareConfig.quick()))
    every = ds.clipset("direction")
    return every.subset(range(64)), every.subset(range(64, 96))


def _encoder(seed=0):
    return build_model(CompareConfig.quick().model_config(), StrategySpec("random", 0.9), seed=seed)


def test_it_trains_leaves_the_encoder_alone_and_repeats_exactly(clips):
    train, test = clips
    model = _encoder()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    recipe = FineTuneRecipe(steps=60, seeds=1, batch_size=16, lr=3e-3)
    first = finetune_accuracy(model, train, test, recipe, seed=7, device=torch.device("cpu"))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # a copy was fine-tuned
    assert first["final_train_loss"] < 0.8 * math.log(8)  # 8 directions: below the loss of a uniform guess
    assert first == finetune_accuracy(model, train, test, recipe, seed=7, device=torch.device("cpu"))
    other = finetune_accuracy(model, train, test, recipe, seed=8, device=torch.device("cpu"))
    assert other["final_train_loss"] != first["final_train_loss"]  # another seed: other batches and head


def test_encoders_of_a_seed_share_their_fine_tuning_seeds_and_seeds_do_not(clips):
    """The pretrained and the untrained encoder of encoder seed s are fine-tuned with the same seeds (same batch
    order, same head), another encoder seed with other ones; the result keeps one accuracy per seed."""
    train, test = clips
    assert finetune_seeds(3, 2) == finetune_seeds(3, 2) and not set(finetune_seeds(3, 2)) & set(finetune_seeds(4, 2))
    recipe = FineTuneRecipe(steps=4, seeds=2, batch_size=8)
    res = finetune_probe(_encoder(), train, test, recipe, encoder_seed=3, device=torch.device("cpu"))
    assert res["seeds"] == finetune_seeds(3, 2) and len(res["accuracies"]) == 2
    assert res["accuracy"] == pytest.approx(sum(res["accuracies"]) / 2)
    assert res["recipe"]["steps"] == 4 and all(a * 32 == round(a * 32) for a in res["accuracies"])
    with pytest.raises(ValueError, match="fine-tuning steps"):
        FineTuneRecipe(steps=0)
    with pytest.raises(ValueError, match="layer_decay"):
        FineTuneRecipe(steps=1, layer_decay=1.5)


def _run(seed, accuracies):
    return dict(
        seed=seed,
        num_visible=3,
        num_tokens=64,
        recon_loss_random_masks=0.5,
        foreground_allocation=dict(mean=1.0),
        probe=dict(
            knn_accuracy=0.2,
            linear_accuracy=0.2,
            test_clips=100,
            finetune=dict(accuracy=sum(accuracies) / len(accuracies), accuracies=accuracies),
        ),
        timing=dict(step_ms=10.0),
        memory=dict(peak_mb=4.0),
    )


def _untrained(accuracies_per_seed):
    return dict(
        label="direction",
        runs=[
            dict(
                knn_accuracy=0.2,
                linear_accuracy=0.2,
                chance=0.15,
                test_clips=100,
                finetune=dict(accuracy=sum(a) / len(a), accuracies=a),
            )
            for a in accuracies_per_seed
        ],
    )


def test_the_interval_holds_the_fine_tuning_seeds_spread():
    """Three encoder seeds whose means agree exactly (0.6) while their fine-tuning seeds spread by 0.4: the
    interval is not of zero width but at least t(2) * (the fine-tuning standard error) / sqrt(3); the paired
    difference to the untrained encoder gets the spread of the per-seed differences."""
    per_seed = [[0.4, 0.8], [0.8, 0.4], [0.6, 0.6]]
    runs = [_run(s, a) for s, a in enumerate(per_seed)]
    s = results_summary({"random_0.9": dict(runs=runs)}, untrained=_untrained([[0.5, 0.5]] * 3))
    stats = s["strategies"]["random_0.9"]["stats"]["finetune_accuracy"]
    se = math.sqrt((0.08 / 2 + 0.08 / 2 + 0.0) / 3)  # each seed's var / 2, root mean square over seeds
    assert stats["mean"] == pytest.approx(0.6)
    assert stats["half_width"] == pytest.approx(t_quantile(2) * se / math.sqrt(3))
    assert interval([0.6, 0.6, 0.6], resolution=None)["half_width"] == 0.0  # without the floor it would be 0
    vs = s["strategies"]["random_0.9"]["vs_untrained"]["finetune_accuracy"]
    assert vs["mean"] == pytest.approx(0.1) and vs["half_width"] == pytest.approx(stats["half_width"])
    assert vs["verdict"] == "indistinguishable"


def _verdict(md):
    """The fine-tuning column's cell of the row "probe tells a pretrained encoder from ...?"."""
    lines = md.splitlines()
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines if line.startswith("| ")]
    header = cells[0]
    row = next(c for c in cells if c[0].startswith("probe tells"))
    return row[header.index("fine-tune acc.")]


def test_the_verdict_row_says_no_or_n_a_when_the_probe_cannot_tell():
    same = [[0.5, 0.55], [0.6, 0.5], [0.55, 0.6]]
    md = markdown_table({"random_0.9": dict(runs=[_run(s, a) for s, a in enumerate(same)])}, _untrained(same))
    assert _verdict(md) == "no" and "k-NN, linear and fine-tuning, direction labels" in md
    one = markdown_table({"random_0.9": dict(runs=[_run(0, [0.9, 0.9])])}, _untrained([[0.1, 0.1]]))
    assert _verdict(one) == "n/a"  # one encoder seed: no interval, however large the gap
    better = [[0.9, 0.85], [0.95, 0.9], [0.9, 0.95]]
    md = markdown_table({"random_0.9": dict(runs=[_run(s, a) for s, a in enumerate(better)])}, _untrained(same))
    assert _verdict(md) == "yes: random_0.9"


def test_a_run_with_the_fine_tuning_probe(tmp_path):
    """`--finetune` on the embedded data: every run and the untrained encoder of each seed fine-tuned with that
    seed's fine-tuning seeds; the table's column, its verdict row and the answer block report it."""
    from adamask.cli import main

    out = tmp_path / "run"
    argv = ["compare", "--quick", "--seeds", "2", "--finetune", "3", "--finetune-seeds", "2", "--out", str(out)]
    assert main(argv + ["--strategies", "random:0.9", "motion:0.9", "--quiet", "--no-figures"]) == 0
    res = json.loads((out / "results.json").read_text())
    for label in ("random_0.9", "motion_0.9"):
        for k, r in enumerate(res["strategies"][label]["runs"]):
            assert r["probe"]["finetune"]["seeds"] == finetune_seeds(k, 2)
    for k, p in enumerate(res["untrained_probe"]["runs"]):
        assert p["finetune"]["seeds"] == finetune_seeds(k, 2) and len(p["finetune"]["accuracies"]) == 2
    assert res["summary"]["probes"]["finetune_accuracy"]["comparisons"] == 2
    md = (out / "results.md").read_text()
    assert md.splitlines()[2].startswith("**Answer**") and "- **motion_0.9** vs random_0.9: " in md
    assert _verdict(md) in ("no", "yes: random_0.9", "yes: motion_0.9", "yes: random_0.9, motion_0.9")
    assert "Δ fine-tuning probe" in md
