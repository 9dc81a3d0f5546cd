"""Measuring a trained strategy on held-out clips: masked reconstruction (under its own masks, at the
common ratio and under the same random masks for all), foreground allocation, mask statistics, k-NN and
linear probes of the frozen encoder, and the computed metrics of the metric table."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, Optional, Sequence

import torch
from torch import Tensor

from ..mae import MaskedVideoAutoencoder
from ..masking import Masking, create_masking, is_learned
from .config import CompareConfig, StrategySpec
from .data import ClipSet, normalize_video
from .metrics import (
    METRICS,
    Metric,
    MetricContext,
    foreground_allocation,
    knn_probe,
    linear_probe,
    mask_statistics,
    probability_allocation,
    summarize,
)
from .model import draw_masking, strategy_at_ratio

__all__ = ["evaluate_reconstruction", "clip_features", "probe", "evaluate_strategy"]


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
def evaluate_reconstruction(model: MaskedVideoAutoencoder, strategy: Optional[Callable[..., Masking]], clips: ClipSet,
                            device: torch.device, *, seed: int, draws: int = 1,
                            batch_size: int = 32) -> Dict[str, Any]:
    """Held-out masked reconstruction loss (the model's pixel MSE over all masked tokens) of ``model`` under
    ``strategy``'s masks (None or ``model.sample_masking``: the model's own), ``draws`` times over ``clips``.
    Returns loss (float), allocation (M*draws,) per-clip foreground allocation, masks (M*draws, N) bool
    (True = masked), probs (M*draws, N) or None and probability_allocation (M*draws,) or None, on the CPU."""
    model.eval()
    own = strategy is None or strategy == model.sample_masking
    gen = torch.Generator(device=device).manual_seed(seed)
    losses, alloc, masks, probs, pall = [], [], [], [], []
    for _ in range(draws):
        for i in range(0, len(clips), batch_size):
            video = normalize_video(clips.videos[i:i + batch_size]).to(device)
            tokens = model.tokenize(video)
            masking = draw_masking(model, video, tokens, gen, None if own else strategy)
            with full_decoder(model):
                out = model.reconstruct(video, tokens, masking)
            losses.append(out.token_error.mean(1).cpu())
            mask = out.masking.mask.cpu()
            fg = clips.foreground[i:i + batch_size]
            alloc.append(foreground_allocation(mask, fg))
            masks.append(mask)
            if out.masking.probs is not None:
                probs.append(out.masking.probs.cpu())
                pall.append(probability_allocation(probs[-1], fg))
    model.train()
    return dict(loss=float(torch.cat(losses).mean()), allocation=torch.cat(alloc), masks=torch.cat(masks),
                probs=torch.cat(probs) if probs else None,
                probability_allocation=torch.cat(pall) if pall else None)


@torch.no_grad()
def clip_features(model: MaskedVideoAutoencoder, clips: ClipSet, device: torch.device, batch_size: int = 32) -> Tensor:
    """Frozen-encoder features (M, D) float32 of ``clips`` on the CPU."""
    model.eval()
    feats = [model.features(normalize_video(clips.videos[i:i + batch_size]).to(device)).float().cpu()
             for i in range(0, len(clips), batch_size)]
    model.train()
    return torch.cat(feats)


def probe(model: MaskedVideoAutoencoder, train: ClipSet, test: ClipSet, device: torch.device, k: int,
          seed: int) -> Dict[str, Any]:
    """k-NN and linear-probe accuracy of the frozen encoder's clip features on the clip labels (None, with a
    note, without labels or where the features are not finite)."""
    if bool((train.labels < 0).any()) or bool((test.labels < 0).any()) or len(set(train.labels.tolist())) < 2:
        return dict(knn_accuracy=None, linear_accuracy=None, k=k,
                    note="no labels: put the videos in one folder per class to get a probe")
    ftr, fte = clip_features(model, train, device), clip_features(model, test, device)
    if not (bool(torch.isfinite(ftr).all()) and bool(torch.isfinite(fte).all())):
        return dict(knn_accuracy=None, linear_accuracy=None, k=k,
                    note="the encoder's features are not finite (its weights overflowed): no probe")
    return dict(knn_accuracy=knn_probe(ftr, train.labels, fte, test.labels, k=k),
                linear_accuracy=linear_probe(ftr, train.labels, fte, test.labels, seed=seed), k=k,
                chance=float(torch.bincount(test.labels).max()) / len(test))


def _summary(values: Optional[Tensor]) -> Optional[Dict[str, float]]:
    return None if values is None else summarize(values.tolist())


def evaluate_strategy(model: MaskedVideoAutoencoder, spec: StrategySpec, cfg: CompareConfig, train: ClipSet,
                      test: ClipSet, figure_clips: ClipSet, metrics: Sequence[Metric] = METRICS) -> Dict[str, Any]:
    """Every held-out measurement of ``model`` trained with ``spec``'s strategy, as result-dict entries, with
    one entry per computed metric (``Metric.compute``) of ``metrics``."""
    device = torch.device(cfg.device)
    own = evaluate_reconstruction(model, None, test, device, seed=cfg.seed + 4, draws=cfg.eval_draws)
    other, why = strategy_at_ratio(model, spec, cfg.common_ratio, cfg.masking_options)
    common = None if other is None else evaluate_reconstruction(model, other, test, device, seed=cfg.seed + 4,
                                                                draws=cfg.eval_draws)
    same_masks = create_masking("random", grid=model.grid, mask_ratio=cfg.common_ratio)
    fixed = evaluate_reconstruction(model, same_masks, test, device, seed=cfg.seed + 6, draws=cfg.eval_draws)
    fig = evaluate_reconstruction(model, None, figure_clips, device, seed=cfg.seed + 5)
    fig_probs = None if fig["probs"] is None else [[round(p, 6) for p in row] for row in fig["probs"].tolist()]
    result = dict(
        learned=is_learned(model.strategy), num_tokens=model.num_tokens, num_visible=int((~own["masks"][0]).sum()),
        grid=list(model.grid), recon_loss_own_ratio=own["loss"], common_ratio=cfg.common_ratio,
        recon_loss_common_ratio=None if common is None else common["loss"], common_ratio_note=why,
        recon_loss_random_masks=fixed["loss"], foreground_allocation=_summary(own["allocation"]),
        probability_allocation=_summary(own["probability_allocation"]),
        probe=probe(model, train, test, device, cfg.knn_k, cfg.seed),
        mask_statistics=mask_statistics(own["masks"], model.grid),
        figure=dict(clips=figure_clips.names, masks=fig["masks"].to(torch.uint8).tolist(), probs=fig_probs),
    )
    context = MetricContext(model, spec, cfg, train, test, device, own)
    for m in metrics:
        if m.compute is not None:
            result[m.name] = m.compute(context)
    return result
