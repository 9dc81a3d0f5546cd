"""The compatibility shims and the earlier module names of the integrations' shared pieces."""

from __future__ import annotations

import sys

import torch

from adamask.integrations import _common, adapter, compat, launch


def test_shims_are_idempotent_and_importable_modules_stay():
    compat.install_compat_shims()
    assert compat.install_compat_shims() == []
    assert sys.modules["torch._six"].inf == float("inf")
    import torch.fb.rendezvous.zeus  # noqa: F401  (an internal module mae_st imports)

    assert hasattr(torch.optim, "_multi_tensor")  # reached as an attribute of torch.optim


def test_common_re_exports_the_shared_pieces():
    assert _common.install_compat_shims is compat.install_compat_shims
    assert _common.timm_create_model_shim is compat.timm_create_model_shim
    assert _common.pop_option is launch.pop_option and _common.split_launcher_argv is launch.split_launcher_argv
    assert _common.unwrap_model is adapter.unwrap_model and _common.SAMPLER_NAME == "mask_sampler"
    assert _common.MASK_TYPES == ("adaptive", "random", "tube", "frame")
    assert set(_common.__all__) <= set(vars(_common))
    s = _common.build_sampler(16, (2, 2, 2), 0.75)
    assert s.num_visible == 2 and s.blocks[0].attn.num_heads == 8
    model = torch.nn.Linear(2, 2)
    _common.attach_sampler(model, s, 3e-4)
    assert model.mask_sampler is s and model.sampling_weight == 3e-4
