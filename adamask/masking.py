"""The masking contract: the `Masking` result, the strategy base classes, building a `Masking` from a mask
or a draw, its full check, and a learned strategy's loss term.

Convention everywhere: tokens are (B, N, D) in (t, h, w) order, ``mask`` is (B, N) bool with
**True = masked** (hidden from the encoder), and every sample of a batch has the same counts.

Two kinds of strategy, told apart by what they declare, never by their name:

- `MaskingStrategy`: draws masks without a loss of its own (random, tube, frame, ...). ``needs`` says
  what it looks at: ``"nothing"`` (``sample(batch_size)`` works in a data loader), ``"tokens"`` or
  ``"video"``.
- `LearnedMaskingStrategy`: an ``nn.Module`` that takes the token width ``embed_dim``, scores the
  tokens, returns a `Masking` carrying ``probs`` and is trained by its own loss term
  (``masking_loss``). Models add it as the sub-module ``mask_sampler`` and add
  ``weight * masking_loss(...)`` to the reconstruction loss.

The registry (`adamask.registry`) names strategies; the loss terms (`adamask.loss`) are tensor functions
this module builds on.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, ClassVar, Optional, Sequence, Set, cast

import torch
from torch import Tensor, nn

from .loss import LossSettings, sampling_loss
from .validation import (
    Grid,
    assert_on_device,
    check_choice,
    check_grid,
    check_mask_ratio,
    check_positive_int,
    check_tokens,
)

__all__ = [
    "Masking",
    "MaskingStrategy",
    "LearnedMaskingStrategy",
    "is_learned",
    "needs_video",
    "learned_loss",
    "masking_from_draw",
    "masking_from_mask",
    "check_masking",
    "set_validation",
    "validate_strategy_output",
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
    error_mask:  (B, N) bool, the masked tokens whose reconstruction error is known, when that is
                 a subset (decoder masking reconstructs only some); None = every masked token.
                 Set by models, read by the strategies' loss terms.
    """

    mask: Tensor
    visible_idx: Tensor
    masked_idx: Tensor
    probs: Optional[Tensor] = None
    draw_order: Optional[Tensor] = None
    error_mask: Optional[Tensor] = None

    def __post_init__(self) -> None:  # shape checks only: no data access, no host sync
        if self.mask.dtype != torch.bool or self.mask.dim() != 2:
            raise TypeError(
                f"Masking.mask must be a (B, N) bool tensor, got {self.mask.dtype} {tuple(self.mask.shape)}"
            )
        b, n = self.mask.shape
        nv, nm = self.visible_idx.shape[-1], self.masked_idx.shape[-1]
        if self.visible_idx.shape != (b, nv) or self.masked_idx.shape != (b, nm) or nv + nm != n:
            raise ValueError(
                f"Masking index shapes {tuple(self.visible_idx.shape)} + {tuple(self.masked_idx.shape)} "
                f"do not split mask {tuple(self.mask.shape)}"
            )
        if self.probs is not None and self.probs.shape != (b, n):
            raise ValueError(f"Masking.probs must be (B, N) = {(b, n)}, got {tuple(self.probs.shape)}")
        if self.error_mask is not None and (self.error_mask.shape != (b, n) or self.error_mask.dtype != torch.bool):
            raise ValueError(
                f"Masking.error_mask must be a (B, N) = {(b, n)} bool tensor, got "
                f"{self.error_mask.dtype} {tuple(self.error_mask.shape)}"
            )

    @property
    def num_visible(self) -> int:
        return self.visible_idx.shape[1]

    @property
    def num_masked(self) -> int:
        return self.masked_idx.shape[1]

    def to(self, device: torch.device | str) -> "Masking":
        def move(t: Optional[Tensor]) -> Optional[Tensor]:
            return None if t is None else t.to(device)

        return Masking(
            self.mask.to(device),
            self.visible_idx.to(device),
            self.masked_idx.to(device),
            move(self.probs),
            move(self.draw_order),
            move(self.error_mask),
        )

    @property
    def scored_mask(self) -> Tensor:
        """(B, N) bool: the masked tokens whose error a loss term may use (``error_mask`` or ``mask``)."""
        return self.mask if self.error_mask is None else self.error_mask


def masking_from_mask(
    mask: Tensor, num_visible: int, probs: Optional[Tensor] = None, draw_order: Optional[Tensor] = None
) -> Masking:
    """Build a `Masking` from a (B, N) bool mask holding exactly N - num_visible True per row.

    The extension point for custom strategies: draw a mask, then call this. A counting sort
    (cumsum + scatter, O(N), no sync) puts the visible indices first and the masked ones after,
    each ascending. A row with another count fails a device-side assertion (RuntimeError at once on
    CPU, a device assert on CUDA; see `adamask.validation.assert_on_device`): never garbage indices.
    """
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.dim() != 2:
        raise TypeError(
            f"mask must be a (B, N) bool tensor (True = masked), got "
            f"{getattr(mask, 'dtype', type(mask).__name__)} {tuple(getattr(mask, 'shape', ()))}"
        )
    b, n = mask.shape
    if isinstance(num_visible, bool) or not isinstance(num_visible, numbers.Integral) or not 0 <= num_visible <= n:
        raise ValueError(f"num_visible must be an int in [0, N={n}], got {num_visible!r}")
    num_visible = int(num_visible)
    masked_rank = mask.cumsum(1)
    assert_on_device(
        (masked_rank[:, -1] == n - num_visible).all() if n else torch.ones((), dtype=torch.bool),
        f"masking_from_mask: every row of mask must mask exactly N - num_visible = {n - num_visible} "
        f"of its {n} tokens (num_visible={num_visible})",
    )
    order = _visible_first_order(mask, num_visible, masked_rank)
    return Masking(mask, order[:, :num_visible], order[:, num_visible:], probs, draw_order)


def masking_from_draw(
    draw: Tensor, num_tokens: int, probs: Optional[Tensor] = None, draw_order: Optional[Tensor] = None
) -> Masking:
    """Build a `Masking` from ``draw`` (B, N_v) int64: N_v *distinct* visible token indices per row, in
    any order (what ``topk(...).indices`` and `gumbel_topk` return), over ``num_tokens`` tokens.

    The counts are exact by construction, so unlike `masking_from_mask` nothing is checked on the
    device; indices repeated within a row are a caller's error. Used by the built-in strategies."""
    b, num_visible = draw.shape
    mask = torch.ones(b, num_tokens, dtype=torch.bool, device=draw.device).scatter_(1, draw, False)
    order = _visible_first_order(mask, num_visible)
    return Masking(mask, order[:, :num_visible], order[:, num_visible:], probs, draw_order)


def _visible_first_order(mask: Tensor, num_visible: int, masked_rank: Optional[Tensor] = None) -> Tensor:
    """(B, N) bool mask with N - num_visible True per row -> (B, N) int64 token indices: the visible
    ones ascending, then the masked ones ascending. On CUDA one stable sort (fewest kernel launches);
    elsewhere a counting sort (cumsum + scatter, O(N), about 3x faster than the sort on CPU)."""
    if mask.device.type == "cuda":
        return torch.argsort(mask.view(torch.uint8), dim=1, stable=True)
    b, n = mask.shape
    if masked_rank is None:
        masked_rank = mask.cumsum(1)
    pos = torch.arange(n, device=mask.device)
    target = torch.where(mask, masked_rank + (num_visible - 1), pos - masked_rank).clamp_(0, max(n - 1, 0))
    return torch.zeros_like(target).scatter_(1, target, pos.expand(b, n))


# ---------------------------------------------------------------------------------------------
# base classes


class MaskingStrategy(nn.Module):
    """Base of the strategies: ``strategy(tokens) -> Masking``.

    grid (T', H', W') (or only ``num_tokens`` N for strategies that ignore the layout), mask_ratio;
    subclasses set ``num_visible``. Strategies with ``needs = "nothing"`` implement
    ``sample(batch_size, device, generator)``, so data loaders can draw masks without tokens.
    """

    learned: ClassVar[bool] = False
    needs: ClassVar[str] = "nothing"

    def __init__(self, grid: Optional[Sequence[int]], mask_ratio: float, *, num_tokens: Optional[int] = None) -> None:
        super().__init__()
        self.grid: Optional[Grid] = None if grid is None else check_grid(grid)
        if self.grid is None:
            if num_tokens is None:
                raise ValueError("give num_tokens (N) or grid (T', H', W')")
            if check_positive_int(num_tokens, "num_tokens") < 2:
                raise ValueError(f"num_tokens must be an int >= 2, got {num_tokens!r}")
        else:
            n = self.grid[0] * self.grid[1] * self.grid[2]
            if num_tokens is not None and num_tokens != n:
                raise ValueError(f"grid {self.grid} holds {n} tokens, not num_tokens={num_tokens}")
            num_tokens = n
        self.num_tokens: int = int(num_tokens)
        self.mask_ratio: float = check_mask_ratio(mask_ratio)
        self.num_visible: int = self.num_tokens  # set by subclasses

    @property
    def num_masked(self) -> int:
        return self.num_tokens - self.num_visible

    def require_grid(self) -> Grid:
        """The token grid (T', H', W'); ValueError for a strategy built from ``num_tokens`` alone."""
        if self.grid is None:
            raise ValueError(f"{type(self).__name__} needs the token grid (T', H', W'); build it with grid=...")
        return self.grid

    def _set_counts(self) -> None:
        """Derive ``num_visible`` (and any other count) from ``mask_ratio``; ValueError if degenerate.
        Strategies that implement it support `set_mask_ratio` (ratio schedules)."""
        raise NotImplementedError

    def set_mask_ratio(self, mask_ratio: float) -> None:
        """Change the mask ratio in place (e.g. each step of a `adamask.schedules.RatioSchedule`);
        the counts follow and stay the same for every sample of a batch. On a degenerate ratio the
        old one is kept and a ValueError raised."""
        if type(self)._set_counts is MaskingStrategy._set_counts:
            raise NotImplementedError(f"{type(self).__name__} cannot change its mask ratio (it defines no _set_counts)")
        old = self.mask_ratio
        self.mask_ratio = check_mask_ratio(mask_ratio)
        try:
            self._set_counts()
        except ValueError:
            self.mask_ratio = old
            self._set_counts()
            raise

    def sample(
        self, batch_size: int, device: torch.device | str | None = None, generator: Optional[torch.Generator] = None
    ) -> Masking:
        raise NotImplementedError(
            f"{type(self).__name__} draws its masks from the tokens: call it with tokens (B, N, D)"
        )

    def forward(
        self,
        tokens: Optional[Tensor] = None,
        generator: Optional[torch.Generator] = None,
        *,
        batch_size: Optional[int] = None,
        device: torch.device | str | None = None,
    ) -> Masking:
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


class LearnedMaskingStrategy(MaskingStrategy):
    """Base of learned strategies: tokens (B, N, embed_dim) -> Masking with ``probs`` (B, N) float32.

    The contract every model and integration relies on (instead of a strategy's name):
    - the constructor takes ``embed_dim`` (the registry passes the model's token width);
    - ``forward(tokens, generator=None)`` returns a `Masking` with ``probs``;
    - ``masking_loss(masking, token_error, settings)`` is its unweighted loss term (scalar float32);
      the model adds ``settings.weight * masking_loss(...)``. Default: AdaMAE's `sampling_loss` with
      ``settings.estimator`` / ``settings.baseline``;
    - ``no_weight_decay()`` names parameters to keep out of weight decay.
    """

    learned: ClassVar[bool] = True
    needs: ClassVar[str] = "tokens"

    def __init__(
        self,
        embed_dim: int,
        mask_ratio: float,
        *,
        grid: Optional[Sequence[int]] = None,
        num_tokens: Optional[int] = None,
    ) -> None:
        super().__init__(grid, mask_ratio, num_tokens=num_tokens)
        self.embed_dim: int = check_positive_int(embed_dim, "embed_dim")

    # a learned strategy always needs the tokens: a narrower signature than MaskingStrategy.forward
    def forward(self, tokens: Tensor, generator: Optional[torch.Generator] = None) -> Masking:  # type: ignore[override]
        raise NotImplementedError

    def masking_loss(self, masking: Masking, token_error: Tensor, settings: LossSettings) -> Tensor:
        """Unweighted loss term of this strategy for ``masking`` (drawn by it) and the per-token
        reconstruction error (B, N_m) of its masked tokens (ascending) or (B, N)."""
        if masking.probs is None:
            raise ValueError(
                f"{type(self).__name__}'s loss needs the probs of a masking it drew (Masking.probs is None)"
            )
        return sampling_loss(
            masking.probs,
            masking.scored_mask,
            token_error,
            estimator=settings.estimator,
            baseline=settings.baseline,
            draw_order=masking.draw_order,
            entropy_weight=settings.entropy_weight,
        )

    def check_loss_settings(self, settings: LossSettings) -> None:
        """Refuse (ValueError naming the setting) loss settings this strategy's loss term cannot apply; models
        call it when the strategy is attached. The default (AdaMAE's sampling loss) applies every setting."""

    def no_weight_decay(self) -> Set[str]:
        return set()


def needs_video(strategy: Any) -> bool:
    """True for a strategy that draws its masks from the clip's pixels (``needs == "video"``) rather than the
    tokens."""
    return getattr(strategy, "needs", "tokens") == "video"


def is_learned(strategy: Any) -> bool:
    """True for a learned strategy (one with ``learned = True``: trained by its own loss term)."""
    return bool(getattr(strategy, "learned", False))


def learned_loss(strategy: Any, masking: Masking, token_error: Tensor, settings: LossSettings) -> Optional[Tensor]:
    """The unweighted loss term of a learned ``strategy`` for a `Masking` it drew; None for a strategy
    that is not learned or a masking without ``probs`` (e.g. a caller-given mask). Learned strategies
    without a ``masking_loss`` method get AdaMAE's `sampling_loss`."""
    if masking.probs is None or not is_learned(strategy):
        return None
    own = getattr(strategy, "masking_loss", None)
    if callable(own):
        return cast(Tensor, own(masking, token_error, settings))
    return LearnedMaskingStrategy.masking_loss(strategy, masking, token_error, settings)


# ---------------------------------------------------------------------------------------------
# the contract, checked in full (one host sync)


def check_masking(masking: Masking, num_tokens: Optional[int] = None, what: str = "masking") -> None:
    """Full check of a `Masking` (reads its values: one host sync; for tests, debugging and the first
    call of a strategy, not for every step): every row masks the same count, ``visible_idx`` and
    ``masked_idx`` are int64, strictly ascending, in range, and agree with ``mask`` (so they are
    disjoint and cover all N tokens); ``probs``, if any, are finite probabilities summing to 1 per row;
    ``draw_order``, if any, holds the visible indices. Raises ValueError naming ``what``."""
    if not isinstance(masking, Masking):
        raise TypeError(f"{what} must be an adamask.Masking, got {type(masking).__name__}")
    mask, vis, msk = masking.mask, masking.visible_idx, masking.masked_idx
    b, n = mask.shape
    if num_tokens is not None and n != num_tokens:
        raise ValueError(f"{what}: mask has {n} tokens, expected {num_tokens}")
    for name, idx in (("visible_idx", vis), ("masked_idx", msk)):
        if idx.dtype != torch.int64:
            raise ValueError(f"{what}: {name} must be int64, got {idx.dtype}")
    if b == 0 or n == 0 or mask.device.type == "meta":  # nothing to read
        return
    idx = torch.cat([vis, msk], 1)
    safe = idx.clamp(0, n - 1)
    ascending = torch.ones((), dtype=torch.bool, device=mask.device)
    for part in (vis, msk):
        if part.shape[1] > 1:
            ascending = ascending & (part[:, 1:] > part[:, :-1]).all()
    checks = {
        "every row masks num_masked tokens": (mask.sum(1) == msk.shape[1]).all(),
        "indices in [0, N)": ((idx >= 0) & (idx < n)).all(),
        "indices strictly ascending": ascending,
        "visible_idx unmasked and masked_idx masked": (~mask.gather(1, safe[:, : vis.shape[1]])).all()
        & mask.gather(1, safe[:, vis.shape[1] :]).all(),
    }
    if masking.probs is not None:
        p = masking.probs.float()
        checks["probs finite and >= 0"] = (torch.isfinite(p) & (p >= 0)).all()
        checks["probs sum to 1 per row"] = ((p.sum(1) - 1).abs() < 1e-3).all()
    if masking.draw_order is not None:
        d = masking.draw_order
        checks["draw_order holds the visible indices"] = (
            d.sort(1).values.eq(vis).all() if d.shape == vis.shape else torch.zeros((), dtype=torch.bool)
        )
    values = torch.stack([c.to(mask.device) for c in checks.values()]).tolist()
    failed = [name for name, ok in zip(checks, values, strict=True) if not ok]
    if failed:
        raise ValueError(
            f"{what} breaks the Masking contract: not {'; not '.join(failed)} "
            f"(mask {tuple(mask.shape)}, {vis.shape[1]} visible, {msk.shape[1]} masked)"
        )


_VALIDATION_MODES = ("first", "always", "off")
_validation = {"mode": "first"}


def set_validation(mode: str) -> None:
    """How models check the `Masking` their strategy returns with `check_masking` (one host sync each):
    "first" (default) on a strategy's first call in each model, "always" on every call (debugging a
    custom strategy), "off" never. Masks built with `masking_from_mask` are count-checked on the
    device in every mode."""
    _validation["mode"] = check_choice(mode, _VALIDATION_MODES, "mode")


def validate_strategy_output(owner: Any, strategy: Any, masking: Masking, num_tokens: int) -> Masking:
    """`check_masking` of ``strategy``'s output per the `set_validation` mode; ``owner`` (e.g. the
    model using the strategy) remembers that its first output was checked. Returns ``masking``."""
    mode = _validation["mode"]
    if torch.compiler.is_compiling():  # a full check reads the masks (a host sync): not inside a compiled graph
        return masking
    if mode == "always" or (mode == "first" and not getattr(owner, "_adamask_masking_checked", False)):
        name = getattr(strategy, "__name__", type(strategy).__name__)
        check_masking(masking, num_tokens, f"the output of masking strategy {name}")
        try:
            object.__setattr__(owner, "_adamask_masking_checked", True)
        except AttributeError:  # objects without a __dict__ are checked every time
            pass
    return masking
