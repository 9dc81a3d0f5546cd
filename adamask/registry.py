"""The strategy registry: ``register_masking(name)`` makes a strategy usable everywhere a strategy name
is accepted (`create_masking`, the reference MAE, ``adamask compare``, the integrations).
Re-exported by `adamask.masking`, whose contract it is part of."""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, TypeVar

from .validation import check_grid, check_mask_ratio

if TYPE_CHECKING:
    from .masking import Masking

__all__ = ["NEEDS", "StrategyInfo", "register_masking", "create_masking", "list_maskings", "default_ratio",
           "strategy_info"]

F = TypeVar("F", bound=Callable[..., Any])  # a strategy factory: a class or a function

NEEDS = ("nothing", "tokens", "video")  # what a strategy looks at to draw its masks


@dataclass(frozen=True)
class StrategyInfo:
    """What the registry knows of a strategy: its factory, default ratio and declarations."""

    name: str
    factory: Callable[..., Callable[..., Masking]]
    default_ratio: float
    learned: bool
    needs: str
    takes_embed_dim: bool


_REGISTRY: Dict[str, StrategyInfo] = {}
# the core modules that register the built-in strategies: imported on the registry's first use, so that
# ``import adamask`` stays cheap while every lookup still sees every built-in strategy
BUILTIN_MODULES = ("strategies", "sampler", "motion", "error_predictor", "running_cell")
_builtins = {"loaded": False}


def _load_builtins() -> None:
    if _builtins["loaded"]:
        return
    _builtins["loaded"] = True  # set first: the modules imported here call register_masking themselves
    try:
        for module in BUILTIN_MODULES:
            importlib.import_module(f"{__package__}.{module}")
    except BaseException:
        _builtins["loaded"] = False
        raise


def _takes(factory: Callable[..., Any], param: str) -> bool:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return param in sig.parameters


def register_masking(name: str, *, default_ratio: float = 0.9, override: bool = False,
                     learned: Optional[bool] = None, needs: Optional[str] = None) -> Callable[[F], F]:
    """Decorator: register a strategy factory (a class or a function) under ``name``.

    The factory is called as ``factory(grid=(T', H', W'), mask_ratio=rho, **options)`` and must
    return a callable ``strategy(tokens: (B, N, D)) -> Masking``; a factory that takes ``embed_dim``
    also gets the model's token width. ``learned`` and ``needs`` default to the factory's own
    attributes (a `LearnedMaskingStrategy` subclass declares both); a function factory without them
    counts as non-learned, needing tokens. A registered name then works everywhere a strategy name
    is accepted: `create_masking`, the reference MAE, ``adamask compare`` and the integrations.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    check_mask_ratio(default_ratio, "default_ratio")
    _load_builtins()  # a custom strategy registered first must still clash with a built-in name
    if needs is not None and needs not in NEEDS:
        raise ValueError(f"needs must be one of {NEEDS}, got {needs!r}")

    def deco(factory: F) -> F:
        if not callable(factory):
            raise TypeError(f"register_masking({name!r}) needs a callable, got {type(factory).__name__}")
        old = _REGISTRY.get(name)
        if old is not None and not override and old.factory is not factory:
            raise ValueError(f"a masking strategy named {name!r} is already registered; pass override=True")
        is_l = bool(getattr(factory, "learned", False)) if learned is None else bool(learned)
        nd = needs if needs is not None else getattr(factory, "needs", "tokens")
        if nd not in NEEDS:
            raise ValueError(f"{name!r} declares needs={nd!r}; it must be one of {NEEDS}")
        _REGISTRY[name] = StrategyInfo(name, factory, default_ratio, is_l, nd,
                                       takes_embed_dim=is_l or _takes(factory, "embed_dim"))
        return factory

    return deco


def list_maskings() -> List[str]:
    """Names of all registered strategies, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def strategy_info(name: str) -> StrategyInfo:
    """The registry's record of ``name``: factory, default ratio, learned, needs, takes_embed_dim."""
    _load_builtins()
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, one of {list_maskings()}, got {type(name).__name__}")
    if name not in _REGISTRY:
        raise ValueError(f"unknown masking strategy {name!r}; known: {list_maskings()}")
    return _REGISTRY[name]


def default_ratio(name: str) -> float:
    """The mask ratio ``create_masking(name, ...)`` uses when none is given."""
    return strategy_info(name).default_ratio


def create_masking(name: str, *, grid: Sequence[int], mask_ratio: Optional[float] = None,
                   embed_dim: Optional[int] = None, **options: Any) -> Callable[..., Masking]:
    """Build the strategy registered as ``name`` for a token grid (T', H', W').

    mask_ratio defaults to the strategy's own default (0.9; 0.95 for ``adaptive``). ``embed_dim``,
    the token width, goes to the strategies that take it (learned ones) and is ignored by the
    others, so callers need not know which kind ``name`` is. ``adaptive`` returns an
    `AdaptiveTokenSampler` (options: num_heads, depth, width, variant, ...).
    """
    info = strategy_info(name)
    grid = check_grid(grid)
    ratio = info.default_ratio if mask_ratio is None else check_mask_ratio(mask_ratio)
    if embed_dim is not None and info.takes_embed_dim:
        options["embed_dim"] = embed_dim
    return info.factory(grid=grid, mask_ratio=ratio, **options)
