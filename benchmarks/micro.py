"""Micro-benchmarks against the baselines: the sampling loss, batched mask generation and the visible-token
draw (with the cases where torch.multinomial fails)."""

from __future__ import annotations

import math
import statistics
from functools import partial
from typing import Any, Dict, List, Optional, Tuple, cast

import torch
from torch import Tensor

from adamask import MaskingStrategy, create_masking, gumbel_topk, sampling_loss
from baselines import NumpyFrameMask, NumpyRandomMask, NumpyTubeMask, collate_numpy_masks, loss_per_sample_loop
from timing import Sizes, comparison, cuda_graphed, interleaved, sync


def _adaptive_inputs(
    batch: int, n: int, ratio: float, device: torch.device, dtype=torch.float32, seed: int = 0
) -> Tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, n, generator=g, dtype=torch.float64) * 2
    n_visible = int(n * (1 - ratio))
    draw = gumbel_topk(torch.log_softmax(logits, -1).float(), n_visible, g)
    mask = torch.ones(batch, n, dtype=torch.bool).scatter_(1, draw, False)
    err = torch.rand(batch, n - n_visible, generator=g, dtype=torch.float64)
    return logits.to(device, dtype), mask.to(device), err.to(device, dtype)


def bench_loss(
    sz: Sizes, device: torch.device, min_speedup: float = 20.0, graphed: bool = False
) -> List[Dict[str, Any]]:
    """sampling_loss vs the per-clip loop: fwd+bwd (target >= ``min_speedup``, identical values) and fwd; with
    ``graphed`` on CUDA, also sampling_loss fwd+bwd captured in a CUDA graph (its value checked against the
    eager one), which carries the target then."""
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
        t_fwd = interleaved(
            {
                "ours": lambda: sampling_loss(probs, mask, err),
                "baseline": lambda: loss_per_sample_loop(probs, mask, err),
            },
            sz.repeats,
            device,
            sz.number,
        )
    t_fb = interleaved({"ours": ours_fb, "baseline": base_fb}, sz.repeats, device, sz.number)
    check = {
        "value_rel_err_vs_float64_loop": value_rel,
        "grad_rel_err_vs_float64_loop": grad_rel,
        "float64_inputs_value_rel_err": abs(got64.item() - ref.item()) / abs(ref.item()),
        "agree": agree,
    }
    shape = f"B={sz.batch}, N={n}"
    speedup = statistics.median(t_fb["baseline"]) / statistics.median(t_fb["ours"])
    graph = graphed and device.type == "cuda"
    rows = [
        comparison(
            f"sampling_loss fwd+bwd ({shape})",
            t_fb["ours"],
            t_fb["baseline"],
            "" if graph else f">= {min_speedup:g}x",
            None if graph else sz.judge(speedup >= min_speedup and agree),
            baseline="per-clip Categorical loop",
            check=check,
        ),
        comparison(
            f"sampling_loss fwd ({shape})",
            t_fwd["ours"],
            t_fwd["baseline"],
            "",
            None,
            baseline="per-clip Categorical loop",
        ),
    ]
    if graph:
        rows.insert(
            0, _graphed_loss(sz, probs, mask, err, base_fb, f"sampling_loss fwd+bwd ({shape})", min_speedup, check)
        )
    return rows


def _graphed_loss(
    sz: Sizes, probs: Tensor, mask: Tensor, err: Tensor, base_fb: Any, name: str, min_speedup: float, check: Dict
) -> Dict[str, Any]:
    """sampling_loss fwd+bwd captured in a CUDA graph against the per-clip loop; its loss and gradient are
    those of the eager call on the same inputs."""
    probs.grad = None
    want = sampling_loss(probs, mask, err)
    (want_grad,) = torch.autograd.grad(want, probs)

    def fb() -> Tensor:
        probs.grad = None  # the captured backward then writes a gradient of its own, which every replay rewrites
        loss = sampling_loss(probs, mask, err)
        loss.backward()
        return loss

    replay, loss = cuda_graphed(fb)
    replay()
    sync(probs.device)
    got_grad = probs.grad
    same = (
        bool(torch.equal(loss, want))
        and got_grad is not None
        and bool(torch.allclose(got_grad, want_grad, rtol=1e-5, atol=1e-8))
    )
    t = interleaved({"ours": replay, "baseline": base_fb}, sz.repeats, probs.device, sz.number)
    speedup = statistics.median(t["baseline"]) / statistics.median(t["ours"])
    return comparison(
        f"{name}, CUDA graph",
        t["ours"],
        t["baseline"],
        f">= {min_speedup:g}x",
        sz.judge(speedup >= min_speedup and same and check["agree"]),
        baseline="per-clip Categorical loop",
        check=dict(check, graphed_equals_eager=same),
    )


# ---------------------------------------------------------------------------------------------
# 2. mask generation


def bench_masks(sz: Sizes, device: torch.device, graphed: bool = False) -> List[Dict[str, Any]]:
    """Batched masks on the device vs per-clip numpy generators + collate; with ``graphed`` on CUDA, the
    batched call captured in a CUDA graph (new masks at every replay, their counts checked), which carries the
    target then."""
    rows = []
    graph = graphed and device.type == "cuda"
    n = math.prod(sz.grid)
    for kind, gen_cls in (("random", NumpyRandomMask), ("tube", NumpyTubeMask), ("frame", NumpyFrameMask)):
        strategy = cast(MaskingStrategy, create_masking(kind, grid=sz.grid, mask_ratio=0.9))
        gen = gen_cls(sz.grid, 0.9)
        ours_mask = strategy.sample(sz.batch, device).mask
        base_mask = collate_numpy_masks(gen, sz.batch, device)
        same_counts = bool((ours_mask.sum(1) == base_mask.sum(1)).all())
        t = interleaved(
            {
                "ours": partial(strategy.sample, sz.batch, device),
                "baseline": partial(collate_numpy_masks, gen, sz.batch, device),
            },
            sz.repeats,
            device,
            max(sz.number, 10),
        )
        speedup = statistics.median(t["baseline"]) / statistics.median(t["ours"])
        rows.append(
            comparison(
                f"{kind} mask, batch (B={sz.batch}, N={n})",
                t["ours"],
                t["baseline"],
                "" if graph else ">= 10x",
                None if graph else sz.judge(speedup >= 10 and same_counts),
                baseline="per-clip numpy generator + collate",
                check={"same_masked_count": same_counts, "masked": int(ours_mask[0].sum())},
            )
        )
        if graph:
            rows.append(_graphed_masks(sz, strategy, gen, device, f"{kind} mask, batch (B={sz.batch}, N={n})"))
    return rows


def _graphed_masks(sz: Sizes, strategy: MaskingStrategy, gen: Any, device: torch.device, name: str) -> Dict[str, Any]:
    """``strategy.sample`` captured in a CUDA graph against the per-clip generators: two replays draw different
    masks with the strategy's counts."""
    replay, masking = cuda_graphed(partial(strategy.sample, sz.batch, device))
    replay()
    first = masking.mask.clone()
    replay()
    counts = bool((masking.mask.sum(1) == strategy.num_masked).all()) and bool(
        (first.sum(1) == strategy.num_masked).all()
    )
    fresh = not torch.equal(first, masking.mask)
    t = interleaved(
        {"ours": replay, "baseline": partial(collate_numpy_masks, gen, sz.batch, device)},
        sz.repeats,
        device,
        max(sz.number, 10),
    )
    speedup = statistics.median(t["baseline"]) / statistics.median(t["ours"])
    return comparison(
        f"{name}, CUDA graph",
        t["ours"],
        t["baseline"],
        ">= 10x",
        sz.judge(speedup >= 10 and counts and fresh),
        baseline="per-clip numpy generator + collate",
        check={"strategy_counts": counts, "new_masks_each_replay": fresh},
    )


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
        t = interleaved(
            {
                "ours": partial(gumbel_topk, log_probs, k),
                "baseline": partial(torch.multinomial, probs, k, replacement=False),
            },
            sz.repeats,
            device,
            max(sz.number, 10),
        )
        ratio = statistics.median(t["ours"]) / statistics.median(t["baseline"])
        rows.append(
            comparison(
                f"draw {k} of {n}, B={sz.batch}, {label}",
                t["ours"],
                t["baseline"],
                "<= 1.0x time",
                sz.judge(ratio <= 1.0),
                baseline="torch.multinomial(replacement=False)",
                time_ratio=ratio,
            )
        )
    rows += draw_failure_cases(sz, device, n, k, g)
    return rows


def _try_multinomial(probs: Tensor, k: int, device: torch.device) -> Tuple[Optional[Tensor], str]:
    try:
        draw = torch.multinomial(probs, k, replacement=False)
        sync(device)
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
    rows.append(
        {
            "name": f"draw {k} of {n}, B={sz.batch}, scores N(0, 100^2): {nonzero.mean().item():.1f} nonzero "
            f"float32 probabilities per row on average (max {int(nonzero.max().item())})",
            "multinomial": f"{status}; {'-' if fm is None else f'{fm:.0%}'} of the draw among the {k} most probable",
            "gumbel_topk": f"{fo:.0%} of the draw among the {k} most probable (log-space keys)",
            "multinomial_top_fraction": fm,
            "gumbel_top_fraction": fo,
            "target": "no failure where multinomial fails",
            "met": sz.judge(fo >= 0.95 and (fm is None or fm < fo)),
        }
    )
    support = max(1, k * 2 // 3)
    scores = torch.full((sz.batch, n), float("-inf"))
    scores[:, :support] = torch.randn(sz.batch, support, generator=g)
    scores = scores.to(device)
    multi, status = _try_multinomial(torch.softmax(scores, -1), k, device)
    ours = gumbel_topk(torch.log_softmax(scores, -1), k)

    def ok(d: Optional[Tensor]) -> bool:  # k distinct indices, the nonzero-probability ones first
        return (
            d is not None and bool((d[:, :support] < support).all()) and all(len(set(r.tolist())) == k for r in d.cpu())
        )

    rows.append(
        {
            "name": f"draw {k} of {n} with only {support} nonzero probabilities",
            "multinomial": f"{status}; {'the nonzero ones first, k distinct' if ok(multi) else 'invalid draw'}",
            "gumbel_topk": "the nonzero ones first, k distinct" if ok(ours) else "invalid draw",
            "target": "k distinct indices, support first",
            "met": sz.judge(ok(ours)),
        }
    )
    return rows
