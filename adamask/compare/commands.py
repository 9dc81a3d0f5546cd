"""The subcommands of the ``adamask`` command: what they run (their options: `adamask.compare.options`).

adamask compare     pretrain the reference MAE once per strategy and compare them (`run_compare`)
adamask visualize   probability map and sampled mask of a checkpoint's strategy on a video
adamask costs       FLOPs and saved activations of one training step per configuration
adamask list        the registered strategies: default ratio, learned or not, what they need
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Sequence

from .config import CompareConfig
from .errors import UserError, user_input
from .options import CONFIG_OPTIONS, PRESETS, parse_sampler_options

__all__ = ["COMMANDS", "run_command", "config_from_args", "strategy_table", "import_modules"]


def config_from_args(args: argparse.Namespace) -> CompareConfig:
    """The CompareConfig of parsed ``adamask compare`` options (explicit options win over the preset)."""
    kw: Dict[str, Any] = {f: getattr(args, f) for f in CONFIG_OPTIONS if getattr(args, f) is not None}
    if args.videos is not None:
        kw["videos"] = [str(Path(p)) for p in args.videos]
    if args.tubelet is not None:
        kw["tubelet"] = tuple(args.tubelet)
    if args.sampler is not None:
        kw["masking_options"] = parse_sampler_options(args.sampler)
    if args.sampling_baseline is not None:
        kw["sampling_baseline"] = None if args.sampling_baseline == "none" else args.sampling_baseline
    preset = dict(PRESETS[args.preset or "demo"])
    if args.size is not None:  # the preset's changes to its own model size do not apply to another size
        preset.pop("model_overrides", None)
    for k, v in preset.items():
        kw.setdefault(k, v)
    if args.quick:
        kw.setdefault("out", "runs/quick")
        return CompareConfig.quick(**kw)
    return CompareConfig(**kw)


def strategy_table() -> str:
    """Every registered strategy: name, default ratio, learned or not and what it needs (tokens, video, nothing)."""
    from ..registry import list_maskings, strategy_info

    rows = [("strategy", "default ratio", "learned", "needs")]
    for name in list_maskings():
        info = strategy_info(name)
        rows.append((name, f"{info.default_ratio:g}", "yes" if info.learned else "no", info.needs))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _compare(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .run import run_compare

    if args.list:
        print(strategy_table())
        return 0
    with user_input():
        cfg = config_from_args(args)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    progress = "none" if args.quiet else ("lines" if args.no_progress else "bar")
    command = "adamask " + " ".join(shlex.quote(a) for a in argv)
    res = run_compare(
        cfg, overwrite=args.overwrite, progress=progress, figures=not args.no_figures, command=command, log=log
    )
    if not args.quiet:
        print((Path(cfg.out) / "results.md").read_text())
        print(
            f"results in {cfg.out}/ (results.json, results.md, figures/, checkpoints/) after {res['runtime_s']:.0f} s",
            file=sys.stderr,
        )
    return 0


def _visualize(args: argparse.Namespace, argv: Sequence[str]) -> int:
    import torch

    from .config import check_device
    from .data import ClipSet, centre_crop, crop_box, motion_energy, read_video
    from .figures import masks_figure, write_animation
    from .model import evaluate_reconstruction, load_checkpoint

    device = check_device(args.device or "cpu")
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() != ".png":
        raise UserError(f"--out must end in .png, got {str(out)!r}")
    model, ck = load_checkpoint(args.checkpoint, device)
    if ck.get("diverged_at_step") is not None:
        raise UserError(
            f"{args.checkpoint}: its strategy diverged at training step {ck['diverged_at_step']} (a "
            f"non-finite loss); there is nothing to visualise - train it again with a lower --lr"
        )
    size = ck["model_config"]["img_size"]
    with user_input():
        full = read_video(
            args.video, num_frames=ck["model_config"]["num_frames"], stride=args.stride, img_size=size, crop=False
        )[0]
    clip = centre_crop(full, size)
    label = ck["strategy"]["name"] + f"_{ck['strategy']['mask_ratio']:g}"
    out = out or Path(f"{Path(args.video).stem}_{label}.png")
    one = ClipSet(clip[None], motion_energy(clip, model.tubelet)[None], torch.tensor([-1]), [str(args.video)], [])
    ev = evaluate_reconstruction(model, None, one, device, seed=args.seed or 0)
    mask = ev["masks"][0].numpy()
    probs = None if ev["probs"] is None else ev["probs"][0].float().numpy()
    alloc = float(ev["allocation"][0])
    h, w = full.shape[-2:]
    context = None if h == w else (full.numpy(), crop_box(h, w, size))
    seen = "" if context is None else f"; the model sees the outlined centre {size}x{size} crop"
    written = [
        masks_figure(
            clip.numpy(),
            model.grid,
            model.tubelet,
            [("sampled mask", mask)],
            out,
            probs=probs,
            title=f"{Path(args.video).name} - {label} (motion-energy allocation {alloc:.2f}{seen})",
            prob_label=f"{label}:\nP(visible)",
            context=context,
            maps=[("reconstruction error\n(its masked tokens)", "errors", ev["errors"][0].numpy())],
        )
    ]
    for flag, ext in ((args.gif, ".gif"), (args.mp4, ".mp4")):
        if flag:
            written.append(
                write_animation(clip.numpy(), model.grid, model.tubelet, out.with_suffix(ext), probs=probs, mask=mask)
            )
    print(f"foreground allocation (motion-energy proxy) of the sampled mask: {alloc:.3f}")
    for p in written:
        print(f"wrote {p}")
    return 0


def _costs(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ..mae import MAE_CONFIGS
    from .costs import format_cost_table, moonshot_line, paper_scale_table

    if args.size not in MAE_CONFIGS:
        raise UserError(f"--size must be one of {sorted(MAE_CONFIGS)}, got {args.size!r}")
    rows = paper_scale_table(args.size)
    print(format_cost_table(rows) + "\n\n" + moonshot_line(rows, args.size))
    return 0


def _list(args: argparse.Namespace, argv: Sequence[str]) -> int:
    print(strategy_table())
    return 0


COMMANDS: Dict[str, Callable[[argparse.Namespace, Sequence[str]], int]] = dict(
    compare=_compare, visualize=_visualize, costs=_costs, list=_list
)


def import_modules(modules: Sequence[str]) -> None:
    """``--import MODULE``: a module that cannot be found is the user's error; one that fails while importing
    is a bug in that module and keeps its traceback."""
    for mod in modules:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name is None or not (mod == e.name or mod.startswith(e.name + ".")):
                raise
            raise UserError(f"--import {mod}: no module named {e.name!r} (is it installed, or on PYTHONPATH?)") from e


def run_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run the parsed subcommand (``argv``: the command line, recorded in results.json); the exit status."""
    import_modules(getattr(args, "imports", []))
    return COMMANDS[args.command](args, argv)
