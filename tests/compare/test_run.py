"""A learned strategy defined outside adamask joins the comparison by the learned-strategy contract alone, and a
metric computed after training is one function plus one row of the metric table."""

import json
import math

import pytest
import torch
from torch import nn

pytest.importorskip("matplotlib")
pytest.importorskip("av")

from adamask import gumbel_topk, masking_from_mask, register_masking  # noqa: E402
from adamask.compare import CompareConfig, StrategySpec, build_model, load_checkpoint, run_compare  # noqa: E402
from adamask.compare.figures import masks_figure_size  # noqa: E402
from adamask.compare.metrics import METRICS, Metric  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


class ToyLearned(nn.Module):
    """A learned strategy that is no adamask class: a linear score per token (through ``width`` hidden units),
    softmax, N_v tokens drawn without replacement; trained by the default sampling loss."""

    learned = True
    needs = "tokens"

    def __init__(self, grid, mask_ratio, embed_dim, width=8):
        super().__init__()
        self.num_tokens = math.prod(grid)
        self.mask_ratio, self.embed_dim, self.width = mask_ratio, embed_dim, width
        self.num_visible = int(self.num_tokens * (1 - mask_ratio))
        self.score = nn.Sequential(nn.Linear(embed_dim, width), nn.Tanh(), nn.Linear(width, 1))

    def forward(self, tokens, generator=None):
        log_probs = torch.log_softmax(self.score(tokens.detach()).squeeze(-1).float(), -1)
        draw = gumbel_topk(log_probs, self.num_visible, generator)
        mask = torch.ones_like(log_probs, dtype=torch.bool).scatter_(1, draw, False)
        return masking_from_mask(mask, self.num_visible, probs=log_probs.exp())


def mean_visible(ctx):
    """The computed metric of the test: mean visible tokens of the held-out masks."""
    return float((~ctx.own["masks"]).sum(1).float().mean())


def test_a_learned_strategy_from_outside_trains_and_reports(tmp_path, png_size):
    register_masking("toy_learned_test", default_ratio=0.5, override=True)(ToyLearned)  # when the test runs
    out = tmp_path / "run"
    cfg = CompareConfig.quick(
        out=str(out), strategies=["random:0.5", "toy_learned_test:0.5"], masking_options={"width": 4}
    )
    metrics = (*METRICS, Metric("mean_visible", "mean visible", better="higher", digits=1, compute=mean_visible))
    res = run_compare(cfg, progress="none", log=lambda s: None, metrics=metrics)
    toy, rnd = (res["strategies"][k]["runs"][0] for k in ("toy_learned_test_0.5", "random_0.5"))
    assert toy["learned"] and not rnd["learned"]
    assert toy["num_visible"] == rnd["num_visible"] == 32
    assert all(math.isfinite(v) for v in toy["history"]["sampling_loss"])
    assert rnd["history"]["sampling_loss"] == [None] * 6
    assert 0 < toy["timing"]["sampler_share"] < 1 and toy["probability_allocation"]["n"] == 8
    assert len(toy["figure"]["probs"]) == 2 and rnd["figure"]["probs"] is None

    # the --sampler options reach the learned strategy only, with the model's width; its weights trained
    model, ck = load_checkpoint(out / "checkpoints" / "toy_learned_test_0.5.pt")
    assert isinstance(model.mask_sampler, ToyLearned) and model.is_adaptive
    assert model.mask_sampler.width == 4 and model.mask_sampler.embed_dim == 32
    start = build_model(
        cfg.model_config(), StrategySpec("toy_learned_test", 0.5), seed=cfg.seed, masking_options={"width": 4}
    )
    assert not torch.equal(model.mask_sampler.score[0].weight, start.mask_sampler.score[0].weight)

    # figures: frames, ground truth, the toy's probability map, one row per strategy; its error map beside P
    assert sorted(res["figures"]) == [
        "figures/allocation_curves.png",
        "figures/errors_clip0.png",
        "figures/errors_clip1.png",
        "figures/learning_curves.png",
        "figures/masks_clip0.png",
        "figures/masks_clip1.png",
        "figures/summary.png",
    ]
    assert png_size(out / "figures" / "masks_clip0.png") == masks_figure_size(4, 5, heat_maps=True)
    errors = toy["figure"]["errors"][0]
    masked = [bool(m) for m in toy["figure"]["masks"][0]]
    assert [e is not None for e in errors] == masked and all(e >= 0 for e in errors if e is not None)

    # the computed metric: in each result, the summary, the table (compared with random at the same ratio)
    assert toy["mean_visible"] == rnd["mean_visible"] == 32.0
    vs = res["summary"]["strategies"]["toy_learned_test_0.5"]["vs_reference"]
    assert vs["mean_visible"]["mean"] == 0.0 and vs["mean_visible"]["verdict"] == "one seed"
    assert res["summary"]["strategies"]["random_0.5"]["stats"]["mean_visible"]["mean"] == 32.0
    assert json.loads((out / "strategies" / "toy_learned_test_0.5.json").read_text())["mean_visible"] == 32.0
    md = (out / "results.md").read_text()
    assert md.startswith("**Answer**")  # the answer first, then the table
    header = next(line for line in md.splitlines() if line.startswith("| strategy |"))
    assert header.endswith("| masked error bg, same random masks | mean visible |")
    assert "| toy_learned_test_0.5 | 32 / 64 |" in md and md.count("| 32.0 |") == 2
    assert "**toy_learned_test_0.5** vs random_0.5 (32 vs 32 of 64 tokens visible, 1 seed;" in md
