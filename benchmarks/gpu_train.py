"""Section 4 of the device check: the training step at the paper's scale.

ViT-B (``MAE_CONFIGS["base"]``: 12 x 768, 16 x 224^2, tubelet 2 x 16 x 16, decoder 4 x 384), batch 16
(AdaMAE Table 1a), bf16 autocast, fused AdamW: median step time (interleaved, CUDA events), peak memory
(``torch.cuda.max_memory_allocated``) and MFU per configuration. The configurations are those of
`adamask.compare.costs.paper_scale_configs` (random, tube, the paper's block, checkpointed, the
cheapest setting) plus every other learned strategy registered and motion masking (content-aware
control). FLOPs and saved activations come from the cost accounting on meta tensors, at paper scale in
every mode, so the CPU and GPU tables read side by side.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import torch

from adamask import list_maskings, strategy_info
from adamask.compare.costs import build_cost_model, paper_scale_configs, step_costs
from adamask.mae import MAE_CONFIGS
from gpu_sections import PAPER_BATCH, Plan, peak_bf16_flops, target
from timing import interleaved, stats
from train_step import build_step, cuda_step_peak

Config = Tuple[str, str, float, Optional[Dict[str, Any]]]
PAPER_MEMORY = {"adaptive 0.95": 14.4, "tube 0.90": 14.7}  # GB, AdaMAE Table 1a (whole process, their code)


def _cheapest(config: Config) -> bool:
    opts = config[3] or {}
    return opts.get("variant") == "attention" and "width" in opts and "token_pool" in opts


def check_configs(embed_dim: int) -> List[Config]:
    """(label, masking, ratio, options): random / tube 0.90, the paper's block (plain and checkpointed), the
    cheapest sampler setting of `paper_scale_configs`, then every other learned strategy and motion 0.95."""
    shared = paper_scale_configs(embed_dim)
    wanted = ("random 0.90", "tube 0.90", "adaptive 0.95, paper block", "adaptive 0.95, paper block, checkpointed")
    picked = [c for c in shared if c[0] in wanted] + [c for c in shared if _cheapest(c)]
    learned = [n for n in list_maskings() if strategy_info(n).learned and n != "adaptive"]
    extra = [
        (f"{n} {strategy_info(n).default_ratio:.2f}", n, strategy_info(n).default_ratio, None)
        for n in learned + ["motion"]
    ]
    return picked + extra


def paper_costs(configs: List[Config], batch: int) -> Dict[str, Dict[str, float]]:
    """Per configuration: GFLOP and saved-activation MB of one training step of ViT-B at ``batch`` (meta)."""
    out = {}
    for label, masking, ratio, opts in configs:
        with torch.device("meta"):
            model = build_cost_model(MAE_CONFIGS["base"], masking, ratio, opts)
        total = step_costs(model, batch)["total"]
        out[label] = {"gflops": total["gflops"], "activation_mb": total["activation_mb"]}
    return out


def _measure(plan: Plan, configs: List[Config]) -> Dict[str, Dict[str, Any]]:
    """Step times (interleaved) and, on CUDA, the step's peak and the model's resident bytes."""
    cfg, dev = MAE_CONFIGS[plan.train_size], plan.device
    steps, models = {}, []
    resident: Dict[str, int] = {}  # CUDA only
    for label, masking, ratio, opts in configs:
        base = torch.cuda.memory_allocated(dev) if dev.type == "cuda" else 0
        model, steps[label] = build_step(cfg, masking, ratio, opts, plan.train_batch, dev, autocast=plan.autocast)
        steps[label]()  # gradients and optimiser state exist from here on
        if dev.type == "cuda":
            resident[label] = torch.cuda.memory_allocated(dev) - base
        models.append(model)
    times = interleaved(steps, plan.train_repeats, dev, warmup=1)
    out = {}
    for label, _, _, _ in configs:
        peak = cuda_step_peak(steps[label], dev) if dev.type == "cuda" else None
        out[label] = {
            "time_ms": stats(times[label]),
            "step_peak_mb": None if peak is None else peak / 2**20,
            "peak_mb": None if peak is None else (peak + resident[label]) / 2**20,
        }
    return out


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or not b else a / b


def _rows(
    plan: Plan,
    configs: List[Config],
    measured: Dict[str, Dict[str, Any]],
    costs: Dict[str, Dict[str, float]],
    peak: Optional[float],
) -> List[Dict[str, Any]]:
    paper_scale = plan.train_size == "base" and plan.train_batch == PAPER_BATCH
    tube = measured["tube 0.90"], costs["tube 0.90"]
    rows = []
    for label, masking, ratio, opts in configs:
        m, c = measured[label], costs[label]
        sec = m["time_ms"]["median"] / 1e3
        rows.append(
            {
                "config": label,
                "masking": masking,
                "mask_ratio": ratio,
                "sampler_options": opts,
                **m,
                "time_vs_tube": _ratio(m["time_ms"]["median"], tube[0]["time_ms"]["median"]),
                "peak_vs_tube": _ratio(m["peak_mb"], tube[0]["peak_mb"]),
                "step_peak_vs_tube": _ratio(m["step_peak_mb"], tube[0]["step_peak_mb"]),
                "paper_scale_gflops": c["gflops"],
                "gflops_vs_tube": c["gflops"] / tube[1]["gflops"],
                "paper_scale_activation_mb": c["activation_mb"],
                "activation_vs_tube": c["activation_mb"] / tube[1]["activation_mb"],
                "mfu": c["gflops"] * 1e9 / sec / peak if peak and paper_scale else None,
            }
        )
    return rows


def _targets(plan: Plan, rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    by = {r["config"]: r for r in rows}
    cheap = next(r for r in rows if _cheapest((r["config"], r["masking"], r["mask_ratio"], r["sampler_options"])))
    block = by["adaptive 0.95, paper block"]
    gap = _ratio(block["time_vs_tube"], block["gflops_vs_tube"])
    measured = plan.device.type == "cuda"
    return [
        target(
            f"cheapest sampler ({cheap['config']}) step time vs tube-0.90",
            cheap["time_vs_tube"] if measured else None,
            "<= 0.85x",
            lambda v: v <= 0.85,
            plan,
        ),
        target(
            f"cheapest sampler ({cheap['config']}) peak memory vs tube-0.90",
            cheap["peak_vs_tube"],
            "<= 0.90x",
            lambda v: v <= 0.90,
            plan,
        ),
        target(
            "paper block: step-time ratio / FLOP ratio (both vs tube-0.90)",
            gap if measured else None,
            "within 5% of 1",
            lambda v: abs(v - 1) <= 0.05,
            plan,
        ),
    ]


def _fmt(v: Optional[float], spec: str = ".2f", suffix: str = "x") -> str:
    return "-" if v is None else f"{v:{spec}}{suffix}"


def _lines(plan: Plan, rows: List[Dict[str, Any]], peak: Optional[float]) -> List[str]:
    cfg = MAE_CONFIGS[plan.train_size]
    lines = [
        f"training step: {plan.train_size} ({cfg['depth']} x {cfg['embed_dim']}, {cfg['num_frames']} x "
        f"{cfg['img_size']}^2, tubelet {tuple(cfg['tubelet'])}, decoder {cfg['decoder_depth']} x "
        f"{cfg['decoder_embed_dim']}), batch {plan.train_batch}, "
        f"{'bf16 autocast' if plan.autocast else 'float32'}, fused AdamW; peak bf16 "
        f"{'unknown' if not peak else f'{peak / 1e12:.0f} TFLOP/s'}; GFLOP / activations: ViT-B, batch "
        f"{PAPER_BATCH}, meta tensors",
        "| config | step ms | vs tube | peak MB | vs tube | step peak MB | GFLOP (paper scale) | vs tube | "
        "saved act. MB | vs tube | MFU |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['config']} | {r['time_ms']['median']:.4g} | {_fmt(r['time_vs_tube'])} | "
            f"{_fmt(r['peak_mb'], '.0f', '')} | {_fmt(r['peak_vs_tube'])} | "
            f"{_fmt(r['step_peak_mb'], '.0f', '')} | "
            f"{r['paper_scale_gflops']:.0f} | {r['gflops_vs_tube']:.2f}x | "
            f"{r['paper_scale_activation_mb']:.0f} | {r['activation_vs_tube']:.2f}x | "
            f"{_fmt(r['mfu'], '.1%', '')} |"
        )
    paper = PAPER_MEMORY["adaptive 0.95"] / PAPER_MEMORY["tube 0.90"]
    block = next(r for r in rows if r["config"] == "adaptive 0.95, paper block")
    lines.append(
        f"paper (Table 1a, whole-process GPU memory, their code): adaptive 0.95 "
        f"{PAPER_MEMORY['adaptive 0.95']} GB vs tube 0.90 {PAPER_MEMORY['tube 0.90']} GB = {paper:.2f}x; here "
        f"the paper block's peak is {_fmt(block['peak_vs_tube'])} tube's"
    )
    return lines


def section_train(plan: Plan) -> Dict[str, Any]:
    configs = check_configs(MAE_CONFIGS[plan.train_size]["embed_dim"])
    paper_configs = check_configs(MAE_CONFIGS["base"]["embed_dim"])
    costs = dict(zip([c[0] for c in configs], paper_costs(paper_configs, PAPER_BATCH).values(), strict=True))
    measured = _measure(plan, configs)
    name = torch.cuda.get_device_name(plan.device) if plan.device.type == "cuda" else ""
    peak = peak_bf16_flops(name)
    rows = _rows(plan, configs, measured, costs, peak)
    return {
        "model": plan.train_size,
        "batch": plan.train_batch,
        "autocast": str(plan.autocast),
        "optimizer": "AdamW (fused)",
        "peak_bf16_flops": peak,
        "paper_memory_gb": PAPER_MEMORY,
        "rows": rows,
        "lines": _lines(plan, rows, peak),
        "targets": _targets(plan, rows),
    }
