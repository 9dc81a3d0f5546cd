"""Pretraining one strategy: deterministic batches, AdamW with warm-up and cosine decay, the timed training
step, resumable checkpoints and the step's peak memory."""
from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..mae import MaskedVideoAutoencoder
from .config import CompareConfig, StrategySpec
from .costs import saved_activation_bytes, state_bytes
from .data import MEAN, STD, ClipSet, normalize_video
from .evaluate import evaluate_reconstruction
from .io import atomic_torch_save
from .model import CHECKPOINT_FORMAT, build_model

__all__ = ["StepResult", "Training", "train_step", "train_model"]


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


def _optimizer(model: MaskedVideoAutoencoder, lr: float, weight_decay: float,
               sampler_lr_scale: float = 1.0) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, norms and position embeddings; the sampler's parameters get
    ``lr * sampler_lr_scale`` (each group's "lr_scale")."""
    skip = model.no_weight_decay()
    groups: Dict[Tuple[bool, bool], List[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            key = (p.dim() >= 2 and name not in skip, name.startswith("mask_sampler."))
            groups.setdefault(key, []).append(p)
    return torch.optim.AdamW(
        [dict(params=ps, weight_decay=weight_decay if decay else 0.0, lr_scale=sampler_lr_scale if smp else 1.0)
         for (decay, smp), ps in groups.items()], lr=lr, betas=(0.9, 0.95))


def _lr_at(step: int, cfg: CompareConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


@dataclass
class StepResult:
    """One training step: the losses (0-dim tensors on the device; sampling None without a learned
    strategy) and the seconds of the whole step and of the sampler's forward and backward passes."""

    loss: Tensor
    reconstruction: Tensor
    sampling: Optional[Tensor]
    step_s: float
    sampler_s: float


def train_step(model: MaskedVideoAutoencoder, optimizer: torch.optim.Optimizer, video: Tensor,
               generator: Optional[torch.Generator], device: torch.device) -> StepResult:
    """One optimisation step of the MAE (+ sampler) on ``video`` (B, C, T, H, W), timing the whole step and
    the sampler's forward and backward passes.
    Losses stay on the device (no host sync besides the timing barriers)."""
    _sync(device)
    t0 = time.perf_counter()
    tokens = model.tokenize(video)
    _sync(device)
    ts = time.perf_counter()
    masking = model.sample_masking(tokens, generator)
    _sync(device)
    sampler_s = time.perf_counter() - ts
    out = model.reconstruct(video, tokens, masking)
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
    return StepResult(loss.detach(), rec.detach(), None if ls is None else ls.detach(),
                      time.perf_counter() - t0, sampler_s)


def _median(xs: Sequence[float]) -> float:
    return float(torch.tensor(list(xs), dtype=torch.float64).median()) if xs else float("nan")


def _new_history() -> Dict[str, List[Any]]:
    return dict(step=[], loss=[], reconstruction_loss=[], sampling_loss=[], eval_step=[], eval_loss=[])


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

    def timing(self) -> Dict[str, Any]:
        """Median step and sampler milliseconds over the timed steps and the sampler's share of the step."""
        step_ms, sampler_ms = 1e3 * _median(self.step_times), 1e3 * _median(self.sampler_times)
        return dict(step_ms=step_ms, sampler_ms=sampler_ms,
                    sampler_share=sampler_ms / step_ms if step_ms > 0 else None, timed_steps=len(self.step_times))

    def save(self, path: Path, cfg: CompareConfig, spec: StrategySpec, completed: bool) -> None:
        """Write the checkpoint (atomically): everything `resume` and `load_checkpoint` read."""
        atomic_torch_save(dict(
            format=CHECKPOINT_FORMAT, strategy=asdict(spec), model_config=cfg.model_config(),
            masking_options=cfg.masking_options, sampling_weight=cfg.sampling_weight, identity=cfg.identity(),
            state_dict=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
            mask_generator_state=self.generator.get_state(), step=self.step, completed=completed,
            history=self.history, step_times=self.step_times, sampler_times=self.sampler_times,
            train_seconds=self.train_seconds, normalization=dict(mean=MEAN, std=STD)), path)

    def resume(self, path: Path, cfg: CompareConfig) -> bool:
        """Continue from the checkpoint at ``path`` if it belongs to this configuration."""
        if not path.exists():
            return False
        ck = torch.load(path, map_location=self.generator.device, weights_only=False)
        if ck.get("format") != CHECKPOINT_FORMAT or ck.get("identity") != cfg.identity():
            return False
        self.model.load_state_dict(ck["state_dict"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.generator.set_state(ck["mask_generator_state"].to(self.generator.get_state().device))
        self.history, self.step = ck["history"], ck["step"]
        self.step_times, self.sampler_times = ck.get("step_times", []), ck.get("sampler_times", [])
        self.train_seconds = ck.get("train_seconds", 0.0)
        return True


class _Progress:
    """tqdm bar when available and wanted, else a line every 10% of the steps, or silence."""

    def __init__(self, total: int, initial: int, desc: str, mode: str) -> None:
        self.mode, self.total, self.desc, self.bar = mode, total, desc, None
        if mode == "bar":
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, leave=True)
            except ImportError:
                self.mode = "lines"

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


class _LossLog:
    """Step losses kept on the device and copied into the history a few steps at a time (one host sync)."""

    def __init__(self, history: Dict[str, List[Any]], progress: _Progress) -> None:
        self.history, self.progress = history, progress
        self.pending: List[Tuple[int, StepResult]] = []

    def add(self, step: int, r: StepResult) -> None:
        self.pending.append((step, r))

    def flush(self) -> None:
        if not self.pending:
            return
        nan = torch.full_like(self.pending[0][1].reconstruction, float("nan"))
        vals = torch.stack([torch.stack([r.loss, r.reconstruction, nan if r.sampling is None else r.sampling])
                            for _, r in self.pending]).tolist()
        h = self.history
        for (s, _), (lo, rc, ls) in zip(self.pending, vals):
            h["step"].append(s)
            h["loss"].append(lo)
            h["reconstruction_loss"].append(rc)
            h["sampling_loss"].append(None if ls != ls else ls)
        self.pending.clear()
        shown = dict(loss=h["loss"][-1], rec=h["reconstruction_loss"][-1])
        if h["sampling_loss"][-1] is not None:
            shown["Ls"] = h["sampling_loss"][-1]
        self.progress.update(h["step"][-1] + 1, shown)


def _start(cfg: CompareConfig, spec: StrategySpec, ckpt_path: Path, log: Callable[[str], None]) -> Training:
    """The model, optimiser and mask generator of ``spec``, resumed from ``ckpt_path`` when it fits."""
    device = torch.device(cfg.device)
    model = build_model(cfg.model_config(), spec, seed=cfg.seed, masking_options=cfg.masking_options,
                        sampling_weight=cfg.sampling_weight, sampling_estimator=cfg.sampling_estimator,
                        sampling_baseline=cfg.sampling_baseline).to(device)
    run = Training(model, _optimizer(model, cfg.lr, cfg.weight_decay, cfg.sampler_lr_scale),
                   torch.Generator(device=device).manual_seed(cfg.seed + 2))
    if run.resume(ckpt_path, cfg):
        log(f"{spec.label}: resuming from step {run.step}")
    return run


def _peak_memory(run: Training, saved_bytes: Optional[int], first_batch: Callable[[], Tensor]) -> Dict[str, Any]:
    device = run.generator.device
    if device.type == "cuda":
        return dict(peak_mb=torch.cuda.max_memory_allocated(device) / 2**20, method="torch.cuda.max_memory_allocated")
    if saved_bytes is None:  # resumed at the end: measure now
        saved_bytes = saved_activation_bytes(run.model, first_batch(), torch.Generator(device=device).manual_seed(0))
    return dict(peak_mb=(saved_bytes + state_bytes(run.model, run.optimizer)) / 2**20,
                method="weights + grads + AdamW state + tensors saved for backward in one step (CPU estimate)")


def train_model(cfg: CompareConfig, spec: StrategySpec, clips: ClipSet, held_out: ClipSet, ckpt_path: Path,
                progress: str = "bar", log: Callable[[str], None] = print) -> Training:
    """Pretrain ``spec``'s model on ``clips`` for ``cfg.steps`` steps (resuming from ``ckpt_path``),
    checkpointing every ``cfg.checkpoint_every`` steps and at the end; the held-out loss on up to 32
    ``held_out`` clips goes into the history ``cfg.eval_points`` times."""
    run = _start(cfg, spec, ckpt_path, log)
    device, model, start = run.generator.device, run.model, run.step
    batches = _Batches(len(clips), cfg.batch_size, cfg.seed)
    eval_every = max(1, cfg.steps // max(1, cfg.eval_points))
    eval_sub = held_out.subset(range(min(len(held_out), 32)))
    saved_bytes: Optional[int] = None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model.train()
    bar = _Progress(cfg.steps, start, spec.label, progress)
    losses = _LossLog(run.history, bar)
    for step in range(start, cfg.steps):
        for g in run.optimizer.param_groups:
            g["lr"] = _lr_at(step, cfg) * g.get("lr_scale", 1.0)
        video = normalize_video(clips.videos[batches(step)]).to(device, non_blocking=True)
        if saved_bytes is None and device.type != "cuda":
            saved_bytes = saved_activation_bytes(model, video, torch.Generator(device=device).manual_seed(0))
        r = train_step(model, run.optimizer, video, run.generator, device)
        run.train_seconds += r.step_s
        if step >= start + 2:  # skip warm-up steps in the timings
            run.step_times.append(r.step_s)
            run.sampler_times.append(r.sampler_s)
        losses.add(step, r)
        if len(losses.pending) >= 5 or step == cfg.steps - 1:
            losses.flush()
        if (step + 1) % eval_every == 0 or step == cfg.steps - 1:
            ev = evaluate_reconstruction(model, model.sample_masking, eval_sub, device, seed=cfg.seed + 3)
            run.history["eval_step"].append(step + 1)
            run.history["eval_loss"].append(ev["loss"])
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            losses.flush()
            run.step = step + 1
            run.save(ckpt_path, cfg, spec, completed=False)
    losses.flush()
    bar.close()
    run.memory = _peak_memory(run, saved_bytes, lambda: normalize_video(clips.videos[batches(0)]).to(device))
    run.step = cfg.steps
    run.save(ckpt_path, cfg, spec, completed=True)
    return run
