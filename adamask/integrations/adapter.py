"""The model side that every integration shares: ``wrap`` itself, defined once (`define_wrap`) for a
`Target` that says where a model family keeps its tokens, and the pieces it is built from.

- the masking strategy by name through the registry (`build_strategy`): any registered strategy a
  model can draw, from its tokens (``needs == "tokens"``, learned or not) or from its clip
  (``needs == "video"``, built with the model's tubelet); options left None are not passed, so each
  strategy keeps its own defaults (the adaptive sampler's heads: the largest count <= 8 dividing the
  width); what it draws from (`strategy_input`) and the draw itself (`draw_masking`);
- attached as the sub-module ``mask_sampler`` (`attach_strategy`), the model's class swapped for an
  ``Adaptive<Class>`` subclass (`adaptive_subclass`), so parameter names stay the same;
- its loss term: ``loss = L_R + settings.weight * term`` with the strategy's own ``masking_loss``
  (AdaMAE's `sampling_loss` by default, with ``settings.estimator`` / ``settings.baseline``); a
  non-learned strategy adds no term (`total_loss`);
- the parameters kept out of weight decay (`no_weight_decay_names`), and `unwrap_model`;
- ``wrap``'s type (`WrapFunction`): its keyword arguments by name, so that a type checker catches a
  misspelt one.

Conventions: tokens (B, N, D) in (t, h, w) order; masks (B, N) bool, True = masked.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, replace
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Protocol,
    Sequence,
    Set,
    Tuple,
    Type,
    cast,
)

import torch
from torch import Tensor, nn

from ..loss import DEFAULT_SAMPLING_WEIGHT, LossSettings
from ..masking import Masking, learned_loss, needs_video
from ..registry import create_masking, list_maskings, strategy_info
from ..validation import Grid, check_grid, check_mask_ratio, check_positive_int, check_sampling_weight, check_tubelet

__all__ = [
    "SAMPLER_NAME",
    "Target",
    "WrapFunction",
    "define_wrap",
    "make_loss_settings",
    "AdaptedModel",
    "MODEL_NEEDS",
    "model_strategies",
    "check_model_strategy",
    "build_strategy",
    "check_strategy_fits",
    "check_loss_settings",
    "attach_strategy",
    "adaptive_subclass",
    "check_bare_model",
    "check_model_grid",
    "detaches_input",
    "model_pixels",
    "strategy_tokens",
    "strategy_input",
    "draw_masking",
    "total_loss",
    "no_weight_decay_names",
    "set_strategy_ratio",
    "unwrap_model",
]

SAMPLER_NAME = "mask_sampler"
MODEL_NEEDS = ("tokens", "video")  # what a strategy drawn inside a model may look at
COMPILED_PREFIX = "_orig_mod."  # torch.compile's prefix of parameter names


def make_loss_settings(
    sampling_weight: float = DEFAULT_SAMPLING_WEIGHT,
    sampling_estimator: str = "paper",
    sampling_baseline: Optional[str] = None,
    sampling_entropy_weight: float = 0.0,
) -> LossSettings:
    """The integrations' loss options -> `LossSettings`; a bad value is named as the option is spelt
    in the integrations (``sampling_entropy_weight``, not the field's name)."""
    return LossSettings(
        sampling_weight,
        sampling_estimator,
        sampling_baseline,
        check_sampling_weight(sampling_entropy_weight, "sampling_entropy_weight"),
    )


def model_strategies() -> List[str]:
    """Registered strategies a model draws itself, from its tokens or its clip (``needs`` in
    `MODEL_NEEDS`), sorted."""
    return [n for n in list_maskings() if strategy_info(n).needs in MODEL_NEEDS]


def check_model_strategy(name: Any, argument: str = "strategy") -> str:
    """``name`` must be a registered strategy a model draws itself (``needs`` "tokens" or "video");
    returns it. ValueError naming what a strategy of another kind needs, or the registered names."""
    allowed = model_strategies()
    if isinstance(name, str) and name in list_maskings() and name not in allowed:
        raise ValueError(
            f"{argument} {name!r} draws its masks from nothing the model has (needs="
            f"{strategy_info(name).needs!r}): draw it outside the model (a data loader's mask generator) "
            f"and pass the mask; a wrapped model draws a strategy from its tokens or its clip "
            f"(needs='tokens' or 'video'), one of {allowed}"
        )
    if not isinstance(name, str) or name not in allowed:
        raise ValueError(
            f"{argument} must be a registered masking strategy that draws from the model's tokens or clip "
            f"(needs='tokens' or 'video'), one of {allowed}, got {name!r}"
        )
    return name


def build_strategy(
    name: str,
    grid: Sequence[int],
    mask_ratio: Optional[float],
    embed_dim: int,
    model_tubelet: Optional[Sequence[int]] = None,
    **options: Any,
) -> nn.Module:
    """The strategy registered as ``name`` for a token grid (T', H', W') of ``embed_dim``-wide tokens.

    Built by the registry's contract (`adamask.create_masking`), never by name; ``mask_ratio`` None
    means the strategy's default; options that are None are left out. A strategy that draws from the
    clip (``needs == "video"``) is built with ``model_tubelet`` (t, h, w), which cuts the clip into the
    model's tokens; a ``tubelet`` option that differs is refused.
    """
    check_model_strategy(name)
    options = {k: v for k, v in options.items() if v is not None}
    if strategy_info(name).needs == "video":
        if model_tubelet is None:
            raise ValueError(f"strategy {name!r} draws its masks from the video (needs='video'): give the tubelet")
        tubelet = check_tubelet(model_tubelet)
        if "tubelet" in options and check_tubelet(options["tubelet"]) != tubelet:
            raise ValueError(
                f"strategy {name!r} was given tubelet={tuple(options['tubelet'])} but the model's tubelet is "
                f"{tubelet}: leave the option out (it is the model's)"
            )
        options["tubelet"] = tubelet
    strategy = create_masking(name, grid=check_grid(grid), mask_ratio=mask_ratio, embed_dim=embed_dim, **options)
    if not isinstance(strategy, nn.Module):
        raise TypeError(
            f"strategy {name!r} built a {type(strategy).__name__}; the integrations need an "
            f"nn.Module (it becomes the sub-module '{SAMPLER_NAME}')"
        )
    return strategy


def check_strategy_fits(
    strategy: nn.Module,
    grid: Sequence[int],
    embed_dim: Optional[int] = None,
    what: str = "model",
    tubelet: Optional[Sequence[int]] = None,
) -> None:
    """ValueError unless ``strategy`` (if it says) scores exactly the tokens of ``grid`` (T', H', W')
    and tokens ``embed_dim`` wide, and one that draws from the clip cuts it into the model's
    ``tubelet`` (t, h, w)."""
    grid = check_grid(grid)
    n = math.prod(grid)
    s_tokens = getattr(strategy, "num_tokens", n)
    s_grid = getattr(strategy, "grid", None)
    if s_tokens != n or (s_grid is not None and tuple(s_grid) != grid):
        raise ValueError(
            f"the sampler's token grid {s_grid} ({s_tokens} tokens) does not match the {what}'s token grid "
            f"{grid} ({n} tokens); build the sampler with grid={grid}"
        )
    s_dim = getattr(strategy, "embed_dim", embed_dim)
    if embed_dim is not None and s_dim != embed_dim:
        raise ValueError(f"the sampler takes embed_dim={s_dim} but the {what}'s patch embeddings have {embed_dim}")
    s_tubelet = getattr(strategy, "tubelet", None)
    if needs_video(strategy) and tubelet is not None and s_tubelet is not None and tuple(s_tubelet) != tuple(tubelet):
        raise ValueError(
            f"the sampler cuts the video into tubelets {tuple(s_tubelet)} but the {what}'s tubelet is "
            f"{tuple(tubelet)}; build it with tubelet={tuple(tubelet)}"
        )


def check_loss_settings(strategy: Any, settings: LossSettings) -> None:
    """The strategy's own check of the loss settings it is trained with (``check_loss_settings``, e.g.
    the error predictor refuses an entropy bonus), if it has one: a refusal when the model is wrapped
    rather than at the first loss."""
    check = getattr(strategy, "check_loss_settings", None)
    if callable(check):
        check(settings)


def attach_strategy(model: nn.Module, strategy: nn.Module) -> None:
    """Register ``strategy`` as the sub-module ``model.mask_sampler``."""
    if not isinstance(strategy, nn.Module) or not callable(strategy):
        raise TypeError(f"sampler must be an nn.Module (tokens) -> Masking, got {type(strategy).__name__}")
    if getattr(model, SAMPLER_NAME, None) is not None:
        raise ValueError(f"model already has a '{SAMPLER_NAME}'; it was adapted before")
    model.add_module(SAMPLER_NAME, strategy)


def check_bare_model(model: Any) -> None:
    """``wrap`` takes the bare model: not DDP / DataParallel / torch.compile, not adapted before."""
    if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) or hasattr(model, "_orig_mod"):
        raise TypeError("wrap the bare model, before DistributedDataParallel / torch.compile")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if getattr(model, SAMPLER_NAME, None) is not None:
        raise ValueError(f"model already has a '{SAMPLER_NAME}'; it was adapted before")


def check_model_grid(model_grid: Grid, grid: Optional[Sequence[int]]) -> Grid:
    """The model's token grid; ValueError when a given ``grid`` (T', H', W') differs from it."""
    if grid is not None and check_grid(grid) != model_grid:
        raise ValueError(f"grid {tuple(grid)} does not match the model's token grid {model_grid}")
    return model_grid


def model_pixels(pixels: Any, name: str, layout: str, dtype: torch.dtype) -> Tensor:
    """A model's pixel input as the model computes with it: a floating-point tensor of any dtype is cast
    to ``dtype`` (the patch embedding's, e.g. float64 or float16 clips into a float32 model); integer
    or bool pixels raise TypeError (they are not normalised yet: casting would train on raw values),
    as does anything but a tensor; a batch of 0 clips raises ValueError. ``layout`` (e.g.
    "(B, C, T, H, W)") names the expected shape in the messages. Reads no tensor data."""
    if not isinstance(pixels, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {layout}, got {type(pixels).__name__}")
    if not pixels.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor of normalised pixels (ImageNet mean/std), got "
            f"dtype {pixels.dtype}: convert the frames to float and normalise them first, e.g. "
            f"(frames / 255 - mean) / std"
        )
    if pixels.dim() != len(layout.split(",")):
        raise ValueError(f"{name} must have shape {layout}, got {tuple(pixels.shape)}")
    check_positive_int(pixels.shape[0], f"the batch size B of {name} {layout}")
    return pixels if pixels.dtype == dtype else pixels.to(dtype)


def detaches_input(strategy: Any) -> bool:
    """Whether the strategy keeps its loss off the tokenizer: its ``detach_input`` (default True)."""
    return bool(getattr(strategy, "detach_input", True))


def strategy_tokens(strategy: Any, embed: Callable[[], Tensor]) -> Tensor:
    """``embed()`` -> the tokens (B, N, D) the strategy scores; without autograd when it detaches them."""
    with torch.set_grad_enabled(torch.is_grad_enabled() and not detaches_input(strategy)):
        return embed()


def strategy_input(strategy: Any, embed: Callable[[], Tensor], video: Callable[[], Tensor]) -> Tensor:
    """What the strategy draws its masks from: ``video()``, the clip (B, C, T, H, W), for a strategy
    that needs the video (``needs == "video"``), else the tokens ``embed()`` (B, N, D) (see
    `strategy_tokens`). Only the one it needs is computed."""
    return video() if needs_video(strategy) else strategy_tokens(strategy, embed)


def draw_masking(strategy: Any, x: Tensor, num_tokens: int, generator: Optional[torch.Generator] = None) -> Masking:
    """``strategy(x)`` (with ``generator`` when one is given) -> its `Masking`, whose mask must be
    (B, num_tokens) for ``x``, the tokens (B, N, D) or the clip (B, C, T, H, W) (`strategy_input`):
    a strategy built for another grid fails here, by name, instead of inside the model. Shapes
    only: no host sync."""
    masking = strategy(x) if generator is None else strategy(x, generator=generator)
    want = (x.shape[0], num_tokens)
    if not isinstance(masking, Masking) or tuple(masking.mask.shape) != want:
        got = tuple(masking.mask.shape) if isinstance(masking, Masking) else type(masking).__name__
        what = "clip" if needs_video(strategy) else "tokens"
        raise ValueError(
            f"{SAMPLER_NAME} ({type(strategy).__name__}) returned {got} for the model's {what} "
            f"{tuple(x.shape)}; it must return an adamask.Masking with a (B, N) = {want} mask: build it "
            f"for the model's token grid"
        )
    return masking


def total_loss(
    reconstruction_loss: Tensor, strategy: Any, masking: Masking, token_error: Tensor, settings: LossSettings
) -> Tuple[Tensor, Optional[Tensor]]:
    """(``L_R + settings.weight * term``, unweighted term) for a masking the strategy drew.

    token_error: (B, N_m) errors of the masked tokens (ascending) or (B, N) per-token errors. The term
    is the strategy's ``masking_loss`` (see `adamask.learned_loss`); None, and the loss ``L_R``, when
    the masking has no ``probs`` (a non-learned strategy).
    """
    term = learned_loss(strategy, masking, token_error, settings)
    return (reconstruction_loss if term is None else reconstruction_loss + settings.weight * term), term


def set_strategy_ratio(strategy: Any, mask_ratio: float) -> float:
    """``strategy.set_mask_ratio(mask_ratio)`` (every built-in strategy has it; the count stays the same
    for every sample of a batch); returns the ratio as a float. TypeError for a strategy without it;
    ValueError for a ratio it refuses (it then keeps its old one)."""
    setter = getattr(strategy, "set_mask_ratio", None)
    if setter is None:
        raise TypeError(
            f"the masking strategy {type(strategy).__name__} cannot change its mask ratio (it has no set_mask_ratio)"
        )
    ratio = check_mask_ratio(mask_ratio)
    setter(ratio)
    return ratio


def no_weight_decay_names(strategy: Any, own: Iterable[str] = (), compiled: bool = True) -> Set[str]:
    """``own`` names plus the strategy's ``no_weight_decay()`` under ``mask_sampler.`` (and, with
    ``compiled``, also under torch.compile's ``_orig_mod.`` prefix, as optimizer factories read names
    off the compiled module)."""
    names = {f"{SAMPLER_NAME}.{n}" for n in getattr(strategy, "no_weight_decay", lambda: set())()}
    return set(own) | names | ({COMPILED_PREFIX + n for n in names} if compiled else set())


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip DistributedDataParallel / DataParallel (``.module``) and torch.compile (``._orig_mod``)."""
    for _ in range(8):
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
            continue
        compiled = getattr(model, "_orig_mod", None)
        if not isinstance(compiled, nn.Module):
            return model
        model = compiled
    return model


if TYPE_CHECKING:  # the mixins below are only ever mixed into an nn.Module subclass (`adaptive_subclass`)
    _ModelBase = nn.Module
else:
    _ModelBase = object


class AdaptedModel(_ModelBase):
    """Mixed into a wrapped model's class (before its own class): the loss settings and weight decay.

    ``model.loss_settings`` (`adamask.LossSettings`) holds lambda, the estimator and the baseline;
    ``model.sampling_weight`` reads and sets lambda.
    """

    loss_settings: LossSettings  # set per model by ``wrap``

    @property
    def sampling_weight(self) -> float:
        return self.loss_settings.weight

    @sampling_weight.setter
    def sampling_weight(self, value: float) -> None:
        self.loss_settings = replace(self.loss_settings, weight=value)

    def set_mask_ratio(self, mask_ratio: float) -> None:
        """Change the strategy's mask ratio in place, e.g. each step from an `adamask.RatioSchedule`
        (`set_strategy_ratio`)."""
        set_strategy_ratio(getattr(self, SAMPLER_NAME), mask_ratio)

    def no_weight_decay(self) -> set:
        parent = super()
        own = parent.no_weight_decay() if hasattr(parent, "no_weight_decay") else ()
        return no_weight_decay_names(getattr(self, SAMPLER_NAME), own)


_SUBCLASSES: Dict[Tuple[type, type], type] = {}


def adaptive_subclass(mixin: type, base: type) -> type:
    """``class Adaptive<Base>(mixin, base)``, created once per base class and published in the mixin's
    module, so that pickling finds it by name."""
    key = (mixin, base)
    if key not in _SUBCLASSES:
        namespace = vars(sys.modules[mixin.__module__])
        name = f"Adaptive{base.__name__}"
        if name in namespace and namespace[name] is not None and not issubclass(namespace[name], base):
            name = f"{name}_{len(_SUBCLASSES)}"
        cls = type(name, (mixin, base), {"__module__": mixin.__module__, "__qualname__": name})
        _SUBCLASSES[key] = cls
        namespace[name] = cls
    return _SUBCLASSES[key]


@dataclass(frozen=True)
class Target:
    """One model family, as `define_wrap` needs to know it: where it differs from the others.

    model:      the model, as ``wrap``'s docstring names it (e.g. "an mae_st ``MaskedAutoencoderViT``").
    mixin:      the `AdaptedModel` subclass mixed into the model's class: how the adapted model draws
                its mask and assembles its loss.
    mask_ratio: ``wrap``'s default mask ratio.
    grid:       model -> its token grid (T', H', W'); TypeError for a model of another family.
    embed_dim:  model -> the width D of the tokens the strategy scores.
    tubelet:    model -> its tubelet (t, h, w), the block of pixels one token covers (a strategy that
                draws from the clip cuts it with this).
    device:     model -> the device of its patch embedding, where the strategy is put.
    usage:      the paragraph of ``wrap``'s docstring on how the adapted model is then called.
    """

    model: str
    mixin: Type[AdaptedModel]
    mask_ratio: float
    grid: Callable[[nn.Module], Grid]
    embed_dim: Callable[[nn.Module], int]
    tubelet: Callable[[nn.Module], Grid]
    device: Callable[[nn.Module], torch.device]
    usage: str


class WrapFunction(Protocol):
    """The type of every integration's ``wrap``: its keyword arguments by name, with the options of the
    built-in strategies (the adaptive sampler's and the error predictor's, motion's), so that a
    misspelt keyword is a type error at the call. At run time ``wrap`` passes any further keyword
    argument to the strategy (one registered by the user may take others: type-check such a call
    with ``sampler=`` a strategy built by hand, or let it through with ``# type: ignore[call-arg]``)."""

    def __call__(
        self,
        model: nn.Module,
        *,
        mask_ratio: float = ...,
        sampling_weight: float = ...,
        depth: Optional[int] = ...,
        num_heads: Optional[int] = ...,
        width: Optional[int] = ...,
        grid: Optional[Sequence[int]] = ...,
        sampler: Optional[nn.Module] = ...,
        strategy: str = ...,
        sampling_estimator: str = ...,
        sampling_baseline: Optional[str] = ...,
        sampling_entropy_weight: float = ...,
        variant: Optional[str] = ...,
        mlp_ratio: Optional[float] = ...,
        token_pool: Optional[Sequence[int]] = ...,
        detach_input: Optional[bool] = ...,
        dropout: Optional[float] = ...,
        qkv_bias: Optional[bool] = ...,
        checkpoint: Optional[bool] = ...,
        temperature: Optional[float] = ...,
        deterministic_eval: Optional[bool] = ...,
        eps: Optional[float] = ...,
        distance: Optional[str] = ...,
        first_slice: Optional[str] = ...,
    ) -> nn.Module: ...


_WRAP_DOC = """Add a masking strategy to {model}, in place; returns the model.

Call it before the optimizer, DDP and torch.compile. ``strategy`` names any registered strategy
the model draws itself (default ``"adaptive"``, AdaMAE's sampler: ``depth`` blocks (default 1)
of ``width`` (default the model's token width), ``num_heads`` heads (default the largest count
<= 8 dividing the width); other ``sampler_options`` go to the strategy; options left None are not
passed): one that draws from the tokens, or one that draws from the clip (``needs="video"``, e.g.
``"motion_pixels"``: built with the model's tubelet and given the clip the model is called with).
Or ``sampler`` is a ready strategy, which must match the model's token grid, width and tubelet. A
strategy that needs nothing from the model (random, tube, ...) is refused: it is drawn outside.
It becomes the sub-module ``model.mask_sampler``, drawing int(N * (1 - mask_ratio)) visible
tokens (default mask_ratio {mask_ratio}). ``model.loss_settings`` holds lambda (``sampling_weight``),
``sampling_estimator``, ``sampling_baseline`` and ``sampling_entropy_weight`` for a learned
strategy's loss term (a non-learned one adds none; settings the strategy cannot apply, such as an
entropy bonus for the error predictor, are refused here); ``no_weight_decay()`` gains the
strategy's own names (its position embedding). ``grid`` (T', H', W'), if given, must equal the
model's. Existing parameter names are unchanged. Numbers may be numpy numbers. A refused call leaves
the model as it was.

{usage}
"""


def define_wrap(target: Target) -> WrapFunction:
    """The ``wrap`` function of ``target``: its signature, checks and docstring are the same for every
    target; the default mask ratio, the model's grid, width, tubelet and device, and the mixin come
    from ``target``. The function names the mixin's module as its own (pickle finds it there)."""

    def wrap(
        model: nn.Module,
        *,
        mask_ratio: float = target.mask_ratio,
        sampling_weight: float = DEFAULT_SAMPLING_WEIGHT,
        depth: Optional[int] = None,
        num_heads: Optional[int] = None,
        width: Optional[int] = None,
        grid: Optional[Sequence[int]] = None,
        sampler: Optional[nn.Module] = None,
        strategy: str = "adaptive",
        sampling_estimator: str = "paper",
        sampling_baseline: Optional[str] = None,
        sampling_entropy_weight: float = 0.0,
        **sampler_options: Any,
    ) -> nn.Module:
        check_bare_model(model)
        settings = make_loss_settings(sampling_weight, sampling_estimator, sampling_baseline, sampling_entropy_weight)
        model_grid = check_model_grid(target.grid(model), grid)
        tubelet = target.tubelet(model)
        if sampler is None:
            options = dict(depth=depth, num_heads=num_heads, width=width, **sampler_options)
            sampler = build_strategy(strategy, model_grid, mask_ratio, target.embed_dim(model), tubelet, **options)
        else:
            check_strategy_fits(sampler, model_grid, target.embed_dim(model), tubelet=tubelet)
        check_loss_settings(sampler, settings)
        attach_strategy(model, sampler.to(target.device(model)))
        model.__class__ = adaptive_subclass(target.mixin, type(model))
        cast(AdaptedModel, model).loss_settings = settings
        return model

    wrap.__module__, wrap.__qualname__ = target.mixin.__module__, "wrap"
    wrap.__doc__ = _WRAP_DOC.format(model=target.model, mask_ratio=target.mask_ratio, usage=target.usage)
    return wrap
