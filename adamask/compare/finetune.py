"""The fine-tuning probe, the downstream measure video MAEs are judged by: a copy of an encoder, run on every token
(no masking), with a classification head, trained end to end on labelled clips for a fixed budget and scored on
held-out clips, once per fine-tuning seed.

The recipe (`FineTuneRecipe`) is the stable kind: AdamW with a linear warm-up and a cosine decay, the encoder at a
lower learning rate than the head with layer-wise decay (the blocks nearer the input learn slower), and a head
that standardises the mean-pooled features across the batch before its linear layer (BatchNorm without affine
parameters, as MAE's linear probe does): a pretrained encoder's pooled features differ between clips by about
1% of their norm, on which a plain linear or LayerNorm head sits on a loss plateau for hundreds of steps.

Pairing: fine-tuning seed ``f`` of encoder seed ``s`` (`finetune_seeds`) fixes the head's initialisation and the
order of the batches, so the encoders of one seed - pretrained with any strategy, or untrained - are fine-tuned
on the same batches from the same head, and their accuracies differ by their encoders only. Different encoder
seeds get different fine-tuning seeds, so the spread over encoder seeds includes the fine-tuning noise.

Shapes: clips (M, C, T, H, W) float in [0, 1] (`adamask.compare.data.ClipSet`), labels (M,) int64 >= 0.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, List

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..mae import MaskedVideoAutoencoder
from ..validation import check_positive_int, check_real
from .data import ClipSet, normalize_video

__all__ = ["FineTuneRecipe", "EncoderClassifier", "finetune_seeds", "finetune_accuracy", "finetune_probe"]


@dataclass(frozen=True)
class FineTuneRecipe:
    """How the fine-tuning probe trains: ``steps`` AdamW steps of ``batch_size`` clips per fine-tuning seed
    (``seeds`` of them), the head at ``lr`` and encoder block ``i`` of ``depth`` at ``lr * encoder_lr_scale *
    layer_decay ** (depth - 1 - i)`` (the patch embedding one step further down), a linear warm-up over
    ``warmup`` of the steps then a cosine decay to 0, weight decay ``weight_decay`` on the weight matrices.

    The defaults, on the embedded data's direction labels (the 2 x 96 encoder pretrained for 150 steps, 200
    fine-tuning steps of 16 clips): the pretrained encoder reaches 0.29 at lr 1e-3 and 0.63 at 3e-3 (0.74 without
    layer decay), the untrained one 0.82-0.85 at either - a lower rate leaves a pretrained encoder, whose pooled
    features hardly differ between clips, far from fitting in a fixed budget."""

    steps: int
    seeds: int = 2
    lr: float = 3e-3
    batch_size: int = 16
    encoder_lr_scale: float = 1.0
    layer_decay: float = 0.75
    warmup: float = 0.1
    weight_decay: float = 0.05

    def __post_init__(self) -> None:
        for name in ("steps", "seeds", "batch_size"):
            check_positive_int(getattr(self, name), f"fine-tuning {name}")
        check_real(self.lr, "fine-tuning lr", low=0.0, low_open=True)
        for name in ("encoder_lr_scale", "layer_decay"):
            check_real(getattr(self, name), f"fine-tuning {name}", low=0.0, low_open=True, high=1.0)
        check_real(self.warmup, "fine-tuning warmup", low=0.0, high=1.0)
        check_real(self.weight_decay, "fine-tuning weight_decay", low=0.0)

    def lr_factor(self, step: int) -> float:
        """The learning rate at ``step`` (0-based) as a share of each group's peak: linear warm-up, cosine to 0."""
        warm = max(1, round(self.warmup * self.steps))
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, self.steps - warm)))


class EncoderClassifier(nn.Module):
    """A copy of a reference MAE's encoder (patch embedding, position table, blocks, final norm) on every token,
    mean-pooled, then BatchNorm1d without affine parameters and a linear layer: video (B, C, T, H, W)
    normalised -> logits (B, num_classes). The MAE it was copied from is left as it was."""

    pos_embed: Tensor

    def __init__(self, model: MaskedVideoAutoencoder, num_classes: int, generator: torch.Generator) -> None:
        super().__init__()
        self.input_shape = model.input_shape
        self.patch_embed = copy.deepcopy(model.patch_embed)
        self.blocks = copy.deepcopy(model.blocks)
        self.norm = copy.deepcopy(model.norm)
        self.register_buffer("pos_embed", model.pos_embed.detach().clone(), persistent=False)
        self.head_norm = nn.BatchNorm1d(model.embed_dim, affine=False)
        self.head = nn.Linear(model.embed_dim, num_classes)
        weight = torch.randn(self.head.weight.shape, generator=generator) * 0.01
        with torch.no_grad():
            self.head.weight.copy_(weight)
            self.head.bias.zero_()

    def features(self, video: Tensor) -> Tensor:
        """Mean-pooled encoder output (B, D) of every token."""
        x = self.patch_embed(video) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x).mean(1)

    def forward(self, video: Tensor) -> Tensor:
        return self.head(self.head_norm(self.features(video)))

    def param_groups(self, recipe: FineTuneRecipe) -> List[Dict[str, Any]]:
        """AdamW groups: each with its ``lr_scale`` (layer-wise decay below the head) and weight decay on the
        weight matrices only."""
        depth = len(self.blocks)
        scales = [("head", 1.0), ("norm", recipe.encoder_lr_scale)]
        scales += [
            (f"blocks.{i}", recipe.encoder_lr_scale * recipe.layer_decay ** (depth - 1 - i)) for i in range(depth)
        ]
        scales.append(("patch_embed", recipe.encoder_lr_scale * recipe.layer_decay**depth))
        groups: Dict[tuple, List[nn.Parameter]] = {}
        for name, p in self.named_parameters():
            scale = next(s for prefix, s in scales if name == prefix or name.startswith(prefix + "."))
            groups.setdefault((scale, p.dim() >= 2), []).append(p)
        return [
            dict(params=ps, lr_scale=scale, weight_decay=recipe.weight_decay if decay else 0.0)
            for (scale, decay), ps in groups.items()
        ]


def finetune_seeds(encoder_seed: int, count: int) -> List[int]:
    """The fine-tuning seeds of the encoders of seed ``encoder_seed``: ``count`` of them, none shared with another
    encoder seed."""
    return [1_000_003 * (encoder_seed + 1) + f for f in range(count)]


def _batches(num: int, recipe: FineTuneRecipe, seed: int) -> List[Tensor]:
    """The clip indices of every step: epochs of a permutation seeded by ``seed``, ``batch_size`` clips a step (at
    most ``num``)."""
    g = torch.Generator().manual_seed(seed)
    size = min(recipe.batch_size, num)
    order = torch.cat([torch.randperm(num, generator=g) for _ in range(math.ceil(recipe.steps * size / num))])
    return list(order[: recipe.steps * size].view(recipe.steps, size))


def _autocast(device: torch.device) -> torch.autocast:
    """bfloat16 autocast on CUDA (as video MAEs are fine-tuned), float32 elsewhere."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def finetune_accuracy(
    model: MaskedVideoAutoencoder,
    train: ClipSet,
    test: ClipSet,
    recipe: FineTuneRecipe,
    seed: int,
    device: torch.device,
    eval_batch_size: int = 64,
) -> Dict[str, float]:
    """Fine-tune a copy of ``model``'s encoder with a new head on ``train`` (labels >= 0) for ``recipe.steps``
    steps with fine-tuning seed ``seed`` (in bfloat16 autocast on CUDA); returns its accuracy on ``test`` and its
    training loss over the last tenth of the steps."""
    num_classes = int(max(int(train.labels.max()), int(test.labels.max()))) + 1
    net = EncoderClassifier(model, num_classes, torch.Generator().manual_seed(seed)).to(device)
    opt = torch.optim.AdamW(net.param_groups(recipe), lr=recipe.lr, betas=(0.9, 0.999))
    labels = train.labels.to(device)
    net.train()
    losses: List[Tensor] = []
    for step, idx in enumerate(_batches(len(train), recipe, seed)):
        for g in opt.param_groups:
            g["lr"] = recipe.lr * g["lr_scale"] * recipe.lr_factor(step)
        video = normalize_video(train.videos[idx]).to(device, non_blocking=True)
        with _autocast(device):
            loss = F.cross_entropy(net(video).float(), labels[idx.to(device)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= recipe.steps - max(1, recipe.steps // 10):
            losses.append(loss.detach())
    net.eval()
    correct = torch.zeros((), device=device)
    with torch.no_grad():
        for i in range(0, len(test), eval_batch_size):
            video = normalize_video(test.videos[i : i + eval_batch_size]).to(device)
            with _autocast(device):
                logits = net(video)
            correct += (logits.argmax(1) == test.labels[i : i + eval_batch_size].to(device)).sum()
    return dict(accuracy=float(correct) / len(test), final_train_loss=float(torch.stack(losses).mean()))


def finetune_probe(
    model: MaskedVideoAutoencoder,
    train: ClipSet,
    test: ClipSet,
    recipe: FineTuneRecipe,
    encoder_seed: int,
    device: torch.device,
) -> Dict[str, Any]:
    """The fine-tuning probe of ``model``'s encoder (seed ``encoder_seed``): `finetune_accuracy` once per
    fine-tuning seed (`finetune_seeds`). Returns accuracy (the mean over the fine-tuning seeds), accuracies and
    final_train_losses (one per fine-tuning seed), seeds, and the recipe."""
    seeds = finetune_seeds(encoder_seed, recipe.seeds)
    runs = [finetune_accuracy(model, train, test, recipe, s, device) for s in seeds]
    accuracies = [r["accuracy"] for r in runs]
    return dict(
        accuracy=sum(accuracies) / len(accuracies),
        accuracies=accuracies,
        final_train_losses=[r["final_train_loss"] for r in runs],
        seeds=seeds,
        recipe=asdict(recipe),
    )
