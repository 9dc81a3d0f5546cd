"""The device check's plan (sizes per mode), its target records, and the sections that need no model
training: 1 host syncs, 2 mask generation, 3 sampling loss, 8 DDP (not run on one GPU).

Every section takes a `Plan` and returns a dict: ``lines`` (its printed table), ``targets`` (see
`target`) and its figures. Targets are judged only in a full run (``met`` is None in smoke mode and
whenever the value was not measured)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, cast

import torch

from adamask import (
    AdaptiveTokenSampler,
    LossSettings,
    MaskingStrategy,
    create_masking,
    learned_loss,
    list_maskings,
    sampling_loss,
    strategy_info,
)
from adamask.mae import MAE_CONFIGS
from gpu_sync import check_region, describe
from micro import bench_loss, bench_masks
from timing import FULL, SMOKE, Sizes
from train_step import build_training

PAPER_BATCH = 16  # AdaMAE Table 1a
# dense bf16 peak FLOP/s by device name (None: unknown, MFU not reported)
PEAK_BF16 = (
    ("H200", 989e12),
    ("H100 PCIE", 756e12),
    ("H100 80GB HBM3", 989e12),
    ("H100 SXM", 989e12),
    ("A100", 312e12),
)


def peak_bf16_flops(device_name: str) -> Optional[float]:
    """Dense bf16 peak of a device from its name (H100 SXM / PCIe, H200, A100), else None."""
    name = device_name.upper()
    return next((peak for key, peak in PEAK_BF16 if key in name), None)


@dataclass(frozen=True)
class Plan:
    """Sizes of one run: the full run (paper scale, CUDA) or the CPU smoke run (seconds)."""

    device: torch.device
    smoke: bool
    out: Path
    micro: Sizes = field(default_factory=lambda: FULL)
    sync_grid: Tuple[int, int, int] = (8, 14, 14)
    sync_dim: int = 768
    sync_batch: int = 4
    sync_mae: str = "tiny"
    hf_size: str = "base"
    hf_batch: int = 4
    train_size: str = "base"
    train_batches: Tuple[int, ...] = (PAPER_BATCH, 2 * PAPER_BATCH)
    train_repeats: int = 10
    compile_budget_s: float = 240.0  # seconds of compiling the training step may take (section 4)
    breaks_size: str = "base"
    breaks_batch: int = 2
    breaks_every_strategy: bool = True  # False: the paper's sampler and the decoder-masked step only
    compare_timeout_s: float = 240.0
    compare_args: Tuple[str, ...] = ()

    @property
    def judged(self) -> bool:
        return not self.smoke

    @property
    def autocast(self) -> Optional[torch.dtype]:
        """bf16 autocast on CUDA, none (float32) on CPU."""
        return torch.bfloat16 if self.device.type == "cuda" else None


def make_plan(device: torch.device, smoke: bool, out: Path) -> Plan:
    if not smoke:
        return Plan(device, False, out)
    return Plan(
        device,
        True,
        out,
        micro=SMOKE,
        sync_grid=(2, 4, 4),
        sync_dim=32,
        sync_batch=2,
        sync_mae="nano",
        hf_size="tiny",
        hf_batch=2,
        train_size="tiny",
        train_batches=(2,),
        train_repeats=1,
        compile_budget_s=8.0,
        breaks_size="nano",
        breaks_batch=2,
        breaks_every_strategy=False,
        compare_timeout_s=120.0,
        compare_args=("--quick",),
    )


def target(
    name: str, value: Optional[float], goal: str, ok: Callable[[float], bool], plan: Plan, shown: Optional[str] = None
) -> Dict[str, Any]:
    """A target record: met is True / False only when judged (full run) and measured, else None."""
    met = None if value is None or not plan.judged else bool(ok(value))
    return {
        "name": name,
        "value": value,
        "shown": shown if shown is not None else _fmt(value),
        "target": goal,
        "met": met,
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "not measured"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------------------------
# 1. host syncs


def _strategy_input(strategy: Any, plan: Plan) -> torch.Tensor:
    """Tokens (B, N, D), or the video (B, 3, T, H, W) of the grid for a strategy that needs the video."""
    t, h, w = strategy.grid
    if getattr(strategy, "needs", "tokens") == "video":
        pt, ph, pw = strategy.tubelet
        return torch.randn(plan.sync_batch, 3, t * pt, h * ph, w * pw, device=plan.device)
    return torch.randn(plan.sync_batch, t * h * w, plan.sync_dim, device=plan.device)


def _strategy_region(name: str, plan: Plan) -> Dict[str, Any]:
    s = cast(MaskingStrategy, create_masking(name, grid=plan.sync_grid, embed_dim=plan.sync_dim)).to(plan.device)
    x = _strategy_input(s, plan)
    phases: List[Tuple[str, Callable[[Any], Any]]] = [("forward", lambda _: s(x))]
    if strategy_info(name).learned:
        err = lambda m: torch.rand(plan.sync_batch, m.num_masked, device=plan.device)  # noqa: E731
        phases += [
            ("loss", lambda m: learned_loss(s, m, err(m), LossSettings())),
            ("backward", lambda loss: loss.backward()),
        ]
    return check_region(
        f"strategy {name} ({'video' if strategy_info(name).needs == 'video' else 'tokens'})", phases, plan.device
    )


def _sampler_region(plan: Plan) -> Dict[str, Any]:
    s = AdaptiveTokenSampler(plan.sync_dim, grid=plan.sync_grid).to(plan.device)
    x = _strategy_input(s, plan)
    err = torch.rand(plan.sync_batch, s.num_tokens - s.num_visible, device=plan.device)
    return check_region(
        "sampler forward + sampling_loss + backward",
        [
            ("forward", lambda _: s(x)),
            ("loss", lambda m: sampling_loss(m.probs, m.mask, err)),
            ("backward", lambda loss: loss.backward()),
        ],
        plan.device,
    )


def _mae_region(name: str, plan: Plan) -> Dict[str, Any]:
    model, opt, video = build_training(
        MAE_CONFIGS[plan.sync_mae], name, strategy_info(name).default_ratio, None, plan.sync_batch, plan.device
    )

    def forward(_: Any) -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        return model(video).loss

    return check_region(
        f"reference MAE step ({plan.sync_mae}, {name})",
        [("forward", forward), ("backward", lambda loss: loss.backward()), ("step", lambda _: opt.step())],
        plan.device,
    )


def hf_region(model: Any, pixel_values: torch.Tensor, label: str) -> Dict[str, Any]:
    """The sync check of an `AdaptiveVideoMAEForPreTraining` forward with a sampled mask."""
    model.train()
    return check_region(label, [("forward", lambda _: model(pixel_values))], pixel_values.device)


def _hf_region(plan: Plan) -> Dict[str, Any]:
    from gpu_integration import hf_model  # transformers is imported only here

    model, _, x = hf_model("tiny", plan.sync_batch, plan.device)
    return hf_region(model, x, "HF AdaptiveVideoMAEForPreTraining forward (tiny config)")


def _guarded(label: str, fn: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
    try:
        return fn()
    except Exception as e:  # a region that cannot run is reported, the others still run
        return {"region": label, "status": "error", "error": f"{type(e).__name__}: {e}", "ours": [], "others": []}


def section_sync(plan: Plan) -> Dict[str, Any]:
    names = list_maskings()
    jobs: List[Tuple[str, Callable[[], Dict[str, Any]]]] = [
        (f"strategy {n}", partial(_strategy_region, n, plan)) for n in names
    ]
    jobs.append(("sampler", partial(_sampler_region, plan)))
    jobs += [(f"MAE {n}", partial(_mae_region, n, plan)) for n in names if strategy_info(n).needs != "video"]
    jobs.append(("HF forward", partial(_hf_region, plan)))
    regions = [_guarded(label, fn) for label, fn in jobs]
    ours = sum(f["count"] for r in regions for f in r["ours"])
    others = sum(f["count"] for r in regions for f in r["others"])
    complete = all(r["status"] != "error" for r in regions)
    how = (
        "torch.cuda.set_sync_debug_mode('warn')"
        if plan.device.type == "cuda"
        else "patched Tensor.item/tolist/__bool__/nonzero/cpu/numpy, torch.nonzero + aten data-reading ops"
    )
    lines = [
        f"host syncs after warm-up ({how}):",
        "| region | status | adamask syncs | library syncs |",
        "|---|---|---|---|",
    ]
    for r in regions:
        lines.append(
            f"| {r['region']} | {r['status']} | {sum(f['count'] for f in r['ours'])} | "
            f"{sum(f['count'] for f in r['others'])} |"
        )
        lines += [f"  - {describe(f)}" for f in r["ours"] + r["others"]]
        lines += [f"  - error: {r['error']}"] if "error" in r else []
    return {
        "method": how,
        "strategies": names,
        "regions": regions,
        "adamask_syncs": ours,
        "library_syncs": others,
        "status": "ok" if complete and not ours else ("failed" if ours else "error"),
        "lines": lines,
        "targets": [
            target(
                "no host sync issued by adamask (every strategy, sampler + loss, MAE step, HF forward)",
                ours if complete else None,
                "0",
                lambda v: v == 0,
                plan,
            )
        ],
    }


# ---------------------------------------------------------------------------------------------
# 2-3. mask generation and sampling loss (the rows of benchmarks/micro.py, judged here)


def _verdict(met: Optional[bool], value: float) -> bool:
    """The ``ok`` of a row judged where it was measured: its ``met`` (None counts as not met)."""
    return met if met is not None else False


def _micro_section(rows: List[Dict[str, Any]], plan: Plan) -> Dict[str, Any]:
    lines = ["| comparison | adamask ms (median) | baseline ms (median) | speedup | target |", "|---|---|---|---|---|"]
    targets = []
    for r in rows:
        lines.append(
            f"| {r['name']} vs {r['baseline']} | {r['ours_ms']['median']:.4g} | "
            f"{r['baseline_ms']['median']:.4g} | {r['speedup']:.1f}x | {r['target']} |"
        )
        if r["target"]:
            targets.append(
                target(
                    r["name"],
                    r["speedup"],
                    r["target"],
                    partial(_verdict, r["met"]),
                    plan,
                    shown=f"{r['speedup']:.1f}x",
                )
            )
    timer = "CUDA events" if plan.device.type == "cuda" else "perf_counter"
    lines.append(f"(interleaved repeats, {timer}; {plan.micro.repeats} samples each)")
    return {"rows": rows, "lines": lines, "targets": targets}


def section_masks(plan: Plan) -> Dict[str, Any]:
    return _micro_section(bench_masks(plan.micro, plan.device, graphed=True), plan)


def section_loss(plan: Plan) -> Dict[str, Any]:
    return _micro_section(bench_loss(plan.micro, plan.device, min_speedup=50.0, graphed=True), plan)


# ---------------------------------------------------------------------------------------------
# 8. DDP


def section_ddp(plan: Plan) -> Dict[str, Any]:
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    reason = (
        f"DDP with NCCL needs one process per GPU and at least 2 GPUs; this machine has {count}. "
        "Not simulated: the multi-process path is tested on CPU with gloo (tests/integrations/test_ddp.py)."
    )
    return {
        "status": "not run",
        "reason": reason,
        "cuda_device_count": count,
        "lines": [f"not run: {reason}"],
        "targets": [],
    }
