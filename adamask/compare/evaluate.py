"""Measuring a trained strategy on held-out clips: masked reconstruction (under its own masks, at the
common ratio and under the same random masks for all), foreground allocation, mask statistics, k-NN and
linear probes of the frozen encoder (`adamask.compare.probes`, re-exported here), the per-token errors and
probabilities of the figure clips, and the computed metrics of the metric table."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..mae import MaskedVideoAutoencoder
from ..masking import Masking, is_learned
from ..registry import create_masking
from ..tokens import scatter_masked
from .config import CompareConfig, StrategySpec
from .data import ClipSet, normalize_video
from .metrics import (
    METRICS,
    Metric,
    MetricContext,
    foreground_allocation,
    mask_statistics,
    probability_allocation,
    region_errors,
    summarize,
)
from .model import draw_masking, strategy_at_ratio
from .probes import clip_features, probe

__all__ = ["evaluate_reconstruction", "clip_features", "probe", "evaluate_strategy", "figure_data"]


@contextmanager
def full_decoder(model: MaskedVideoAutoencoder) -> Iterator[None]:
    """Within this block the model's decoder reconstructs every masked token, also when it trains with decoder
    masking (which only saves compute in training): held-out losses stay comparable across runs."""
    saved = model.decoder_masking
    model.decoder_masking = None
    try:
        yield
    finally:
        model.decoder_masking = saved


@torch.no_grad()
def evaluate_reconstruction(
    model: MaskedVideoAutoencoder,
    strategy: Optional[Callable[..., Masking]],
    clips: ClipSet,
    device: torch.device,
    *,
    seed: int,
    draws: int = 1,
    batch_size: int = 32,
) -> Dict[str, Any]:
    """Held-out masked reconstruction loss (the model's pixel MSE over all masked tokens) of ``model`` under
    ``strategy``'s masks (None or ``model.sample_masking``: the model's own), ``draws`` times over ``clips``.
    Returns loss (float), allocation (M*draws,) per-clip foreground allocation, masks (M*draws, N) bool
    (True = masked), probs (M*draws, N) or None, probability_allocation (M*draws,) or None and errors
    (M*draws, N) float32, each masked token's reconstruction error (NaN where visible), on the CPU."""
    model.eval()
    own = strategy is None or strategy == model.sample_masking
    gen = torch.Generator(device=device).manual_seed(seed)
    losses, alloc, masks, probs, pall, errors = [], [], [], [], [], []
    for _ in range(draws):
        for i in range(0, len(clips), batch_size):
            video = normalize_video(clips.videos[i : i + batch_size]).to(device)
            tokens = model.tokenize(video)
            masking = draw_masking(model, video, tokens, gen, None if own else strategy)
            with full_decoder(model):
                out = model.reconstruct(video, tokens, masking)
            losses.append(out.token_error.mean(1).cpu())
            per_token = scatter_masked(out.token_error.float(), out.masking.mask)
            errors.append(torch.where(out.masking.mask, per_token, float("nan")).cpu())
            mask = out.masking.mask.cpu()
            fg = clips.foreground[i : i + batch_size]
            alloc.append(foreground_allocation(mask, fg))
            masks.append(mask)
            if out.masking.probs is not None:
                probs.append(out.masking.probs.cpu())
                pall.append(probability_allocation(probs[-1], fg))
    model.train()
    return dict(
        loss=float(torch.cat(losses).mean()),
        allocation=torch.cat(alloc),
        masks=torch.cat(masks),
        probs=torch.cat(probs) if probs else None,
        probability_allocation=torch.cat(pall) if pall else None,
        errors=torch.cat(errors),
    )


def _summary(values: Optional[Tensor]) -> Optional[Dict[str, float]]:
    return None if values is None else summarize(values.tolist())


def _by_region(ev: Dict[str, Any], clips: ClipSet) -> Dict[str, Optional[float]]:
    """The mean error of the masked foreground and background tokens of an `evaluate_reconstruction` result
    over ``clips`` (its draws in turn), over the clips that have such tokens (None where none has)."""
    draws = ev["errors"].shape[0] // max(1, len(clips))
    per_clip = region_errors(ev["errors"], clips.foreground.repeat(draws, 1))
    means = [summarize(per_clip[:, k].tolist()) for k in (0, 1)]
    return dict(
        foreground=means[0]["mean"] if means[0]["n"] else None, background=means[1]["mean"] if means[1]["n"] else None
    )


def _rounded(values: Optional[Tensor], digits: int = 6) -> Optional[list]:
    """(M, N) float -> nested lists rounded to ``digits`` decimals, NaN as None (JSON); None stays None."""
    if values is None:
        return None
    return [[None if v != v else round(v, digits) for v in row] for row in values.tolist()]


def figure_data(
    model: MaskedVideoAutoencoder, figure_clips: ClipSet, device: torch.device, seed: int
) -> Dict[str, Any]:
    """What the figures show of a trained strategy on ``figure_clips``: its sampled masks (M, N) as 0/1
    (1 = masked), its probabilities (M, N) or None and the reconstruction error of each masked token (M, N),
    None where visible."""
    fig = evaluate_reconstruction(model, None, figure_clips, device, seed=seed)
    return dict(
        clips=figure_clips.names,
        masks=fig["masks"].to(torch.uint8).tolist(),
        probs=_rounded(fig["probs"]),
        errors=_rounded(fig["errors"]),
    )


def evaluate_strategy(
    model: MaskedVideoAutoencoder,
    spec: StrategySpec,
    cfg: CompareConfig,
    train: ClipSet,
    test: ClipSet,
    figure_clips: ClipSet,
    metrics: Sequence[Metric] = METRICS,
    probe_sets: Optional[Tuple[ClipSet, ClipSet]] = None,
) -> Dict[str, Any]:
    """Every held-out measurement of ``model`` trained with ``spec``'s strategy, as result-dict entries, with
    one entry per computed metric (``Metric.compute``) of ``metrics``. The probes are fitted and scored on
    ``probe_sets`` (train, test), by default on ``train`` and ``test``."""
    device = torch.device(cfg.device)
    own = evaluate_reconstruction(model, None, test, device, seed=cfg.seed + 4, draws=cfg.eval_draws)
    other, why = strategy_at_ratio(model, spec, cfg.common_ratio, cfg.masking_options)
    common = (
        None
        if other is None
        else evaluate_reconstruction(model, other, test, device, seed=cfg.seed + 4, draws=cfg.eval_draws)
    )
    same_masks = create_masking("random", grid=model.grid, mask_ratio=cfg.common_ratio)
    fixed = evaluate_reconstruction(model, same_masks, test, device, seed=cfg.seed + 6, draws=cfg.eval_draws)
    ptrain, ptest = probe_sets if probe_sets is not None else (train, test)
    result = dict(
        learned=is_learned(model.strategy),
        num_tokens=model.num_tokens,
        num_visible=int((~own["masks"][0]).sum()),
        grid=list(model.grid),
        recon_loss_own_ratio=own["loss"],
        common_ratio=cfg.common_ratio,
        recon_loss_common_ratio=None if common is None else common["loss"],
        common_ratio_note=why,
        recon_loss_random_masks=fixed["loss"],
        masked_error=_by_region(fixed, test),
        foreground_allocation=_summary(own["allocation"]),
        probability_allocation=_summary(own["probability_allocation"]),
        probe=probe(model, ptrain, ptest, device, cfg.knn_k, cfg.seed),
        mask_statistics=mask_statistics(own["masks"], model.grid),
        figure=figure_data(model, figure_clips, device, cfg.seed + 5),
    )
    context = MetricContext(model, spec, cfg, train, test, device, own)
    for m in metrics:
        if m.compute is not None:
            result[m.name] = m.compute(context)
    return result
