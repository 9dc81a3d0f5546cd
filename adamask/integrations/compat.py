"""Compatibility shims that let the upstream VideoMAE / VideoMAEv2 / mae_st code run on current torch,
timm, numpy and torchvision without editing it.

Process-wide: `install_compat_shims` adds missing modules to ``sys.modules``, missing attributes to
installed libraries, and replaces the few library functions whose current behaviour their code cannot
take (timm's ``create_model``, a disabled ``GradScaler``'s state); `timm_create_model_shim` builds the
``create_model`` replacement, which the launchers also use to wrap the models they build. Nothing here
imports upstream code.
"""

from __future__ import annotations

import functools
import importlib
import math
import sys
import types
from typing import Any, Callable, Dict, List, Tuple

import torch
from torch import nn

__all__ = ["install_compat_shims", "timm_create_model_shim"]


def _module(name: str, **attrs: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    return mod


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
        return True
    except ImportError:
        return False


def _install(owner: Any, name: str, value: Any) -> None:
    """Set ``owner.name`` (an attribute the owner's type does not declare: a module's new member, a
    function's marker)."""
    setattr(owner, name, value)


def _disp(mesg: Any, device: Any = None, linefeed: bool = True) -> None:
    out = sys.stdout if device is None else device
    out.write(f"{mesg}\n" if linefeed else f"{mesg}")
    out.flush()


class _RemovedOptimizer:
    """Stands in for an optimizer class that timm no longer ships; fails only when used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} is not available in the installed timm")


# ---------------------------------------------------------------------------------------------
# PyAV stand-ins for torchvision's removed in-memory video reader


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
    return types.SimpleNamespace(
        video_timebase=tb,
        has_video=True,
        video_duration=duration,
        video_fps=fps,
        audio_timebase=Fraction(0, 1),
        has_audio=has_audio,
        audio_duration=0.0,
        audio_sample_rate=0.0,
    )


def _read_video_from_memory(
    video: Any,
    seek_frame_margin: float = 1.0,
    read_video_stream: Any = 1,
    video_width: int = 0,
    video_height: int = 0,
    video_min_dimension: int = 0,
    video_pts_range: Tuple[int, int] = (0, -1),
    video_timebase_numerator: int = 0,
    video_timebase_denominator: int = 1,
    **_: Any,
) -> Tuple[torch.Tensor, torch.Tensor]:
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


# ---------------------------------------------------------------------------------------------
# the shims, one function each; each returns the names it installed


def _torch_six() -> List[str]:
    if "torch._six" in sys.modules or _importable("torch._six"):
        return []
    sys.modules["torch._six"] = _module("torch._six", inf=math.inf, string_classes=(str, bytes))
    return ["torch._six"]


def _numpy_function_base() -> List[str]:
    if _importable("numpy.lib.function_base"):
        return []
    try:
        import numpy.lib as np_lib
    except ImportError:
        return []
    mod = _module("numpy.lib.function_base", disp=_disp)
    sys.modules["numpy.lib.function_base"] = mod
    _install(np_lib, "function_base", mod)
    return ["numpy.lib.function_base"]


def _timm_optimizers() -> List[str]:
    try:
        import timm.optim.nadam as nadam
        import timm.optim.radam as radam
    except ImportError:
        return []
    done = []
    if not hasattr(nadam, "Nadam") and hasattr(nadam, "NAdamLegacy"):
        _install(nadam, "Nadam", nadam.NAdamLegacy)
        done.append("timm.optim.nadam.Nadam")
    if not hasattr(radam, "RAdam") and hasattr(radam, "RAdamLegacy"):
        _install(radam, "RAdam", radam.RAdamLegacy)
        done.append("timm.optim.radam.RAdam")
    if not _importable("timm.optim.novograd"):
        sys.modules["timm.optim.novograd"] = _module(
            "timm.optim.novograd", NovoGrad=type("NovoGrad", (_RemovedOptimizer,), {})
        )
        done.append("timm.optim.novograd")
    return done


def _torch_fb_zeus() -> List[str]:
    if _importable("torch.fb.rendezvous.zeus"):
        return []
    zeus = _module("torch.fb.rendezvous.zeus")
    rdzv = _module("torch.fb.rendezvous", zeus=zeus)
    fb = _module("torch.fb", rendezvous=rdzv)
    for mod in (fb, rdzv, zeus):
        _install(mod, "__path__", [])  # a package, so that its submodules import
        sys.modules[mod.__name__] = mod
    return ["torch.fb.rendezvous.zeus"]


def _torch_multi_tensor() -> List[str]:
    if _importable("torch.optim._multi_tensor"):  # no longer imported with torch.optim
        return []
    sys.modules["torch.optim._multi_tensor"] = _module("torch.optim._multi_tensor", AdamW=torch.optim.AdamW)
    _install(torch.optim, "_multi_tensor", sys.modules["torch.optim._multi_tensor"])
    return ["torch.optim._multi_tensor"]


def _torchvision_video_reader() -> List[str]:
    try:  # torchvision >= 0.2x dropped its video_reader API, which mae_st's decoder calls
        tv_io = importlib.import_module("torchvision.io")
        if hasattr(tv_io, "_read_video_from_memory"):
            return []
        importlib.import_module("av")
    except ImportError:
        return []
    _install(tv_io, "_probe_video_from_memory", _probe_video_from_memory)
    _install(tv_io, "_read_video_from_memory", _read_video_from_memory)
    return ["torchvision.io._read_video_from_memory"]


def _timm_create_model() -> List[str]:
    try:
        import timm
        import timm.models
    except ImportError:
        return []
    if getattr(timm.models.create_model, "_adamask_shim", False):
        return []
    shim = timm_create_model_shim(timm.models.create_model, lambda model, name, kwargs: model)
    for owner in (timm, timm.models):
        _install(owner, "create_model", shim)
    return ["timm.models.create_model"]


def _disabled_grad_scaler_state() -> List[str]:
    if torch.cuda.is_available():
        return []
    from torch.amp.grad_scaler import GradScaler  # torch.cuda.amp.GradScaler inherits its state_dict

    original = GradScaler.state_dict
    if getattr(original, "_adamask_shim", False):
        return []

    @functools.wraps(original)
    def state_dict(self: GradScaler) -> Dict[str, Any]:
        return original(self) if self.is_enabled() else {"scale": 1.0}

    _install(state_dict, "_adamask_shim", True)
    _install(GradScaler, "state_dict", state_dict)
    return ["torch.amp.GradScaler.state_dict"]


def _cuda_synchronize() -> List[str]:
    if torch.cuda.is_available() or getattr(torch.cuda.synchronize, "_adamask_noop", False):
        return []

    def synchronize(device: Any = None) -> None:
        return None

    _install(synchronize, "_adamask_noop", True)
    torch.cuda.synchronize = synchronize
    return ["torch.cuda.synchronize"]


_SHIMS: Tuple[Callable[[], List[str]], ...] = (
    _torch_six,
    _numpy_function_base,
    _timm_optimizers,
    _torch_fb_zeus,
    _torch_multi_tensor,
    _torchvision_video_reader,
    _timm_create_model,
    _disabled_grad_scaler_state,
    _cuda_synchronize,
)


def install_compat_shims() -> List[str]:
    """Make upstream VideoMAE / VideoMAEv2 / mae_st modules importable on current torch, timm and
    numpy, without editing them. Idempotent; returns the names of the shims installed by this call.

    - ``torch._six`` (removed in torch 2): ``inf``, ``string_classes``.
    - ``numpy.lib.function_base`` (removed in numpy 2): ``disp``.
    - ``timm.optim.nadam.Nadam`` / ``timm.optim.radam.RAdam`` (renamed ...Legacy in timm 1) and the
      removed ``timm.optim.novograd`` (a placeholder that fails if selected).
    - ``torch.fb.rendezvous.zeus`` (an internal module mae_st imports and never uses).
    - ``torch.optim._multi_tensor`` imported (mae_st reaches it as an attribute of torch.optim).
    - ``torchvision.io._probe_video_from_memory`` / ``_read_video_from_memory`` (removed from
      torchvision; mae_st decodes with them): PyAV-based stand-ins, if PyAV is installed.
    - ``timm.models.create_model`` (also ``timm.create_model``) calls the model functions registered
      outside timm directly, without timm 1's ``pretrained_cfg`` keywords their constructors reject
      (`timm_create_model_shim`); timm's own models are built by timm as before.
    - Without CUDA: a disabled ``GradScaler`` (torch disables the CUDA loss scaler VideoMAE builds)
      reports the scale it applies, ``{"scale": 1.0}``, from ``state_dict()`` instead of ``{}``: their
      training loops read ``state_dict()["scale"]`` every step. An enabled scaler is unchanged.
    - ``torch.cuda.synchronize`` becomes a no-op when CUDA is unavailable (CPU runs).
    """
    return [name for shim in _SHIMS for name in shim()]


def timm_create_model_shim(original: Any, post: Any) -> Any:
    """A ``timm.models.create_model`` that calls model functions registered by upstream code
    directly (their constructors reject timm 1's ``pretrained_cfg`` keywords), drops None keyword
    arguments as timm does, and passes the model through ``post(model, name, kwargs)``. ``original``
    (timm's own, also when a shim is given) is kept as its ``_adamask_original``."""
    original = getattr(original, "_adamask_original", original)

    def create_model(model_name: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
        import timm.models

        entry = timm.models.model_entrypoint(model_name)
        if entry.__module__.startswith("timm."):
            model = original(model_name, pretrained=pretrained, **kwargs)
        else:
            kw = {
                k: v
                for k, v in kwargs.items()
                if v is not None and k not in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")
            }
            model = entry(pretrained=pretrained, **kw)
        return post(model, model_name, kwargs)

    _install(create_model, "_adamask_shim", True)
    _install(create_model, "_adamask_original", original)
    return create_model
