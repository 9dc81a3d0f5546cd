"""`train_one_epoch`: VideoMAE's ``engine_for_pretraining.train_one_epoch`` for a `wrap`-ped model
(same signature), with the targets built from the sampled mask."""

from __future__ import annotations

import math
import time
from typing import Any, Dict, Iterable, Optional, Sequence, Sized, Tuple, cast

import torch
from torch import Tensor, nn

from .model import pretraining_losses

__all__ = ["train_one_epoch"]


class _Meters:
    """Running sums of scalars; averaged over all ranks at the end of an epoch."""

    def __init__(self) -> None:
        self.sums: Dict[str, float] = {}
        self.counts: Dict[str, int] = {}
        self.last: Dict[str, float] = {}

    def update(self, **values: Any) -> None:
        for k, v in values.items():
            if v is None:
                continue
            v = float(v.item() if isinstance(v, Tensor) else v)
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1
            self.last[k] = v

    def line(self) -> str:
        return "  ".join(f"{k}: {self.last[k]:.6g} ({self.sums[k] / self.counts[k]:.6g})" for k in self.sums)

    def synchronize(self) -> None:
        dist = torch.distributed
        if not (dist.is_available() and dist.is_initialized()) or not self.sums:
            return
        keys = sorted(self.sums)
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        t = torch.tensor([[self.sums[k], self.counts[k]] for k in keys], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        for k, (s, c) in zip(keys, t.tolist(), strict=True):
            self.sums[k], self.counts[k] = s, int(c)

    def averages(self) -> Dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in self.sums}


def _apply_schedules(optimizer: torch.optim.Optimizer, it: int, lr_values: Any, wd_values: Any) -> None:
    if lr_values is None and wd_values is None:
        return
    for group in optimizer.param_groups:
        if lr_values is not None:
            group["lr"] = lr_values[it] * group.get("lr_scale", 1.0)
        if wd_values is not None and group["weight_decay"] > 0:
            group["weight_decay"] = wd_values[it]


def _decoder_mask(batch: Sequence[Any], device: torch.device) -> Tuple[Optional[Tensor], Optional[int]]:
    """A v2 batch's decoder mask (B, N) bool and its decoded count, or (None, None) when there is none
    or it is only the complement of the loader's encoder mask (no decoder masking)."""
    if len(batch) < 3:
        return None, None
    enc = torch.as_tensor(batch[1]).flatten(1).to(torch.bool)
    dec = torch.as_tensor(batch[2]).flatten(1).to(torch.bool)
    if bool((dec == ~enc).all()):
        return None, None
    return dec.to(device, non_blocking=True), int((~dec[0]).sum())


def _step(
    model: nn.Module, optimizer: torch.optim.Optimizer, loss: Tensor, loss_scaler: Any, max_norm: float
) -> Tuple[Any, float]:
    """Backward and optimizer step; returns (grad_norm, loss_scale)."""
    optimizer.zero_grad()
    if loss_scaler is None:
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm if max_norm else math.inf)
        optimizer.step()
        return grad_norm, 0.0
    second_order = bool(getattr(optimizer, "is_second_order", False))
    grad_norm = loss_scaler(
        loss, optimizer, clip_grad=max_norm, parameters=model.parameters(), create_graph=second_order
    )
    return grad_norm, loss_scaler.state_dict().get("scale", 1.0)


def _log(meters: _Meters, log_writer: Any, values: Dict[str, Any]) -> None:
    meters.update(**values)
    if log_writer is None:
        return
    values = {k: meters.last[k] for k in values if k in meters.last}
    log_writer.update(head="loss", **{k: v for k, v in values.items() if k.startswith("loss") and k != "loss_scale"})
    log_writer.update(head="opt", **{k: v for k, v in values.items() if not k.startswith("loss") or k == "loss_scale"})
    log_writer.set_step()


def _host_values(out: Any, epoch: int, step: int) -> Tuple[float, float, Optional[float]]:
    """One host read of (loss, L_R, L_S or None); raises if the loss is not finite."""
    terms = [out.loss, out.reconstruction_loss] + ([] if out.sampling_loss is None else [out.sampling_loss])
    values = torch.stack([t.detach().float() for t in terms]).tolist()
    loss, rec, samp = values[0], values[1], (values[2] if len(values) > 2 else None)
    if not math.isfinite(loss):
        raise FloatingPointError(
            f"loss is {loss} (reconstruction {rec}, sampling {samp}) at epoch {epoch} step {step}; stopping training"
        )
    return loss, rec, samp


def _loader_length(data_loader: Iterable) -> Optional[int]:
    """The loader's number of batches, or None for a loader without a length."""
    try:
        return len(cast(Sized, data_loader))
    except TypeError:
        return None


def _optimizer_values(optimizer: torch.optim.Optimizer) -> Dict[str, Any]:
    """lr, min_lr and weight_decay as VideoMAE logs them."""
    lrs = [g["lr"] for g in optimizer.param_groups]
    wd = [g["weight_decay"] for g in optimizer.param_groups if g["weight_decay"] > 0]
    return dict(lr=max(lrs), min_lr=min(lrs), weight_decay=wd[-1] if wd else None)


def train_one_epoch(
    model: nn.Module,
    data_loader: Iterable,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    epoch: int,
    loss_scaler: Any,
    max_norm: float = 0,
    patch_size: int = 16,
    normlize_target: bool = True,
    log_writer: Any = None,
    lr_scheduler: Any = None,
    start_steps: Optional[int] = None,
    lr_schedule_values: Any = None,
    wd_schedule_values: Any = None,
    print_freq: int = 10,
) -> Dict[str, float]:
    """VideoMAE's ``engine_for_pretraining.train_one_epoch`` for a `wrap`-ped model.

    Batches: (videos, mask) (v1) or (videos, mask, decoder_mask) (v2). The loader's encoder mask
    is ignored (the model samples one); a v2 decoder mask is used unless it is just the complement
    of the loader's mask (no decoder masking). Per step: the same lr / wd schedule, AMP (fp16 on
    CUDA when ``loss_scaler`` is given), ``loss_scaler(loss, optimizer, clip_grad=max_norm, ...)``
    or a plain backward/step when it is None, and one host read of (loss, loss_rec,
    loss_sampling) for the finiteness check and the log (no loss_sampling for a non-learned
    strategy). Returns the epoch's averaged metrics.
    """
    model.train()
    device = torch.device(device)
    meters = _Meters()
    start_steps = 0 if start_steps is None else start_steps
    num_steps = _loader_length(data_loader)
    use_amp = device.type == "cuda" and loss_scaler is not None
    t0 = time.time()
    for step, batch in enumerate(data_loader):
        _apply_schedules(optimizer, start_steps + step, lr_schedule_values, wd_schedule_values)
        videos = batch[0].to(device, non_blocking=True)
        decode_mask, num_decoded = _decoder_mask(batch, device)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
            out = pretraining_losses(
                model,
                videos,
                decode_mask,
                patch_size=patch_size,
                normlize_target=normlize_target,
                num_decoded=num_decoded,
            )
        loss_value, rec_value, samp_value = _host_values(out, epoch, step)
        grad_norm, loss_scale_value = _step(model, optimizer, out.loss, loss_scaler, max_norm)
        values = dict(loss=loss_value, loss_rec=rec_value, loss_sampling=samp_value, loss_scale=loss_scale_value)
        _log(meters, log_writer, {**values, **_optimizer_values(optimizer), "grad_norm": grad_norm})
        if lr_scheduler is not None:
            lr_scheduler.step_update(start_steps + step)
        if step % print_freq == 0 or (num_steps is not None and step == num_steps - 1):
            total = "?" if num_steps is None else num_steps
            print(f"Epoch: [{epoch}] [{step}/{total}]  {meters.line()}  time: {time.time() - t0:.1f}s", flush=True)
    meters.synchronize()
    print(f"Averaged stats: {meters.line()}", flush=True)
    return meters.averages()
