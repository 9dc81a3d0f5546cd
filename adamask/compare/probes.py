"""Probes of a frozen encoder: k-NN and linear-probe accuracy of its clip features, on the probe clips of a
run (`probe_clips`: for the embedded data, clips apart from the training and held-out ones, labelled by digit
class or motion direction; for videos, the class folders) with the chance level (the majority class's share).

Features (M, D) float; labels (M,) int64; these run at reporting time (host syncs are fine here).
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..mae import MaskedVideoAutoencoder
from ..validation import check_positive_int
from .config import CompareConfig
from .data import ClipSet, SyntheticDigitClips, normalize_video

__all__ = ["knn_probe", "linear_probe", "clip_features", "probe", "probe_clips", "NO_LABELS"]

NO_LABELS = "no labels: put the videos in one folder per class to get a probe"


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


def _has_labels(train: ClipSet, test: ClipSet) -> bool:
    return not (bool((train.labels < 0).any()) or bool((test.labels < 0).any()) or len(set(train.labels.tolist())) < 2)


def probe(
    model: MaskedVideoAutoencoder, train: ClipSet, test: ClipSet, device: torch.device, k: int, seed: int
) -> Dict[str, Any]:
    """k-NN and linear-probe accuracy of the frozen encoder's clip features on the clip labels, and the chance
    level (the share of the most frequent class among ``test``); None, with a note, without labels or where
    the features are not finite."""
    if not _has_labels(train, test):
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


def probe_clips(
    cfg: CompareConfig, train: ClipSet, test: ClipSet, data_options: Dict[str, Any]
) -> Tuple[ClipSet, ClipSet, Dict[str, Any]]:
    """The clips the probes are fitted on and scored on, and their description. Embedded data
    (``data_options``: `SyntheticDigitClips`'s keyword arguments): ``cfg.probe_train_clips`` and
    ``cfg.probe_test_clips`` clips of the same seed after the training and held-out ones, labelled by
    ``cfg.probe_label``. Videos (empty ``data_options``): the training and held-out clips, labelled by class folder."""
    if not data_options:
        labelled = _has_labels(train, test)
        return (
            train,
            test,
            dict(
                label="class folder" if labelled else None,
                train_clips=len(train),
                test_clips=len(test),
                note=None if labelled else NO_LABELS,
            ),
        )
    first = cfg.train_clips + cfg.test_clips
    ptrain = SyntheticDigitClips(cfg.probe_train_clips, offset=first, **data_options).clipset(cfg.probe_label)
    ptest = SyntheticDigitClips(cfg.probe_test_clips, offset=first + cfg.probe_train_clips, **data_options).clipset(
        cfg.probe_label
    )
    return (
        ptrain,
        ptest,
        dict(label=cfg.probe_label, train_clips=len(ptrain), test_clips=len(ptest), classes=ptrain.class_names),
    )
