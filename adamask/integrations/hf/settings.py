"""The Hugging Face integration's settings: ``config.adamask_<name>``, their defaults and checks.

Every setting is validated before any is written, so a refused call leaves the config as it was.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional

from transformers import VideoMAEConfig

from ...validation import check_bool, check_mask_ratio, check_positive_int
from ..adapter import check_token_strategy, make_loss_settings

__all__ = ["ADAMASK_DEFAULTS", "CONFIG_PREFIX", "STRATEGY_OPTIONS", "adamask_settings", "strategy_options_of"]

CONFIG_PREFIX = "adamask_"

ADAMASK_DEFAULTS: Dict[str, Any] = {
    "mask_ratio": 0.95,  # fraction of tokens hidden from the encoder
    "sampling_weight": 1e-4,  # lambda in loss = L_R + lambda * L_S
    "sampler_depth": 1,  # sampler blocks
    "sampler_width": None,  # None: config.hidden_size
    "sampler_heads": None,  # None: the largest count <= 8 dividing the width
    "sampler_variant": "block",  # "block" | "attention" | "mlp"
    "detach_input": True,  # keep L_S off the patch embedding
    "sampling_estimator": "paper",  # see adamask.sampling_loss
    "sampling_baseline": None,  # None | "mean" | "rloo"
    "sampling_entropy_weight": 0.0,  # weight of the entropy bonus on the sampler's distribution
    "strategy": "adaptive",  # any registered strategy that draws from the tokens
    "strategy_options": None,  # further keyword arguments of the strategy (a JSON dict), e.g. motion's temperature
}

# options of the strategy (config name -> the strategy's keyword); each is passed only when it differs
# from its default here, which is the adaptive sampler's own, so other strategies keep theirs
STRATEGY_OPTIONS = {
    "sampler_depth": "depth",
    "sampler_width": "width",
    "sampler_heads": "num_heads",
    "sampler_variant": "variant",
    "detach_input": "detach_input",
}


def adamask_settings(config: VideoMAEConfig, **overrides: Any) -> Dict[str, Any]:
    """Validate ``overrides`` merged with ``config.adamask_*`` and the defaults, then write them all to
    ``config.adamask_*`` (numbers as plain Python ints and floats, so the config saves as JSON);
    returns the settings. Nothing is written unless every setting is valid: a refused call leaves
    ``config`` as it was. A config saved before an option existed gets its default (``strategy``:
    ``"adaptive"``; ``sampling_entropy_weight``: 0). The strategy's own options (variant, heads, ...)
    are checked when the strategy is built."""
    unknown = sorted(set(overrides) - set(ADAMASK_DEFAULTS))
    if unknown:
        raise TypeError(f"unknown adamask option(s) {unknown}; known: {sorted(ADAMASK_DEFAULTS)}")
    merged = {
        name: overrides[name] if name in overrides else getattr(config, CONFIG_PREFIX + name, default)
        for name, default in ADAMASK_DEFAULTS.items()
    }
    s = _checked_settings(merged)
    for name, value in s.items():
        setattr(config, CONFIG_PREFIX + name, value)
    return s


def _optional_positive_int(value: Any, name: str) -> Optional[int]:
    return None if value is None else check_positive_int(value, name)


def _checked_settings(s: Mapping[str, Any]) -> Dict[str, Any]:
    """The settings validated and normalised (numpy numbers become Python numbers); raises
    ValueError / TypeError naming the first bad one."""
    loss = make_loss_settings(
        s["sampling_weight"], s["sampling_estimator"], s["sampling_baseline"], s["sampling_entropy_weight"]
    )
    out = dict(s)
    out.update(
        mask_ratio=check_mask_ratio(s["mask_ratio"], "mask_ratio"),
        sampling_weight=loss.weight,
        sampling_entropy_weight=loss.entropy_weight,
        sampler_depth=check_positive_int(s["sampler_depth"], "sampler_depth"),
        sampler_width=_optional_positive_int(s["sampler_width"], "sampler_width"),
        sampler_heads=_optional_positive_int(s["sampler_heads"], "sampler_heads"),
        detach_input=check_bool(s["detach_input"], "detach_input"),
        strategy=check_token_strategy(s["strategy"]),
        strategy_options=_checked_strategy_options(s["strategy_options"]),
    )
    if not isinstance(s["sampler_variant"], str):
        raise TypeError(
            f"sampler_variant must be a str, got {type(s['sampler_variant']).__name__} {s['sampler_variant']!r}"
        )
    return out


def strategy_options_of(settings: Mapping[str, Any]) -> Dict[str, Any]:
    """The strategy's keyword arguments: the `STRATEGY_OPTIONS` that differ from their default, then
    ``strategy_options``."""
    options = {kw: settings[name] for name, kw in STRATEGY_OPTIONS.items() if settings[name] != ADAMASK_DEFAULTS[name]}
    return {**options, **(settings["strategy_options"] or {})}


def _checked_strategy_options(value: Any) -> Optional[Dict[str, Any]]:
    """None or a dict of the strategy's keyword arguments holding JSON values (saved in the config)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise TypeError(
            f"strategy_options must be a dict of the strategy's keyword arguments (str keys), got {value!r}"
        )
    try:
        json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError):
        raise TypeError(
            f"strategy_options must hold plain JSON values (they are saved with the config), got {value!r}"
        ) from None
    return dict(value)
