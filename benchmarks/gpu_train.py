"""Section 4 of the device check: the training step at the paper's scale, eager, compiled and captured.

ViT-B (``MAE_CONFIGS["base"]``: 12 x 768, 16 x 224^2, tubelet 2 x 16 x 16, decoder 4 x 384), batch 16 (AdaMAE
Table 1a) and 32, bf16 autocast, fused capturable AdamW, for tube 0.90, random 0.90, adaptive 0.95 (the paper's
block and the cheapest setting: attention only, width D/4, 1 x 2 x 2 cells), motion 0.95, and the cheapest
setting with running-cell decoder masking at 0.5. Each configuration runs in up to four modes:

- ``eager``: forward (+ both loss terms), backward, optimiser step;
- ``eager + CUDA graph``: the same step captured once into a CUDA graph and replayed (one launch per step;
  the masks are drawn on the device, so every replay draws new ones);
- ``compiled``: the forward + loss compiled with ``torch.compile(fullgraph=True)`` (inductor), backward and
  step as above;
- ``compiled + CUDA graph``: the compiled step captured and replayed.

Per mode: median step time (CUDA events), peak memory (the step's allocator peak plus the model, gradients and
optimiser state; for a captured step, its graph's memory pool instead of the step peak), MFU (the paper-scale
FLOPs of the cost accounting / step time / the device's dense bf16 peak) and the work per step (GPU kernels
and copies seen by the profiler; on the CPU, the aten operations that are not views). Compiling ViT-B takes
about a minute per configuration and batch size, so compiles run in order of importance until the section's
compile budget is spent; what is skipped says so. On the CPU smoke run, ``compiled`` uses the aot_eager
backend (the same graph capture, no code generation) and the CUDA-graph modes do not run.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from adamask.compare.costs import step_costs
from adamask.mae import MAE_CONFIGS, MaskedVideoAutoencoder
from gpu_sections import Plan, peak_bf16_flops, target
from timing import OpCounter, interleaved, stats, sync
from train_step import cuda_step_peak

MODES = ("eager", "eager + CUDA graph", "compiled", "compiled + CUDA graph")
PAPER_MEMORY = {"adaptive 0.95": 14.4, "tube 0.90": 14.7}  # GB, AdaMAE Table 1a (whole process, their code)


@dataclass(frozen=True)
class StepConfig:
    """One configuration of the step: its strategy and ratio, sampler options, decoder masking ratio (or None)."""

    label: str
    masking: str
    ratio: float
    options: Optional[Dict[str, Any]] = None
    decoder_ratio: Optional[float] = None

    def build(self, size: str) -> MaskedVideoAutoencoder:
        decoder: Dict[str, Any] = {} if self.decoder_ratio is None else dict(decoder_masking="running_cell")
        return MaskedVideoAutoencoder(
            **MAE_CONFIGS[size],
            masking=self.masking,
            mask_ratio=self.ratio,
            masking_options=self.options,
            decoder_mask_ratio=self.decoder_ratio,
            **decoder,
        )


def step_configs(embed_dim: int) -> List[StepConfig]:
    """The configurations, in the order compiles run (the targets' first)."""
    cheapest = {"variant": "attention", "width": embed_dim // 4, "token_pool": (1, 2, 2)}
    return [
        StepConfig("tube 0.90", "tube", 0.9),
        StepConfig("adaptive 0.95, cheapest", "adaptive", 0.95, cheapest),
        StepConfig("adaptive 0.95, cheapest + running cell 0.5", "adaptive", 0.95, cheapest, 0.5),
        StepConfig("adaptive 0.95, paper block", "adaptive", 0.95, {}),
        StepConfig("motion 0.95", "motion", 0.95),
        StepConfig("random 0.90", "random", 0.9),
    ]


def paper_gflops(config: StepConfig, batch: int) -> float:
    """GFLOP of one training step of ViT-B at ``batch`` (cost accounting on meta tensors)."""
    with torch.device("meta"):
        model = config.build("base")
    return float(step_costs(model, batch)["total"]["gflops"])


class Step:
    """A model's training step in one mode: ``step()`` runs it; ``memory_mb`` is its peak memory."""

    def __init__(self, plan: Plan, model: MaskedVideoAutoencoder, opt: torch.optim.Optimizer, video: Tensor) -> None:
        self.plan, self.model, self.opt, self.video = plan, model, opt, video
        self.memory_mb: Optional[float] = None

    def loss_fn(self, compiled: bool) -> Callable[[Tensor], Tensor]:
        """video -> the step's loss (both terms), under bf16 autocast on CUDA; compiled if asked."""
        autocast = self.plan.autocast

        def loss(v: Tensor) -> Tensor:
            with torch.autocast(v.device.type, dtype=autocast, cache_enabled=False) if autocast else nullcontext():
                return self.model(v).loss

        if not compiled:
            return loss
        backend = "inductor" if self.plan.device.type == "cuda" else "aot_eager"
        return torch.compile(loss, fullgraph=True, backend=backend)

    def plain(self, loss: Callable[[Tensor], Tensor]) -> Callable[[], None]:
        def step() -> None:
            self.opt.zero_grad(set_to_none=True)
            loss(self.video).backward()
            self.opt.step()

        return step

    def captured(self, loss: Callable[[Tensor], Tensor]) -> Callable[[], None]:
        """The step captured into a CUDA graph after three warm-up steps on a side stream; returns its replay."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self.plain(loss)()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        before = torch.cuda.memory_allocated(self.video.device)
        self.opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            loss(self.video).backward()
            self.opt.step()
        torch.cuda.synchronize(self.video.device)
        self.memory_mb = (torch.cuda.memory_allocated(self.video.device) - before) / 2**20
        return graph.replay


def build(plan: Plan, config: StepConfig, batch: int, seed: int = 0) -> Tuple[Step, float]:
    """The model, its optimiser and one clip batch on the device; the bytes they hold (CUDA) or 0."""
    dev = plan.device
    base = torch.cuda.memory_allocated(dev) if dev.type == "cuda" else 0
    torch.manual_seed(seed)
    model = config.build(plan.train_size).to(dev)
    fused: Dict[str, Any] = dict(fused=True, capturable=True) if dev.type == "cuda" else {}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05, **fused)
    video = torch.randn(batch, *model.input_shape, device=dev)
    step = Step(plan, model, opt, video)
    step.plain(step.loss_fn(False))()  # gradients and optimiser state exist from here on; the first output check
    resident = torch.cuda.memory_allocated(dev) - base if dev.type == "cuda" else 0
    return step, float(resident)


def work_per_step(run: Callable[[], None], device: torch.device, mode: str) -> Optional[int]:
    """GPU kernels and copies in one call of ``run`` (the profiler's CUDA events; a captured step is one launch
    from the host: 1), or on the CPU the aten operations of an eager step that are not views (None for a
    compiled one, whose graph a dispatch mode cannot see)."""
    if mode.endswith("CUDA graph"):
        return 1
    if device.type != "cuda":
        if mode != "eager":
            return None
        with OpCounter() as counter:
            run()
        return counter.kernels
    from torch.profiler import ProfilerActivity, profile

    sync(device)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        run()
        sync(device)
    return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)


@dataclass
class Budget:
    """Seconds left for compiling in this section, and the last compile's duration (the estimate of the next;
    the first compile runs whenever any time is left)."""

    left: float
    estimate: Optional[float] = None

    def allows(self) -> bool:
        return self.left > 0 if self.estimate is None else self.left >= self.estimate

    def spend(self, seconds: float) -> None:
        self.left -= seconds
        self.estimate = seconds


def measure(plan: Plan, config: StepConfig, batch: int, budget: Budget) -> Dict[str, Dict[str, Any]]:
    """Every mode of ``config`` at ``batch``: {mode: time, memory, work, status}."""
    step, resident = build(plan, config, batch)
    dev = plan.device
    out: Dict[str, Dict[str, Any]] = {}
    runs: Dict[str, Callable[[], None]] = {"eager": step.plain(step.loss_fn(False))}
    peaks: Dict[str, Optional[float]] = {}
    compiled_loss = None
    if budget.allows():
        torch._dynamo.reset()  # a fresh cache per configuration: no recompile limit, no stale guard
        t0 = time.perf_counter()
        try:
            compiled_loss = step.loss_fn(True)
            runs["compiled"] = step.plain(compiled_loss)
            runs["compiled"]()
            sync(dev)
            out["compiled"] = {"compile_s": time.perf_counter() - t0}
        except Exception as e:  # recorded, never raised: the other modes still run
            out["compiled"] = {"status": f"failed: {type(e).__name__}: {str(e).splitlines()[0][:300]}"}
            runs.pop("compiled", None)
            compiled_loss = None
        budget.spend(time.perf_counter() - t0)
    else:
        out["compiled"] = {
            "status": f"skipped: compile budget ({max(0.0, budget.left):.0f} s left, the last compile took "
            f"{budget.estimate:.0f} s)"
        }
    for mode in list(runs):
        peaks[mode] = (cuda_step_peak(runs[mode], dev) + resident) / 2**20 if dev.type == "cuda" else None
    if dev.type == "cuda":
        for mode, loss in (("eager + CUDA graph", step.loss_fn(False)), ("compiled + CUDA graph", compiled_loss)):
            if loss is None:
                out[mode] = {"status": "skipped: not compiled"}
                continue
            try:
                runs[mode] = step.captured(loss)
                peaks[mode] = resident / 2**20 + (step.memory_mb or 0.0)
            except Exception as e:
                out[mode] = {"status": f"failed: {type(e).__name__}: {str(e).splitlines()[0][:300]}"}
                torch.cuda.synchronize(dev)
    else:
        for mode in ("eager + CUDA graph", "compiled + CUDA graph"):
            out[mode] = {"status": "not run: CUDA graphs need a CUDA device"}
    times = interleaved(runs, plan.train_repeats, dev, warmup=1)
    for mode, run in runs.items():
        out[mode] = {
            **out.get(mode, {}),
            "status": "ok",
            "time_ms": stats(times[mode]),
            "peak_mb": peaks.get(mode),
            "work_per_step": work_per_step(run, dev, mode),
        }
    del step, runs
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return out


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or not b else a / b


def _rows(
    plan: Plan, measured: Dict[Tuple[str, int], Dict[str, Dict[str, Any]]], peak: Optional[float]
) -> List[Dict[str, Any]]:
    """One row per (configuration, batch, mode) that ran, with its ratios to tube 0.90 in the same mode and batch."""
    configs = {c.label: c for c in step_configs(MAE_CONFIGS["base"]["embed_dim"])}
    gflops = {(label, b): paper_gflops(configs[label], b) for label, b in measured}
    paper_scale = plan.train_size == "base"
    rows = []
    for (label, batch), modes in measured.items():
        for mode, m in modes.items():
            if m.get("status") != "ok":
                continue
            tube = measured.get(("tube 0.90", batch), {}).get(mode, {})
            ms = m["time_ms"]["median"]
            fl = gflops[(label, batch)]
            rows.append(
                {
                    "config": label,
                    "batch": batch,
                    "mode": mode,
                    **m,
                    "time_vs_tube": _ratio(ms, tube.get("time_ms", {}).get("median"))
                    if tube.get("status") == "ok"
                    else None,
                    "peak_vs_tube": _ratio(m["peak_mb"], tube.get("peak_mb")) if tube.get("status") == "ok" else None,
                    "paper_scale_gflops": fl,
                    "gflops_vs_tube": fl / gflops[("tube 0.90", batch)] if ("tube 0.90", batch) in gflops else None,
                    "mfu": fl * 1e9 / (ms / 1e3) / peak if peak and paper_scale else None,
                }
            )
    return rows


def _best(rows: List[Dict[str, Any]], config: str, batch: int) -> Optional[Dict[str, Any]]:
    """The compiled row of ``config`` at ``batch``: captured if that ran, else plain compiled."""
    for mode in ("compiled + CUDA graph", "compiled"):
        hit = next((r for r in rows if r["config"] == config and r["batch"] == batch and r["mode"] == mode), None)
        if hit is not None:
            return hit
    return None


def _targets(plan: Plan, rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The compiled-step targets at batch 16 (judged on CUDA only: CPU times are no measure of them)."""
    b = plan.train_batches[0]
    cuda = plan.device.type == "cuda"
    tube = _best(rows, "tube 0.90", b)
    cheap = _best(rows, "adaptive 0.95, cheapest", b)
    dual = _best(rows, "adaptive 0.95, cheapest + running cell 0.5", b)

    def val(row: Optional[Dict[str, Any]], key: str) -> Optional[float]:
        return row.get(key) if row is not None and cuda else None

    def mode(row: Optional[Dict[str, Any]]) -> str:
        return f" ({row['mode']})" if row is not None else ""

    out = [
        target(
            f"compiled, batch {b}: tube 0.90 MFU{mode(tube)}", val(tube, "mfu"), ">= 30%", lambda v: v >= 0.30, plan
        ),
        target(
            f"compiled, batch {b}: cheapest adaptive 0.95 step time vs tube 0.90{mode(cheap)}",
            val(cheap, "time_vs_tube"),
            "<= 0.85x",
            lambda v: v <= 0.85,
            plan,
        ),
        target(
            f"compiled, batch {b}: cheapest adaptive 0.95 peak memory vs tube 0.90{mode(cheap)}",
            val(cheap, "peak_vs_tube"),
            "<= 0.90x",
            lambda v: v <= 0.90,
            plan,
        ),
        target(
            f"compiled, batch {b}: cheapest + running cell 0.5 step time vs tube 0.90{mode(dual)}",
            val(dual, "time_vs_tube"),
            "<= 0.60x",
            lambda v: v <= 0.60,
            plan,
        ),
    ]
    for c in step_configs(MAE_CONFIGS["base"]["embed_dim"]):
        r = _best(rows, c.label, b)
        gap = None if r is None or r["time_vs_tube"] is None else r["time_vs_tube"] / r["gflops_vs_tube"]
        if c.label != "tube 0.90":
            out.append(
                target(
                    f"compiled, batch {b}: {c.label}: time ratio / FLOP ratio (both vs tube 0.90){mode(r)}",
                    gap if cuda else None,
                    "within 10% of 1",
                    lambda v: abs(v - 1) <= 0.10,
                    plan,
                )
            )
    return out


def _fmt(v: Optional[float], spec: str = ".2f", suffix: str = "x") -> str:
    return "-" if v is None else f"{v:{spec}}{suffix}"


def _lines(
    plan: Plan,
    rows: List[Dict[str, Any]],
    measured: Dict[Tuple[str, int], Dict[str, Dict[str, Any]]],
    peak: Optional[float],
) -> List[str]:
    cfg = MAE_CONFIGS[plan.train_size]
    work = "GPU kernels + copies" if plan.device.type == "cuda" else "aten ops (not views)"
    lines = [
        f"training step: {plan.train_size} ({cfg['depth']} x {cfg['embed_dim']}, {cfg['num_frames']} x "
        f"{cfg['img_size']}^2, tubelet {tuple(cfg['tubelet'])}, decoder {cfg['decoder_depth']} x "
        f"{cfg['decoder_embed_dim']}), {'bf16 autocast' if plan.autocast else 'float32'}, fused capturable AdamW; "
        f"peak bf16 {'unknown' if not peak else f'{peak / 1e12:.0f} TFLOP/s'}; GFLOP: ViT-B at the batch, meta tensors",
        f"| config | batch | mode | step ms | vs tube | peak MB | vs tube | GFLOP | vs tube | MFU | {work} per step |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['config']} | {r['batch']} | {r['mode']} | {r['time_ms']['median']:.4g} | "
            f"{_fmt(r['time_vs_tube'])} | {_fmt(r['peak_mb'], '.0f', '')} | {_fmt(r['peak_vs_tube'])} | "
            f"{r['paper_scale_gflops']:.0f} | {_fmt(r['gflops_vs_tube'])} | {_fmt(r['mfu'], '.1%', '')} | "
            f"{r['work_per_step']} |"
        )
    for (label, batch), modes in measured.items():
        for mode, m in modes.items():
            if m.get("status") != "ok":
                lines.append(f"  - {label}, batch {batch}, {mode}: {m.get('status')}")
            elif "compile_s" in m:
                lines.append(f"  - {label}, batch {batch}: compiled in {m['compile_s']:.0f} s")
    return lines


def section_train(plan: Plan) -> Dict[str, Any]:
    budget = Budget(plan.compile_budget_s)
    measured: Dict[Tuple[str, int], Dict[str, Dict[str, Any]]] = {}
    for batch in plan.train_batches:
        for config in step_configs(MAE_CONFIGS[plan.train_size]["embed_dim"]):
            measured[(config.label, batch)] = measure(plan, config, batch, budget)
    name = torch.cuda.get_device_name(plan.device) if plan.device.type == "cuda" else ""
    peak = peak_bf16_flops(name)
    rows = _rows(plan, measured, peak)
    return {
        "model": plan.train_size,
        "batches": list(plan.train_batches),
        "autocast": str(plan.autocast),
        "optimizer": "AdamW (fused, capturable)",
        "peak_bf16_flops": peak,
        "compile_budget_s": plan.compile_budget_s,
        "paper_memory_gb": PAPER_MEMORY,
        "modes": {f"{label} @ {batch}": modes for (label, batch), modes in measured.items()},
        "rows": rows,
        "lines": _lines(plan, rows, measured, peak),
        "targets": _targets(plan, rows),
    }


# ---------------------------------------------------------------------------------------------
# 5. graph breaks


def section_graph_breaks(plan: Plan) -> Dict[str, Any]:
    """``torch._dynamo.explain`` of the training forward + both loss terms with every registered strategy (and
    the cheapest sampler with running-cell decoder masking) at ``plan.breaks_size``: graphs and graph breaks
    (the smoke run: the adaptive ones only; the test suite compiles every strategy)."""
    from adamask import list_maskings, strategy_info

    rows = []
    configs = [
        StepConfig(name, name, strategy_info(name).default_ratio)
        for name in list_maskings()
        if strategy_info(name).needs != "nothing" or name in ("random", "tube", "frame")
    ] + [c for c in step_configs(MAE_CONFIGS[plan.breaks_size]["embed_dim"]) if c.decoder_ratio is not None]
    if not plan.breaks_every_strategy:
        configs = [c for c in configs if c.masking == "adaptive"]
    for config in configs:
        torch._dynamo.reset()
        torch.manual_seed(0)
        model = config.build(plan.breaks_size).to(plan.device)
        video = torch.randn(plan.breaks_batch, *model.input_shape, device=plan.device)
        model(video)  # the first call checks the strategy's output once (a host sync), as in training
        step = Step(plan, model, torch.optim.SGD(model.parameters(), lr=0.0), video)
        try:
            ex = torch._dynamo.explain(step.loss_fn(False))(video)
            rows.append(
                {
                    "config": config.label,
                    "graphs": ex.graph_count,
                    "graph_breaks": ex.graph_break_count,
                    "reasons": [str(r.reason).splitlines()[0][:300] for r in ex.break_reasons],
                }
            )
        except Exception as e:
            rows.append({"config": config.label, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"})
        del model, step
    breaks = sum(r.get("graph_breaks", 0) for r in rows)
    complete = all("error" not in r for r in rows)
    lines = [
        f"torch._dynamo.explain of the training forward + loss ({plan.breaks_size}, batch {plan.breaks_batch}):",
        "| configuration | graphs | graph breaks |",
        "|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['config']} | {r.get('graphs', '-')} | {r.get('graph_breaks', r.get('error'))} |")
        lines += [f"  - {reason}" for reason in r.get("reasons", [])]
    return {
        "model": plan.breaks_size,
        "rows": rows,
        "graph_breaks": breaks,
        "lines": lines,
        "targets": [
            target(
                "graph breaks in the training forward + loss, every registered strategy",
                breaks if complete else None,
                "0",
                lambda v: v == 0,
                plan,
            )
        ],
    }
