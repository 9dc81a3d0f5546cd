"""The compatibility shims that let upstream code run on current libraries."""

from __future__ import annotations

import sys

import pytest
import torch

from adamask.integrations import compat


def test_shims_are_idempotent_and_importable_modules_stay():
    compat.install_compat_shims()
    assert compat.install_compat_shims() == []
    assert sys.modules["torch._six"].inf == float("inf")
    import torch.fb.rendezvous.zeus  # noqa: F401  (an internal module mae_st imports)

    assert hasattr(torch.optim, "_multi_tensor")  # reached as an attribute of torch.optim


class _Rejects(torch.nn.Module):
    """A model whose constructor, like VideoMAE's, takes only its own keywords."""

    def __init__(self, width: int = 2) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(width, width)


def test_timm_create_model_builds_models_registered_outside_timm_without_pretrained_cfg():
    import timm
    import timm.models
    from timm.models import register_model

    @register_model
    def adamask_test_rejects_pretrained_cfg(pretrained=False, **kwargs):
        return _Rejects(**kwargs)

    compat.install_compat_shims()
    for create in (timm.models.create_model, timm.create_model):
        assert getattr(create, "_adamask_shim", False)
        assert create("adamask_test_rejects_pretrained_cfg", width=3, drop_block_rate=None).proj.in_features == 3
    with pytest.raises(TypeError, match="pretrained_cfg"):  # what timm itself does with it
        timm.models.create_model._adamask_original("adamask_test_rejects_pretrained_cfg")
    assert type(timm.create_model("test_vit")).__module__.startswith("timm.")  # timm's own: built by timm


@pytest.mark.skipif(torch.cuda.is_available(), reason="the shim applies only without CUDA")
def test_a_disabled_grad_scaler_reports_its_scale_without_cuda():
    import warnings

    compat.install_compat_shims()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch says it disables the CUDA scaler
        disabled = torch.cuda.amp.GradScaler()
    assert not disabled.is_enabled() and disabled.state_dict() == {"scale": 1.0}
    disabled.load_state_dict({"scale": 1.0})  # a disabled scaler ignores what it loads
    enabled = torch.amp.GradScaler("cpu", init_scale=8.0)
    assert enabled.is_enabled() and enabled.state_dict()["scale"] == 8.0 and "growth_factor" in enabled.state_dict()
