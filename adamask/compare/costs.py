"""What a training step of the reference MAE costs.

Without running anything: FLOPs and saved-activation memory per component (tokenizer, sampler, encoder,
decoder), on meta tensors, for one shared list of configurations (`paper_scale_configs`, also timed by
``benchmarks/run.py``), with and without running-cell decoder masking, and the moonshot ratio (the cheapest
adaptive setting with decoder masking against tube masking at 0.90); for a comparison run, each strategy's
training FLOPs per step and its steps under the run's budget (`run_costs`). On real tensors: the bytes autograd
saves in one step and the bytes of weights, gradients and optimiser state (the CPU memory estimate of
``adamask compare``).

    adamask costs [--size base]
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, cast

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from ..mae import MAE_CONFIGS, MaskedVideoAutoencoder
from ..masking import MaskingStrategy
from .config import CompareConfig, StrategySpec
from .errors import UserError, brief
from .model import draw_masking, model_for

__all__ = [
    "COMPONENTS",
    "CHECKPOINT",
    "DECODER_MASKING",
    "MOONSHOT",
    "build_cost_model",
    "step_costs",
    "RunCost",
    "budget_reference",
    "run_costs",
    "paper_scale_configs",
    "paper_scale_table",
    "format_cost_table",
    "moonshot_line",
    "saved_activation_bytes",
    "state_bytes",
    "main",
]

COMPONENTS = ("tokenizer", "sampler", "encoder", "decoder", "other")
CHECKPOINT = "checkpoint"  # sampler option: recompute its blocks in backward
# options of a configuration that set the model's decoder masking (VideoMAE V2's running cell at 0.5: the decoder
# reconstructs half the tokens), not the sampler's
DECODER_MASKING: Dict[str, Any] = {"decoder_masking": "running_cell", "decoder_mask_ratio": 0.5}
# the moonshot: the cheapest adaptive setting at 0.95 with running-cell decoder masking at most this fraction
# of tube 0.90's training FLOPs at paper scale
MOONSHOT = 0.55
_TUBE, _RUNNING_CELL = "tube 0.90", " + running cell 0.5"

_OWNER = {
    "patch_embed": "tokenizer",
    "mask_sampler": "sampler",
    "blocks": "encoder",
    "norm": "encoder",
    "encoder_to_decoder": "decoder",
    "decoder_blocks": "decoder",
    "decoder_norm": "decoder",
    "decoder_head": "decoder",
}


class _ComponentCounter(TorchFunctionMode):
    """Attributes FLOPs and saved activations to the component (module owner) that ran them.

    Forward: module hooks keep a stack of active components. Backward: every autograd node made in
    the forward is tagged with its component, and a node pre-hook switches the active component.
    FLOPs use the formulas of ``torch.utils.flop_counter``; saved tensors are counted once per
    storage, excluding parameters and buffers.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.stack: List[str] = ["other"]
        self.flops = dict.fromkeys(COMPONENTS, 0)
        self.saved = dict.fromkeys(COMPONENTS, 0)
        self.skip = {t.untyped_storage()._cdata for t in list(model.parameters()) + list(model.buffers())}
        self.seen: Dict[int, Tensor] = {}
        self.nodes: Dict[int, Any] = {}
        self.model = model

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            node = getattr(t, "grad_fn", None) if isinstance(t, Tensor) else None
            if node is not None and id(node) not in self.nodes:
                self.nodes[id(node)] = node  # kept alive so ids stay unique
                node.register_prehook(lambda g, c=self.stack[-1]: self.stack.append(c) and None)
        return out

    def _pack(self, t: Tensor) -> Tensor:
        s = t.untyped_storage()
        key = s._cdata
        if key not in self.skip and key not in self.seen:
            self.seen[key] = t
            self.saved[self.stack[-1]] += s.nbytes()
        return t

    @contextmanager
    def counting(self) -> Iterator["_ComponentCounter"]:
        handles = []
        for name, mod in self.model.named_modules():
            top = name.split(".")[0]
            if name and top in _OWNER:
                handles.append(mod.register_forward_pre_hook(lambda m, a, c=_OWNER[top]: self.stack.append(c)))
                handles.append(mod.register_forward_hook(lambda m, a, o: self.stack.pop() and None))
        try:
            with self, _FlopDispatch(self), torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t):
                yield self
        finally:
            for h in handles:
                h.remove()


class _FlopDispatch(TorchDispatchMode):
    def __init__(self, counter: _ComponentCounter) -> None:
        super().__init__()
        self.counter = counter

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.counter.flops[self.counter.stack[-1]] += formula(*args, **kwargs, out_val=out)
        return out


def step_costs(model: MaskedVideoAutoencoder, batch_size: int = 1) -> Dict[str, Dict[str, float]]:
    """FLOPs (forward + backward, GFLOP) and saved activations (MB, float32) of one training step,
    per component, plus parameter counts (M). ``model`` should live on the meta device.

    The total is checked against ``torch.utils.flop_counter.FlopCounterMode``.
    """
    device = next(model.parameters()).device
    video = torch.empty(batch_size, *model.input_shape, device=device)
    reference = FlopCounterMode(display=False)
    counter = _ComponentCounter(model)
    with reference, counter.counting():
        out = model(video)
        flops_fwd = dict(counter.flops)
        out.loss.backward()
    total = reference.get_total_flops()
    if sum(counter.flops.values()) != total:
        raise RuntimeError(f"FLOP attribution lost FLOPs: {sum(counter.flops.values())} != {total}")
    params = dict.fromkeys(COMPONENTS, 0)
    for name, p in model.named_parameters():
        params[_OWNER.get(name.split(".")[0], "other")] += p.numel()
    rows = {
        c: {
            "gflops": counter.flops[c] / 1e9,
            "gflops_fwd": flops_fwd[c] / 1e9,
            "activation_mb": counter.saved[c] / 2**20,
            "params_m": params[c] / 1e6,
        }
        for c in COMPONENTS
    }
    rows["total"] = {k: sum(r[k] for r in rows.values()) for k in ("gflops", "gflops_fwd", "activation_mb", "params_m")}
    return rows


@dataclass(frozen=True)
class RunCost:
    """What one strategy of a comparison costs: the training GFLOP of one step (forward + backward of the
    run's model at its batch size; None where the step cannot be counted on meta tensors) and the steps it
    trains under the run's budget."""

    gflops_per_step: Optional[float]
    steps: int


def _step_gflops(cfg: CompareConfig, spec: StrategySpec) -> float:
    """Training GFLOP of one step of ``spec``'s model as the run ``cfg`` builds it, batch ``cfg.batch_size``,
    counted on meta tensors."""
    with torch.device("meta"):
        model = model_for(cfg, spec)
    return step_costs(model, cfg.batch_size)["total"]["gflops"]


def budget_reference(cfg: CompareConfig) -> StrategySpec:
    """The reference of ``--budget flops``: random masking at the common ratio; every strategy trains for the
    FLOPs of ``cfg.steps`` of its steps."""
    return StrategySpec("random", cfg.common_ratio)


def run_costs(cfg: CompareConfig) -> Dict[str, RunCost]:
    """Per strategy label of ``cfg``: its training GFLOP per step and its steps. With ``cfg.budget == "steps"``
    every strategy trains ``cfg.steps`` steps; with "flops", ``round(cfg.steps * F_ref / F)``, at least 1, where
    F is its GFLOP per step and F_ref that of `budget_reference` (so each trains for about the FLOPs of
    ``cfg.steps`` steps of random masking at ``cfg.common_ratio``). A `UserError` naming a strategy whose step
    cannot be counted when the budget needs it."""
    flops = cfg.budget == "flops"
    out: Dict[str, RunCost] = {}
    reference = _step_gflops(cfg, budget_reference(cfg)) if flops else None
    for spec in cfg.specs():
        try:
            gflops: Optional[float] = _step_gflops(cfg, spec)
        except Exception as e:  # a strategy that cannot run on meta tensors: its cost is unknown
            if flops:
                raise UserError(
                    f"--budget flops: the training FLOPs of strategy {spec.label} cannot be counted on meta "
                    f"tensors ({brief(e)}); use --budget steps"
                ) from e
            gflops = None
        steps = cfg.steps if reference is None or gflops is None else max(1, round(cfg.steps * reference / gflops))
        out[spec.label] = RunCost(gflops, steps)
    return out


def build_cost_model(
    config: Dict[str, Any], masking: str, mask_ratio: float, options: Optional[Dict[str, Any]] = None
) -> MaskedVideoAutoencoder:
    """The reference MAE for ``config`` with ``options``: the sampler's keyword arguments (e.g.
    ``{CHECKPOINT: True}``), and the model's decoder masking where they hold the keys of `DECODER_MASKING`."""
    opts = dict(options or {})
    decoder = {k: opts.pop(k) for k in DECODER_MASKING if k in opts}
    return MaskedVideoAutoencoder(
        **config, **decoder, masking=masking, mask_ratio=mask_ratio, masking_options=opts or None
    )


def _cheapest_label(embed_dim: int) -> str:
    return f"adaptive 0.95, attention, width {embed_dim // 4}, pool 1x2x2"


def paper_scale_configs(embed_dim: int = 768) -> List[Tuple[str, str, float, Optional[Dict[str, Any]]]]:
    """(label, masking, mask_ratio, options as `build_cost_model`): the configurations whose costs are
    compared, here and in ``benchmarks/``: random and tube at 0.90, the adaptive sampler at 0.95 (the paper's
    block, its cheaper settings, the cheapest: attention only, a quarter of the width, pooled 1x2x2) and motion
    at 0.95; then random 0.90, tube 0.90, the paper's block, the cheapest and motion each with running-cell
    decoder masking at 0.5 (`DECODER_MASKING`; label + " + running cell 0.5")."""
    half, quarter = embed_dim // 2, embed_dim // 4
    cheapest = (_cheapest_label(embed_dim), "adaptive", 0.95, {"variant": "attention", "width": quarter,
                                                                "token_pool": (1, 2, 2)})  # fmt: skip
    encoder: List[Tuple[str, str, float, Optional[Dict[str, Any]]]] = [
        ("random 0.90", "random", 0.9, None),
        (_TUBE, "tube", 0.9, None),
        ("adaptive 0.95, paper block", "adaptive", 0.95, {}),
        ("adaptive 0.95, paper block, checkpointed", "adaptive", 0.95, {CHECKPOINT: True}),
        ("adaptive 0.95, attention only", "adaptive", 0.95, {"variant": "attention"}),
        (f"adaptive 0.95, width {half}", "adaptive", 0.95, {"width": half}),
        ("adaptive 0.95, depth 2", "adaptive", 0.95, {"depth": 2}),
        ("adaptive 0.95, pool 1x2x2", "adaptive", 0.95, {"token_pool": (1, 2, 2)}),
        cheapest,
        ("motion 0.95", "motion", 0.95, None),
    ]
    dual = ("random 0.90", _TUBE, "adaptive 0.95, paper block", cheapest[0], "motion 0.95")
    return encoder + [
        (label + _RUNNING_CELL, masking, ratio, {**(opts or {}), **DECODER_MASKING})
        for label, masking, ratio, opts in encoder
        if label in dual
    ]


def paper_scale_table(size: str = "base", batch_size: int = 1, **overrides: Any) -> List[Dict[str, Any]]:
    """Per-clip costs of one training step for each configuration of `paper_scale_configs`:
    ViT-B (size="base"), 16 x 224 x 224, tubelet 2 x 16 x 16, decoder 4 x 384 unless overridden."""
    config = {**MAE_CONFIGS[size], **overrides}
    rows = []
    for label, masking, ratio, opts in paper_scale_configs(config["embed_dim"]):
        with torch.device("meta"):
            model = build_cost_model(config, masking, ratio, opts)
        rows.append(
            {
                "config": label,
                "masking": masking,
                "mask_ratio": ratio,
                "sampler_options": opts,
                "num_tokens": model.num_tokens,
                "num_visible": cast(MaskingStrategy, model.mask_sampler).num_visible,
                "batch_size": batch_size,
                "costs": step_costs(model, batch_size),
            }
        )
    return rows


def format_cost_table(rows: List[Dict[str, Any]], reference: str = "tube 0.90") -> str:
    """Markdown table per clip: GFLOP (forward + backward) and saved-activation MB per component,
    totals and their ratio to ``reference``."""
    ref = next((r for r in rows if r["config"] == reference), rows[0])["costs"]["total"]
    parts = ("tokenizer", "sampler", "encoder", "decoder")
    head = (
        "| config | N_v | "
        + " | ".join(f"{p} GFLOP" for p in parts)
        + " | total GFLOP | vs tube | "
        + " | ".join(f"{p} MB" for p in parts)
        + " | total MB | vs tube |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        c = r["costs"]
        t = c["total"]
        lines.append(
            f"| {r['config']} | {r['num_visible']} | "
            + " | ".join(f"{c[p]['gflops']:.1f}" for p in parts)
            + f" | {t['gflops']:.1f} | {t['gflops'] / ref['gflops']:.2f}x | "
            + " | ".join(f"{c[p]['activation_mb']:.0f}" for p in parts)
            + f" | {t['activation_mb']:.0f} | {t['activation_mb'] / ref['activation_mb']:.2f}x |"
        )
    return "\n".join(lines)


def moonshot_line(rows: List[Dict[str, Any]], size: str = "base") -> str:
    """The moonshot of the cost table ``rows`` (`paper_scale_table`): the cheapest adaptive setting at 0.95 with
    running-cell decoder masking at 0.5, its training FLOPs / tube 0.90's, and at paper scale (size "base",
    where the goal is set) met or not met against the goal `MOONSHOT`."""
    by_label = {r["config"]: r["costs"]["total"]["gflops"] for r in rows}
    embed_dim = MAE_CONFIGS[size]["embed_dim"] if size in MAE_CONFIGS else 768
    cheapest = _cheapest_label(embed_dim) + _RUNNING_CELL
    ratio = by_label[cheapest] / by_label[_TUBE]
    if size == "base":
        scale, verdict = "paper scale", f"goal <= {MOONSHOT:.2f}x: {'met' if ratio <= MOONSHOT else 'not met'}"
    else:
        scale, verdict = f"size {size}", f"the goal (<= {MOONSHOT:.2f}x) is judged at paper scale: --size base"
    return (
        f"moonshot ({scale}): {cheapest} = {ratio:.2f}x {_TUBE}'s training FLOPs "
        f"({by_label[cheapest]:.4g} vs {by_label[_TUBE]:.4g} GFLOP per clip); {verdict}"
    )


def saved_activation_bytes(
    model: MaskedVideoAutoencoder, video: Tensor, generator: Optional[torch.Generator] = None
) -> int:
    """Bytes of the distinct tensors autograd saves for backward in one training forward pass of ``model`` on
    ``video`` (B, C, T, H, W): the model's own tokenize / masking / reconstruct, both loss terms."""
    seen: Dict[Tuple[int, int], int] = {}

    def pack(t: Tensor) -> Tensor:
        try:
            st = t.untyped_storage()
            seen[(st.data_ptr(), st.nbytes())] = st.nbytes()
        except Exception:
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        tokens = model.tokenize(video)
        out = model.reconstruct(video, tokens, draw_masking(model, video, tokens, generator), generator=generator)
    del out
    return int(sum(seen.values()))


def state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Bytes of the weights, their gradients and the optimiser's state tensors."""
    n = sum(p.numel() * p.element_size() * 2 for p in model.parameters())  # weights + grads
    for st in optimizer.state.values():
        n += sum(v.numel() * v.element_size() for v in st.values() if isinstance(v, Tensor))
    return n


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print the cost table of `paper_scale_configs` (``--size base``: ViT-B, 16 x 224 x 224)."""
    import argparse

    p = argparse.ArgumentParser(prog="adamask costs", description=__doc__.splitlines()[0])
    add_cost_arguments(p)
    args = p.parse_args(argv)
    rows = paper_scale_table(args.size)
    print(format_cost_table(rows) + "\n\n" + moonshot_line(rows, args.size))
    return 0


def add_cost_arguments(p: Any) -> None:
    """The options of ``adamask costs`` on an argparse parser."""
    p.add_argument(
        "--size",
        choices=sorted(MAE_CONFIGS),
        default="base",
        help="model size from MAE_CONFIGS at its own input (default base: ViT-B, 16 x 224 x 224)",
    )


if __name__ == "__main__":  # pragma: no cover
    main()
