"""The `Masking` result, the strategy base class, argument checks and the strategy registry.

Convention everywhere: tokens are (B, N, D) in (t, h, w) order, ``mask`` is (B, N) bool with
**True = masked** (hidden from the encoder), and every sample of a batch has the same counts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

Grid = Tuple[int, int, int]

__all__ = [
    "Masking",
    "MaskingStrategy",
    "register_masking",
    "create_masking",
    "list_maskings",
    "default_ratio",
    "check_grid",
    "check_mask_ratio",
    "check_tokens",
    "masking_from_mask",
]


@dataclass(frozen=True)
class Masking:
    """One batch of masks.

    mask:        (B, N) bool, True = masked.
    visible_idx: (B, N_v) int64, ascending token indices the encoder sees.
    masked_idx:  (B, N - N_v) int64, ascending token indices to reconstruct.
    probs:       (B, N) float32 sampling probabilities for learned strategies, else None.
    draw_order:  (B, N_v) int64, visible indices in the order they were drawn (learned
                 strategies only; used by the exact Plackett-Luce loss), else None.
    """

    mask: Tensor
    visible_idx: Tensor
    masked_idx: Tensor
    probs: Optional[Tensor] = None
    draw_order: Optional[Tensor] = None

    def __post_init__(self) -> None:  # shape checks only: no data access, no host sync
        if self.mask.dtype != torch.bool or self.mask.dim() != 2:
            raise TypeError(f"Masking.mask must be a (B, N) bool tensor, got {self.mask.dtype} {tuple(self.mask.shape)}")
        b, n = self.mask.shape
        nv, nm = self.visible_idx.shape[-1], self.masked_idx.shape[-1]
        if self.visible_idx.shape != (b, nv) or self.masked_idx.shape != (b, nm) or nv + nm != n:
            raise ValueError(
                f"Masking index shapes {tuple(self.visible_idx.shape)} + {tuple(self.masked_idx.shape)} "
                f"do not split mask {tuple(self.mask.shape)}"
            )
        if self.probs is not None and self.probs.shape != (b, n):
            raise ValueError(f"Masking.probs must be (B, N) = {(b, n)}, got {tuple(self.probs.shape)}")

    @property
    def num_visible(self) -> int:
        return self.visible_idx.shape[1]

    @property
    def num_masked(self) -> int:
        return self.masked_idx.shape[1]

    def to(self, device: torch.device | str) -> "Masking":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Masking(move(self.mask), move(self.visible_idx), move(self.masked_idx),
                       move(self.probs), move(self.draw_order))


def masking_from_mask(mask: Tensor, num_visible: int, probs: Optional[Tensor] = None,
                      draw_order: Optional[Tensor] = None) -> Masking:
    """Build a `Masking` from a (B, N) bool mask holding exactly N - num_visible True per row.

    A counting sort (cumsum + scatter, O(N), no sync) puts the visible indices first and the masked
    ones after, each ascending; rows with another count are clamped, not checked.
    """
    b, n = mask.shape
    pos = torch.arange(n, device=mask.device)
    masked_rank = mask.cumsum(1)
    target = torch.where(mask, masked_rank + (num_visible - 1), pos - masked_rank).clamp_(0, n - 1)
    order = torch.empty_like(target).scatter_(1, target, pos.expand(b, n))
    return Masking(mask, order[:, :num_visible], order[:, num_visible:], probs, draw_order)


# ---------------------------------------------------------------------------------------------
# argument checks (shared by every strategy, the sampler and the integrations)

def check_grid(grid: Sequence[int], name: str = "grid") -> Grid:
    """Validate a token grid (T', H', W') of three positive ints."""
    if isinstance(grid, (str, bytes)) or not isinstance(grid, Sequence) or len(grid) != 3:
        raise TypeError(f"{name} must be a sequence of 3 positive ints (T', H', W'), got {grid!r}")
    out = []
    for g in grid:
        if isinstance(g, bool) or not isinstance(g, int) or g < 1:
            raise ValueError(f"{name} must hold 3 positive ints (T', H', W'), got {tuple(grid)!r}")
        out.append(int(g))
    return (out[0], out[1], out[2])


def check_mask_ratio(mask_ratio: float, name: str = "mask_ratio") -> float:
    """Validate a mask ratio: a real number strictly between 0 and 1."""
    if isinstance(mask_ratio, bool) or not isinstance(mask_ratio, (int, float)):
        raise TypeError(f"{name} must be a float in (0, 1), got {type(mask_ratio).__name__} {mask_ratio!r}")
    if math.isnan(mask_ratio) or not 0.0 < mask_ratio < 1.0:
        raise ValueError(f"{name} must be in the open interval (0, 1), got {mask_ratio!r}")
    return float(mask_ratio)


def check_counts(num_tokens: int, num_visible: int, what: str) -> None:
    if num_visible < 1 or num_visible >= num_tokens:
        raise ValueError(
            f"{what} leaves {num_visible} of {num_tokens} tokens visible; mask_ratio must leave at least "
            f"one visible and one masked token"
        )


def check_tokens(tokens: Tensor, num_tokens: int, name: str = "tokens") -> None:
    """tokens must be a (B, N, D) tensor with N == num_tokens."""
    if not isinstance(tokens, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, N, D), got {type(tokens).__name__}")
    if tokens.dim() != 3:
        raise ValueError(f"{name} must have shape (B, N, D), got rank {tokens.dim()} shape {tuple(tokens.shape)}")
    if tokens.shape[1] != num_tokens:
        raise ValueError(
            f"{name} has {tokens.shape[1]} tokens but the strategy's grid has {num_tokens}; "
            f"token count must equal T'*H'*W'"
        )


# ---------------------------------------------------------------------------------------------
# base class

class MaskingStrategy(nn.Module):
    """Base of the built-in strategies: ``strategy(tokens) -> Masking``.

    Subclasses set ``num_visible`` and implement ``sample(batch_size, device, generator)``;
    non-learned strategies need no tokens, so data loaders can call ``sample`` directly.
    """

    learned: bool = False

    def __init__(self, grid: Sequence[int], mask_ratio: float) -> None:
        super().__init__()
        self.grid: Grid = check_grid(grid)
        self.mask_ratio: float = check_mask_ratio(mask_ratio)
        self.num_tokens: int = math.prod(self.grid)
        self.num_visible: int = self.num_tokens  # set by subclasses

    @property
    def num_masked(self) -> int:
        return self.num_tokens - self.num_visible

    def sample(self, batch_size: int, device: torch.device | str | None = None,
               generator: Optional[torch.Generator] = None) -> Masking:
        raise NotImplementedError

    def forward(self, tokens: Optional[Tensor] = None, generator: Optional[torch.Generator] = None, *,
                batch_size: Optional[int] = None, device: torch.device | str | None = None) -> Masking:
        """tokens: (B, N, D) on any device -> Masking on the same device.

        Without tokens, give ``batch_size`` (and ``device``): the same as ``sample``.
        """
        if tokens is None:
            if batch_size is None:
                raise ValueError("give tokens (B, N, D) or batch_size")
            return self.sample(batch_size, device, generator)
        check_tokens(tokens, self.num_tokens)
        return self.sample(tokens.shape[0], tokens.device, generator)

    def extra_repr(self) -> str:
        return f"grid={self.grid}, mask_ratio={self.mask_ratio}, num_visible={self.num_visible}"


def check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size


# ---------------------------------------------------------------------------------------------
# registry

_REGISTRY: Dict[str, Callable[..., Callable[..., Masking]]] = {}
_DEFAULT_RATIO: Dict[str, float] = {}


def register_masking(name: str, *, default_ratio: float = 0.9, override: bool = False) -> Callable:
    """Decorator: register a strategy factory (a class or a function) under ``name``.

    The factory is called as ``factory(grid=(T', H', W'), mask_ratio=rho, **options)`` and must
    return a callable ``strategy(tokens: (B, N, D)) -> Masking``. A registered name then works
    everywhere a strategy name is accepted.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    check_mask_ratio(default_ratio, "default_ratio")

    def deco(factory: Callable) -> Callable:
        if not callable(factory):
            raise TypeError(f"register_masking({name!r}) needs a callable, got {type(factory).__name__}")
        if name in _REGISTRY and not override and _REGISTRY[name] is not factory:
            raise ValueError(f"a masking strategy named {name!r} is already registered; pass override=True")
        _REGISTRY[name] = factory
        _DEFAULT_RATIO[name] = default_ratio
        return factory

    return deco


def list_maskings() -> List[str]:
    """Names of all registered strategies, sorted."""
    return sorted(_REGISTRY)


def default_ratio(name: str) -> float:
    """The mask ratio ``create_masking(name, ...)`` uses when none is given."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown masking strategy {name!r}; known: {list_maskings()}")
    return _DEFAULT_RATIO[name]


def create_masking(name: str, *, grid: Sequence[int], mask_ratio: Optional[float] = None,
                   **options) -> Callable[..., Masking]:
    """Build the strategy registered as ``name`` for a token grid (T', H', W').

    mask_ratio defaults to the strategy's own default (0.9; 0.95 for ``adaptive``).
    ``adaptive`` returns an `AdaptiveTokenSampler` (options: embed_dim, num_heads, depth, ...).
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, one of {list_maskings()}, got {type(name).__name__}")
    if name not in _REGISTRY:
        raise ValueError(f"unknown masking strategy {name!r}; known: {list_maskings()}")
    grid = check_grid(grid)
    ratio = _DEFAULT_RATIO[name] if mask_ratio is None else check_mask_ratio(mask_ratio)
    return _REGISTRY[name](grid=grid, mask_ratio=ratio, **options)
