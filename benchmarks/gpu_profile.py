"""Where the paper-scale training step's time goes on a GPU: for each configuration, the wall time of a
step, the summed time of its GPU kernels (busy < wall means the GPU waits on the host: launch-bound),
the number of kernels launched, and the top kernels by GPU time.

    PYTHONPATH=. python3 benchmarks/gpu_profile.py [--size base] [--batch 16] [--rows 8]

Needs CUDA. Companion to section 4 of `gpu_check.py` (same models, bf16 autocast, fused AdamW).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

HERE = Path(__file__).resolve().parent
for p in (str(HERE.parent), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from adamask.mae import MAE_CONFIGS  # noqa: E402
from gpu_sections import make_plan  # noqa: E402
from gpu_train import build, step_configs  # noqa: E402


def wall_ms(step: Callable[[], None], repeats: int) -> float:
    """Median wall time of one step, synchronised before and after (ms)."""
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def kernel_profile(step: Callable[[], None], rows: int) -> Dict[str, Any]:
    """GPU kernel time (ms) and count of one step, and its ``rows`` most expensive kernels."""
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    total: Dict[str, float] = {}
    for e in kernels:
        total[e.name] = total.get(e.name, 0.0) + e.device_time_total / 1e3
    top = sorted(total.items(), key=lambda kv: -kv[1])[:rows]
    return {"gpu_ms": sum(total.values()), "kernels": len(kernels), "top": top}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="base", choices=sorted(MAE_CONFIGS))
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_profile needs CUDA")
        return 2
    plan = replace(make_plan(torch.device("cuda"), False, Path(".")), train_size=args.size)
    print(f"{torch.cuda.get_device_name()}; {args.size}, batch {args.batch}, bf16 autocast, fused AdamW")
    print("| config | wall ms | GPU kernel ms | busy | kernels |\n|---|---|---|---|---|")
    details = []
    for config in step_configs(MAE_CONFIGS[args.size]["embed_dim"]):
        model_step, _ = build(plan, config, args.batch)
        step = model_step.plain(model_step.loss_fn(False))
        for _ in range(3):
            step()
        wall = wall_ms(step, args.repeats)
        prof = kernel_profile(step, args.rows)
        label = config.label
        print(f"| {label} | {wall:.2f} | {prof['gpu_ms']:.2f} | {prof['gpu_ms'] / wall:.0%} | {prof['kernels']} |")
        details.append((label, prof["top"]))
        del step, model_step
        torch.cuda.empty_cache()
    for label, top in details:
        print(f"\n{label}: top kernels (ms per step)")
        for name, ms in top:
            print(f"  {ms:7.2f}  {name[:110]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
