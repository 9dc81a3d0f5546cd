"""A tiny VideoMAE / VideoMAEv2 ``PretrainVisionTransformer`` registered with timm as
``pretrain_videomae_tiny_patch8_32`` (32 x 32 pixels, patch 8, tubelet 2, width 32, one block each),
so that their own pretraining script runs in seconds on the CPU: give the launcher ``--import
_tiny_videomae`` (with this folder on PYTHONPATH) and their script ``--model pretrain_videomae_tiny_patch8_32
--input_size 32``. Their model class is imported from the checkout when the model is built."""

from __future__ import annotations

import importlib
import inspect
from functools import partial
from typing import Any

from timm.models import register_model
from torch import nn

MODEL = "pretrain_videomae_tiny_patch8_32"


def _their_modeling() -> Any:
    """Their ``modeling_pretrain``: VideoMAEv2's ``models.modeling_pretrain`` or v1's top-level one."""
    try:
        return importlib.import_module("models.modeling_pretrain")
    except ImportError:
        return importlib.import_module("modeling_pretrain")


@register_model
def pretrain_videomae_tiny_patch8_32(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    cls = _their_modeling().PretrainVisionTransformer
    accepted = set(inspect.signature(cls.__init__).parameters)
    run = {k: v for k, v in kwargs.items() if k in accepted and k not in ("decoder_depth",)}
    return cls(
        img_size=32,
        patch_size=8,
        encoder_embed_dim=32,
        encoder_depth=1,
        encoder_num_heads=2,
        decoder_num_classes=3 * 2 * 8 * 8,
        decoder_embed_dim=16,
        decoder_depth=1,
        decoder_num_heads=2,
        qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        **run,
    )
