"""VideoMAE integration, train_one_epoch on a stand-in model: v1 / v2 batches, scalers, non-finite losses."""

from __future__ import annotations

import math

import _videomae_checks as C
import pytest
import torch
from _toy_models import toy_videomae as toy

from adamask.integrations import videomae as vm


class MinimalScaler:
    """The call interface of their NativeScalerWithGradNormCount, without AMP."""

    def __call__(self, loss, optimizer, clip_grad=None, parameters=None, create_graph=False, update_grad=True):
        loss.backward(create_graph=create_graph)
        norm = torch.nn.utils.clip_grad_norm_(list(parameters), clip_grad if clip_grad else math.inf)
        optimizer.step()
        return norm

    def state_dict(self):
        return {}


@pytest.mark.parametrize("batches", ["v1", "v2", "v2-decoder-mask"])
@pytest.mark.parametrize("scaler", [None, MinimalScaler()])
def test_train_one_epoch_trains_sampler_and_backbone(batches, scaler, capsys):
    model = toy()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    before = C.snapshot(model)
    loader = []
    for _ in range(3):
        x, enc = torch.randn(2, 3, 4, 16, 16), torch.zeros(2, 8)
        if batches == "v1":
            loader.append((x, enc))
        elif batches == "v2":
            loader.append((x, enc, 1 - enc))
        else:
            loader.append((x, enc, torch.tensor([[0.0, 1.0] * 4] * 2)))
    stats = vm.train_one_epoch(
        model,
        loader,
        opt,
        "cpu",
        0,
        scaler,
        max_norm=1.0,
        patch_size=8,
        lr_schedule_values=[1e-2] * 3,
        wd_schedule_values=[0.05] * 3,
        start_steps=0,
    )
    assert {"loss", "loss_rec", "loss_sampling", "lr", "grad_norm"} <= set(stats)
    assert all(math.isfinite(stats[k]) for k in ("loss", "loss_rec", "loss_sampling"))
    assert C.changed(before, model, "mask_sampler.") > 0
    assert C.changed(before, model, "", exclude="mask_sampler.") > 0
    assert "loss_sampling" in capsys.readouterr().out


def test_train_one_epoch_stops_on_non_finite_loss():
    model = toy()
    with torch.no_grad():
        model.head.bias.fill_(float("nan"))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FloatingPointError, match="loss is nan"):
        vm.train_one_epoch(
            model, [(torch.randn(2, 3, 4, 16, 16), torch.zeros(2, 8))], opt, "cpu", 0, None, patch_size=8
        )


def test_train_one_epoch_with_a_non_learned_strategy_logs_no_sampling_term():
    model = toy(strategy="toy_norm")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = C.snapshot(model)
    stats = vm.train_one_epoch(
        model, [(torch.randn(2, 3, 4, 16, 16), torch.zeros(2, 8)) for _ in range(2)], opt, "cpu", 0, None, patch_size=8
    )
    assert "loss_sampling" not in stats and stats["loss"] == stats["loss_rec"]
    assert C.changed(before, model, "") > 0
