"""The compatibility shims that let upstream code run on current libraries."""

from __future__ import annotations

import sys

from adamask.integrations import compat


def test_shims_are_idempotent_and_importable_modules_stay():
    compat.install_compat_shims()
    assert compat.install_compat_shims() == []
    assert sys.modules["torch._six"].inf == float("inf")
    import torch.fb.rendezvous.zeus  # noqa: F401  (an internal module mae_st imports)

    assert hasattr(torch.optim, "_multi_tensor")  # reached as an attribute of torch.optim
