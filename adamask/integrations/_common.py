"""Shared pieces of the VideoMAE (v1/v2) and mae_st integrations: sampler construction and checks,
model unwrapping, the adaptive subclass swap, and the launcher's argument handling and
compatibility shims for current torch / timm / numpy.

Nothing here imports upstream code; the launcher helpers act on modules passed in or on
``sys.modules`` at run time.
"""
from __future__ import annotations

import argparse
import importlib
import math
import sys
import types
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..masking import check_grid, check_mask_ratio
from ..mae import DEFAULT_SAMPLING_WEIGHT
from ..sampler import AdaptiveTokenSampler

__all__ = [
    "SAMPLER_NAME",
    "DEFAULT_SAMPLING_WEIGHT",
    "MASK_TYPES",
    "build_sampler",
    "check_sampling_weight",
    "check_sampler_grid",
    "attach_sampler",
    "unwrap_model",
    "split_launcher_argv",
    "pop_option",
    "install_compat_shims",
]

SAMPLER_NAME = "mask_sampler"
MASK_TYPES = ("adaptive", "random", "tube", "frame")


def default_num_heads(width: int, preferred: int = 8) -> int:
    """The largest head count <= ``preferred`` that divides ``width`` (AdaMAE uses 8)."""
    return max(h for h in range(1, preferred + 1) if width % h == 0)


def check_sampling_weight(sampling_weight: float) -> float:
    """lambda must be a finite real number >= 0."""
    if isinstance(sampling_weight, bool) or not isinstance(sampling_weight, (int, float)):
        raise TypeError(f"sampling_weight must be a float >= 0, got {type(sampling_weight).__name__}")
    if not math.isfinite(sampling_weight) or sampling_weight < 0:
        raise ValueError(f"sampling_weight must be a finite float >= 0, got {sampling_weight!r}")
    return float(sampling_weight)


def build_sampler(embed_dim: int, grid: Sequence[int], mask_ratio: float, *, depth: int = 1,
                  num_heads: Optional[int] = None, width: Optional[int] = None,
                  **options: Any) -> AdaptiveTokenSampler:
    """An `AdaptiveTokenSampler` for a token grid (T', H', W') of ``embed_dim`` patch embeddings.

    ``width`` (default embed_dim) and ``depth`` size the sampler; ``num_heads`` defaults to the
    largest count <= 8 dividing the width. ``options`` go to `AdaptiveTokenSampler`.
    """
    grid = check_grid(grid)
    check_mask_ratio(mask_ratio)
    w = embed_dim if width is None else width
    if num_heads is None and isinstance(w, int) and not isinstance(w, bool) and w >= 1:
        num_heads = default_num_heads(w)
    return AdaptiveTokenSampler(embed_dim, num_heads=num_heads, mask_ratio=mask_ratio, depth=depth,
                                grid=grid, width=width, **options)


def check_sampler_grid(sampler: nn.Module, grid: Sequence[int], what: str = "model") -> None:
    """ValueError unless ``sampler`` scores exactly the tokens of ``grid`` (T', H', W')."""
    grid = check_grid(grid)
    n = math.prod(grid)
    s_tokens = getattr(sampler, "num_tokens", None)
    s_grid = getattr(sampler, "grid", None)
    if s_tokens != n or (s_grid is not None and tuple(s_grid) != grid):
        raise ValueError(
            f"the sampler's token grid {s_grid} ({s_tokens} tokens) does not match the {what}'s token grid "
            f"{grid} ({n} tokens); build the sampler with grid={grid}"
        )


def attach_sampler(model: nn.Module, sampler: nn.Module, sampling_weight: float) -> None:
    """Register ``sampler`` as ``model.mask_sampler`` and store lambda as ``model.sampling_weight``."""
    if not isinstance(sampler, nn.Module) or not callable(sampler):
        raise TypeError(f"sampler must be an nn.Module (tokens) -> Masking, got {type(sampler).__name__}")
    if getattr(model, SAMPLER_NAME, None) is not None:
        raise ValueError(f"model already has a '{SAMPLER_NAME}'; it was adapted before")
    model.add_module(SAMPLER_NAME, sampler)
    model.sampling_weight = check_sampling_weight(sampling_weight)


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip DistributedDataParallel / DataParallel (``.module``) and torch.compile (``._orig_mod``)."""
    seen = 0
    while seen < 8:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(getattr(model, "_orig_mod"), nn.Module):
            model = model._orig_mod
        else:
            return model
        seen += 1
    return model


_SUBCLASSES: Dict[Tuple[type, type], type] = {}


def adaptive_subclass(mixin: type, base: type, namespace: Dict[str, Any]) -> type:
    """``class Adaptive<Base>(mixin, base)``, created once per base class and published in
    ``namespace`` (the mixin's module globals) so that pickling finds it by name."""
    key = (mixin, base)
    if key not in _SUBCLASSES:
        name = f"Adaptive{base.__name__}"
        if name in namespace and namespace[name] is not None and not issubclass(namespace[name], base):
            name = f"{name}_{len(_SUBCLASSES)}"
        cls = type(name, (mixin, base), {"__module__": mixin.__module__, "__qualname__": name})
        _SUBCLASSES[key] = cls
        namespace[name] = cls
    return _SUBCLASSES[key]


# ---------------------------------------------------------------------------------------------
# launcher helpers

def add_sampler_arguments(parser: "argparse.ArgumentParser") -> None:
    """The launchers' shared options: lambda and the sampler's depth, heads and width."""
    parser.add_argument("--sampling-weight", type=float, default=DEFAULT_SAMPLING_WEIGHT,
                   help="lambda, the weight of the sampling loss (default 1e-4)")
    parser.add_argument("--sampler-depth", type=int, default=1, help="sampler blocks (default 1)")
    parser.add_argument("--sampler-heads", type=int, default=None, help="sampler heads (default: <= 8 dividing the width)")
    parser.add_argument("--sampler-width", type=int, default=None, help="sampler width (default: encoder width)")


def split_launcher_argv(argv: Sequence[str]) -> Tuple[List[str], List[str]]:
    """``[ours..., "--", theirs...]`` -> (ours, theirs). Without "--" everything is ours."""
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def pop_option(argv: List[str], name: str) -> Tuple[List[str], Optional[str]]:
    """Remove every ``name VALUE`` / ``name=VALUE`` from ``argv``; return (rest, last value or None)."""
    rest: List[str] = []
    value: Optional[str] = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == name:
            if i + 1 >= len(argv):
                raise ValueError(f"{name} needs a value, one of {MASK_TYPES}")
            value = argv[i + 1]
            i += 2
            continue
        if a.startswith(name + "="):
            value = a[len(name) + 1:]
        else:
            rest.append(a)
        i += 1
    return rest, value


def _module(name: str, **attrs: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    return mod


def _disp(mesg: Any, device: Any = None, linefeed: bool = True) -> None:
    out = sys.stdout if device is None else device
    out.write(f"{mesg}\n" if linefeed else f"{mesg}")
    out.flush()


class _RemovedOptimizer:
    """Stands in for an optimizer class that timm no longer ships; fails only when used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} is not available in the installed timm")


def _av_container(video: Any) -> Any:
    import io

    import av

    data = video.numpy().tobytes() if isinstance(video, torch.Tensor) else bytes(video)
    return av.open(io.BytesIO(data))


def _probe_video_from_memory(video: Any) -> Any:
    """PyAV stand-in for torchvision's removed ``io._probe_video_from_memory`` (video metadata)."""
    from fractions import Fraction

    with _av_container(video) as c:
        s = c.streams.video[0]
        tb = Fraction(s.time_base) if s.time_base else Fraction(1, 1)
        fps = float(s.average_rate) if s.average_rate else 30.0
        if s.duration:
            duration = float(s.duration * tb)
        else:
            duration = float(c.duration) / 1e6 if c.duration else 0.0
        has_audio = len(c.streams.audio) > 0
    return types.SimpleNamespace(video_timebase=tb, has_video=True, video_duration=duration, video_fps=fps,
                                 audio_timebase=Fraction(0, 1), has_audio=has_audio, audio_duration=0.0,
                                 audio_sample_rate=0.0)


def _read_video_from_memory(video: Any, seek_frame_margin: float = 1.0, read_video_stream: Any = 1,
                            video_width: int = 0, video_height: int = 0, video_min_dimension: int = 0,
                            video_pts_range: Tuple[int, int] = (0, -1), video_timebase_numerator: int = 0,
                            video_timebase_denominator: int = 1, **_: Any) -> Tuple[torch.Tensor, torch.Tensor]:
    """PyAV stand-in for torchvision's removed ``io._read_video_from_memory``: (T, H, W, 3) uint8
    frames with pts in ``video_pts_range`` (end -1 = to the end), the shorter side resized to
    ``video_min_dimension`` if > 0; no audio."""
    import numpy as np

    start, end = video_pts_range
    frames = []
    with _av_container(video) as c:
        for frame in c.decode(video=0):
            pts = frame.pts if frame.pts is not None else 0
            if pts < start or (end >= 0 and pts > end):
                continue
            w, h = frame.width, frame.height
            if video_min_dimension > 0:
                scale = video_min_dimension / min(w, h)
                w, h = max(1, round(w * scale)), max(1, round(h * scale))
            frames.append(frame.to_ndarray(format="rgb24", width=w, height=h))
    if not frames:
        return torch.empty(0, dtype=torch.uint8), torch.empty(0)
    return torch.from_numpy(np.stack(frames)), torch.empty(0)


def install_compat_shims() -> List[str]:
    """Make upstream VideoMAE / VideoMAEv2 / mae_st modules importable on current torch, timm and
    numpy, without editing them. Returns the names of the shims installed.

    - ``torch._six`` (removed in torch 2): ``inf``, ``string_classes``.
    - ``numpy.lib.function_base`` (removed in numpy 2): ``disp``.
    - ``timm.optim.nadam.Nadam`` / ``timm.optim.radam.RAdam`` (renamed ...Legacy in timm 1) and the
      removed ``timm.optim.novograd`` (a placeholder that fails if selected).
    - ``torch.fb.rendezvous.zeus`` (an internal module mae_st imports and never uses).
    - ``torch.optim._multi_tensor`` imported (mae_st reaches it as an attribute of torch.optim).
    - ``torchvision.io._probe_video_from_memory`` / ``_read_video_from_memory`` (removed from
      torchvision; mae_st decodes with them): PyAV-based stand-ins, if PyAV is installed.
    - ``torch.cuda.synchronize`` becomes a no-op when CUDA is unavailable (CPU runs).
    """
    done: List[str] = []
    if "torch._six" not in sys.modules:
        try:
            importlib.import_module("torch._six")
        except ImportError:
            sys.modules["torch._six"] = _module("torch._six", inf=math.inf, string_classes=(str, bytes))
            done.append("torch._six")
    try:
        importlib.import_module("numpy.lib.function_base")
    except ImportError:
        try:
            import numpy.lib as np_lib

            mod = _module("numpy.lib.function_base", disp=_disp)
            sys.modules["numpy.lib.function_base"] = mod
            setattr(np_lib, "function_base", mod)
            done.append("numpy.lib.function_base")
        except ImportError:
            pass
    try:
        import timm.optim.nadam as nadam
        import timm.optim.radam as radam

        if not hasattr(nadam, "Nadam") and hasattr(nadam, "NAdamLegacy"):
            nadam.Nadam = nadam.NAdamLegacy
            done.append("timm.optim.nadam.Nadam")
        if not hasattr(radam, "RAdam") and hasattr(radam, "RAdamLegacy"):
            radam.RAdam = radam.RAdamLegacy
            done.append("timm.optim.radam.RAdam")
        try:
            importlib.import_module("timm.optim.novograd")
        except ImportError:
            sys.modules["timm.optim.novograd"] = _module(
                "timm.optim.novograd", NovoGrad=type("NovoGrad", (_RemovedOptimizer,), {}))
            done.append("timm.optim.novograd")
    except ImportError:
        pass
    try:
        importlib.import_module("torch.fb.rendezvous.zeus")
    except ImportError:
        zeus = _module("torch.fb.rendezvous.zeus")
        rdzv = _module("torch.fb.rendezvous", zeus=zeus)
        fb = _module("torch.fb", rendezvous=rdzv)
        for mod in (fb, rdzv, zeus):
            mod.__path__ = []  # type: ignore[attr-defined]
            sys.modules[mod.__name__] = mod
        done.append("torch.fb.rendezvous.zeus")
    try:  # torch.optim._multi_tensor is no longer imported with torch.optim
        importlib.import_module("torch.optim._multi_tensor")
    except ImportError:
        sys.modules["torch.optim._multi_tensor"] = _module("torch.optim._multi_tensor", AdamW=torch.optim.AdamW)
        torch.optim._multi_tensor = sys.modules["torch.optim._multi_tensor"]  # type: ignore[attr-defined]
        done.append("torch.optim._multi_tensor")
    try:  # torchvision >= 0.2x dropped its video_reader API, which mae_st's decoder calls
        tv_io = importlib.import_module("torchvision.io")
        if not hasattr(tv_io, "_read_video_from_memory"):
            importlib.import_module("av")
            tv_io._probe_video_from_memory = _probe_video_from_memory
            tv_io._read_video_from_memory = _read_video_from_memory
            done.append("torchvision.io._read_video_from_memory")
    except ImportError:
        pass
    if not torch.cuda.is_available() and not getattr(torch.cuda.synchronize, "_adamask_noop", False):
        def synchronize(device: Any = None) -> None:
            return None

        synchronize._adamask_noop = True  # type: ignore[attr-defined]
        torch.cuda.synchronize = synchronize
        done.append("torch.cuda.synchronize")
    return done


def timm_create_model_shim(original: Any, post: Any) -> Any:
    """A ``timm.models.create_model`` that calls model functions registered by upstream code
    directly (their constructors reject timm 1's ``pretrained_cfg`` keywords), drops None keyword
    arguments as timm does, and passes the model through ``post(model, name, kwargs)``."""
    def create_model(model_name: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
        import timm.models

        entry = timm.models.model_entrypoint(model_name)
        if entry.__module__.startswith("timm."):
            model = original(model_name, pretrained=pretrained, **kwargs)
        else:
            kw = {k: v for k, v in kwargs.items() if v is not None
                  and k not in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")}
            model = entry(pretrained=pretrained, **kw)
        return post(model, model_name, kwargs)

    create_model._adamask_shim = True  # type: ignore[attr-defined]
    return create_model
