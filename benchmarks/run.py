"""adamask benchmark suite: every comparison measured side by side in one run.

    python benchmarks/run.py                   # full run, CPU (a few minutes on 2 cores)
    python benchmarks/run.py --smoke           # tiny sizes, seconds (what CI runs)
    python benchmarks/run.py --device cuda     # synchronised timing, torch.cuda.max_memory_allocated

Prints a table and writes JSON (atomically) to --json (default benchmarks/results.json).
Timings: repeats are interleaved (the order rotates every repeat), medians with min-max.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adamask import MaskedVideoAutoencoder, create_masking, gumbel_topk, sampling_loss  # noqa: E402
from adamask.flops import CHECKPOINT, build_model, format_cost_table, paper_scale_table, step_costs  # noqa: E402
from adamask.atomic import write_json  # noqa: E402
from adamask.mae import MAE_CONFIGS  # noqa: E402

SCHEMA_VERSION = 1


# ---------------------------------------------------------------------------------------------
# sizes

@dataclass
class Sizes:
    """Problem sizes of one run (full or smoke)."""

    batch: int = 32
    grid: Tuple[int, int, int] = (8, 14, 14)  # 16 x 224 x 224, tubelet 2 x 16 x 16 -> 1568 tokens
    repeats: int = 15
    number: int = 1  # calls per timed sample (raised for sub-millisecond functions)
    train_batch: int = 4
    train_repeats: int = 9
    train_model: Dict[str, Any] = field(default_factory=lambda: dict(
        MAE_CONFIGS["small"], img_size=128))  # ViT-S: encoder 12 x 384, decoder 4 x 192; 16 x 128^2 -> 512 tokens
    paper_size: str = "base"
    paper_overrides: Dict[str, Any] = field(default_factory=dict)
    smoke: bool = False

    def judge(self, ok: bool) -> Optional[bool]:
        """Targets are judged on full runs only (None in smoke mode)."""
        return None if self.smoke else bool(ok)


FULL = Sizes()
SMOKE = Sizes(batch=2, grid=(2, 4, 4), repeats=2, train_batch=1, train_repeats=1,
              train_model=dict(MAE_CONFIGS["nano"], embed_dim=32, num_heads=2),
              paper_size="tiny", smoke=True)


# ---------------------------------------------------------------------------------------------
# timing

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(fns: Dict[str, Callable[[], Any]], repeats: int, device: torch.device, number: int = 1,
                warmup: int = 1) -> Dict[str, List[float]]:
    """Seconds per call of each function: ``repeats`` samples each, taken in rotating order."""
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    _sync(device)
    times: Dict[str, List[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(number):
                fns[name]()
            _sync(device)
            times[name].append((time.perf_counter() - t0) / number)
    return times


def stats(samples: Sequence[float], scale: float = 1e3) -> Dict[str, Any]:
    """Median, min, max (ms by default) of timing samples."""
    return {"median": statistics.median(samples) * scale, "min": min(samples) * scale,
            "max": max(samples) * scale, "n": len(samples)}


def comparison(name: str, ours: Sequence[float], base: Sequence[float], target: str,
               met: Optional[bool], **extra: Any) -> Dict[str, Any]:
    """One side-by-side row; speedup = baseline median / ours median."""
    o, b = stats(ours), stats(base)
    return {"name": name, "ours_ms": o, "baseline_ms": b, "speedup": b["median"] / o["median"],
            "target": target, "met": met, **extra}


# ---------------------------------------------------------------------------------------------
# baselines, re-implemented from the behaviour of the AdaMAE / VideoMAE code

def loss_per_sample_loop(probs: Tensor, mask: Tensor, token_error: Tensor) -> Tensor:
    """AdaMAE's sampling loss as the authors compute it: one Categorical per clip, in a Python loop.

    token_error (B, N_m): reconstruction error of the masked tokens in ascending index order.
    """
    b, n = probs.shape
    per_clip = torch.zeros(b, dtype=probs.dtype, device=probs.device)
    positions = torch.arange(n, device=probs.device)
    for i in range(b):
        log_probs = torch.distributions.Categorical(probs=probs[i]).log_prob(positions)
        per_clip[i] = -torch.mean(log_probs[mask[i]] * token_error[i].detach())
    return per_clip.mean()


class NumpyRandomMask:
    """Per-clip numpy generator: a shuffled float64 vector with int(ratio * N) ones (1 = masked)."""

    def __init__(self, grid: Sequence[int], ratio: float) -> None:
        self.n = math.prod(grid)
        self.masked = int(ratio * self.n)

    def __call__(self) -> np.ndarray:
        m = np.hstack([np.zeros(self.n - self.masked), np.ones(self.masked)])
        np.random.shuffle(m)
        return m


class NumpyTubeMask:
    """Per-clip numpy generator: one shuffled spatial pattern with int(ratio * H'W') ones, tiled over T'."""

    def __init__(self, grid: Sequence[int], ratio: float) -> None:
        self.t, self.hw = grid[0], grid[1] * grid[2]
        self.masked = int(ratio * self.hw)

    def __call__(self) -> np.ndarray:
        m = np.hstack([np.zeros(self.hw - self.masked), np.ones(self.masked)])
        np.random.shuffle(m)
        return np.tile(m, (self.t, 1)).flatten()


class NumpyFrameMask:
    """Per-clip numpy generator: int(ratio * T') shuffled time slices masked, repeated over H'W'."""

    def __init__(self, grid: Sequence[int], ratio: float) -> None:
        self.t, self.hw = grid[0], grid[1] * grid[2]
        self.masked = int(ratio * self.t)

    def __call__(self) -> np.ndarray:
        m = np.hstack([np.zeros(self.t - self.masked), np.ones(self.masked)])
        np.random.shuffle(m)
        return np.repeat(m, self.hw)


def collate_numpy_masks(generator: Callable[[], np.ndarray], batch: int, device: torch.device) -> Tensor:
    """What a data loader does with per-clip masks: one call per clip, stack, to a bool tensor on device."""
    return torch.from_numpy(np.stack([generator() for _ in range(batch)])).to(device).bool()


# ---------------------------------------------------------------------------------------------
# 1. sampling loss

def _adaptive_inputs(batch: int, n: int, ratio: float, device: torch.device, dtype=torch.float32,
                     seed: int = 0) -> Tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, n, generator=g, dtype=torch.float64) * 2
    n_visible = int(n * (1 - ratio))
    draw = gumbel_topk(torch.log_softmax(logits, -1).float(), n_visible, g)
    mask = torch.ones(batch, n, dtype=torch.bool).scatter_(1, draw, False)
    err = torch.rand(batch, n - n_visible, generator=g, dtype=torch.float64)
    return logits.to(device, dtype), mask.to(device), err.to(device, dtype)


def bench_loss(sz: Sizes, device: torch.device) -> List[Dict[str, Any]]:
    n = math.prod(sz.grid)
    logits, mask, err = _adaptive_inputs(sz.batch, n, 0.95, device)
    probs = torch.softmax(logits, -1).requires_grad_(True)

    def ours_fb() -> None:
        probs.grad = None
        sampling_loss(probs, mask, err).backward()

    def base_fb() -> None:
        probs.grad = None
        loss_per_sample_loop(probs, mask, err).backward()

    # correctness in float64: the loop in float64 is the reference; gradients are compared with
    # respect to the sampler's scores (the loop's Categorical renormalises probs, which adds a
    # per-row constant to d/dprobs that the softmax cancels)
    l64, m64, e64 = _adaptive_inputs(sz.batch, n, 0.95, device, torch.float64, seed=1)
    l64.requires_grad_(True)
    ref = loss_per_sample_loop(torch.softmax(l64, -1), m64, e64)
    (g_ref,) = torch.autograd.grad(ref, l64)
    l32 = l64.detach().float().requires_grad_(True)
    got = sampling_loss(torch.softmax(l32, -1), m64, e64.float())
    (g_got,) = torch.autograd.grad(got, l32)
    value_rel = abs(got.item() - ref.item()) / abs(ref.item())
    grad_rel = ((g_got.double() - g_ref).abs().max() / g_ref.abs().max()).item()
    l64b = l64.detach().requires_grad_(True)
    got64 = sampling_loss(torch.softmax(l64b, -1), m64, e64)  # float64 inputs, computed in float32
    agree = value_rel < 1e-5 and grad_rel < 1e-5

    with torch.no_grad():
        t_fwd = interleaved({"ours": lambda: sampling_loss(probs, mask, err),
                             "baseline": lambda: loss_per_sample_loop(probs, mask, err)},
                            sz.repeats, device, sz.number)
    t_fb = interleaved({"ours": ours_fb, "baseline": base_fb}, sz.repeats, device, sz.number)
    check = {"value_rel_err_vs_float64_loop": value_rel, "grad_rel_err_vs_float64_loop": grad_rel,
             "float64_inputs_value_rel_err": abs(got64.item() - ref.item()) / abs(ref.item()), "agree": agree}
    shape = f"B={sz.batch}, N={n}"
    speedup = statistics.median(t_fb["baseline"]) / statistics.median(t_fb["ours"])
    return [
        comparison(f"sampling_loss fwd+bwd ({shape})", t_fb["ours"], t_fb["baseline"], ">= 20x",
                   sz.judge(speedup >= 20 and agree), baseline="per-clip Categorical loop", check=check),
        comparison(f"sampling_loss fwd ({shape})", t_fwd["ours"], t_fwd["baseline"], "", None,
                   baseline="per-clip Categorical loop"),
    ]


# ---------------------------------------------------------------------------------------------
# 2. mask generation

def bench_masks(sz: Sizes, device: torch.device) -> List[Dict[str, Any]]:
    rows = []
    n = math.prod(sz.grid)
    for kind, gen_cls in (("random", NumpyRandomMask), ("tube", NumpyTubeMask), ("frame", NumpyFrameMask)):
        strategy = create_masking(kind, grid=sz.grid, mask_ratio=0.9)
        gen = gen_cls(sz.grid, 0.9)
        ours_mask = strategy.sample(sz.batch, device).mask
        base_mask = collate_numpy_masks(gen, sz.batch, device)
        same_counts = bool((ours_mask.sum(1) == base_mask.sum(1)).all())
        t = interleaved({"ours": lambda: strategy.sample(sz.batch, device),
                         "baseline": lambda: collate_numpy_masks(gen, sz.batch, device)},
                        sz.repeats, device, max(sz.number, 10))
        speedup = statistics.median(t["baseline"]) / statistics.median(t["ours"])
        rows.append(comparison(f"{kind} mask, batch (B={sz.batch}, N={n})", t["ours"], t["baseline"], ">= 10x",
                               sz.judge(speedup >= 10 and same_counts),
                               baseline="per-clip numpy generator + collate",
                               check={"same_masked_count": same_counts, "masked": int(ours_mask[0].sum())}))
    return rows


# ---------------------------------------------------------------------------------------------
# 3. visible-token draw

def bench_draw(sz: Sizes, device: torch.device) -> List[Dict[str, Any]]:
    n = math.prod(sz.grid)
    k = int(n * 0.05) or 1
    g = torch.Generator().manual_seed(0)
    rows = []
    for label, scale in (("N(0, 1) logits", 1.0), ("peaked, N(0, 10^2) logits", 10.0)):
        logits = (torch.randn(sz.batch, n, generator=g) * scale).to(device)
        log_probs, probs = torch.log_softmax(logits, -1), torch.softmax(logits, -1)
        t = interleaved({"ours": lambda: gumbel_topk(log_probs, k),
                         "baseline": lambda: torch.multinomial(probs, k, replacement=False)},
                        sz.repeats, device, max(sz.number, 10))
        ratio = statistics.median(t["ours"]) / statistics.median(t["baseline"])
        rows.append(comparison(f"draw {k} of {n}, B={sz.batch}, {label}", t["ours"], t["baseline"],
                               "<= 1.0x time", sz.judge(ratio <= 1.0),
                               baseline="torch.multinomial(replacement=False)", time_ratio=ratio))
    rows += draw_failure_cases(sz, device, n, k, g)
    return rows


def _try_multinomial(probs: Tensor, k: int, device: torch.device) -> Tuple[Optional[Tensor], str]:
    try:
        draw = torch.multinomial(probs, k, replacement=False)
        _sync(device)
        return draw, "no error"
    except RuntimeError as e:
        return None, f"RuntimeError: {str(e).splitlines()[0]}"


def _overlap(draw: Tensor, best: Tensor) -> float:
    """Mean fraction of each row's draw that lies among that row's k most probable tokens."""
    hits = (draw.unsqueeze(2) == best.unsqueeze(1)).any(2).float()
    return hits.mean().item()


def draw_failure_cases(sz: Sizes, device: torch.device, n: int, k: int, g: torch.Generator) -> List[Dict[str, Any]]:
    """Draws where fewer than k probabilities are nonzero.

    1. a confident sampler: scores N(0, 100^2); float32 softmax underflows to zero for all but a
       few tokens, while the log-probabilities stay finite. A correct draw of k tokens without
       replacement then takes (almost surely) the k most probable tokens.
    2. explicit zeros: only 2k/3 tokens have mass; the remaining draws are arbitrary.
    """
    rows = []
    scores = (torch.randn(sz.batch, n, generator=g) * 100).to(device)
    probs, log_probs = torch.softmax(scores, -1), torch.log_softmax(scores, -1)
    nonzero = (probs > 0).sum(1).float()
    best = scores.topk(k, dim=1).indices
    multi, status = _try_multinomial(probs, k, device)
    ours = gumbel_topk(log_probs, k)
    fm = None if multi is None else _overlap(multi, best)
    fo = _overlap(ours, best)
    rows.append({"name": f"draw {k} of {n}, B={sz.batch}, scores N(0, 100^2): {nonzero.mean().item():.1f} nonzero "
                         f"float32 probabilities per row on average (max {int(nonzero.max().item())})",
                 "multinomial": f"{status}; {'-' if fm is None else f'{fm:.0%}'} of the draw among the {k} most probable",
                 "gumbel_topk": f"{fo:.0%} of the draw among the {k} most probable (log-space keys)",
                 "multinomial_top_fraction": fm, "gumbel_top_fraction": fo,
                 "target": "no failure where multinomial fails",
                 "met": sz.judge(fo >= 0.95 and (fm is None or fm < fo))})
    support = max(1, k * 2 // 3)
    scores = torch.full((sz.batch, n), float("-inf"))
    scores[:, :support] = torch.randn(sz.batch, support, generator=g)
    scores = scores.to(device)
    multi, status = _try_multinomial(torch.softmax(scores, -1), k, device)
    ours = gumbel_topk(torch.log_softmax(scores, -1), k)

    def ok(d: Optional[Tensor]) -> bool:  # k distinct indices, the nonzero-probability ones first
        return d is not None and bool((d[:, :support] < support).all()) and all(
            len(set(r.tolist())) == k for r in d.cpu())

    rows.append({"name": f"draw {k} of {n} with only {support} nonzero probabilities",
                 "multinomial": f"{status}; {'the nonzero ones first, k distinct' if ok(multi) else 'invalid draw'}",
                 "gumbel_topk": "the nonzero ones first, k distinct" if ok(ours) else "invalid draw",
                 "target": "k distinct indices, support first", "met": sz.judge(ok(ours))})
    return rows


# ---------------------------------------------------------------------------------------------
# 4. training step

def train_configs(embed_dim: int) -> List[Tuple[str, str, float, Optional[Dict[str, Any]]]]:
    """(label, masking, ratio, sampler options as `adamask.flops.build_model`) of the training-step comparison."""
    return [
        ("tube 0.90", "tube", 0.9, None),
        ("random 0.90", "random", 0.9, None),
        ("adaptive 0.95, paper block", "adaptive", 0.95, {}),
        ("adaptive 0.95, attention only", "adaptive", 0.95, {"variant": "attention"}),
        ("adaptive 0.95, paper block, checkpointed", "adaptive", 0.95, {CHECKPOINT: True}),
        (f"adaptive 0.95, width {embed_dim // 2}", "adaptive", 0.95, {"width": embed_dim // 2}),
        ("adaptive 0.95, pool 1x2x2", "adaptive", 0.95, {"token_pool": (1, 2, 2)}),
        (f"adaptive 0.95, attention, width {embed_dim // 4}, pool 1x2x2", "adaptive", 0.95,
         {"variant": "attention", "width": embed_dim // 4, "token_pool": (1, 2, 2)}),
    ]


def build_step(model_cfg: Dict[str, Any], masking: str, ratio: float, opts: Optional[Dict[str, Any]],
               batch: int, device: torch.device, seed: int = 0) -> Tuple[MaskedVideoAutoencoder, Callable[[], None]]:
    """A model, its AdamW optimiser and one clip batch -> (model, step()) for one training step."""
    torch.manual_seed(seed)
    model = build_model(model_cfg, masking, ratio, opts).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05, fused=True)
    video = torch.randn(batch, *model.input_shape, device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        model(video).loss.backward()
        opt.step()

    return model, step


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
    _, step = build_step(spec["model"], spec["masking"], spec["ratio"], spec["opts"], spec["batch"],
                         torch.device("cpu"))
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
        _, step = build_step(spec["model"], spec["masking"], spec["ratio"], spec["opts"], spec["batch"], device)
        step()
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        return {"step_peak_mb": (peak - before) / 2**20, "total_peak_mb": (peak - base) / 2**20}
    # fixed malloc thresholds: large blocks are mmapped and returned to the OS when freed, so RSS
    # follows live memory instead of the allocator's high-water mark
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--probe-memory", json.dumps(spec)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_train(sz: Sizes, device: torch.device) -> Dict[str, Any]:
    cfg = sz.train_model
    configs = train_configs(cfg["embed_dim"])
    if sz.smoke:  # tube, the paper's sampler and the cheapest setting
        configs = [configs[0], configs[2], configs[-1]]
    steps, models = {}, {}
    for label, masking, ratio, opts in configs:
        models[label], steps[label] = build_step(cfg, masking, ratio, opts, sz.train_batch, device)
    times = interleaved(steps, sz.train_repeats, device, warmup=1)
    del steps, models
    rows = []
    for label, masking, ratio, opts in configs:
        spec = {"model": cfg, "masking": masking, "ratio": ratio, "opts": opts, "batch": sz.train_batch,
                "threads": torch.get_num_threads()}
        mem = measure_memory(spec, device)
        with torch.device("meta"):
            meta_model = build_model(cfg, masking, ratio, opts)
        costs = step_costs(meta_model, sz.train_batch)["total"]
        rows.append({"config": label, "sampler_options": opts, "time_ms": stats(times[label]), **mem,
                     "gflops": costs["gflops"], "activation_mb": costs["activation_mb"]})
    ref = rows[0]
    for r in rows:
        r["time_vs_tube"] = r["time_ms"]["median"] / ref["time_ms"]["median"]
        r["step_peak_vs_tube"] = r["step_peak_mb"] / ref["step_peak_mb"] if ref["step_peak_mb"] > 0 else float("nan")
        r["total_peak_vs_tube"] = r["total_peak_mb"] / ref["total_peak_mb"] if ref["total_peak_mb"] > 0 else float("nan")
        r["gflops_vs_tube"] = r["gflops"] / ref["gflops"]
        r["activation_vs_tube"] = r["activation_mb"] / ref["activation_mb"]
    model_desc = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
    return {"model": model_desc, "batch": sz.train_batch, "optimizer": "AdamW (fused)", "rows": rows}


# ---------------------------------------------------------------------------------------------
# targets, table, JSON

def train_targets(train: Dict[str, Any], smoke: bool) -> List[Dict[str, Any]]:
    rows = {r["config"]: r for r in train["rows"]}
    paper = rows["adaptive 0.95, paper block"]
    cheapest = min((r for r in train["rows"] if r["config"].startswith("adaptive")),
                   key=lambda r: r["time_ms"]["median"])
    ckpt = rows.get("adaptive 0.95, paper block, checkpointed")
    judge = (lambda ok: None) if smoke else (lambda ok: bool(ok))
    return [
        {"name": "adaptive-0.95 (paper block) step peak memory <= tube-0.90", "value": paper["step_peak_vs_tube"],
         "target": "<= 1.00x", "met": judge(paper["step_peak_vs_tube"] <= 1.0)},
        {"name": "adaptive-0.95 (paper block) step time <= 1.10x tube-0.90", "value": paper["time_vs_tube"],
         "target": "<= 1.10x", "met": judge(paper["time_vs_tube"] <= 1.10)},
        *([{"name": "adaptive-0.95 (paper block, checkpointed) step peak memory <= tube-0.90",
             "value": ckpt["step_peak_vs_tube"], "target": "<= 1.00x", "met": judge(ckpt["step_peak_vs_tube"] <= 1.0)}]
          if ckpt else []),
        {"name": f"adaptive-0.95 ({cheapest['config'][15:]}) step time <= 0.90x tube-0.90",
         "value": cheapest["time_vs_tube"], "target": "<= 0.90x", "met": judge(cheapest["time_vs_tube"] <= 0.90)},
        {"name": f"adaptive-0.95 ({cheapest['config'][15:]}) step peak memory <= tube-0.90",
         "value": cheapest["step_peak_vs_tube"], "target": "<= 1.00x", "met": judge(cheapest["step_peak_vs_tube"] <= 1.0)},
    ]


def _ms(s: Dict[str, Any]) -> str:
    return f"{s['median']:.3g} ({s['min']:.3g}-{s['max']:.3g})"


def format_tables(res: Dict[str, Any]) -> str:
    mc = res["machine"]
    load = "/".join(f"{x:.1f}" for x in mc["load_average_start"])
    out = [f"device: {mc['device_name']} ({mc['cpu_count']} cores); torch {mc['torch']}; {mc['threads']} threads; "
           f"{res['mode']} run; load average at start {load}", ""]
    out.append("| comparison | adamask ms, median (min-max) | baseline ms, median (min-max) | "
               "ratio of medians | target | met |")
    out.append("|---|---|---|---|---|---|")
    for row in res["micro"]:
        if "ours_ms" not in row:
            continue
        ratio = (f"time {row['time_ratio']:.2f}x" if "time_ratio" in row else f"speedup {row['speedup']:.1f}x")
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO")
        out.append(f"| {row['name']} vs {row['baseline']} | {_ms(row['ours_ms'])} | {_ms(row['baseline_ms'])} | "
                   f"{ratio} | {row['target']} | {met} |")
    for row in res["micro"]:
        if "multinomial" in row:
            out += ["", f"{row['name']}: multinomial -> {row['multinomial']}; gumbel_topk -> {row['gumbel_topk']}"]
        if "check" in row and "value_rel_err_vs_float64_loop" in row["check"]:
            c = row["check"]
            out += ["", f"sampling_loss vs the float64 loop: value rel. err {c['value_rel_err_vs_float64_loop']:.1e}, "
                        f"grad (w.r.t. scores) rel. err {c['grad_rel_err_vs_float64_loop']:.1e}"]
    tr = res["train"]
    m = tr["model"]
    out += ["", f"training step: encoder {m['depth']} x {m['embed_dim']}, decoder {m['decoder_depth']} x "
                f"{m['decoder_embed_dim']}, {m['num_frames']} x {m['img_size']}^2, tubelet {tuple(m['tubelet'])}, "
                f"batch {tr['batch']}, {tr['optimizer']}; memory: {res['memory_method']}", ""]
    out.append("| config | step ms, median (min-max) | vs tube | step peak MB | vs tube | total peak MB | "
               "GFLOP | vs tube | saved act. MB | vs tube |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for r in tr["rows"]:
        out.append(f"| {r['config']} | {_ms(r['time_ms'])} | {r['time_vs_tube']:.2f}x | {r['step_peak_mb']:.0f} | "
                   f"{r['step_peak_vs_tube']:.2f}x | {r['total_peak_mb']:.0f} | {r['gflops']:.1f} | "
                   f"{r['gflops_vs_tube']:.2f}x | {r['activation_mb']:.0f} | {r['activation_vs_tube']:.2f}x |")
    out += ["", "| training-step target | value | target | met |", "|---|---|---|---|"]
    for t in res["train_targets"]:
        met = "" if t["met"] is None else ("yes" if t["met"] else "NO")
        out.append(f"| {t['name']} | {t['value']:.2f}x | {t['target']} | {met} |")
    out += ["", f"paper-scale cost per clip ({res['paper_scale']['size']}), one training step, float32:", "",
            res["paper_scale"]["table"]]
    return "\n".join(out)


def machine(device: torch.device) -> Dict[str, Any]:
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    return {"device": str(device), "device_name": name, "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
            "platform": platform.platform()}


def write_json_atomic(path: Path, data: Dict[str, Any]) -> None:
    """Write ``data`` as strict JSON (NaN -> null) via a temporary file and os.replace."""
    write_json(path, data, indent=1)


def run(smoke: bool, device: torch.device) -> Dict[str, Any]:
    sz = SMOKE if smoke else FULL
    load_start = list(os.getloadavg())
    t0 = time.perf_counter()
    micro = bench_loss(sz, device) + bench_masks(sz, device) + bench_draw(sz, device)
    train = bench_train(sz, device)
    paper = paper_scale_table(sz.paper_size, **sz.paper_overrides)
    res = {
        "schema_version": SCHEMA_VERSION,
        "mode": "smoke" if smoke else "full",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {**machine(device), "load_average_start": load_start},
        "memory_method": ("torch.cuda.max_memory_allocated" if device.type == "cuda" else
                          "peak RSS (VmHWM, reset via /proc/self/clear_refs) of one step in a fresh process"),
        "micro": micro,
        "train": train,
        "train_targets": train_targets(train, smoke),
        "paper_scale": {"size": sz.paper_size, "rows": paper, "table": format_cost_table(paper)},
    }
    res["seconds"] = time.perf_counter() - t0
    res["machine"]["load_average_end"] = list(os.getloadavg())
    return res


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the suite runs (seconds)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results.json", help="output JSON path")
    p.add_argument("--probe-memory", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe_memory:
        print(json.dumps(probe_memory(json.loads(args.probe_memory))))
        return 0
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)
    res = run(args.smoke, device)
    print(format_tables(res))
    write_json_atomic(args.json, res)
    print(f"\nwrote {args.json} ({res['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
