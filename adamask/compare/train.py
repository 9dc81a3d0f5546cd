"""Pretraining one strategy: deterministic batches, AdamW with warm-up and cosine decay, the timed training
step (eager, or its forward and loss terms compiled into one graph), the held-out loss along the way, progress
on stderr, resumable checkpoints and the step's peak memory.

Progress: a tqdm bar where stderr is a usable terminal, else a log line every 10% of the steps (a pipe, a file,
a terminal of 0 columns), or nothing.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Tuple, cast

import torch
from torch import Tensor, nn

from ..mae import MaskedVideoAutoencoder
from ..registry import create_masking
from .config import CompareConfig, StrategySpec
from .costs import saved_activation_bytes, state_bytes
from .data import MEAN, STD, ClipSet, RunClips, normalize_video
from .errors import UserError, brief
from .model import (
    CHECKPOINT_FORMAT,
    draw_masking,
    evaluate_reconstruction,
    model_for,
    read_checkpoint,
    strategy_options,
)
from .rundir import atomic_torch_save, identity_difference

__all__ = [
    "HISTORY_SERIES",
    "LOSS_NOT_FINITE",
    "WEIGHTS_NOT_FINITE",
    "MIN_COLUMNS",
    "StepResult",
    "Training",
    "Progress",
    "usable_terminal",
    "strategy_weights_finite",
    "train_step",
    "compile_losses",
    "train_step_compiled",
    "train_model",
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Batches:
    """Deterministic batch order: epoch e is a permutation seeded by (seed, e), independent of resuming."""

    def __init__(self, num: int, batch_size: int, seed: int) -> None:
        self.num, self.batch_size, self.seed = num, batch_size, seed
        self._perms: Dict[int, Tensor] = {}

    def _perm(self, epoch: int) -> Tensor:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perms = {epoch: torch.randperm(self.num, generator=g)}
        return self._perms[epoch]

    def __call__(self, step: int) -> Tensor:
        pos = torch.arange(step * self.batch_size, (step + 1) * self.batch_size)
        return torch.stack([self._perm(int(p) // self.num)[int(p) % self.num] for p in pos])


def _optimizer(
    model: MaskedVideoAutoencoder, lr: float, weight_decay: float, sampler_lr_scale: float = 1.0
) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, norms and position embeddings; the sampler's parameters get
    ``lr * sampler_lr_scale`` (each group's "lr_scale"). The fused implementation where torch has one for the
    parameters' device (CPU, CUDA): the same update in fewer operations."""
    skip = model.no_weight_decay()
    groups: Dict[Tuple[bool, bool], List[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            key = (p.dim() >= 2 and name not in skip, name.startswith("mask_sampler."))
            groups.setdefault(key, []).append(p)
    return torch.optim.AdamW(
        [
            dict(params=ps, weight_decay=weight_decay if decay else 0.0, lr_scale=sampler_lr_scale if smp else 1.0)
            for (decay, smp), ps in groups.items()
        ],
        lr=lr,
        betas=(0.9, 0.95),
        fused=True if all(p.device.type in ("cpu", "cuda") for p in model.parameters()) else None,
    )


def _lr_at(step: int, cfg: CompareConfig) -> float:
    """The learning rate of ``step``: linear warm-up over ``cfg.warmup_steps``, then cosine decay to 0.1x the
    peak at ``cfg.steps``, the run's own step count."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


@dataclass
class StepResult:
    """One training step: the losses (0-dim tensors on the device; sampling None without a learned
    strategy) and the seconds of the whole step and of the sampler's forward and backward passes (None when
    the step is compiled: the sampler runs inside the one graph)."""

    loss: Tensor
    reconstruction: Tensor
    sampling: Optional[Tensor]
    step_s: float
    sampler_s: Optional[float]


def train_step(
    model: MaskedVideoAutoencoder,
    optimizer: torch.optim.Optimizer,
    video: Tensor,
    generator: Optional[torch.Generator],
    device: torch.device,
) -> StepResult:
    """One optimisation step of the MAE (+ sampler) on ``video`` (B, C, T, H, W), timing the whole step and
    the sampler's forward and backward passes. ``generator`` draws the masks (and the decoder's, if any).
    Losses stay on the device (no host sync besides the timing barriers)."""
    _sync(device)
    t0 = time.perf_counter()
    tokens = model.tokenize(video)
    _sync(device)
    ts = time.perf_counter()
    masking = draw_masking(model, video, tokens, generator)
    _sync(device)
    sampler_s = time.perf_counter() - ts
    out = model.reconstruct(video, tokens, masking, generator=generator)
    loss, rec, ls = out.loss, out.reconstruction_loss, out.sampling_loss
    optimizer.zero_grad(set_to_none=True)
    if ls is None:
        loss.backward()
    else:  # the same gradients as loss.backward(), with the sampling term's backward timed on its own
        _sync(device)
        tb = time.perf_counter()
        (model.sampling_weight * ls).backward(retain_graph=True)
        _sync(device)
        sampler_s += time.perf_counter() - tb
        rec.backward()
    optimizer.step()
    _sync(device)
    return StepResult(
        loss.detach(), rec.detach(), None if ls is None else ls.detach(), time.perf_counter() - t0, sampler_s
    )


Losses = Callable[[Tensor], Tuple[Tensor, Tensor, Optional[Tensor]]]
_compiled_for: Dict[str, Any] = {}  # the strategy whose graphs torch.compile's cache holds (`compile_losses`)


def compile_losses(model: MaskedVideoAutoencoder, key: Any) -> Losses:
    """``video (B, C, T, H, W) -> (loss, reconstruction loss, sampling loss or None)`` of the model's training
    forward (tokenize, draw the masks from torch's global RNG, reconstruct) as one ``torch.compile`` graph
    (``fullgraph=True``: a graph break is an error). Models of the same ``key`` (a strategy and its settings)
    share the compiled graphs; a new key clears torch.compile's caches first, so that one process can compile
    any number of strategies without reaching its recompile limit."""
    import torch._dynamo

    if _compiled_for.get("key") != key:
        torch._dynamo.reset()
        _compiled_for["key"] = key

    def losses(video: Tensor) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        out = model(video)
        return out.loss, out.reconstruction_loss, out.sampling_loss

    return cast(Losses, torch.compile(losses, fullgraph=True))


def train_step_compiled(
    losses: Losses, optimizer: torch.optim.Optimizer, video: Tensor, device: torch.device
) -> StepResult:
    """One optimisation step with the compiled forward and loss terms ``losses`` (`compile_losses`) on ``video``
    (B, C, T, H, W); the backward pass runs the compiled backward graph, the optimiser eagerly. Times the whole
    step only (``sampler_s`` None). A strategy that does not compile into one graph is the user's error."""
    import torch._dynamo.exc

    _sync(device)
    t0 = time.perf_counter()
    try:
        loss, rec, ls = losses(video)
    except torch._dynamo.exc.Unsupported as e:
        raise UserError(
            f"--compile: the strategy does not compile into one graph ({brief(e)}); run without --compile"
        ) from e
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    _sync(device)
    return StepResult(loss.detach(), rec.detach(), None if ls is None else ls.detach(), time.perf_counter() - t0, None)


def _median_ms(xs: Sequence[float]) -> Optional[float]:
    """The median of seconds ``xs`` in milliseconds; None without any."""
    return 1e3 * float(torch.tensor(list(xs), dtype=torch.float64).median()) if xs else None


HISTORY_SERIES = ("step", "loss", "reconstruction_loss", "sampling_loss", "eval_step", "eval_loss",
                  "eval_loss_random_masks", "eval_allocation", "eval_probability_allocation")  # fmt: skip


def _new_history() -> Dict[str, List[Any]]:
    """Empty training series: the step losses, and the held-out loss and allocations at each evaluation."""
    return {name: [] for name in HISTORY_SERIES}


LOSS_NOT_FINITE = "its training loss was not finite"
WEIGHTS_NOT_FINITE = (
    "its learned strategy's weights were not finite (its probabilities fell back to uniform while "
    "the loss stayed finite)"
)


def strategy_weights_finite(model: MaskedVideoAutoencoder) -> Optional[Tensor]:
    """A 0-dim bool tensor on the device: whether every parameter of the model's learned strategy is finite
    (None without one). No host sync: read it with the step's losses."""
    params = [p.detach() for p in model.mask_sampler.parameters()] if model.mask_sampler is not None else []
    return torch.stack([torch.isfinite(p).all() for p in params]).all() if params else None


@dataclass
class Training:
    """The state of one strategy's training, as its checkpoint holds it."""

    model: MaskedVideoAutoencoder
    optimizer: torch.optim.Optimizer
    generator: torch.Generator  # draws the masks
    history: Dict[str, List[Any]] = field(default_factory=_new_history)
    step_times: List[float] = field(default_factory=list)
    sampler_times: List[float] = field(default_factory=list)
    step: int = 0
    train_seconds: float = 0.0
    memory: Dict[str, Any] = field(default_factory=dict)
    diverged_at_step: Optional[int] = None  # the 1-based step whose loss (or strategy) was first non-finite
    diverged_reason: Optional[str] = None

    def timing(self) -> Dict[str, Any]:
        """Median step and sampler milliseconds over the timed steps (all but the first two of a session) and
        the sampler's share of the step; None for each when no step was timed (runs of one or two steps)."""
        step_ms, sampler_ms = _median_ms(self.step_times), _median_ms(self.sampler_times)
        share = sampler_ms / step_ms if step_ms and sampler_ms is not None else None
        return dict(step_ms=step_ms, sampler_ms=sampler_ms, sampler_share=share, timed_steps=len(self.step_times))

    def save(self, path: Path, cfg: CompareConfig, spec: StrategySpec, completed: bool) -> None:
        """Write the checkpoint (atomically): everything `resume` and `load_checkpoint` read; its
        ``masking_options`` are those the strategy was built with (`strategy_options`), its ``identity`` what
        produced it (`CompareConfig.run_identity`)."""
        atomic_torch_save(
            dict(
                format=CHECKPOINT_FORMAT,
                strategy=spec.record(),
                model_config=cfg.model_config(),
                masking_options=strategy_options(spec, cfg.masking_options),
                sampling_weight=cfg.sampling_weight,
                identity=cfg.run_identity(spec),
                state_dict=self.model.state_dict(),
                optimizer=self.optimizer.state_dict(),
                mask_generator_state=self.generator.get_state(),
                global_rng_state=_global_rng_state(self.generator.device),
                step=self.step,
                completed=completed,
                history=self.history,
                step_times=self.step_times,
                sampler_times=self.sampler_times,
                train_seconds=self.train_seconds,
                memory=self.memory,
                normalization=dict(mean=MEAN, std=STD),
                diverged_at_step=self.diverged_at_step,
                diverged_reason=self.diverged_reason,
            ),
            path,
        )

    def resume(self, path: Path, cfg: CompareConfig, spec: StrategySpec) -> bool:
        """Continue from the checkpoint at ``path`` (False if there is none). A `UserError` naming the file if
        it cannot be read, is damaged, or was written by a run of another configuration (its identity is not
        ``cfg.run_identity(spec)``): never reused, never silently replaced."""
        if not path.exists():
            return False
        remedy = "delete it to train that strategy again, or pass --overwrite to start over"
        ck = read_checkpoint(path, remedy)
        if ck.get("format") != CHECKPOINT_FORMAT:
            return False
        expected = cfg.run_identity(spec)
        if ck.get("identity") != expected:
            raise UserError(
                f"{path}: the checkpoint of a run of another configuration "
                f"({identity_difference(ck.get('identity'), expected)}), not reused; {remedy}"
            )
        try:
            self.model.load_state_dict(ck["state_dict"])
            self.optimizer.load_state_dict(ck["optimizer"])
            self.generator.set_state(ck["mask_generator_state"].to(self.generator.get_state().device))
            if cfg.compile:  # the compiled step's masks come from the global RNG
                _set_global_rng_state(ck["global_rng_state"], self.generator.device)
            self.history, self.step = dict(ck["history"]), int(ck["step"])
            self.step_times, self.sampler_times = ck["step_times"], ck["sampler_times"]
            self.train_seconds, self.memory = ck["train_seconds"], dict(ck["memory"])
            self.diverged_at_step, self.diverged_reason = ck["diverged_at_step"], ck["diverged_reason"]
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
            raise UserError(f"{path}: a damaged checkpoint ({brief(e)}); {remedy}") from e
        return True


def _global_rng_state(device: torch.device) -> Dict[str, Tensor]:
    """torch's global RNG state (the CPU's, and ``device``'s on CUDA): where a compiled step draws its masks."""
    state = dict(cpu=torch.get_rng_state())
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_global_rng_state(state: Dict[str, Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# ---------------------------------------------------------------------------------------------
# progress

MIN_COLUMNS = 20  # narrower terminals get log lines: a bar there wraps into blank lines


def usable_terminal(stream: Optional[TextIO] = None) -> bool:
    """Whether ``stream`` (default sys.stderr) is a terminal at least MIN_COLUMNS wide, where a progress bar
    can redraw one line."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty()) and os.get_terminal_size(stream.fileno()).columns >= MIN_COLUMNS
    except (AttributeError, ValueError, OSError):  # closed, replaced or without a file descriptor
        return False


class Progress:
    """mode "bar": a tqdm bar when tqdm is installed and stderr is a usable terminal, else "lines"; "lines":
    a line every 10% of the steps; "none": silence. Use as a context manager (or call `close`): the bar is
    closed, ending its line, however the block ends (an interrupt message then starts on a line of its own)."""

    def __init__(self, total: int, initial: int, desc: str, mode: str) -> None:
        self.mode, self.total, self.desc, self.bar = mode, total, desc, None
        if mode == "bar":
            self.mode = "lines"
            if usable_terminal():
                try:
                    from tqdm.auto import tqdm
                except ImportError:
                    return
                self.bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, leave=True)
                self.mode = "bar"

    def update(self, step: int, losses: Dict[str, float]) -> None:
        text = " ".join(f"{k}={v:.4g}" for k, v in losses.items())
        if self.bar is not None:
            self.bar.n = step
            self.bar.set_postfix_str(text, refresh=True)
        elif self.mode == "lines" and (step % max(1, self.total // 10) == 0 or step == self.total):
            print(f"{self.desc}: step {step}/{self.total} {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _LossLog:
    """Step losses (and whether the learned strategy's weights are finite) kept on the device and copied into
    the history a few steps at a time (one host sync); ``diverged_at`` becomes the 1-based step of the first
    non-finite loss or strategy copied, ``reason`` says which."""

    def __init__(self, history: Dict[str, List[Any]], progress: Progress) -> None:
        self.history, self.progress = history, progress
        self.pending: List[Tuple[int, StepResult, Optional[Tensor]]] = []
        self.diverged_at: Optional[int] = None
        self.reason: Optional[str] = None

    def add(self, step: int, r: StepResult, weights_finite: Optional[Tensor] = None) -> None:
        self.pending.append((step, r, weights_finite))

    def flush(self) -> None:
        if not self.pending:
            return
        nan = torch.full_like(self.pending[0][1].reconstruction, float("nan"))
        one = torch.ones_like(nan)
        rows = [
            (
                r.loss,
                r.reconstruction,
                nan if r.sampling is None else r.sampling,
                one if ok is None else ok.to(one.dtype),
            )
            for _, r, ok in self.pending
        ]
        vals = torch.stack([torch.stack(row) for row in rows]).tolist()
        h = self.history
        for (s, _, _), (lo, rc, ls, ok) in zip(self.pending, vals, strict=True):
            h["step"].append(s)
            h["loss"].append(lo)
            h["reconstruction_loss"].append(rc)
            h["sampling_loss"].append(None if ls != ls else ls)
            if self.diverged_at is None and not (math.isfinite(lo) and ok == 1.0):
                self.diverged_at = s + 1
                self.reason = LOSS_NOT_FINITE if not math.isfinite(lo) else WEIGHTS_NOT_FINITE
        self.pending.clear()
        shown = dict(loss=h["loss"][-1], rec=h["reconstruction_loss"][-1])
        if h["sampling_loss"][-1] is not None:
            shown["Ls"] = h["sampling_loss"][-1]
        self.progress.update(h["step"][-1] + 1, shown)


def _start(cfg: CompareConfig, spec: StrategySpec, ckpt_path: Path, log: Callable[[str], None], name: str) -> Training:
    """The model, optimiser and mask generator of ``spec``, resumed from ``ckpt_path`` when it fits."""
    device = torch.device(cfg.device)
    model = model_for(cfg, spec).to(device)
    run = Training(
        model,
        _optimizer(model, cfg.lr, cfg.weight_decay, cfg.sampler_lr_scale),
        torch.Generator(device=device).manual_seed(cfg.seed + 2),
    )
    if cfg.compile:  # a compiled step draws its masks from the global RNG: seeded per run
        torch.manual_seed(cfg.seed + 2)
    if run.resume(ckpt_path, cfg, spec):
        if run.step < cfg.steps and run.diverged_at_step is None:
            log(f"{name}: resuming from step {run.step}")
        else:
            log(f"{name}: finishing from its checkpoint at step {run.step}")
    return run


def _peak_memory(run: Training, first_batch: Tensor) -> Dict[str, Any]:
    """The step's peak memory: on CUDA the allocator's peak over every step (those before a resume included, as
    the checkpoint records them); elsewhere weights, gradients, AdamW state and the tensors saved for backward
    in one step of the model as it is now (its mask ratio set by the caller) on ``first_batch``."""
    device = run.generator.device
    if device.type == "cuda":
        peak = max(torch.cuda.max_memory_allocated(device) / 2**20, run.memory.get("peak_mb") or 0.0)
        return dict(peak_mb=peak, method="torch.cuda.max_memory_allocated")
    saved_bytes = saved_activation_bytes(run.model, first_batch, torch.Generator(device=device).manual_seed(0))
    return dict(
        peak_mb=(saved_bytes + state_bytes(run.model, run.optimizer)) / 2**20,
        method="weights + grads + AdamW state + tensors saved for backward in one step (CPU estimate)",
    )


def train_model(
    cfg: CompareConfig,
    spec: StrategySpec,
    clips: RunClips,
    checkpoint: Path,
    *,
    name: Optional[str] = None,
    progress: str = "bar",
    log: Callable[[str], None] = print,
) -> Training:
    """Pretrain ``spec``'s model on ``clips.train`` for ``cfg.steps`` steps (resuming from ``checkpoint``),
    checkpointing every ``cfg.checkpoint_every`` steps and at the end; the held-out loss on up to 32
    ``clips.test`` clips goes into the history ``cfg.eval_points`` times. With ``cfg.ratio_schedule`` the
    strategy's mask ratio follows the schedule, step by step, and is back at its own ratio at the end. A
    non-finite loss, or non-finite weights of the learned strategy (checked every step on the device, read with
    the losses), stop the training: ``diverged_at_step`` says where and ``diverged_reason`` why. ``name``: how
    progress and messages call the run (default: the strategy's label); ``progress``: "bar", "lines" or "none"
    (`Progress`)."""
    name = name or spec.label
    run = _start(cfg, spec, checkpoint, log, name)
    device, model, start = run.generator.device, run.model, run.step
    batches = _Batches(len(clips.train), cfg.batch_size, cfg.seed)
    held_out = clips.test.subset(range(min(len(clips.test), 32)))
    eval_every = max(1, cfg.steps // max(1, cfg.eval_points))
    schedule = cfg.schedule()
    # every setting but the seed can change the graph: models of one strategy's seeds share it
    graph_key = {k: v for k, v in cfg.run_identity(spec).items() if k != "seed"}
    compiled = compile_losses(model, graph_key) if cfg.compile else None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model.train()
    with Progress(cfg.steps, run.step, name, progress) as bar:
        losses = _LossLog(run.history, bar)
        for step in range(start, cfg.steps if run.diverged_at_step is None else start):
            for g in run.optimizer.param_groups:
                g["lr"] = _lr_at(step, cfg) * g.get("lr_scale", 1.0)
            if schedule is not None:
                model.set_mask_ratio(schedule(step))
            video = normalize_video(clips.train.videos[batches(step)]).to(device, non_blocking=True)
            if compiled is None:
                r = train_step(model, run.optimizer, video, run.generator, device)
            else:
                r = train_step_compiled(compiled, run.optimizer, video, device)
            run.train_seconds += r.step_s
            if step >= start + 2:  # skip warm-up steps (and a compiled step's compilation) in the timings
                run.step_times.append(r.step_s)
                if r.sampler_s is not None:
                    run.sampler_times.append(r.sampler_s)
            losses.add(step, r, strategy_weights_finite(model))
            last = step == cfg.steps - 1
            save = (step + 1) % cfg.checkpoint_every == 0 and not last
            if len(losses.pending) >= 5 or last or save:
                losses.flush()
            run.step = step + 1
            if losses.diverged_at is not None:
                run.diverged_at_step, run.diverged_reason = losses.diverged_at, losses.reason
                break
            if (step + 1) % eval_every == 0 or last:
                _record_evaluation(run, cfg, held_out, step + 1)
            if save:
                if device.type == "cuda":  # the peak so far, for a run that resumes from here
                    run.memory = _peak_memory(run, normalize_video(clips.train.videos[batches(0)]).to(device))
                run.save(checkpoint, cfg, spec, completed=False)
    if schedule is not None:  # the memory of step 0, wherever the training resumed
        model.set_mask_ratio(schedule(0))
    run.memory = _peak_memory(run, normalize_video(clips.train.videos[batches(0)]).to(device))
    if schedule is not None:
        model.set_mask_ratio(spec.mask_ratio)
    if run.diverged_at_step is None:
        run.step = cfg.steps
    run.save(checkpoint, cfg, spec, completed=True)
    return run


def _mean(values: Optional[Tensor]) -> Optional[float]:
    """The mean of the finite values (None without any)."""
    if values is None:
        return None
    ok = values[torch.isfinite(values)]
    return float(ok.mean()) if ok.numel() else None


def _record_evaluation(run: Training, cfg: CompareConfig, clips: ClipSet, step: int) -> None:
    """The held-out loss, foreground allocation and expected allocation of the strategy's probabilities (None
    without) under the model's own masks at ``step``, and the held-out loss on the same random masks at the
    common ratio for every strategy (the comparable one), into the history."""
    ev = evaluate_reconstruction(run.model, run.model.sample_masking, clips, run.generator.device, seed=cfg.seed + 3)
    same = create_masking("random", grid=run.model.grid, mask_ratio=cfg.common_ratio)
    fixed = evaluate_reconstruction(run.model, same, clips, run.generator.device, seed=cfg.seed + 6)
    h = run.history
    h["eval_step"].append(step)
    h["eval_loss"].append(ev["loss"])
    h.setdefault("eval_loss_random_masks", []).append(fixed["loss"])
    h["eval_allocation"].append(_mean(ev["allocation"]))
    h["eval_probability_allocation"].append(_mean(ev["probability_allocation"]))
