"""Host-sync detection for the device check: which calls in a region make the host wait for the device,
and whose code issued them.

CUDA: ``torch.cuda.set_sync_debug_mode("warn")``; every "synchronizing CUDA operation" warning is
caught with the Python stack at that moment. CPU: ``Tensor.item / tolist / __bool__ / nonzero / cpu /
numpy`` and ``torch.nonzero`` are patched to record their caller, and a dispatch mode records the aten
ops that read tensor data on the host (``_local_scalar_dense``, ``nonzero``, ``masked_select``,
``unique``, indexing with a boolean mask), so C++-side boolean indexing is seen too.

`step_syncs` counts every sync of a region, whoever issued it (the Hugging Face training step must make
none at all); `raises_on_sync` proves a region sync-free on CUDA with ``set_sync_debug_mode("error")``.

Attribution: the innermost frame in adamask's package, in transformers' package, or in this harness;
torch and other libraries (timm, einops) are looked through, so a sync inside timm's attention called by
adamask's sampler counts as adamask's. Autograd's backward runs without Python frames (on CUDA its
warnings are replayed at the ``.backward()`` call): a sync in a region's backward phase counts as ours
unless transformers issued it. Only adamask's syncs (and backward ones) fail a region.
"""

from __future__ import annotations

import importlib.util
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import adamask

_THIS = Path(__file__).resolve()
_ROOTS: List[Tuple[str, Path]] = [
    ("adamask", Path(adamask.__file__).resolve().parent),
    ("harness", Path(__file__).resolve().parent),
]
_spec = importlib.util.find_spec("transformers")
if _spec is not None and _spec.submodule_search_locations:
    _ROOTS.append(("transformers", Path(list(_spec.submodule_search_locations)[0]).resolve()))

PATCHED = ("item", "tolist", "__bool__", "nonzero", "cpu", "numpy")
_aten = torch.ops.aten
_READS_DATA = {
    _aten._local_scalar_dense,
    _aten.nonzero,
    _aten.masked_select,
    _aten._unique2,
    _aten.unique_dim,
    _aten.unique_consecutive,
}
_BOOL_INDEXED = {_aten.index, _aten.index_put, _aten.index_put_, _aten._index_put_impl_}


def attribute(stack: Sequence[traceback.FrameSummary]) -> Tuple[str, str, str]:
    """(origin, "file:line", source line) of the innermost frame in adamask, transformers or the harness."""
    for frame in reversed(stack):
        path = Path(frame.filename).resolve()
        if path == _THIS:  # the recorder itself
            continue
        for origin, root in _ROOTS:
            if root in path.parents:
                rel = path.relative_to(root.parent)
                return origin, f"{rel}:{frame.lineno}", (frame.line or "").strip()
    return "other", "?", ""


class _DataReads(TorchDispatchMode):
    """Records the aten ops that read tensor data on the host (CPU check)."""

    def __init__(self, recorder: "SyncRecorder") -> None:
        super().__init__()
        self.recorder = recorder

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        packet = func.overloadpacket
        if packet in _READS_DATA or (
            packet in _BOOL_INDEXED
            and any(
                isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
                for i in (args[1] if len(args) > 1 and isinstance(args[1], (list, tuple)) else ())
            )
        ):
            self.recorder.record(f"aten.{packet.__name__}")
        return func(*args, **(kwargs or {}))


class SyncRecorder:
    """Context manager recording host syncs; ``phase`` (forward / backward / step) tags each record."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.phase = "forward"
        self.records: Dict[Tuple[str, str, str, str, str], int] = {}
        self._inside = False
        self._undo: List[Tuple[Any, str, Any]] = []
        self._warnings: Optional[warnings.catch_warnings] = None
        self._mode: Optional[_DataReads] = None

    def record(self, op: str) -> None:
        if self._inside:
            return
        origin, site, code = attribute(traceback.extract_stack())
        key = (origin, site, code, op, self.phase)
        self.records[key] = self.records.get(key, 0) + 1

    def _on_warning(self, message, category, filename, lineno, file=None, line=None) -> None:
        if "synchroniz" in str(message):
            self.record("synchronizing CUDA operation")
        else:
            self._show(message, category, filename, lineno, file, line)

    def _patch(self, owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self._inside:
                return original(*args, **kwargs)
            self.record(f"{'Tensor.' if owner is torch.Tensor else 'torch.'}{name}")
            self._inside = True
            try:
                return original(*args, **kwargs)
            finally:
                self._inside = False

        setattr(owner, name, wrapper)
        self._undo.append((owner, name, original))

    def catch_warnings(self) -> None:
        """Start recording "synchronizing CUDA operation" warnings (other warnings pass through)."""
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("always")
        self._show = warnings.showwarning
        warnings.showwarning = self._on_warning

    def release_warnings(self, *exc: Any) -> None:
        assert self._warnings is not None, "catch_warnings() first"
        self._warnings.__exit__(*(exc or (None, None, None)))

    def __enter__(self) -> "SyncRecorder":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.catch_warnings()
            torch.cuda.set_sync_debug_mode("warn")
        else:
            for name in PATCHED:
                self._patch(torch.Tensor, name)
            self._patch(torch, "nonzero")
            self._mode = _DataReads(self)
            self._mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.set_sync_debug_mode("default")
            torch.cuda.synchronize(self.device)
            self.release_warnings(*exc)
        else:
            assert self._mode is not None, "entered on the CPU"
            self._mode.__exit__(*exc)
            for owner, name, original in reversed(self._undo):
                setattr(owner, name, original)
            self._undo.clear()

    def findings(self) -> List[Dict[str, Any]]:
        """One dict per (origin, site, op, phase) with its count and whether it fails the region."""
        return [
            {
                "origin": o,
                "site": s,
                "code": c,
                "op": op,
                "phase": ph,
                "count": n,
                "ours": o == "adamask" or (ph == "backward" and o != "transformers"),
            }
            for (o, s, c, op, ph), n in sorted(self.records.items())
        ]


Phase = Tuple[str, Callable[[Any], Any]]


def check_region(label: str, phases: Sequence[Phase], device: torch.device, warmup: int = 1) -> Dict[str, Any]:
    """Run ``phases`` [(name, fn(previous output) -> output), ...] ``warmup`` times, then once recorded.

    Returns {"region", "status" ("ok" / "failed"), "ours": adamask's syncs, "others": library syncs}."""
    for _ in range(warmup):
        out = None
        for _, fn in phases:
            out = fn(out)
    rec = SyncRecorder(device)
    with rec:
        out = None
        for name, fn in phases:
            rec.phase = name
            out = fn(out)
    found = rec.findings()
    ours = [f for f in found if f["ours"]]
    return {
        "region": label,
        "status": "failed" if ours else "ok",
        "ours": ours,
        "others": [f for f in found if not f["ours"]],
    }


def describe(finding: Dict[str, Any]) -> str:
    """One line: where and what, e.g. ``adamask/x.py:12 `mask.sum().item()` (Tensor.item, forward) x1``."""
    return (
        f"{finding['site']} `{finding['code']}` ({finding['op']}, {finding['phase']}) "
        f"x{finding['count']} [{finding['origin']}]"
    )


def step_syncs(label: str, phases: Sequence[Phase], device: torch.device, warmup: int = 1) -> Dict[str, Any]:
    """Every host sync one run of ``phases`` makes after ``warmup`` runs, whoever issued it: the region
    of `check_region` with ``count``, the total of its findings (adamask's, transformers', torch's)."""
    region = check_region(label, phases, device, warmup)
    region["count"] = sum(f["count"] for f in region["ours"] + region["others"])
    return region


def raises_on_sync(phases: Sequence[Phase], device: torch.device) -> Dict[str, Any]:
    """CUDA: one run of ``phases`` under ``torch.cuda.set_sync_debug_mode("error")``, where the first host
    sync raises: {"sync_free": True} when it ran through, else False and the error. Elsewhere
    {"sync_free": None}: only CUDA can prove it."""
    if device.type != "cuda":
        return {"sync_free": None, "error": None}
    torch.cuda.synchronize(device)
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = None
        for _, fn in phases:
            out = fn(out)
        return {"sync_free": True, "error": None}
    except RuntimeError as e:
        return {"sync_free": False, "error": str(e).splitlines()[0][:300]}
    finally:
        torch.cuda.set_sync_debug_mode("default")
        torch.cuda.synchronize(device)
