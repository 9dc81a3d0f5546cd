"""The training-step comparison: time, peak memory, FLOPs and saved activations of one step per configuration,
and its targets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from adamask.compare.costs import build_cost_model, paper_scale_configs, step_costs
from adamask.mae import MaskedVideoAutoencoder
from timing import Sizes, interleaved, stats

ROOT = Path(__file__).resolve().parent.parent
RUN = Path(__file__).resolve().parent / "run.py"


RUNNING_CELL = " + running cell 0.5"  # the label suffix of `paper_scale_configs`' decoder-masked rows
SMOKE_CONFIGS = ("tube 0.90", "adaptive 0.95, paper block")  # and the cheapest setting


def _cheapest(config: Tuple[str, str, float, Optional[Dict[str, Any]]]) -> bool:
    opts = config[3] or {}
    return opts.get("variant") == "attention" and "width" in opts and "token_pool" in opts


def train_configs(embed_dim: int) -> List[Tuple[str, str, float, Optional[Dict[str, Any]]]]:
    """(label, masking, ratio, options as `build_cost_model`) of the training-step comparison: the
    configurations of `paper_scale_configs` (shared with ``adamask costs``) but "depth 2" and, of the
    decoder-masked rows, all but the cheapest sampler's; tube first (the reference of the "vs tube" columns)."""
    configs = [
        c
        for c in paper_scale_configs(embed_dim)
        if c[0] != "adaptive 0.95, depth 2" and (RUNNING_CELL not in c[0] or _cheapest(c))
    ]
    return sorted(configs, key=lambda c: c[0] != "tube 0.90")


def step_fn(
    module: Callable[[torch.Tensor], Any],
    opt: torch.optim.Optimizer,
    video: torch.Tensor,
    autocast: Optional[torch.dtype] = None,
) -> Callable[[], None]:
    """One training step of ``module`` (the model or its ``torch.compile``d form): zero_grad, forward
    (under ``torch.autocast(video.device.type, autocast)`` when ``autocast`` is a dtype), backward, ``opt.step()``."""

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(video.device.type, dtype=autocast) if autocast is not None else nullcontext():
            loss = module(video).loss
        loss.backward()
        opt.step()

    return step


def build_training(
    model_cfg: Dict[str, Any],
    masking: str,
    ratio: float,
    opts: Optional[Dict[str, Any]],
    batch: int,
    device: torch.device,
    seed: int = 0,
) -> Tuple[MaskedVideoAutoencoder, torch.optim.Optimizer, torch.Tensor]:
    """A model, its fused AdamW optimiser and one clip batch (B, C, T, H, W) on ``device``."""
    torch.manual_seed(seed)
    model = build_cost_model(model_cfg, masking, ratio, opts).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05, fused=True)
    return model, opt, torch.randn(batch, *model.input_shape, device=device)


def build_step(
    model_cfg: Dict[str, Any],
    masking: str,
    ratio: float,
    opts: Optional[Dict[str, Any]],
    batch: int,
    device: torch.device,
    seed: int = 0,
    autocast: Optional[torch.dtype] = None,
    compile: bool = False,
) -> Tuple[MaskedVideoAutoencoder, Callable[[], None]]:
    """`build_training` -> (model, step()) for one training step (see `step_fn`); ``compile``: the model's
    forward (masks from the global RNG, both loss terms) as one ``torch.compile(fullgraph=True)`` graph, its
    backward compiled with it; the first call compiles."""
    model, opt, video = build_training(model_cfg, masking, ratio, opts, batch, device, seed)
    module = torch.compile(model, fullgraph=True) if compile else model
    return model, step_fn(module, opt, video, autocast)


def cuda_step_peak(step: Callable[[], None], device: torch.device) -> float:
    """Bytes the CUDA allocator's peak rises above what is allocated before one call of ``step``
    (activations, gradients, temporaries); call ``step`` once before, so that gradients and optimiser
    state already exist."""
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    return float(torch.cuda.max_memory_allocated(device) - before)


def _status_kb(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)


def probe_memory(spec: Dict[str, Any]) -> Dict[str, float]:
    """In a fresh process: peak resident memory of one training step (after one warm-up step).

    Linux only: resets the peak RSS (VmHWM) through /proc/self/clear_refs, then runs the step.
    ``step_peak_mb`` = peak during the step minus RSS before it (activations, gradients, temporaries);
    ``total_peak_mb`` = peak minus RSS before the model was built (adds weights and optimiser state).
    """
    if not Path("/proc/self/clear_refs").exists():  # not Linux: no peak-RSS reset
        return {"step_peak_mb": float("nan"), "total_peak_mb": float("nan")}
    torch.set_num_threads(spec["threads"])
    rss0 = _status_kb("VmRSS")
    _, step = build_step(
        spec["model"],
        spec["masking"],
        spec["ratio"],
        spec["opts"],
        spec["batch"],
        torch.device("cpu"),
        compile=spec.get("compile", False),
    )
    step()
    rss1 = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    step()
    peak = _status_kb("VmHWM")
    return {"step_peak_mb": (peak - rss1) / 1024, "total_peak_mb": (peak - rss0) / 1024}


def measure_memory(spec: Dict[str, Any], device: torch.device) -> Dict[str, float]:
    """Peak memory of one training step: CUDA allocator peak in process, or a subprocess probe on CPU."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(device)
        _, step = build_step(
            spec["model"], spec["masking"], spec["ratio"], spec["opts"], spec["batch"], device, compile=spec["compile"]
        )
        step()
        step_peak = cuda_step_peak(step, device)
        before = torch.cuda.memory_allocated(device)
        return {"step_peak_mb": step_peak / 2**20, "total_peak_mb": (before - base + step_peak) / 2**20}
    # fixed malloc thresholds: large blocks are mmapped and returned to the OS when freed, so RSS
    # follows live memory instead of the allocator's high-water mark
    env = dict(
        os.environ,
        MALLOC_MMAP_THRESHOLD_="65536",
        MALLOC_TRIM_THRESHOLD_="0",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    out = subprocess.run(
        [sys.executable, str(RUN), "--probe-memory", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_train(sz: Sizes, device: torch.device, compile: bool = False) -> Dict[str, Any]:
    """The training-step rows: median step time (interleaved repeats), peak memory, FLOPs and saved activations
    per configuration of `train_configs`; ``compile``: each step compiled (`build_step`), its compilation in the
    warm-up call, before the timed repeats."""
    cfg = sz.train_model
    configs = train_configs(cfg["embed_dim"])
    if sz.smoke:  # tube, the paper's sampler and the cheapest setting
        configs = [c for c in configs if c[0] in SMOKE_CONFIGS or (_cheapest(c) and RUNNING_CELL not in c[0])]
    steps, models = {}, {}
    for label, masking, ratio, opts in configs:
        models[label], steps[label] = build_step(cfg, masking, ratio, opts, sz.train_batch, device, compile=compile)
    times = interleaved(steps, sz.train_repeats, device, warmup=1)
    del steps, models
    rows: List[Dict[str, Any]] = []
    for label, masking, ratio, opts in configs:
        spec = {
            "model": cfg,
            "masking": masking,
            "ratio": ratio,
            "opts": opts,
            "batch": sz.train_batch,
            "threads": torch.get_num_threads(),
            "compile": compile,
        }
        mem = measure_memory(spec, device)
        with torch.device("meta"):
            meta_model = build_cost_model(cfg, masking, ratio, opts)
        costs = step_costs(meta_model, sz.train_batch)["total"]
        rows.append(
            {
                "config": label,
                "sampler_options": opts,
                "time_ms": stats(times[label]),
                **mem,
                "gflops": costs["gflops"],
                "activation_mb": costs["activation_mb"],
            }
        )
    ref = rows[0]
    for r in rows:
        r["time_vs_tube"] = r["time_ms"]["median"] / ref["time_ms"]["median"]
        r["step_peak_vs_tube"] = r["step_peak_mb"] / ref["step_peak_mb"] if ref["step_peak_mb"] > 0 else float("nan")
        r["total_peak_vs_tube"] = (
            r["total_peak_mb"] / ref["total_peak_mb"] if ref["total_peak_mb"] > 0 else float("nan")
        )
        r["gflops_vs_tube"] = r["gflops"] / ref["gflops"]
        r["activation_vs_tube"] = r["activation_mb"] / ref["activation_mb"]
    model_desc = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
    return {
        "model": model_desc,
        "batch": sz.train_batch,
        "optimizer": "AdamW (fused)",
        "compiled": compile,
        "rows": rows,
    }


def train_targets(train: Dict[str, Any], smoke: bool) -> List[Dict[str, Any]]:
    rows = {r["config"]: r for r in train["rows"]}
    paper = rows["adaptive 0.95, paper block"]
    cheapest = min(
        (r for r in train["rows"] if r["config"].startswith("adaptive") and RUNNING_CELL not in r["config"]),
        key=lambda r: r["time_ms"]["median"],
    )
    ckpt = rows.get("adaptive 0.95, paper block, checkpointed")
    judge = (lambda ok: None) if smoke else (lambda ok: bool(ok))
    return [
        {
            "name": "adaptive-0.95 (paper block) step peak memory <= tube-0.90",
            "value": paper["step_peak_vs_tube"],
            "target": "<= 1.00x",
            "met": judge(paper["step_peak_vs_tube"] <= 1.0),
        },
        {
            "name": "adaptive-0.95 (paper block) step time <= 1.10x tube-0.90",
            "value": paper["time_vs_tube"],
            "target": "<= 1.10x",
            "met": judge(paper["time_vs_tube"] <= 1.10),
        },
        *(
            [
                {
                    "name": "adaptive-0.95 (paper block, checkpointed) step peak memory <= tube-0.90",
                    "value": ckpt["step_peak_vs_tube"],
                    "target": "<= 1.00x",
                    "met": judge(ckpt["step_peak_vs_tube"] <= 1.0),
                }
            ]
            if ckpt
            else []
        ),
        {
            "name": f"adaptive-0.95 ({cheapest['config'][15:]}) step time <= 0.90x tube-0.90",
            "value": cheapest["time_vs_tube"],
            "target": "<= 0.90x",
            "met": judge(cheapest["time_vs_tube"] <= 0.90),
        },
        {
            "name": f"adaptive-0.95 ({cheapest['config'][15:]}) step peak memory <= tube-0.90",
            "value": cheapest["step_peak_vs_tube"],
            "target": "<= 1.00x",
            "met": judge(cheapest["step_peak_vs_tube"] <= 1.0),
        },
    ]
