"""The experiment behind ``adamask compare``: pretrain the reference MAE once per masking strategy on the same
clips for the same number of steps, then measure and compare.

Per strategy: masked reconstruction loss on held-out clips (own ratio and a common ratio), foreground
allocation, k-NN and linear probes of the frozen encoder, step time, peak memory, the sampler's share of the
step and mask statistics. Everything lands in a run folder, written atomically (tmp file + os.replace):

    config.json  results.json  results.md  strategies/<label>.json  checkpoints/<label>.pt  figures/*.png

A run interrupted at any point leaves only complete files; running the same command again resumes it
(finished strategies are loaded, an unfinished one continues from its last checkpoint).
"""
from __future__ import annotations

import json
import math
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .io import atomic_torch_save, atomic_write_text, json_default, write_json
from .data import ClipSet, SyntheticDigitClips, load_video_clips, normalize_video
from ..loss import sampling_loss
from ..mae import DEFAULT_SAMPLING_WEIGHT, MAE_CONFIGS, MaskedVideoAutoencoder, gather_tokens
from ..masking import Masking, default_ratio, check_mask_ratio, create_masking, list_maskings
from .metrics import foreground_allocation, knn_probe, linear_probe, mask_statistics, probability_allocation, summarize
from ..tokens import token_grid, token_mse

__all__ = [
    "DEFAULT_STRATEGIES",
    "StrategySpec",
    "CompareConfig",
    "parse_strategy",
    "build_strategy",
    "build_model",
    "load_checkpoint",
    "run_compare",
    "markdown_table",
]

DEFAULT_STRATEGIES = ("random:0.9", "tube:0.9", "frame:0.9", "adaptive:0.95")
SCHEMA = "adamask.compare/1"
CHECKPOINT_FORMAT = "adamask-compare-checkpoint/1"


# ---------------------------------------------------------------------------------------------
# strategies

@dataclass(frozen=True)
class StrategySpec:
    """A strategy to compare: a registered name and its mask ratio (None = the strategy's default)."""

    name: str
    mask_ratio: float

    @property
    def label(self) -> str:
        return f"{self.name}_{self.mask_ratio:g}"


def parse_strategy(spec: str) -> StrategySpec:
    """``"name"`` or ``"name:ratio"`` -> StrategySpec; the name must be registered (see list_maskings())."""
    if not isinstance(spec, str) or not spec.strip():
        raise TypeError(f"strategy must be a non-empty string 'name' or 'name:ratio', got {spec!r}")
    name, _, ratio = spec.strip().partition(":")
    if name not in list_maskings():
        raise ValueError(f"unknown masking strategy {name!r} in {spec!r}; registered: {list_maskings()} "
                         f"(register your own with adamask.register_masking and load it with --import)")
    if ratio:
        try:
            value = float(ratio)
        except ValueError:
            raise ValueError(f"mask ratio in strategy {spec!r} must be a number in (0, 1), got {ratio!r}") from None
        check_mask_ratio(value, f"mask ratio of {spec!r}")
    else:
        value = default_ratio(name)
    return StrategySpec(name, float(value))


def build_strategy(spec: StrategySpec, grid: Sequence[int], embed_dim: int,
                   options: Optional[Dict[str, Any]] = None) -> Callable[..., Masking]:
    """The strategy object for ``spec`` on the model's grid; ``options`` (sampler options) go to the
    adaptive sampler only, which also gets the model's width."""
    if spec.name != "adaptive":
        return create_masking(spec.name, grid=tuple(grid), mask_ratio=spec.mask_ratio)
    opts = dict(options or {})
    opts.setdefault("embed_dim", embed_dim)
    return create_masking(spec.name, grid=tuple(grid), mask_ratio=spec.mask_ratio, **opts)


# ---------------------------------------------------------------------------------------------
# configuration

@dataclass
class CompareConfig:
    """Everything that defines a comparison run (saved as config.json)."""

    strategies: List[str] = field(default_factory=lambda: list(DEFAULT_STRATEGIES))
    out: str = "runs/compare"
    size: str = "tiny"
    img_size: int = 64
    num_frames: int = 16
    tubelet: Tuple[int, int, int] = (2, 8, 8)
    model_overrides: Dict[str, Any] = field(default_factory=dict)
    masking_options: Dict[str, Any] = field(default_factory=dict)
    steps: int = 200
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 20
    sampling_weight: float = DEFAULT_SAMPLING_WEIGHT
    sampler_lr_scale: float = 1.0
    pixel_loss: str = "raw"
    sampling_estimator: str = "paper"
    sampling_baseline: Optional[str] = "mean"
    train_clips: int = 256
    test_clips: int = 64
    common_ratio: float = 0.9
    eval_draws: int = 2
    eval_points: int = 6
    knn_k: int = 10
    sprite_size: Optional[int] = None
    background_contrast: float = 0.3
    videos: List[str] = field(default_factory=list)
    stride: int = 4
    clips_per_video: int = 4
    figure_clips: int = 3
    seed: int = 0
    device: str = "cpu"
    checkpoint_every: int = 100

    @classmethod
    def quick(cls, **kw: Any) -> "CompareConfig":
        """A few-second configuration for tests: 32x32 px, 8 frames, a 1-layer 32-wide model, 6 steps."""
        base = dict(size="nano", img_size=32, num_frames=8, tubelet=(2, 8, 8), steps=6, batch_size=4,
                    warmup_steps=2, train_clips=16, test_clips=8, eval_draws=1, eval_points=2, knn_k=3,
                    figure_clips=2, checkpoint_every=3, clips_per_video=2)
        base.update(kw)
        return cls(**base)

    def validate(self) -> None:
        if not self.strategies:
            raise ValueError("strategies must name at least one masking strategy")
        labels = [parse_strategy(s).label for s in self.strategies]
        if len(set(labels)) != len(labels):
            raise ValueError(f"strategies list repeats a strategy: {self.strategies}")
        if self.size not in MAE_CONFIGS:
            raise ValueError(f"size must be one of {sorted(MAE_CONFIGS)}, got {self.size!r}")
        for name in ("steps", "batch_size", "train_clips", "test_clips", "eval_draws", "knn_k", "stride",
                     "clips_per_video", "img_size", "num_frames", "checkpoint_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        check_mask_ratio(self.common_ratio, "common_ratio")
        if self.pixel_loss not in ("normalized", "raw"):
            raise ValueError(f"pixel_loss must be 'normalized' or 'raw', got {self.pixel_loss!r}")
        if not (isinstance(self.sampler_lr_scale, (int, float)) and self.sampler_lr_scale > 0):
            raise ValueError(f"sampler_lr_scale must be a positive number, got {self.sampler_lr_scale!r}")
        if not (isinstance(self.background_contrast, (int, float)) and 0 <= self.background_contrast <= 1):
            raise ValueError(f"background_contrast must be in [0, 1], got {self.background_contrast!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not (isinstance(self.sampling_weight, (int, float)) and self.sampling_weight >= 0):
            raise ValueError(f"sampling_weight must be a number >= 0, got {self.sampling_weight!r}")

    def model_config(self) -> Dict[str, Any]:
        cfg = dict(MAE_CONFIGS[self.size])
        cfg.update(img_size=self.img_size, num_frames=self.num_frames, tubelet=tuple(self.tubelet))
        cfg["norm_pix_loss"] = self.pixel_loss == "normalized"
        cfg.update(self.model_overrides)
        return cfg

    def identity(self) -> Dict[str, Any]:
        """The fields a resumed run must share with the run it continues."""
        d = asdict(self)
        for k in ("out", "device", "strategies", "checkpoint_every", "figure_clips"):
            d.pop(k)
        d["tubelet"] = list(d["tubelet"])
        return json.loads(json.dumps(d, default=json_default))


def build_model(model_config: Dict[str, Any], spec: StrategySpec, *, seed: int,
                masking_options: Optional[Dict[str, Any]] = None, sampling_weight: float = DEFAULT_SAMPLING_WEIGHT,
                sampling_estimator: str = "paper", sampling_baseline: Optional[str] = None) -> MaskedVideoAutoencoder:
    """The reference MAE with ``spec``'s strategy. The backbone's initial weights depend on ``seed`` only, so
    every strategy starts from the same network."""
    c = {**MAE_CONFIGS["base"], **model_config}
    grid = token_grid((1, c.get("in_chans", 3), c["num_frames"], c["img_size"], c["img_size"]), tuple(c["tubelet"]))
    torch.manual_seed(seed + 1)
    strategy = build_strategy(spec, grid, c["embed_dim"], masking_options)
    torch.manual_seed(seed)
    return MaskedVideoAutoencoder(**model_config, masking=strategy, sampling_weight=sampling_weight,
                                  sampling_estimator=sampling_estimator, sampling_baseline=sampling_baseline)


def load_checkpoint(path: os.PathLike, device: str = "cpu") -> Tuple[MaskedVideoAutoencoder, Dict[str, Any]]:
    """A checkpoint written by `run_compare` -> (model with its trained sampler, in eval mode, checkpoint dict)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=False)
    except Exception as e:
        raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not an adamask compare checkpoint")
    spec = StrategySpec(**ckpt["strategy"])
    if spec.name not in list_maskings():
        raise ValueError(f"{path}: strategy {spec.name!r} is not registered here; import the module that "
                         f"registers it (--import MODULE)")
    model = build_model(ckpt["model_config"], spec, seed=0, masking_options=ckpt.get("masking_options"),
                        sampling_weight=ckpt.get("sampling_weight", DEFAULT_SAMPLING_WEIGHT))
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval(), ckpt


# ---------------------------------------------------------------------------------------------
# training

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
class _StepResult:
    loss: Tensor
    reconstruction: Tensor
    sampling: Optional[Tensor]
    step_s: float
    sampler_s: float


def train_step(model: MaskedVideoAutoencoder, optimizer: torch.optim.Optimizer, video: Tensor,
               generator: Optional[torch.Generator], device: torch.device) -> _StepResult:
    """One optimisation step of the MAE (+ sampler), timing the whole step and the sampler's
    forward and backward passes.
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
    return _StepResult(loss.detach(), rec.detach(), None if ls is None else ls.detach(),
                       time.perf_counter() - t0, sampler_s)


def _saved_activation_bytes(model: MaskedVideoAutoencoder, video: Tensor, generator: Optional[torch.Generator]) -> int:
    """Bytes of the distinct tensors autograd saves for backward in one training forward pass."""
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
        masking = model.sample_masking(tokens, generator)
        pred = model.decode(model.encode(tokens, masking.visible_idx), masking)
        err = token_mse(pred, gather_tokens(model.targets(video), masking.masked_idx))
        loss = err.mean()
        if masking.probs is not None:
            loss = loss + model.sampling_weight * sampling_loss(masking.probs, masking.mask, err)
    del loss
    return int(sum(seen.values()))


def _state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    n = sum(p.numel() * p.element_size() * 2 for p in model.parameters())  # weights + grads
    for st in optimizer.state.values():
        n += sum(v.numel() * v.element_size() for v in st.values() if isinstance(v, Tensor))
    return n


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


@torch.no_grad()
def evaluate_reconstruction(model: MaskedVideoAutoencoder, strategy: Callable[..., Masking], clips: ClipSet,
                            device: torch.device, *, seed: int, draws: int = 1,
                            batch_size: int = 32) -> Dict[str, Any]:
    """Held-out masked reconstruction loss (normalised-pixel MSE over masked tokens) of ``model`` under
    ``strategy``'s masks, with per-clip foreground allocation; masks, probs on the CPU."""
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    losses, alloc, masks, pall = [], [], [], []
    for _ in range(draws):
        for i in range(0, len(clips), batch_size):
            video = normalize_video(clips.videos[i:i + batch_size]).to(device)
            tokens = model.tokenize(video)
            masking = strategy(tokens, generator=gen)
            pred = model.decode(model.encode(tokens, masking.visible_idx), masking)
            err = token_mse(pred, gather_tokens(model.targets(video), masking.masked_idx))
            losses.append(err.mean(1).cpu())
            mask = masking.mask.cpu()
            fg = clips.foreground[i:i + batch_size]
            alloc.append(foreground_allocation(mask, fg))
            masks.append(mask)
            if masking.probs is not None:
                pall.append(probability_allocation(masking.probs.cpu(), fg))
    model.train()
    return dict(loss=float(torch.cat(losses).mean()), allocation=torch.cat(alloc), masks=torch.cat(masks),
                probability_allocation=torch.cat(pall) if pall else None)


def _strategy_at(model: MaskedVideoAutoencoder, spec: StrategySpec, ratio: float,
                 options: Dict[str, Any]) -> Tuple[Optional[Callable[..., Masking]], Optional[str]]:
    """The strategy of ``model`` at another mask ratio, carrying over learned weights; (None, reason) if not."""
    try:
        other = build_strategy(StrategySpec(spec.name, ratio), model.grid, model.embed_dim, options)
    except (ValueError, TypeError) as e:
        return None, f"{spec.name} cannot run at mask ratio {ratio}: {e}"
    trained = model.mask_sampler
    if isinstance(trained, nn.Module) and isinstance(other, nn.Module) and len(trained.state_dict()):
        try:
            other.load_state_dict(trained.state_dict())
        except RuntimeError as e:
            return None, f"trained {spec.name} weights do not fit at ratio {ratio}: {e}"
    if isinstance(other, nn.Module):
        other = other.to(next(model.parameters()).device).eval()
    return other, None


@torch.no_grad()
def clip_features(model: MaskedVideoAutoencoder, clips: ClipSet, device: torch.device, batch_size: int = 32) -> Tensor:
    model.eval()
    feats = [model.features(normalize_video(clips.videos[i:i + batch_size]).to(device)).float().cpu()
             for i in range(0, len(clips), batch_size)]
    model.train()
    return torch.cat(feats)


def probe(model: MaskedVideoAutoencoder, train: ClipSet, test: ClipSet, device: torch.device, k: int,
          seed: int) -> Dict[str, Any]:
    """k-NN and linear-probe accuracy of the frozen encoder's clip features on the clip labels."""
    if bool((train.labels < 0).any()) or bool((test.labels < 0).any()) or len(set(train.labels.tolist())) < 2:
        return dict(knn_accuracy=None, linear_accuracy=None, k=k,
                    note="no labels: put the videos in one folder per class to get a probe")
    ftr, fte = clip_features(model, train, device), clip_features(model, test, device)
    return dict(knn_accuracy=knn_probe(ftr, train.labels, fte, test.labels, k=k),
                linear_accuracy=linear_probe(ftr, train.labels, fte, test.labels, seed=seed), k=k,
                chance=float(torch.bincount(test.labels).max()) / len(test))


def _median(xs: Sequence[float]) -> float:
    return float(torch.tensor(list(xs), dtype=torch.float64).median()) if xs else float("nan")


def train_strategy(cfg: CompareConfig, spec: StrategySpec, train: ClipSet, test: ClipSet, figure_clips: ClipSet,
                   run_dir: Path, progress: str = "bar", log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Pretrain, checkpoint and evaluate one strategy; returns its result dict (also written to
    strategies/<label>.json)."""
    device = torch.device(cfg.device)
    model = build_model(cfg.model_config(), spec, seed=cfg.seed, masking_options=cfg.masking_options,
                        sampling_weight=cfg.sampling_weight, sampling_estimator=cfg.sampling_estimator,
                        sampling_baseline=cfg.sampling_baseline).to(device)
    optimizer = _optimizer(model, cfg.lr, cfg.weight_decay, cfg.sampler_lr_scale)
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 2)
    batches = _Batches(len(train), cfg.batch_size, cfg.seed)
    ckpt_path = run_dir / "checkpoints" / f"{spec.label}.pt"
    history: Dict[str, List[float]] = dict(step=[], loss=[], reconstruction_loss=[], sampling_loss=[],
                                           eval_step=[], eval_loss=[])
    step_times: List[float] = []
    sampler_times: List[float] = []
    start, train_seconds = 0, 0.0
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        if ck.get("format") == CHECKPOINT_FORMAT and ck.get("identity") == cfg.identity():
            model.load_state_dict(ck["state_dict"])
            optimizer.load_state_dict(ck["optimizer"])
            gen.set_state(ck["mask_generator_state"].to(gen.get_state().device))
            history, start = ck["history"], ck["step"]
            step_times, sampler_times = ck.get("step_times", []), ck.get("sampler_times", [])
            train_seconds = ck.get("train_seconds", 0.0)
            log(f"{spec.label}: resuming from step {start}")

    def save(step: int, completed: bool) -> None:
        atomic_torch_save(dict(
            format=CHECKPOINT_FORMAT, strategy=asdict(spec), model_config=cfg.model_config(),
            masking_options=cfg.masking_options, sampling_weight=cfg.sampling_weight, identity=cfg.identity(),
            state_dict=model.state_dict(), optimizer=optimizer.state_dict(), mask_generator_state=gen.get_state(),
            step=step, completed=completed, history=history, step_times=step_times, sampler_times=sampler_times,
            train_seconds=train_seconds, normalization=dict(mean=0.45, std=0.225)), ckpt_path)

    eval_every = max(1, cfg.steps // max(1, cfg.eval_points))
    eval_sub = test.subset(range(min(len(test), 32)))
    mem_bytes: Optional[int] = None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model.train()
    bar = _Progress(cfg.steps, start, spec.label, progress)
    pending: List[Tuple[int, Tensor, Tensor, Optional[Tensor]]] = []

    def flush() -> None:
        if not pending:
            return
        nan = torch.full_like(pending[0][2], float("nan"))
        vals = torch.stack([torch.stack([lo, rc, nan if ls is None else ls]) for _, lo, rc, ls in pending]).tolist()
        for (s, *_), (lo, rc, ls) in zip(pending, vals):
            history["step"].append(s)
            history["loss"].append(lo)
            history["reconstruction_loss"].append(rc)
            history["sampling_loss"].append(None if ls != ls else ls)
        pending.clear()
        last = history["loss"][-1], history["reconstruction_loss"][-1], history["sampling_loss"][-1]
        shown = dict(loss=last[0], rec=last[1])
        if last[2] is not None:
            shown["Ls"] = last[2]
        bar.update(history["step"][-1] + 1, shown)

    for step in range(start, cfg.steps):
        for g in optimizer.param_groups:
            g["lr"] = _lr_at(step, cfg) * g.get("lr_scale", 1.0)
        video = normalize_video(train.videos[batches(step)]).to(device, non_blocking=True)
        if mem_bytes is None and device.type != "cuda":
            mem_bytes = _saved_activation_bytes(model, video, torch.Generator(device=device).manual_seed(0))
        r = train_step(model, optimizer, video, gen, device)
        train_seconds += r.step_s
        if step >= start + 2:  # skip warm-up steps in the timings
            step_times.append(r.step_s)
            sampler_times.append(r.sampler_s)
        pending.append((step, r.loss, r.reconstruction, r.sampling))
        if len(pending) >= 5 or step == cfg.steps - 1:
            flush()
        if (step + 1) % eval_every == 0 or step == cfg.steps - 1:
            ev = evaluate_reconstruction(model, model.sample_masking, eval_sub, device, seed=cfg.seed + 3)
            history["eval_step"].append(step + 1)
            history["eval_loss"].append(ev["loss"])
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            flush()
            save(step + 1, completed=False)
    flush()
    bar.close()

    if device.type == "cuda":
        peak_mb, method = torch.cuda.max_memory_allocated(device) / 2**20, "torch.cuda.max_memory_allocated"
    else:
        if mem_bytes is None:  # resumed at the end: measure now
            mem_bytes = _saved_activation_bytes(model, normalize_video(train.videos[batches(0)]).to(device),
                                                torch.Generator(device=device).manual_seed(0))
        peak_mb = (mem_bytes + _state_bytes(model, optimizer)) / 2**20
        method = "weights + grads + AdamW state + tensors saved for backward in one step (CPU estimate)"
    save(cfg.steps, completed=True)

    # ---- evaluation on held-out clips
    own = evaluate_reconstruction(model, model.sample_masking, test, device, seed=cfg.seed + 4, draws=cfg.eval_draws)
    other, why = _strategy_at(model, spec, cfg.common_ratio, cfg.masking_options)
    common = None if other is None else evaluate_reconstruction(model, other, test, device, seed=cfg.seed + 4,
                                                                draws=cfg.eval_draws)
    same_masks = create_masking("random", grid=model.grid, mask_ratio=cfg.common_ratio)
    fixed = evaluate_reconstruction(model, same_masks, test, device, seed=cfg.seed + 6, draws=cfg.eval_draws)
    step_ms, sampler_ms = 1e3 * _median(step_times), 1e3 * _median(sampler_times)
    fig = evaluate_reconstruction(model, model.sample_masking, figure_clips, device, seed=cfg.seed + 5)
    fig_probs = None
    if model.is_adaptive:
        with torch.no_grad():
            model.eval()
            toks = model.tokenize(normalize_video(figure_clips.videos).to(device))
            fig_probs = model.mask_sampler.log_probs(toks).exp().cpu()
            model.train()
    result = dict(
        name=spec.name, mask_ratio=spec.mask_ratio, label=spec.label, learned=bool(model.is_adaptive),
        num_tokens=model.num_tokens, num_visible=int((~own["masks"][0]).sum()), grid=list(model.grid),
        steps=cfg.steps, train_seconds=train_seconds,
        recon_loss_own_ratio=own["loss"], common_ratio=cfg.common_ratio,
        recon_loss_common_ratio=None if common is None else common["loss"], common_ratio_note=why,
        recon_loss_random_masks=fixed["loss"],
        foreground_allocation=summarize(own["allocation"].tolist()),
        probability_allocation=None if own["probability_allocation"] is None
        else summarize(own["probability_allocation"].tolist()),
        probe=probe(model, train, test, device, cfg.knn_k, cfg.seed),
        timing=dict(step_ms=step_ms, sampler_ms=sampler_ms,
                    sampler_share=sampler_ms / step_ms if step_ms > 0 else None, timed_steps=len(step_times)),
        memory=dict(peak_mb=peak_mb, method=method),
        mask_statistics=mask_statistics(own["masks"], model.grid),
        history=history,
        figure=dict(clips=figure_clips.names, masks=fig["masks"].to(torch.uint8).tolist(),
                    probs=None if fig_probs is None else [[round(p, 6) for p in row] for row in fig_probs.tolist()]),
        checkpoint=str(ckpt_path.relative_to(run_dir)),
    )
    write_json(run_dir / "strategies" / f"{spec.label}.json", result)
    return result


# ---------------------------------------------------------------------------------------------
# the run

def load_data(cfg: CompareConfig, log: Callable[[str], None] = print) -> Tuple[ClipSet, ClipSet, Dict[str, Any]]:
    """(train, test, description) for the embedded data or the user's videos."""
    tub = tuple(cfg.tubelet)
    if not cfg.videos:
        sprite = cfg.sprite_size or max(4, cfg.img_size // 4)
        kw = dict(num_frames=cfg.num_frames, img_size=cfg.img_size, tubelet=tub, sprite_size=sprite, seed=cfg.seed,
                  background_contrast=cfg.background_contrast)
        train = SyntheticDigitClips(cfg.train_clips, **kw).clipset()
        test = SyntheticDigitClips(cfg.test_clips, offset=cfg.train_clips, **kw).clipset()
        desc = dict(source="embedded",
                    description="handwritten digits (scikit-learn load_digits) moving over crops of "
                                "matplotlib's sample photo grace_hopper.jpg; label = digit class; "
                                "ground truth = tokens touched by the digit's strokes",
                    ground_truth="foreground tokens (bool)")
    else:
        clips, errors = load_video_clips(cfg.videos, num_frames=cfg.num_frames, stride=cfg.stride,
                                         img_size=cfg.img_size, tubelet=tub, clips_per_video=cfg.clips_per_video,
                                         log=log)
        videos = sorted({n.rsplit("#", 1)[0] for n in clips.names})
        held = {v for i, v in enumerate(videos) if i % 4 == 3} if len(videos) >= 2 else set()
        if not held and len(videos) >= 2:
            held = {videos[-1]}
        if held:
            te = [i for i, n in enumerate(clips.names) if n.rsplit("#", 1)[0] in held]
        else:  # a single video: hold out every 4th clip
            te = [i for i in range(len(clips)) if i % 4 == 3] or [len(clips) - 1]
        tr = [i for i in range(len(clips)) if i not in set(te)] or te
        train, test = clips.subset(tr), clips.subset(te)
        desc = dict(source="videos", files=videos, skipped_files=errors, classes=clips.class_names,
                    description=f"{len(videos)} video files, {cfg.clips_per_video} clips each, "
                                f"{cfg.num_frames} frames at stride {cfg.stride}",
                    ground_truth="motion energy (mean absolute frame difference per token)")
    fg = torch.cat([train.foreground, test.foreground])
    desc.update(train_clips=len(train), test_clips=len(test),
                foreground_share=float((fg > 0).float().mean()) if desc["source"] == "embedded" else None)
    return train, test, desc


def _summary(results: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """Which strategy is best on each metric, and where the adaptive ones win or lose."""
    metrics = {
        "recon_loss_common_ratio": (lambda r: r["recon_loss_common_ratio"], min),
        "recon_loss_random_masks": (lambda r: r["recon_loss_random_masks"], min),
        "foreground_allocation": (lambda r: r["foreground_allocation"]["mean"], max),
        "knn_accuracy": (lambda r: r["probe"]["knn_accuracy"], max),
        "linear_accuracy": (lambda r: r["probe"]["linear_accuracy"], max),
        "step_ms": (lambda r: r["timing"]["step_ms"], min),
        "peak_mb": (lambda r: r["memory"]["peak_mb"], min),
    }
    best: Dict[str, Optional[str]] = {}
    for m, (get, pick) in metrics.items():
        vals = {k: get(r) for k, r in results.items() if get(r) is not None and get(r) == get(r)}
        best[m] = pick(vals, key=vals.get) if vals else None
    learned = [k for k, r in results.items() if r["learned"]]
    wins = {k: [m for m, b in best.items() if b == k] for k in learned}
    loses = {k: {m: b for m, b in best.items() if b is not None and b != k} for k in learned}
    return dict(best=best, learned_wins=wins, learned_loses=loses)


def _fmt(v: Optional[float], digits: int = 3) -> str:
    return "n/a" if v is None or v != v else f"{v:.{digits}f}"


def markdown_table(results: Dict[str, Dict[str, Any]], untrained: Optional[Dict[str, Any]] = None,
                   common_ratio: float = 0.9, pixel_loss: str = "raw") -> str:
    """The comparison table (markdown) with the best value of each column in bold, and an honest summary."""
    s = _summary(results)
    best = s["best"]

    getters = {"recon_loss_common_ratio": lambda r: r["recon_loss_common_ratio"],
               "recon_loss_random_masks": lambda r: r["recon_loss_random_masks"],
               "foreground_allocation": lambda r: r["foreground_allocation"]["mean"],
               "knn_accuracy": lambda r: r["probe"].get("knn_accuracy"),
               "linear_accuracy": lambda r: r["probe"].get("linear_accuracy"),
               "step_ms": lambda r: r["timing"]["step_ms"], "peak_mb": lambda r: r["memory"]["peak_mb"]}

    def cell(label: str, metric: str, text: str) -> str:
        """Bold the best value (and ties), unless every strategy has the same value."""
        b = best.get(metric)
        if b is None or len(results) < 2:
            return text
        get = getters[metric]
        vals = {get(r) for r in results.values()}
        return f"**{text}**" if get(results[label]) == get(results[b]) and len(vals) > 1 else text

    head = ("| strategy | visible / tokens | recon. loss, own ratio | recon. loss @ {c:g} | recon. loss, same random "
            "masks @ {c:g} | foreground allocation | k-NN acc. | linear acc. | step ms | sampler share | peak MB "
            "| spatial coverage |").format(c=common_ratio)
    lines = [head, "|" + "---|" * 12]
    for label, r in results.items():
        fa = r["foreground_allocation"]
        p = r["probe"]
        t = r["timing"]
        lines.append("| " + " | ".join([
            label, f"{r['num_visible']} / {r['num_tokens']}", _fmt(r["recon_loss_own_ratio"], 4),
            cell(label, "recon_loss_common_ratio", _fmt(r["recon_loss_common_ratio"], 4)),
            cell(label, "recon_loss_random_masks", _fmt(r.get("recon_loss_random_masks"), 4)),
            cell(label, "foreground_allocation", f"{_fmt(fa['mean'], 2)} ± {_fmt(fa['std'], 2)}"),
            cell(label, "knn_accuracy", _fmt(p.get("knn_accuracy"))),
            cell(label, "linear_accuracy", _fmt(p.get("linear_accuracy"))),
            cell(label, "step_ms", _fmt(t["step_ms"], 1)),
            "n/a" if not r["learned"] else f"{100 * t['sampler_share']:.0f}%",
            cell(label, "peak_mb", _fmt(r["memory"]["peak_mb"], 1)),
            _fmt(r["mask_statistics"]["spatial_coverage"], 2),
        ]) + " |")
    if untrained is not None and untrained.get("knn_accuracy") is not None:
        lines.append(f"| untrained encoder (reference) | | | | | | {_fmt(untrained['knn_accuracy'])} | "
                     f"{_fmt(untrained['linear_accuracy'])} | | | | |")
    lines.append("")
    target = "per-patch normalised pixels" if pixel_loss == "normalized" else "pixels"
    lines.append(f"Bold = best in its column (ties bold; none if all equal). Reconstruction losses: MSE of {target} on "
                 "the masked tokens of held-out clips, lower is better. Own-ratio losses are not comparable across "
                 f"ratios; '@ {common_ratio:g}' uses each strategy's own masks at that ratio (a learned sampler "
                 "lowers it by choosing what to show); 'same random masks' evaluates every encoder-decoder on "
                 "identical random masks, the fairest comparison of what was learned. Foreground allocation = share "
                 "of visible tokens on the foreground / the foreground's share of tokens (1.0 = uniform), mean ± std "
                 "over held-out clips. Sampler share = the sampler's forward and backward passes / the whole training step. Peak MB "
                 "on CPU is an estimate (weights, grads, AdamW state and tensors saved for backward).")
    for k in s["learned_wins"]:
        w = ", ".join(s["learned_wins"][k]) or "nothing"
        lo = ", ".join(f"{m} (best: {b})" for m, b in s["learned_loses"][k].items()) or "nothing"
        lines.append("")
        lines.append(f"**{k}** is best on: {w}. It is not best on: {lo}.")
    return "\n".join(lines) + "\n"


def run_compare(cfg: CompareConfig, *, overwrite: bool = False, progress: str = "bar", figures: bool = True,
                command: Optional[str] = None, log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Run (or resume) a comparison into ``cfg.out``; returns the results dict also written to results.json.

    progress: "bar" (tqdm), "lines" or "none".
    """
    t_start = time.perf_counter()
    cfg.validate()
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but torch.cuda.is_available() is False")
    specs = [parse_strategy(s) for s in cfg.strategies]
    run_dir = Path(cfg.out)
    cfg_path = run_dir / "config.json"
    if run_dir.exists() and overwrite:
        for sub in ("strategies", "checkpoints", "figures"):
            shutil.rmtree(run_dir / sub, ignore_errors=True)
        for f in ("config.json", "results.json", "results.md"):
            (run_dir / f).unlink(missing_ok=True)
    if cfg_path.exists():
        old = json.loads(cfg_path.read_text())
        if old.get("identity") != cfg.identity():
            raise ValueError(f"run folder {str(run_dir)!r} holds a run with a different configuration; "
                             f"pass --overwrite or choose another --out")
    write_json(cfg_path, dict(config=asdict(cfg), identity=cfg.identity()))

    train, test, data_desc = load_data(cfg, log)
    log(f"data: {data_desc['source']}, {len(train)} training and {len(test)} held-out clips of "
        f"{tuple(train.videos.shape[1:])}")
    fig_clips = test.subset(range(min(cfg.figure_clips, len(test))))

    results: Dict[str, Dict[str, Any]] = {}
    for spec in specs:
        done = run_dir / "strategies" / f"{spec.label}.json"
        ck = run_dir / "checkpoints" / f"{spec.label}.pt"
        if done.exists() and ck.exists():
            results[spec.label] = json.loads(done.read_text())
            log(f"{spec.label}: already done, loaded {done}")
            continue
        results[spec.label] = train_strategy(cfg, spec, train, test, fig_clips, run_dir, progress, log)

    torch.manual_seed(cfg.seed)
    untrained = probe(build_model(cfg.model_config(), StrategySpec("random", 0.9), seed=cfg.seed).to(device),
                      train, test, device, cfg.knn_k, cfg.seed)

    fig_paths: List[str] = []
    if figures:
        from .figures import write_run_figures
        fig_paths = [str(p.relative_to(run_dir)) for p in write_run_figures(run_dir, results, fig_clips, cfg)]

    table = markdown_table(results, untrained, cfg.common_ratio, cfg.pixel_loss)
    out = dict(schema=SCHEMA, command=command, config=asdict(cfg), data=data_desc,
               environment=dict(torch=torch.__version__, python=platform.python_version(), device=str(device),
                                threads=torch.get_num_threads()),
               strategies=results, untrained_probe=untrained, summary=_summary(results), figures=fig_paths,
               runtime_s=time.perf_counter() - t_start)
    write_json(run_dir / "results.json", out)
    head = f"Command: `{command}`\n\n" if command else ""
    atomic_write_text(run_dir / "results.md", head + table)
    return out
