"""Counting, on the CPU, the aten ops that make the host wait for the device on an accelerator: they read
tensor data on the host (``.item()``, ``bool(tensor)``, ``torch.equal``) or have a shape that depends on
tensor data (``nonzero``, ``masked_select``, ``unique``, indexing with a boolean mask)."""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_aten = torch.ops.aten
READS_DATA = {
    _aten._local_scalar_dense,
    _aten.is_nonzero,
    _aten.equal,
    _aten.nonzero,
    _aten.masked_select,
    _aten._unique2,
    _aten.unique_dim,
    _aten.unique_consecutive,
}
INDEXING = {_aten.index, _aten.index_put, _aten.index_put_, _aten._index_put_impl_}


def _bool_indexed(func: Any, args: tuple) -> bool:
    indices = args[1] if len(args) > 1 and isinstance(args[1], (list, tuple)) else ()
    return func.overloadpacket in INDEXING and any(
        isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices
    )


class HostSyncOps(TorchDispatchMode):
    """Records every host-syncing op dispatched while active, by name (``aten.index`` with a boolean
    mask is recorded as ``aten.index(bool)``), also in the backward pass run on this thread."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in READS_DATA:
            self.ops[f"aten.{func.overloadpacket.__name__}"] += 1
        elif _bool_indexed(func, args):
            self.ops[f"aten.{func.overloadpacket.__name__}(bool)"] += 1
        return func(*args, **(kwargs or {}))


def host_sync_ops(fn: Callable[[], Any]) -> Counter:
    """The host-syncing ops ``fn()`` runs, by name."""
    with HostSyncOps() as mode:
        fn()
    return mode.ops
