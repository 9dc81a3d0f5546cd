"""Measuring a trained strategy on held-out clips: masked reconstruction (under its own masks, at the common
ratio and under the same random masks for all), foreground allocation, mask statistics, k-NN and linear probes
of the frozen encoder and the fine-tuning probe (and both of the untrained encoder, the probes' reference), the
per-token errors and probabilities of the figure clips, and the computed metrics of the metric table.

Probes: features (M, D) float, labels (M,) int64, on the run's probe clips (`adamask.compare.data.RunClips`), with
the chance level (the majority class's share). These run at reporting time (host syncs are fine here).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..mae import MaskedVideoAutoencoder
from ..masking import is_learned
from ..registry import create_masking
from ..validation import check_positive_int
from .config import CompareConfig, StrategySpec
from .data import NO_LABELS, ClipSet, RunClips, labelled, normalize_video
from .finetune import FineTuneRecipe, finetune_probe
from .metrics import METRICS, Metric, MetricContext, mask_statistics, region_errors, summarize
from .model import build_model, evaluate_reconstruction, strategy_at_ratio

__all__ = [
    "knn_probe",
    "linear_probe",
    "clip_features",
    "probe",
    "probes",
    "figure_data",
    "evaluate_strategy",
    "untrained_probes",
]


def _check_probe_inputs(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor) -> None:
    for name, x in (("train_features", train_x), ("test_features", test_x)):
        if not isinstance(x, Tensor) or x.dim() != 2:
            raise TypeError(f"{name} must be a (M, D) float tensor, got {getattr(x, 'shape', type(x).__name__)}")
    for name, y, x in (("train_labels", train_y, train_x), ("test_labels", test_y, test_x)):
        if not isinstance(y, Tensor) or y.dim() != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(
                f"{name} must be a (M,) int tensor matching its features, got {getattr(y, 'shape', type(y).__name__)}"
            )
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"train and test features differ in width: {train_x.shape[1]} vs {test_x.shape[1]}")


def knn_probe(
    train_features: Tensor, train_labels: Tensor, test_features: Tensor, test_labels: Tensor, k: int = 10
) -> float:
    """k-NN accuracy (cosine similarity, majority vote with similarity weights) of frozen features (M, D)."""
    _check_probe_inputs(train_features, train_labels, test_features, test_labels)
    check_positive_int(k, "k")
    a = F.normalize(train_features.float(), dim=1)
    b = F.normalize(test_features.float(), dim=1)
    sim = b @ a.T
    k = min(k, a.shape[0])
    top, idx = sim.topk(k, dim=1)
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    votes = torch.zeros(b.shape[0], num_classes).scatter_add_(1, train_labels[idx], (top + 1).clamp_min(0))
    return float((votes.argmax(1) == test_labels).float().mean())


def linear_probe(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    weight_decay: float = 1e-3,
    steps: int = 100,
    seed: int = 0,
) -> float:
    """Accuracy of a multinomial logistic regression (L2 = weight_decay) on standardised frozen features (M, D);
    scikit-learn's L-BFGS solver when installed, else torch's; deterministic."""
    _check_probe_inputs(train_features, train_labels, test_features, test_labels)
    x, xt = train_features.double(), test_features.double()
    mu, sd = x.mean(0), x.std(0).clamp_min(1e-6)
    x, xt = (x - mu) / sd, (xt - mu) / sd
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        return _torch_linear_probe(x.float(), train_labels, xt.float(), test_labels, weight_decay, steps, seed)
    if len(set(train_labels.tolist())) < 2:
        return float((test_labels == train_labels[0]).double().mean())
    clf = LogisticRegression(C=1.0 / (2 * weight_decay * len(x)), max_iter=max(steps, 100), random_state=seed)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings at tiny budgets
        clf.fit(x.numpy(), train_labels.numpy())
    return float((torch.from_numpy(clf.predict(xt.numpy())) == test_labels).double().mean())


def _torch_linear_probe(
    x: Tensor, y: Tensor, xt: Tensor, yt: Tensor, weight_decay: float, steps: int, seed: int
) -> float:
    num_classes = int(max(y.max(), yt.max())) + 1
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(x.shape[1], num_classes, generator=g) * 0.01).requires_grad_(True)
    bias = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, bias], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + bias, y) + weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        return float(((xt @ w + bias).argmax(1) == yt).float().mean())


@torch.no_grad()
def clip_features(model: MaskedVideoAutoencoder, clips: ClipSet, device: torch.device, batch_size: int = 32) -> Tensor:
    """Frozen-encoder features (M, D) float32 of ``clips`` on the CPU."""
    model.eval()
    feats = [
        model.features(normalize_video(clips.videos[i : i + batch_size]).to(device)).float().cpu()
        for i in range(0, len(clips), batch_size)
    ]
    model.train()
    return torch.cat(feats)


def probe(
    model: MaskedVideoAutoencoder, train: ClipSet, test: ClipSet, device: torch.device, k: int, seed: int
) -> Dict[str, Any]:
    """k-NN and linear-probe accuracy of the frozen encoder's clip features on the clip labels, and the chance
    level (the share of the most frequent class among ``test``); None, with a note, without labels or where
    the features are not finite."""
    if not labelled(train, test):
        return dict(knn_accuracy=None, linear_accuracy=None, k=k, chance=None, note=NO_LABELS)
    chance = float(torch.bincount(test.labels).max()) / len(test)
    ftr, fte = clip_features(model, train, device), clip_features(model, test, device)
    if not (bool(torch.isfinite(ftr).all()) and bool(torch.isfinite(fte).all())):
        return dict(
            knn_accuracy=None,
            linear_accuracy=None,
            k=k,
            chance=chance,
            note="the encoder's features are not finite (its weights overflowed): no probe",
        )
    return dict(
        knn_accuracy=knn_probe(ftr, train.labels, fte, test.labels, k=k),
        linear_accuracy=linear_probe(ftr, train.labels, fte, test.labels, seed=seed),
        k=k,
        chance=chance,
        train_clips=len(train),
        test_clips=len(test),
    )


def probes(
    model: MaskedVideoAutoencoder, cfg: CompareConfig, clips: RunClips, device: torch.device, seed: int
) -> Dict[str, Any]:
    """The probes of ``model`` (encoder seed ``seed``) on the run's probe clips: the frozen k-NN and linear probes
    (`probe`) and, with ``cfg.finetune_steps``, the fine-tuning probe under "finetune"
    (`adamask.compare.finetune.finetune_probe`, batches of ``cfg.batch_size`` clips), where the frozen probes could
    run."""
    out = probe(model, clips.probe_train, clips.probe_test, device, cfg.knn_k, seed)
    if cfg.finetune_steps and out["knn_accuracy"] is not None:
        recipe = FineTuneRecipe(cfg.finetune_steps, cfg.finetune_seeds, batch_size=cfg.batch_size)
        out["finetune"] = finetune_probe(model, clips.probe_train, clips.probe_test, recipe, seed, device)
    return out


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
    clips: RunClips,
    metrics: Sequence[Metric] = METRICS,
) -> Dict[str, Any]:
    """Every held-out measurement of ``model`` trained with ``spec``'s strategy, as result-dict entries, with
    one entry per computed metric (``Metric.compute``) of ``metrics``: on ``clips.test``, the probes on
    ``clips.probe_train`` and ``clips.probe_test``, the figures' data on ``clips.figure``."""
    device = torch.device(cfg.device)
    test = clips.test
    own = evaluate_reconstruction(model, None, test, device, seed=cfg.seed + 4, draws=cfg.eval_draws)
    other, why = strategy_at_ratio(model, spec, cfg.common_ratio, cfg.masking_options)
    common = (
        None
        if other is None
        else evaluate_reconstruction(model, other, test, device, seed=cfg.seed + 4, draws=cfg.eval_draws)
    )
    same_masks = create_masking("random", grid=model.grid, mask_ratio=cfg.common_ratio)
    fixed = evaluate_reconstruction(model, same_masks, test, device, seed=cfg.seed + 6, draws=cfg.eval_draws)
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
        probe=probes(model, cfg, clips, device, cfg.seed),
        mask_statistics=mask_statistics(own["masks"], model.grid),
        figure=figure_data(model, clips.figure, device, cfg.seed + 5),
    )
    context = MetricContext(model, spec, cfg, clips.train, test, device, own)
    for m in metrics:
        if m.compute is not None:
            result[m.name] = m.compute(context)
    return result


def untrained_probes(cfg: CompareConfig, clips: RunClips, device: torch.device) -> Dict[str, Any]:
    """The probes of the encoder as every strategy's training starts, once per seed (the strategy does not
    change it; the common ratio is one that was checked on this grid): results.json's "untrained_probe", the
    probe clips' description with the seeds and one probe dict per seed."""
    runs = []
    for k in range(cfg.seeds):
        seed = cfg.seed + k
        encoder = build_model(cfg.model_config(), StrategySpec("random", cfg.common_ratio), seed=seed).to(device)
        runs.append(probes(encoder, cfg, clips, device, seed))
    return dict(clips.description["probe"], seeds=[cfg.seed + k for k in range(cfg.seeds)], runs=runs)
