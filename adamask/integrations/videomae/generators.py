"""Drop-ins for VideoMAE's data-loader mask generators, for every registered strategy.

A strategy that needs nothing (random, tube, frame, or one registered by the user) is drawn here, in
the data loader; a strategy that draws from the tokens (adaptive, ...) gets a placeholder, because
the wrapped model samples the mask itself. A strategy that draws from the clip (``motion_pixels``) is
refused, since a generator is called without the clip, unless the generator is told that the wrapped
model draws it (``model_draws=True``, as the launcher does): then it gets a placeholder too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional, Sequence, cast

import torch
from torch import Tensor

from ...masking import MaskingStrategy
from ...registry import create_masking, list_maskings, strategy_info
from ...strategies import lowest_k_mask
from ...validation import check_bool, check_grid, check_mask_ratio, masked_count

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "MaskingGenerator",
    "TubeMaskingGenerator",
    "TubeMaskingGeneratorV2",
    "RandomMaskingGenerator",
    "RunningCellMaskingGenerator",
    "MASK_TYPES",
    "GENERATOR_SHAPES",
    "mask_types",
]

MASK_TYPES = ("adaptive", "random", "tube", "frame")  # the built-in ones; see `mask_types` for all
GENERATOR_SHAPES = ("flat", "frames")


def mask_types() -> List[str]:
    """Every strategy a generator takes: registered ones that need nothing (drawn by the generator)
    or the tokens (drawn by the wrapped model), sorted."""
    return [n for n in list_maskings() if strategy_info(n).needs in ("nothing", "tokens")]


def _check_generator_strategy(strategy: Any, model_draws: bool) -> None:
    """ValueError unless a generator can take ``strategy``: one that needs nothing (drawn by the
    generator, so not with ``model_draws``), one that draws from the tokens, or, with ``model_draws``,
    one that draws from the clip."""
    needs = strategy_info(strategy).needs if isinstance(strategy, str) and strategy in list_maskings() else None
    if needs == "video" and not model_draws:
        raise ValueError(
            f"strategy {strategy!r} draws its masks from the video (needs='video'), and a data loader's mask "
            f"generator is called without the clip: the wrapped model draws it from the clip it is given "
            f"(wrap(model, strategy={strategy!r}), or the launcher's --mask_type {strategy}), and the "
            f"loader's mask is then ignored"
        )
    if needs == "nothing" and model_draws:
        raise ValueError(
            f"strategy {strategy!r} needs nothing from the model (needs='nothing'): the generator draws it, "
            f"so model_draws must be False"
        )
    if needs is None:
        raise ValueError(f"strategy must be one of {mask_types()}, got {strategy!r}")


class MaskingGenerator:
    """Drop-in for VideoMAE's data-loader mask generators: ``MaskingGenerator(input_size,
    mask_ratio)()`` returns one clip's mask as a float64 numpy array, 1 = masked.

    input_size: (T', H', W') token grid (an int n means (n, n, n), as VideoMAEv2's generators).
    strategy:   "tube" (default; int(mask_ratio * H'W') per slice, repeated over time), "random"
                (int(mask_ratio * N) anywhere, VideoMAE's count, robust to float representation: 100
                tokens at 0.29 mask 29), "frame" (int(mask_ratio * T') whole
                slices), any other registered strategy that needs nothing, or one that draws from the
                tokens ("adaptive", ...): a placeholder of zeros, because the model samples the mask
                itself (`wrap`) and `train_one_epoch` ignores the loader's mask.
                A strategy that draws from the clip ("motion_pixels") is refused: the generator never
                sees the clip.
    shape:      "flat" -> (T'H'W',) as v1's TubeMaskingGenerator and v2's RandomMaskingGenerator;
                "frames" -> (T', H'W') as v2's TubeMaskingGenerator.
    model_draws: True when the wrapped model draws the masks (the launcher's setting for a strategy
                the model draws): a strategy that draws from the clip then gets the placeholder too; a
                strategy that needs nothing is refused with it (the model would not draw it).

    Masks are drawn with torch's global generator, which the DataLoader seeds per worker.
    """

    def __init__(
        self,
        input_size: Sequence[int] | int,
        mask_ratio: float,
        strategy: str = "tube",
        shape: str = "flat",
        *,
        model_draws: bool = False,
    ) -> None:
        size: Any = input_size  # checked by check_grid
        if isinstance(size, int) and not isinstance(size, bool):
            size = (size,) * 3
        self.grid = check_grid(tuple(size) if isinstance(size, (list, tuple)) else size, "input_size")
        self.mask_ratio = check_mask_ratio(mask_ratio)
        _check_generator_strategy(strategy, check_bool(model_draws, "model_draws"))
        if shape not in GENERATOR_SHAPES:
            raise ValueError(f"shape must be one of {GENERATOR_SHAPES}, got {shape!r}")
        self.strategy, self.shape = strategy, shape
        t, h, w = self.grid
        self.num_tokens = t * h * w
        self.placeholder = strategy_info(strategy).needs != "nothing"
        self._draw: Optional[MaskingStrategy] = None
        self.num_masked: Optional[int] = 0
        if strategy == "random":
            self.num_masked = masked_count(self.num_tokens, self.mask_ratio)  # VideoMAE's int(ratio * N)
            if not 0 < self.num_masked < self.num_tokens:
                raise ValueError(
                    f"mask_ratio={mask_ratio} masks {self.num_masked} of {self.num_tokens} tokens; "
                    f"it must leave at least one visible and one masked token"
                )
        elif not self.placeholder:
            # a strategy that needs nothing draws its masks with sample(batch_size)
            self._draw = cast(MaskingStrategy, create_masking(strategy, grid=self.grid, mask_ratio=self.mask_ratio))
            self.num_masked = getattr(self._draw, "num_masked", None)

    def sample(self) -> Tensor:
        """One mask (N,) bool, True = masked (all False for a placeholder)."""
        if self.strategy == "random":
            count = cast(int, self.num_masked)  # VideoMAE's count, set by __init__
            return lowest_k_mask(torch.rand(1, self.num_tokens), count)[0]
        if self._draw is None:
            return torch.zeros(self.num_tokens, dtype=torch.bool)
        return self._draw.sample(1).mask[0]

    def __call__(self) -> np.ndarray:
        out = self.sample().to(torch.float64).numpy()
        return out.reshape(self.grid[0], -1) if self.shape == "frames" else out

    def __repr__(self) -> str:
        what = (
            "placeholder, the model samples the mask"
            if self.placeholder
            else f"{self.num_masked} of {self.num_tokens} masked"
        )
        return f"adamask {self.strategy} masking generator ({what}, grid={self.grid}, shape={self.shape!r})"


class TubeMaskingGenerator(MaskingGenerator):
    """v1's ``TubeMaskingGenerator(input_size, mask_ratio)``: flat (N,) output."""

    def __init__(self, input_size: Sequence[int], mask_ratio: float, strategy: str = "tube") -> None:
        super().__init__(input_size, mask_ratio, strategy, shape="flat")


class TubeMaskingGeneratorV2(MaskingGenerator):
    """v2's ``TubeMaskingGenerator(input_size, mask_ratio)``: (T', H'W') output."""

    def __init__(self, input_size: Sequence[int], mask_ratio: float, strategy: str = "tube") -> None:
        super().__init__(input_size, mask_ratio, strategy, shape="frames")


class RandomMaskingGenerator(MaskingGenerator):
    """v2's ``RandomMaskingGenerator(input_size, mask_ratio)``: flat (N,) output."""

    def __init__(self, input_size: Sequence[int] | int, mask_ratio: float, strategy: str = "random") -> None:
        super().__init__(input_size, mask_ratio, strategy, shape="flat")


class RunningCellMaskingGenerator(MaskingGenerator):
    """v2's decoder-mask generator ``RunningCellMaskingGenerator(input_size, mask_ratio=0.5)``: adamask's
    ``running_cell`` strategy (or another that needs nothing), (T', H'W') float64 output, 1 = not
    reconstructed by the decoder (VideoMAE V2's decode_mask convention). int(4 * mask_ratio) of every
    2 x 2 cell are left out, the pattern moving one position per time slice from a random phase."""

    def __init__(
        self, input_size: Sequence[int] | int, mask_ratio: float = 0.5, strategy: str = "running_cell"
    ) -> None:
        super().__init__(input_size, mask_ratio, strategy, shape="frames")
