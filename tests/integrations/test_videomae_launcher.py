"""VideoMAE integration, the launcher: argument handling and the swaps, on a stand-in checkout."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import _upstream_helpers as H
import pytest

from adamask.integrations import videomae as vm

# ---------------------------------------------------------------------------------------------
# launcher argument handling


def test_launcher_rejects_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        vm.main(["--repo", str(tmp_path)])  # no '--'
    with pytest.raises(ValueError, match="no run_mae_pretraining.py"):
        vm.run(str(tmp_path), ["--mask_type", "adaptive"])
    (tmp_path / "run_mae_pretraining.py").write_text("")
    with pytest.raises(ValueError, match="neither a VideoMAE"):
        vm.run(str(tmp_path), ["--mask_type", "adaptive"])
    (tmp_path / "modeling_pretrain.py").write_text("")
    with pytest.raises(ValueError, match="--mask_type must be one of"):
        vm.run(str(tmp_path), ["--mask_type", "blocks"])


FAKE_SCRIPT = """
import argparse, json, sys
import datasets, engine_for_pretraining
from timm.models import create_model
p = argparse.ArgumentParser()
p.add_argument('--mask_type', choices=['random', 'tube'])
p.add_argument('--mask_ratio', type=float, default=0.75)
p.add_argument('--out')
a = p.parse_args()
gen = datasets.TubeMaskingGenerator((2, 4, 4), a.mask_ratio)
json.dump(dict(argv=sys.argv[1:], mask_type=a.mask_type, generator=repr(gen), shape=list(gen().shape),
               engine=engine_for_pretraining.train_one_epoch.__module__,
               shimmed=getattr(create_model, '_adamask_shim', False)), open(a.out, 'w'))
"""


@pytest.mark.parametrize("mask_type", ["adaptive", "frame"])
def test_launcher_swaps_generator_engine_and_create_model(tmp_path, mask_type):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "modeling_pretrain.py").write_text("")
    (repo / "datasets.py").write_text("TubeMaskingGenerator = None\n")
    (repo / "engine_for_pretraining.py").write_text("def train_one_epoch(*a, **k):\n    pass\n")
    (repo / "run_mae_pretraining.py").write_text(textwrap.dedent(FAKE_SCRIPT))
    out = tmp_path / "out.json"
    r = H.run_module(
        "adamask.integrations.videomae",
        ["--repo", str(repo), "--", "--mask_type", mask_type, "--mask_ratio", "0.5", "--out", str(out)],
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(out.read_text())
    assert got["mask_type"] == "tube" and got["shape"] == [32] and got["shimmed"] is True
    assert f"adamask {mask_type} masking generator" in got["generator"]
    expected_engine = "adamask.integrations.videomae" if mask_type == "adaptive" else "engine_for_pretraining"
    assert got["engine"] == expected_engine


FAKE_MODEL = """
from timm.models import register_model
from _toy_models import ToyVideoMAE


@register_model
def fake_videomae_toy(pretrained=False, **kwargs):
    return ToyVideoMAE()
"""

FAKE_BUILD_SCRIPT = """
import argparse, json
import datasets, engine_for_pretraining, modeling_pretrain
from timm.models import create_model
p = argparse.ArgumentParser()
p.add_argument('--mask_type')
p.add_argument('--mask_ratio', type=float)
p.add_argument('--out')
a = p.parse_args()
model = create_model('fake_videomae_toy', pretrained=False, drop_path_rate=0.0, decoder_depth=None)
s = model.loss_settings
json.dump(dict(strategy=type(model.mask_sampler).__name__, weight=s.weight, estimator=s.estimator,
               baseline=s.baseline, blocks=len(getattr(model.mask_sampler, 'blocks', [])),
               engine=engine_for_pretraining.train_one_epoch.__module__,
               generator=repr(datasets.TubeMaskingGenerator((2, 2, 2), a.mask_ratio))), open(a.out, 'w'))
"""


@pytest.mark.parametrize(
    "ours,mask_type,expected",
    [
        (
            [
                "--sampling-weight",
                "0.5",
                "--sampling-estimator",
                "plackett_luce",
                "--sampling-baseline",
                "mean",
                "--sampler-depth",
                "2",
            ],
            "adaptive",
            dict(strategy="AdaptiveTokenSampler", weight=0.5, estimator="plackett_luce", baseline="mean", blocks=2),
        ),
        (
            ["--import", "_toy_strategies"],
            "toy_learned",
            dict(strategy="ToyLearned", weight=1e-4, estimator="paper", baseline=None, blocks=0),
        ),
    ],
)
def test_launcher_wraps_their_model_with_the_strategy_and_loss_settings(
    tmp_path, monkeypatch, ours, mask_type, expected
):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # the stand-ins
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "modeling_pretrain.py").write_text(textwrap.dedent(FAKE_MODEL))
    (repo / "datasets.py").write_text("TubeMaskingGenerator = None\n")
    (repo / "engine_for_pretraining.py").write_text("def train_one_epoch(*a, **k):\n    pass\n")
    (repo / "run_mae_pretraining.py").write_text(textwrap.dedent(FAKE_BUILD_SCRIPT))
    out = tmp_path / "out.json"
    r = H.run_module(
        "adamask.integrations.videomae",
        ["--repo", str(repo), *ours, "--", "--mask_type", mask_type, "--mask_ratio", "0.5", "--out", str(out)],
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(out.read_text())
    assert {k: got[k] for k in expected} == expected
    assert got["engine"] == "adamask.integrations.videomae" and "placeholder" in got["generator"]
    assert f"adamask: {mask_type} masking on fake_videomae_toy" in r.stdout


FAKE_V2_SCRIPT = """
import json, sys
import timm.models, torch
import dataset.pretrain_datasets as data, engine_for_pretraining as engine
json.dump(dict(argv=sys.argv[1:], encoder=repr(data.TubeMaskingGenerator((2, 4, 4), 0.9)),
               decoder=repr(data.RunningCellMaskingGenerator((2, 4, 4), 0.5)),
               decoder_shape=list(data.RunningCellMaskingGenerator((2, 4, 4), 0.5)().shape),
               engine=engine.train_one_epoch.__module__, compile=torch.compile.__name__,
               shimmed=getattr(timm.models.create_model, '_adamask_shim', False)), open(sys.argv[1], 'w'))
raise RuntimeError('their script failed')
"""


def fake_v2_repo(root: Path) -> Path:
    repo = root / "repo"
    (repo / "models").mkdir(parents=True)
    (repo / "dataset").mkdir()
    (repo / "models" / "modeling_pretrain.py").write_text("")
    (repo / "dataset" / "__init__.py").write_text("")
    (repo / "dataset" / "pretrain_datasets.py").write_text(
        "TubeMaskingGenerator = 'theirs'\nRunningCellMaskingGenerator = 'theirs'\n"
    )
    (repo / "engine_for_pretraining.py").write_text("def train_one_epoch(*a, **k):\n    pass\n")
    (repo / "run_mae_pretraining.py").write_text(textwrap.dedent(FAKE_V2_SCRIPT))
    return repo


@pytest.mark.parametrize(
    "decoder, expected",
    [
        ([], "running_cell"),
        (["--decoder_mask_type", "run_cell"], "running_cell"),
        (["--decoder_mask_type", "random"], "random"),
    ],
)
def test_v2_launcher_swaps_the_decoder_generator_and_undoes_every_swap_when_their_script_fails(
    tmp_path, decoder, expected
):
    import timm.models
    import torch

    from adamask.integrations.compat import install_compat_shims

    repo = fake_v2_repo(tmp_path)
    out = tmp_path / "out.json"
    install_compat_shims()  # process-wide (their timm create_model included): what a run swaps comes on top
    before = (timm.models.create_model, torch.compile, list(sys.argv))
    with H.upstream_on_path([repo]):
        with pytest.raises(RuntimeError, match="their script failed"):
            vm.run(str(repo), ["--mask_type", "adaptive", *decoder, str(out)], compile_model=False)
        import dataset.pretrain_datasets as data
        import engine_for_pretraining as engine

        assert data.TubeMaskingGenerator == data.RunningCellMaskingGenerator == "theirs"
        assert engine.train_one_epoch.__module__ == "engine_for_pretraining"
    assert (timm.models.create_model, torch.compile, sys.argv) == before
    got = json.loads(out.read_text())
    assert got["argv"][-4:] == ["--decoder_mask_type", "run_cell", "--mask_type", "tube"]  # their choices
    assert "adamask adaptive masking generator (placeholder" in got["encoder"]
    assert f"adamask {expected} masking generator" in got["decoder"] and got["decoder_shape"] == [2, 16]
    assert got["engine"] == "adamask.integrations.videomae" and got["shimmed"] is True
    assert got["compile"] == "_no_compile"


def test_v2_launcher_refuses_a_decoder_mask_type_it_cannot_draw(tmp_path):
    repo = fake_v2_repo(tmp_path)
    with pytest.raises(ValueError, match="--decoder_mask_type must be one of .*run_cell.*running_cell"):
        vm.run(str(repo), ["--mask_type", "adaptive", "--decoder_mask_type", "adaptive"])
    with pytest.raises(ValueError, match="--mask_ratio must be a number, got 'x'"):
        vm.run(str(repo), ["--mask_type", "adaptive", "--mask_ratio", "x"])
