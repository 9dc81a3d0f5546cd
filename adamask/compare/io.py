"""Atomic file writes: a temporary file in the same folder, then os.replace. A reader or an
interrupted run never sees a partial file."""
from __future__ import annotations

import json
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import Tensor

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "atomic_torch_save", "json_default", "strict_json",
           "write_json"]


@contextmanager
def atomic_path(path: os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(path: os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj: Any, path: os.PathLike) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` for paths, tensors and tuples; TypeError for anything else."""
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, Tensor):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def strict_json(o: Any) -> Any:
    """NaN / inf -> None, recursively, so the JSON stays strict."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: strict_json(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [strict_json(v) for v in o]
    return o


def write_json(path: os.PathLike, obj: Any, indent: int = 2) -> None:
    """Write ``obj`` as strict JSON (NaN -> null), atomically."""
    text = json.dumps(strict_json(obj), indent=indent, default=json_default, allow_nan=False)
    atomic_write_text(path, text + "\n")
