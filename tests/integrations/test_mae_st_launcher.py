"""mae_st integration, the launcher: argument handling and the swaps, on a stand-in checkout."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import _upstream_helpers as H
import pytest

from adamask.integrations import mae_st as ms


def test_launcher_rejects_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        ms.main(["--repo", str(tmp_path)])  # no '--'
    with pytest.raises(ValueError, match="named 'mae_st'"):
        ms.run(str(tmp_path), ["--epochs", "1"])
    repo = tmp_path / "mae_st"
    repo.mkdir()
    with pytest.raises(ValueError, match="no run_pretrain.py"):
        ms.run(str(repo), ["--epochs", "1"])
    (repo / "run_pretrain.py").write_text("")
    with pytest.raises(ValueError, match="--mask_type must be one of"):
        ms.run(str(repo), ["--mask_type", "tube"])


FAKE_MODELS = """
from _toy_models import ToyMAEST


def mae_vit_toy(**kwargs):
    return ToyMAEST()
"""

FAKE_MISC = """
def add_weight_decay(model, weight_decay=1e-5, skip_list=(), bias_wd=False):
    names = [n for n, _ in model.named_parameters()]
    return [{"params": [n for n in names if n in skip_list], "weight_decay": 0.0},
            {"params": [n for n in names if n not in skip_list], "weight_decay": weight_decay}]


class MetricLogger:
    def __init__(self):
        self.meters = {}

    def update(self, **kwargs):
        self.meters.update(kwargs)
"""

FAKE_SCRIPT = """
import argparse, json
import torch
import mae_st.models_mae as models_mae
import mae_st.util.misc as misc
p = argparse.ArgumentParser()
p.add_argument('--mask_ratio', type=float)
p.add_argument('--out')
a = p.parse_args()
model = models_mae.mae_vit_toy(mask_ratio=a.mask_ratio)
groups = misc.add_weight_decay(model, 0.05)
logger = misc.MetricLogger()
loss, _, _ = model(torch.randn(2, 3, 4, 16, 16), mask_ratio=a.mask_ratio)
logger.update(loss=loss.item())
s = getattr(model, 'loss_settings', None)
json.dump(dict(strategy=type(getattr(model, 'mask_sampler', None)).__name__, no_decay=groups[0]['params'],
               logged=sorted(logger.meters), settings=None if s is None else [s.weight, s.estimator, s.baseline]),
          open(a.out, 'w'))
"""


@pytest.mark.parametrize(
    "ours,mask_type,expected",
    [
        (
            ["--sampling-weight", "0.5", "--sampling-estimator", "plackett_luce", "--sampling-baseline", "mean"],
            "adaptive",
            dict(
                strategy="AdaptiveTokenSampler",
                settings=[0.5, "plackett_luce", "mean"],
                no_decay=["mask_token", "mask_sampler.pos_embed"],
                logged=["loss", "loss_rec", "loss_sampling"],
            ),
        ),
        (
            ["--import", "_toy_strategies"],
            "toy_learned",
            dict(
                strategy="ToyLearned",
                settings=[1e-4, "paper", None],
                no_decay=["mask_token"],
                logged=["loss", "loss_rec", "loss_sampling"],
            ),
        ),
        ([], "random", dict(strategy="NoneType", settings=None, no_decay=[], logged=["loss"])),  # theirs, unchanged
    ],
)
def test_launcher_wraps_their_models_and_logs_both_terms(tmp_path, monkeypatch, ours, mask_type, expected):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # the stand-ins
    repo = tmp_path / "mae_st"
    (repo / "util").mkdir(parents=True)
    (repo / "models_mae.py").write_text(textwrap.dedent(FAKE_MODELS))
    (repo / "util" / "misc.py").write_text(textwrap.dedent(FAKE_MISC))
    (repo / "run_pretrain.py").write_text(textwrap.dedent(FAKE_SCRIPT))
    out = tmp_path / "out.json"
    r = H.run_module(
        "adamask.integrations.mae_st",
        ["--repo", str(repo), *ours, "--", "--mask_type", mask_type, "--mask_ratio", "0.75", "--out", str(out)],
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(out.read_text()) == expected
    assert (f"adamask: {mask_type} masking on mae_vit_toy" in r.stdout) == (mask_type != "random")
