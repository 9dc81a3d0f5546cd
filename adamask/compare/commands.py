"""The subcommands of the ``adamask`` command: their options and what they run.

    adamask compare     pretrain the reference MAE once per strategy and compare them (`run_compare`)
    adamask visualize   probability map and sampled mask of a checkpoint's strategy on a video
    adamask costs       FLOPs and saved activations of one training step per configuration
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Sequence

from .config import PRESETS, CompareConfig, parse_sampler_options

__all__ = ["add_commands", "run_command", "config_from_args"]

# options whose value goes unchanged into the CompareConfig field of the same name
CONFIG_OPTIONS = ("strategies", "out", "stride", "clips_per_video", "steps", "batch_size", "lr", "train_clips",
                  "test_clips", "common_ratio", "sampling_weight", "sampling_estimator", "sampler_lr_scale",
                  "pixel_loss", "background_contrast", "size", "img_size", "num_frames", "checkpoint_every", "seed",
                  "device")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (e.g. one that registers a custom strategy with register_masking)")
    p.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0); same seed = same run")


def _add_data_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("--videos", nargs="+", default=None, metavar="PATH",
                   help="use these video files / folders instead of the embedded data (one sub-folder per class "
                        "gives probe labels)")
    c.add_argument("--stride", type=int, default=None, help="temporal stride when sampling video frames (default 4)")
    c.add_argument("--clips-per-video", type=int, default=None, help="clips taken from each video (default 4)")
    c.add_argument("--train-clips", type=int, default=None, help="embedded training clips (default 256)")
    c.add_argument("--test-clips", type=int, default=None, help="embedded held-out clips (default 64)")
    c.add_argument("--background-contrast", type=float, default=None,
                   help="contrast of the embedded data's photo background in [0, 1] (default 0.3)")


def _add_training_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("--steps", type=int, default=None, help="training steps per strategy (default 200)")
    c.add_argument("--batch-size", type=int, default=None, help="clips per step (default 16)")
    c.add_argument("--lr", type=float, default=None, help="peak learning rate of AdamW (default 1e-3)")
    c.add_argument("--common-ratio", type=float, default=None, help="common mask ratio for the loss (default 0.9)")
    c.add_argument("--sampling-weight", type=float, default=None,
                   help="lambda of the sampling loss (default 1e-4, the paper's)")
    c.add_argument("--sampling-baseline", choices=["none", "mean"], default=None,
                   help="baseline subtracted from the errors in the sampling loss (default mean; the paper: none)")
    c.add_argument("--sampling-estimator", choices=["paper", "plackett_luce"], default=None,
                   help="sampling-loss estimator (default paper)")
    c.add_argument("--sampler", nargs="+", default=None, metavar="KEY=VALUE",
                   help="options of the learned strategies (the adaptive sampler's), e.g. variant=attention "
                        "width=24 depth=1 num_heads=4 token_pool=1x2x2 checkpoint=true (default: the paper's "
                        "block at the encoder's width)")
    c.add_argument("--sampler-lr-scale", type=float, default=None,
                   help="learning-rate multiplier for the learned strategies' parameters (default 1)")
    c.add_argument("--pixel-loss", choices=["normalized", "raw"], default=None,
                   help="reconstruction target: raw pixels (default) or per-patch normalised pixels (the paper's)")
    c.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="'demo' (default): raw-pixel loss, background contrast 0.3 and the mean baseline in the "
                        "sampling loss, where the MAE and the sampler learn within minutes; 'paper': the paper's "
                        "normalised-pixel loss without baseline, photo background at contrast 0.8; explicit options "
                        "win over the preset")
    c.add_argument("--size", default=None, help="model size from MAE_CONFIGS (default tiny)")
    c.add_argument("--img-size", type=int, default=None, help="frame size in pixels (default 64)")
    c.add_argument("--num-frames", type=int, default=None, help="frames per clip (default 16)")
    c.add_argument("--tubelet", type=int, nargs=3, default=None, metavar=("T", "H", "W"),
                   help="tubelet size (default 2 8 8)")


def _add_compare(sub: Any) -> None:
    c = sub.add_parser("compare", help="pretrain the reference MAE once per masking strategy and compare them",
                       description="Pretrain the reference video MAE for the same budget on the same clips with each "
                                   "strategy, then write results.json, results.md, checkpoints and PNG figures into "
                                   "the run folder. Rerunning the same command resumes an interrupted run.")
    c.add_argument("--strategies", nargs="+", default=None, metavar="NAME[:RATIO]",
                   help="strategies to compare (default: random:0.9 tube:0.9 frame:0.9 adaptive:0.95); any "
                        "registered name works")
    c.add_argument("--out", default=None, help="run folder (default runs/compare, runs/quick with --quick)")
    c.add_argument("--quick", action="store_true", help="a tiny configuration that runs in seconds (for tests)")
    _add_data_options(c)
    _add_training_options(c)
    c.add_argument("--checkpoint-every", type=int, default=None, help="save a resumable checkpoint every N steps")
    c.add_argument("--overwrite", action="store_true", help="start over in an existing run folder")
    c.add_argument("--no-progress", action="store_true", help="no progress bars (one line per 10%% instead)")
    c.add_argument("--quiet", action="store_true", help="print nothing but errors")
    c.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    c.add_argument("--list", action="store_true", help="list the registered strategies and exit")
    _add_common(c)


def _add_visualize(sub: Any) -> None:
    v = sub.add_parser("visualize", help="probability map and sampled mask of a trained strategy on a video",
                       description="Render the probability map and a sampled mask of a checkpoint's strategy on "
                                   "any video file, as PNG (and GIF / MP4 if asked).")
    v.add_argument("video", help="a video file (mp4, avi, webm, ...)")
    v.add_argument("--checkpoint", required=True, help="a checkpoint from adamask compare (checkpoints/<label>.pt)")
    v.add_argument("--out", default=None, help="PNG path (default <video name>_<strategy>.png)")
    v.add_argument("--stride", type=int, default=4, help="temporal stride when sampling frames (default 4)")
    v.add_argument("--gif", action="store_true", help="also write an animated GIF next to the PNG")
    v.add_argument("--mp4", action="store_true", help="also write an MP4 next to the PNG")
    _add_common(v)


def _add_costs(sub: Any) -> None:
    from .costs import add_cost_arguments

    c = sub.add_parser("costs", help="FLOPs and saved activations of one training step, per component",
                       description="Count (on meta tensors, without running anything) the FLOPs and saved "
                                   "activations of one training step of the reference MAE per component, for "
                                   "random, tube and adaptive masking and cheaper sampler settings.")
    add_cost_arguments(c)


def add_commands(sub: Any) -> None:
    """Add compare, visualize and costs to an argparse ``add_subparsers()`` object."""
    _add_compare(sub)
    _add_visualize(sub)
    _add_costs(sub)


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
    for k, v in PRESETS[args.preset or "demo"].items():
        kw.setdefault(k, v)
    if args.quick:
        kw.setdefault("out", "runs/quick")
        return CompareConfig.quick(**kw)
    return CompareConfig(**kw)


def _compare(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from ..masking import list_maskings
    from .run import run_compare

    if args.list:
        print("\n".join(list_maskings()))
        return 0
    cfg = config_from_args(args)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    progress = "none" if args.quiet else ("lines" if args.no_progress else "bar")
    command = "adamask " + " ".join(shlex.quote(a) for a in argv)
    res = run_compare(cfg, overwrite=args.overwrite, progress=progress, figures=not args.no_figures,
                      command=command, log=log)
    if not args.quiet:
        print((Path(cfg.out) / "results.md").read_text())
        print(f"results in {cfg.out}/ (results.json, results.md, figures/, checkpoints/) "
              f"after {res['runtime_s']:.0f} s", file=sys.stderr)
    return 0


def _visualize(args: argparse.Namespace, argv: Sequence[str]) -> int:
    import torch

    from .data import motion_energy, normalize_video, read_video
    from .figures import masks_figure, write_animation
    from .metrics import foreground_allocation
    from .model import load_checkpoint

    device = args.device or "cpu"
    model, ck = load_checkpoint(args.checkpoint, device)
    mc = ck["model_config"]
    clip = read_video(args.video, num_frames=mc["num_frames"], stride=args.stride, img_size=mc["img_size"])[0]
    label = ck["strategy"]["name"] + f"_{ck['strategy']['mask_ratio']:g}"
    out = Path(args.out) if args.out else Path(f"{Path(args.video).stem}_{label}.png")
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out must end in .png, got {str(out)!r}")
    gen = torch.Generator(device=device).manual_seed(args.seed or 0)
    with torch.no_grad():
        tokens = model.tokenize(normalize_video(clip[None]).to(device))
        masking = model.sample_masking(tokens, gen)
    mask = masking.mask[0].cpu().numpy()
    probs = None if masking.probs is None else masking.probs[0].float().cpu().numpy()
    energy = motion_energy(clip, model.tubelet)
    alloc = float(foreground_allocation(masking.mask.cpu(), energy[None])[0])
    written = [masks_figure(clip.numpy(), model.grid, model.tubelet, [("sampled mask", mask)], out,
                            probs=probs, title=f"{Path(args.video).name} - {label} "
                                               f"(motion-energy allocation {alloc:.2f})",
                            prob_label=f"{label}:\nP(visible)")]
    for flag, ext in ((args.gif, ".gif"), (args.mp4, ".mp4")):
        if flag:
            written.append(write_animation(clip.numpy(), model.grid, model.tubelet, out.with_suffix(ext), probs=probs,
                                           mask=mask))
    print(f"foreground allocation (motion-energy proxy) of the sampled mask: {alloc:.3f}")
    for p in written:
        print(f"wrote {p}")
    return 0


def _costs(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .costs import format_cost_table, paper_scale_table

    print(format_cost_table(paper_scale_table(args.size)))
    return 0


COMMANDS: Dict[str, Callable[[argparse.Namespace, Sequence[str]], int]] = dict(
    compare=_compare, visualize=_visualize, costs=_costs)


def run_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run the parsed subcommand (``argv``: the command line, recorded in results.json); the exit status."""
    return COMMANDS[args.command](args, argv)
