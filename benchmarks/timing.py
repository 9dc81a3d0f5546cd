"""The suite's sizes (full and smoke) and how it times: interleaved repeats, medians with min-max, and the count
of operations a step dispatches."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from adamask.mae import MAE_CONFIGS


@dataclass
class Sizes:
    """Problem sizes of one run (full or smoke)."""

    batch: int = 32
    grid: Tuple[int, int, int] = (8, 14, 14)  # 16 x 224 x 224, tubelet 2 x 16 x 16 -> 1568 tokens
    repeats: int = 15
    number: int = 1  # calls per timed sample (raised for sub-millisecond functions)
    train_batch: int = 4
    train_repeats: int = 9
    train_model: Dict[str, Any] = field(
        default_factory=lambda: dict(MAE_CONFIGS["small"], img_size=128)
    )  # ViT-S: encoder 12 x 384, decoder 4 x 192; 16 x 128^2 -> 512 tokens
    paper_size: str = "base"
    paper_overrides: Dict[str, Any] = field(default_factory=dict)
    smoke: bool = False

    def judge(self, ok: bool) -> Optional[bool]:
        """Targets are judged on full runs only (None in smoke mode)."""
        return None if self.smoke else bool(ok)


FULL = Sizes()
SMOKE = Sizes(
    batch=2,
    grid=(2, 4, 4),
    repeats=2,
    train_batch=1,
    train_repeats=1,
    train_model=dict(MAE_CONFIGS["nano"], embed_dim=32, num_heads=2),
    paper_size="tiny",
    smoke=True,
)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _sample_seconds(fn: Callable[[], Any], number: int, device: torch.device) -> float:
    """Seconds per call of ``fn`` over ``number`` calls: CUDA events on a CUDA device (the GPU timeline from
    the first launch to the last kernel's end; host work in between counts, as the GPU waits for it),
    else ``time.perf_counter`` around synchronised calls."""
    sync(device)
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(number):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / number
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / number


def interleaved(
    fns: Dict[str, Callable[[], Any]], repeats: int, device: torch.device, number: int = 1, warmup: int = 1
) -> Dict[str, List[float]]:
    """Seconds per call of each function: ``repeats`` samples each, taken in rotating order
    (CUDA-event timing on a CUDA device, see `_sample_seconds`)."""
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    sync(device)
    times: Dict[str, List[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(_sample_seconds(fns[name], number, device))
    return times


def cuda_graphed(fn: Callable[[], Any]) -> Tuple[Callable[[], None], Any]:
    """``fn`` captured into a CUDA graph after three warm-up calls on a side stream: (its replay, the output of
    the captured call, whose tensors every replay rewrites). Random numbers drawn on the device inside ``fn``
    are new at every replay."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph.replay, out


def stats(samples: Sequence[float], scale: float = 1e3) -> Dict[str, Any]:
    """Median, min, max (ms by default) of timing samples."""
    return {
        "median": statistics.median(samples) * scale,
        "min": min(samples) * scale,
        "max": max(samples) * scale,
        "n": len(samples),
    }


def comparison(
    name: str, ours: Sequence[float], base: Sequence[float], target: str, met: Optional[bool], **extra: Any
) -> Dict[str, Any]:
    """One side-by-side row; speedup = baseline median / ours median."""
    o, b = stats(ours), stats(base)
    return {
        "name": name,
        "ours_ms": o,
        "baseline_ms": b,
        "speedup": b["median"] / o["median"],
        "target": target,
        "met": met,
        **extra,
    }


# aten operations that only make a view (no kernel, no copy)
VIEWS = {
    "aten.view", "aten._unsafe_view", "aten.expand", "aten.t", "aten.transpose", "aten.permute", "aten.unsqueeze",
    "aten.squeeze", "aten.detach", "aten.alias", "aten.as_strided", "aten.slice", "aten.select", "aten.unbind",
    "aten.split", "aten.split_with_sizes", "aten.unflatten", "aten.reshape", "aten._reshape_alias",
}  # fmt: skip


class OpCounter(TorchDispatchMode):
    """Counts the aten operations dispatched (forward, backward and optimiser step); ``kernels``: those that are
    not views."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()

    @property
    def kernels(self) -> int:
        return sum(n for op, n in self.ops.items() if op not in VIEWS)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))
