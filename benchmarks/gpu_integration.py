"""Sections 6-7 of the device check: the Hugging Face integration at ViT-B, and ``adamask compare`` on the
device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch

from gpu_sections import Plan, target
from gpu_sync import describe, raises_on_sync, step_syncs
from timing import interleaved, stats

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------
# 6. Hugging Face


def hf_config(size: str) -> Any:
    """A random-init VideoMAEConfig: "base" = ViT-B (transformers' defaults: 16 x 224^2, tubelet 2 x 16 x 16,
    decoder 4 x 384) or "tiny" (4 x 32^2, 1 layer of 32)."""
    from transformers import VideoMAEConfig

    if size == "base":
        return VideoMAEConfig(use_mean_pooling=False)
    return VideoMAEConfig(
        image_size=32,
        patch_size=8,
        num_frames=4,
        tubelet_size=2,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        decoder_hidden_size=32,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=64,
        use_mean_pooling=False,
    )


def hf_model(size: str, batch: int, device: torch.device, with_stock: bool = False) -> Tuple[Any, Any, torch.Tensor]:
    """(AdaptiveVideoMAEForPreTraining, the stock VideoMAEForPreTraining with the same weights or None,
    pixel_values (B, T, C, H, W)), random init, on ``device``."""
    from transformers import VideoMAEForPreTraining

    from adamask.integrations.hf import AdaptiveVideoMAEForPreTraining

    torch.manual_seed(0)
    # Any: transformers declares PreTrainedModel.to through functools.wraps, which mypy cannot call on an instance
    model: Any = AdaptiveVideoMAEForPreTraining(hf_config(size))
    model = model.to(device)
    stock: Any = None
    if with_stock:
        stock = VideoMAEForPreTraining(model.config)
        stock.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("mask_sampler.")})
        stock = stock.to(device)
    c = model.config
    return model, stock, torch.randn(batch, c.num_frames, c.num_channels, c.image_size, c.image_size, device=device)


def _hf_phases(model: Any, x: torch.Tensor, autocast: Optional[torch.dtype], mask: Optional[torch.Tensor] = None):
    """One training step of ``model`` on ``x`` as (forward, backward, step) phases: the loss with the
    model's own mask (``mask`` None: the adaptive model samples one) or ``mask``, its backward, a fused
    AdamW step."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

    def forward(_: Any) -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=autocast) if autocast else nullcontext():
            return model(x, bool_masked_pos=mask).loss

    return [("forward", forward), ("backward", lambda loss: loss.backward()), ("step", lambda _: opt.step())]


def _as_step(phases: List[Tuple[str, Any]]) -> Any:
    def step() -> None:
        out = None
        for _, fn in phases:
            out = fn(out)

    return step


def _step_flops(phases: List[Tuple[str, Any]]) -> float:
    """FLOPs of one forward + backward (torch's FLOP counter: matmuls, convolutions, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        phases[1][1](phases[0][1](None))
    return float(counter.get_total_flops())


def section_hf(plan: Plan) -> Dict[str, Any]:
    dev = plan.device
    model, stock, x = hf_model(plan.hf_size, plan.hf_batch, dev, with_stock=True)
    n = model.videomae.embeddings.num_patches
    keep = torch.rand(plan.hf_batch, n, device=dev).argsort(1)[:, int(0.9 * n) :]
    mask = torch.ones(plan.hf_batch, n, dtype=torch.bool, device=dev).scatter_(1, keep, False)
    model.eval()
    stock.eval()
    with torch.no_grad(), torch.autocast(dev.type, dtype=plan.autocast) if plan.autocast else nullcontext():
        ours, theirs = model(x, bool_masked_pos=mask).loss.float(), stock(x, bool_masked_pos=mask).loss.float()
        sampled = model(x).mask  # the stock step below gets a mask of the adaptive model's count
    rel = (abs(ours - theirs) / abs(theirs)).item()
    tol = 1e-2 if plan.autocast else 1e-5
    model.train()
    stock.train()
    wrapped_phases = _hf_phases(model, x, plan.autocast)
    stock_phases = _hf_phases(stock, x, plan.autocast, sampled)
    syncs = step_syncs(f"HF wrapped training step ({plan.hf_size})", wrapped_phases, dev)
    stock_syncs = step_syncs(f"HF stock training step ({plan.hf_size}, same mask count)", stock_phases, dev)
    proof = raises_on_sync(wrapped_phases, dev)
    flop_ratio = _step_flops(wrapped_phases) / _step_flops(stock_phases)
    times = interleaved(
        {"adaptive": _as_step(wrapped_phases), "stock": _as_step(stock_phases)}, plan.train_repeats, dev, warmup=1
    )
    time_ratio = stats(times["adaptive"])["median"] / stats(times["stock"])["median"]
    grad = model.mask_sampler.head.weight.grad
    finite = bool(grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0)
    prec = "bf16 autocast" if plan.autocast else "float32"
    proven = {True: "yes", False: f"no: {proof['error']}", None: "not measured (CUDA only)"}[proof["sync_free"]]
    return {
        "config": plan.hf_size,
        "batch": plan.hf_batch,
        "precision": prec,
        "loss_adamask": ours.item(),
        "loss_stock": theirs.item(),
        "loss_rel_diff": rel,
        "tolerance": tol,
        "sync": syncs,
        "stock_sync": stock_syncs,
        "sync_free_under_error_mode": proof,
        "step_ms": {k: stats(v) for k, v in times.items()},
        "time_ratio": time_ratio,
        "flop_ratio": flop_ratio,
        "sampler_grad_finite_nonzero": finite,
        "lines": [
            f"HF VideoMAE ({plan.hf_size}, random init), batch {plan.hf_batch}, {prec}: loss with the same "
            f"mask {ours.item():.5g} vs stock {theirs.item():.5g} (rel. diff {rel:.1e}); host syncs per "
            f"training step (forward, backward, fused AdamW): wrapped {syncs['count']}, stock "
            f"{stock_syncs['count']}; wrapped step under set_sync_debug_mode('error'): {proven}; step ms "
            f"adaptive {stats(times['adaptive'])['median']:.4g}, stock (same mask count) "
            f"{stats(times['stock'])['median']:.4g} ({time_ratio:.2f}x; FLOPs {flop_ratio:.2f}x); sampler "
            f"gradient finite and nonzero: {finite}"
        ]
        + [f"  - {describe(f)}" for f in syncs["ours"] + syncs["others"]],
        "targets": [
            target(
                "HF: loss equals the stock model's given the same mask (rel. diff)",
                rel,
                f"<= {tol:g}",
                lambda v: v <= tol,
                plan,
                shown=f"{rel:.1e}",
            ),
            target(
                "HF: host syncs in the wrapped training step (every origin)",
                syncs["count"],
                "0",
                lambda v: v == 0,
                plan,
                shown=f"{syncs['count']} (stock: {stock_syncs['count']})",
            ),
            target(
                "HF: wrapped training step runs under set_sync_debug_mode('error')",
                None if proof["sync_free"] is None else float(proof["sync_free"]),
                "yes",
                bool,
                plan,
                shown=proven,
            ),
            target(
                "HF: wrapped step time / stock step time, at most its FLOP ratio",
                time_ratio,
                f"<= {flop_ratio:.3g}",
                lambda v: v <= flop_ratio,
                plan,
                shown=f"{time_ratio:.3g}",
            ),
            target(
                "HF: training step updates the sampler (finite, nonzero gradient)",
                float(finite),
                "yes",
                bool,
                plan,
                shown=str(finite).lower(),
            ),
        ],
    }


# ---------------------------------------------------------------------------------------------
# 7. adamask compare


def _table_header(results_md: Path) -> List[str]:
    first = next(line for line in results_md.read_text().splitlines() if line.startswith("| strategy"))
    return [c.strip() for c in first.strip().strip("|").split("|")]


def _expected_header(results_json: Path) -> Optional[List[str]]:
    """The header `adamask.compare.report.markdown_table` writes for the run's settings, on any device."""
    try:
        from adamask.compare.report import markdown_table

        cfg = json.loads(results_json.read_text()).get("config", {})
        table = markdown_table({}, common_ratio=cfg.get("common_ratio", 0.9), pixel_loss=cfg.get("pixel_loss", "raw"))
        return [c.strip() for c in table.splitlines()[0].strip().strip("|").split("|")]
    except Exception:  # the report's API changed: the header is still recorded, not compared
        return None


def section_compare(plan: Plan) -> Dict[str, Any]:
    out = plan.out / "compare"
    cmd = [
        sys.executable,
        "-m",
        "adamask",
        "compare",
        "--device",
        str(plan.device),
        "--out",
        str(out),
        "--no-figures",
        "--no-progress",
        "--quiet",
        "--overwrite",
        *plan.compare_args,
    ]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    res: Dict[str, Any] = {"command": " ".join(cmd[1:]), "timeout_s": plan.compare_timeout_s}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=plan.compare_timeout_s)
        res["wall_s"] = time.perf_counter() - t0
        ok = proc.returncode == 0
        res.update(returncode=proc.returncode, stderr_tail=proc.stderr[-2000:])
    except subprocess.TimeoutExpired:
        res["wall_s"], ok = time.perf_counter() - t0, False
        res["error"] = f"timed out after {plan.compare_timeout_s:.0f} s"
    header = _table_header(out / "results.md") if ok else None
    expected = _expected_header(out / "results.json") if ok else None
    same = None if header is None or expected is None else header == expected
    rows = 0
    if ok:
        rows = len(json.loads((out / "results.json").read_text()).get("strategies", {}))
    res.update(
        status="ok" if ok else "error", header=header, expected_header=expected, same_header=same, strategies=rows
    )
    shown = "same columns" if same else ("different columns" if same is False else "not compared")
    res["lines"] = [
        f"adamask compare ({'--quick' if plan.smoke else 'defaults'}) on {plan.device}: "
        f"{'ok' if ok else 'FAILED'} in {res['wall_s']:.0f} s; {rows} strategies; results.md header: "
        f"{shown} ({len(header or [])} columns)"
    ] + ([f"  error: {res.get('error') or res['stderr_tail']}"] if not ok else [])
    value = 0.0 if not ok else (None if same is None else float(same))  # a failed run is a measured failure
    res["targets"] = [
        target(
            "compare runs on the device; results.md has the CPU table's columns",
            value,
            "same columns",
            bool,
            plan,
            shown=shown if ok else "run failed",
        )
    ]
    return res
