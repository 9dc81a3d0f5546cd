"""The reference MAE of a comparison, one per strategy: built from a `StrategySpec` by the learned-strategy
contract (never by a strategy's name) and checked on the run's token grid, its masks drawn, its reconstruction
of clips measured, its strategy rebuilt at another mask ratio, and read back from a checkpoint."""

from __future__ import annotations

import inspect
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ..loss import DEFAULT_SAMPLING_WEIGHT
from ..mae import MAE_CONFIGS, MaskedVideoAutoencoder
from ..masking import Masking, needs_video
from ..registry import create_masking, list_maskings, strategy_info
from ..tokens import scatter_masked, token_grid
from .config import CompareConfig, StrategySpec
from .data import ClipSet, normalize_video
from .errors import MissingFileError, UserError, brief, user_input
from .metrics import foreground_allocation, probability_allocation

__all__ = [
    "CHECKPOINT_FORMAT",
    "takes_option",
    "strategy_options",
    "build_strategy",
    "build_model",
    "model_for",
    "check_on_grid",
    "load_checkpoint",
    "strategy_at_ratio",
    "draw_masking",
    "read_checkpoint",
    "full_decoder",
    "evaluate_reconstruction",
]

CHECKPOINT_FORMAT = "adamask-compare-checkpoint/1"


def takes_option(name: str, key: str) -> bool:
    """Whether the constructor of the registered strategy ``name`` takes the keyword argument ``key``, by its
    signature: a parameter of that name, or ``**kwargs``."""
    try:
        params = inspect.signature(strategy_info(name).factory).parameters.values()
    except (TypeError, ValueError):  # a factory without a signature
        return False
    return any(p.kind is p.VAR_KEYWORD or (p.name == key and p.kind is not p.POSITIONAL_ONLY) for p in params)


def strategy_options(spec: StrategySpec, shared: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The options ``spec``'s strategy is built with: each of the run's ``shared`` options (``--sampler``) its
    constructor takes (`takes_option`), then its own (``spec.options``, which win); a ValueError naming an
    option of its own it does not take."""
    for key, _ in spec.options:
        if not takes_option(spec.name, key):
            raise ValueError(f"strategy {spec.label}: {spec.name} takes no option {key!r}")
    taken = {k: v for k, v in (shared or {}).items() if takes_option(spec.name, k)}
    return {**taken, **dict(spec.options)}


def build_strategy(
    spec: StrategySpec,
    grid: Sequence[int],
    embed_dim: int,
    options: Optional[Dict[str, Any]] = None,
    tubelet: Optional[Sequence[int]] = None,
) -> Callable[..., Masking]:
    """The strategy object for ``spec`` on the model's grid (T', H', W'). Every strategy gets the token width
    ``embed_dim`` if it takes one, and a strategy that needs the video the model's ``tubelet``; of the run's
    ``options`` (``--sampler``) it gets those its constructor takes, and its own options
    (`strategy_options`); an ``embed_dim`` among them overrides the model's width."""
    info = strategy_info(spec.name)
    opts = strategy_options(spec, options)
    if info.needs == "video" and tubelet is not None:
        opts["tubelet"] = tuple(tubelet)
    width = opts.pop("embed_dim", embed_dim)
    return create_masking(spec.name, grid=tuple(grid), mask_ratio=spec.mask_ratio, embed_dim=width, **opts)


def draw_masking(
    model: MaskedVideoAutoencoder,
    video: Tensor,
    tokens: Tensor,
    generator: Optional[torch.Generator],
    strategy: Optional[Callable[..., Masking]] = None,
) -> Masking:
    """The masking of ``strategy`` (default: the model's own, checked against the contract by
    `MaskedVideoAutoencoder.sample_masking`) for a batch: video (B, C, T, H, W) normalised, tokens (B, N, D) its
    patch embeddings. A strategy that needs the video gets the video, any other the tokens."""
    if strategy is None:
        return model.sample_masking(tokens, generator, video)
    return strategy(video if needs_video(strategy) else tokens, generator=generator)


def build_model(
    model_config: Dict[str, Any],
    spec: StrategySpec,
    *,
    seed: int,
    masking_options: Optional[Dict[str, Any]] = None,
    sampling_weight: float = DEFAULT_SAMPLING_WEIGHT,
    sampling_estimator: str = "paper",
    sampling_baseline: Optional[str] = None,
    sampling_entropy_weight: float = 0.0,
) -> MaskedVideoAutoencoder:
    """The reference MAE with ``spec``'s strategy. The backbone's initial weights depend on ``seed`` only, so
    every strategy starts from the same network."""
    c = {**MAE_CONFIGS["base"], **model_config}
    grid = token_grid((1, c.get("in_chans", 3), c["num_frames"], c["img_size"], c["img_size"]), tuple(c["tubelet"]))
    torch.manual_seed(seed + 1)
    strategy = build_strategy(spec, grid, c["embed_dim"], masking_options, c["tubelet"])
    torch.manual_seed(seed)
    return MaskedVideoAutoencoder(
        **model_config,
        masking=strategy,
        sampling_weight=sampling_weight,
        sampling_estimator=sampling_estimator,
        sampling_baseline=sampling_baseline,
        sampling_entropy_weight=sampling_entropy_weight,
    )


def model_for(cfg: CompareConfig, spec: StrategySpec) -> MaskedVideoAutoencoder:
    """`build_model` of ``spec`` with every setting of the run ``cfg`` (on the current default device)."""
    return build_model(
        cfg.model_config(),
        spec,
        seed=cfg.seed,
        masking_options=cfg.masking_options,
        sampling_weight=cfg.sampling_weight,
        sampling_estimator=cfg.sampling_estimator,
        sampling_baseline=cfg.sampling_baseline,
        sampling_entropy_weight=cfg.sampling_entropy_weight,
    )


def check_on_grid(cfg: CompareConfig) -> None:
    """Each strategy's model (with the decoder masking, sampler options and loss settings) at its ratio and at
    both ends of the ratio schedule, and the common ratio, on the run's token grid: built on the meta device, at
    no cost; a `UserError` naming the strategy or option that does not fit."""
    with user_input("model: "):
        c = {**MAE_CONFIGS["base"], **cfg.model_config()}
        grid = token_grid((1, 3, c["num_frames"], c["img_size"], c["img_size"]), tuple(c["tubelet"]))
    n = math.prod(grid)
    with user_input(f"common_ratio {cfg.common_ratio:g} on the {n} tokens of grid {grid}: "):
        create_masking("random", grid=grid, mask_ratio=cfg.common_ratio)
    specs = cfg.specs()
    unused = [k for k in cfg.masking_options if not any(takes_option(s.name, k) for s in specs)]
    if unused:
        raise UserError(
            f"--sampler {' '.join(f'{k}={cfg.masking_options[k]}' for k in unused)}: none of the strategies "
            f"{', '.join(s.label for s in specs)} takes {'it' if len(unused) == 1 else 'them'}; each --sampler "
            f"option goes to every strategy whose constructor takes it (e.g. adaptive, error_predictor; "
            f"temperature also motion and motion_pixels)"
        )
    decoder = cfg.decoder_spec()
    if decoder is not None:
        with user_input(f"--decoder-masking {cfg.decoder_masking} on the {n} tokens of grid {grid}: "):
            create_masking(decoder.name, grid=grid, mask_ratio=decoder.mask_ratio)
    schedule = cfg.schedule()
    for spec in specs:
        with user_input(f"strategy {spec.label} on the {n} tokens of grid {grid}: "), torch.device("meta"):
            model = model_for(cfg, spec)
        if schedule is None:
            continue
        for ratio in (schedule.start, schedule.end):  # every kind of schedule lies between its two ends
            with user_input(
                f"--ratio-schedule {cfg.ratio_schedule}: strategy {spec.label} at ratio {ratio:g} on "
                f"the {n} tokens of grid {grid}: "
            ):
                model.set_mask_ratio(ratio)


def load_checkpoint(
    path: os.PathLike, device: Union[str, torch.device] = "cpu"
) -> Tuple[MaskedVideoAutoencoder, Dict[str, Any]]:
    """A checkpoint written by `run_compare` -> (model with its trained sampler, in eval mode, on ``device``,
    checkpoint dict). Read onto the CPU first, so a checkpoint saved on a GPU opens anywhere. A missing,
    unreadable or foreign file raises a `UserError` (a ValueError) naming it."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"checkpoint {str(path)!r} does not exist")
    ckpt = read_checkpoint(path)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path}: not an adamask compare checkpoint")
    try:
        record = dict(ckpt["strategy"])
        spec = StrategySpec(record["name"], record["mask_ratio"], tuple(dict(record.get("options") or {}).items()))
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{path}: a damaged adamask compare checkpoint (its strategy record: {e})") from e
    if spec.name not in list_maskings():
        raise UserError(
            f"{path}: strategy {spec.name!r} is not registered here; import the module that "
            f"registers it (--import MODULE)"
        )
    try:
        model = build_model(
            ckpt["model_config"],
            spec,
            seed=0,
            masking_options=ckpt.get("masking_options"),
            sampling_weight=ckpt.get("sampling_weight", DEFAULT_SAMPLING_WEIGHT),
        )
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise UserError(f"{path}: a damaged adamask compare checkpoint ({brief(e)})") from e
    return model.to(device).eval(), ckpt


def read_checkpoint(path: os.PathLike, remedy: str = "") -> Dict[str, Any]:
    """The dict saved in a checkpoint file, loaded onto the CPU; a `UserError` naming the file if it is not a
    readable torch file holding a dict (``remedy`` ends the message: what to do)."""
    tail = f"; {remedy}" if remedy else ""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise UserError(f"{path}: not a readable checkpoint ({brief(e)}){tail}") from e
    if not isinstance(ckpt, dict):
        raise UserError(f"{path}: not an adamask compare checkpoint (it holds a {type(ckpt).__name__}){tail}")
    return ckpt


def strategy_at_ratio(
    model: MaskedVideoAutoencoder, spec: StrategySpec, ratio: float, options: Dict[str, Any]
) -> Tuple[Optional[Callable[..., Masking]], Optional[str]]:
    """The strategy of ``model`` at another mask ratio, carrying over learned weights; (None, reason) if not."""
    try:
        other = build_strategy(
            StrategySpec(spec.name, ratio, spec.options), model.grid, model.embed_dim, options, model.tubelet
        )
    except (ValueError, TypeError) as e:
        return None, f"{spec.name} cannot run at mask ratio {ratio}: {e}"
    trained = model.mask_sampler
    if isinstance(trained, nn.Module) and isinstance(other, nn.Module) and len(trained.state_dict()):
        try:
            other.load_state_dict(trained.state_dict())
        except RuntimeError as e:
            return None, f"trained {spec.name} weights do not fit at ratio {ratio}: {e}"
    if isinstance(other, nn.Module):
        other = other.to(next(model.parameters()).device).eval()
    return other, None


@contextmanager
def full_decoder(model: MaskedVideoAutoencoder) -> Iterator[None]:
    """Within this block the model's decoder reconstructs every masked token, also when it trains with decoder
    masking (which only saves compute in training): held-out losses stay comparable across runs."""
    saved = model.decoder_masking
    model.decoder_masking = None
    try:
        yield
    finally:
        model.decoder_masking = saved


@torch.no_grad()
def evaluate_reconstruction(
    model: MaskedVideoAutoencoder,
    strategy: Optional[Callable[..., Masking]],
    clips: ClipSet,
    device: torch.device,
    *,
    seed: int,
    draws: int = 1,
    batch_size: int = 32,
) -> Dict[str, Any]:
    """Held-out masked reconstruction loss (the model's pixel MSE over all masked tokens) of ``model`` under
    ``strategy``'s masks (None or ``model.sample_masking``: the model's own), ``draws`` times over ``clips``.
    Returns loss (float), allocation (M*draws,) per-clip foreground allocation, masks (M*draws, N) bool
    (True = masked), probs (M*draws, N) or None, probability_allocation (M*draws,) or None and errors
    (M*draws, N) float32, each masked token's reconstruction error (NaN where visible), on the CPU."""
    model.eval()
    own = strategy is None or strategy == model.sample_masking
    gen = torch.Generator(device=device).manual_seed(seed)
    losses, alloc, masks, probs, pall, errors = [], [], [], [], [], []
    for _ in range(draws):
        for i in range(0, len(clips), batch_size):
            video = normalize_video(clips.videos[i : i + batch_size]).to(device)
            tokens = model.tokenize(video)
            masking = draw_masking(model, video, tokens, gen, None if own else strategy)
            with full_decoder(model):
                out = model.reconstruct(video, tokens, masking)
            losses.append(out.token_error.mean(1).cpu())
            per_token = scatter_masked(out.token_error.float(), out.masking.mask)
            errors.append(torch.where(out.masking.mask, per_token, float("nan")).cpu())
            mask = out.masking.mask.cpu()
            fg = clips.foreground[i : i + batch_size]
            alloc.append(foreground_allocation(mask, fg))
            masks.append(mask)
            if out.masking.probs is not None:
                probs.append(out.masking.probs.cpu())
                pall.append(probability_allocation(probs[-1], fg))
    model.train()
    return dict(
        loss=float(torch.cat(losses).mean()),
        allocation=torch.cat(alloc),
        masks=torch.cat(masks),
        probs=torch.cat(probs) if probs else None,
        probability_allocation=torch.cat(pall) if pall else None,
        errors=torch.cat(errors),
    )
