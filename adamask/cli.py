"""The ``adamask`` command line: ``adamask compare`` and ``adamask visualize``.

    adamask compare                                # embedded data, random/tube/frame 0.9 vs adaptive 0.95
    adamask compare --videos my_clips/ --out runs/mine
    adamask compare --strategies random:0.9 adaptive:0.95 mymask:0.8 --import mypackage.masks
    adamask visualize video.mp4 --checkpoint runs/compare/checkpoints/adaptive_0.95.pt --gif
"""
from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

__all__ = ["main", "build_parser"]


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (e.g. one that registers a custom strategy with register_masking)")
    p.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0); same seed = same run")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adamask", description="Compare and visualise video MAE masking strategies.")
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compare", help="pretrain the reference MAE once per masking strategy and compare them",
                       description="Pretrain the reference video MAE for the same budget on the same clips with each "
                                   "strategy, then write results.json, results.md, checkpoints and PNG figures into "
                                   "the run folder. Rerunning the same command resumes an interrupted run.")
    c.add_argument("--strategies", nargs="+", default=None, metavar="NAME[:RATIO]",
                   help="strategies to compare (default: random:0.9 tube:0.9 frame:0.9 adaptive:0.95); any "
                        "registered name works")
    c.add_argument("--out", default=None, help="run folder (default runs/compare, runs/quick with --quick)")
    c.add_argument("--quick", action="store_true", help="a tiny configuration that runs in seconds (for tests)")
    c.add_argument("--videos", nargs="+", default=None, metavar="PATH",
                   help="use these video files / folders instead of the embedded data (one sub-folder per class "
                        "gives probe labels)")
    c.add_argument("--stride", type=int, default=None, help="temporal stride when sampling video frames (default 4)")
    c.add_argument("--clips-per-video", type=int, default=None, help="clips taken from each video (default 4)")
    c.add_argument("--steps", type=int, default=None, help="training steps per strategy (default 200)")
    c.add_argument("--batch-size", type=int, default=None, help="clips per step (default 16)")
    c.add_argument("--lr", type=float, default=None, help="peak learning rate of AdamW (default 1e-3)")
    c.add_argument("--train-clips", type=int, default=None, help="embedded training clips (default 256)")
    c.add_argument("--test-clips", type=int, default=None, help="embedded held-out clips (default 64)")
    c.add_argument("--common-ratio", type=float, default=None, help="common mask ratio for the loss (default 0.9)")
    c.add_argument("--sampling-weight", type=float, default=None,
                   help="lambda of the sampling loss (default 1e-4, the paper's)")
    c.add_argument("--sampling-baseline", choices=["none", "mean"], default=None,
                   help="baseline subtracted from the errors in the sampling loss (default mean; the paper: none)")
    c.add_argument("--sampling-estimator", choices=["paper", "plackett_luce"], default=None,
                   help="sampling-loss estimator (default paper)")
    c.add_argument("--sampler", nargs="+", default=None, metavar="KEY=VALUE",
                   help="options of the adaptive sampler, e.g. variant=attention width=24 depth=1 num_heads=4 "
                        "token_pool=1x2x2 checkpoint=true (default: the paper's block at the encoder's width)")
    c.add_argument("--sampler-lr-scale", type=float, default=None,
                   help="learning-rate multiplier for the adaptive sampler's parameters (default 1)")
    c.add_argument("--pixel-loss", choices=["normalized", "raw"], default=None,
                   help="reconstruction target: raw pixels (default) or per-patch normalised pixels (the paper's)")
    c.add_argument("--background-contrast", type=float, default=None,
                   help="contrast of the embedded data's photo background in [0, 1] (default 0.3)")
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
    c.add_argument("--checkpoint-every", type=int, default=None, help="save a resumable checkpoint every N steps")
    c.add_argument("--overwrite", action="store_true", help="start over in an existing run folder")
    c.add_argument("--no-progress", action="store_true", help="no progress bars (one line per 10%% instead)")
    c.add_argument("--quiet", action="store_true", help="print nothing but errors")
    c.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    c.add_argument("--list", action="store_true", help="list the registered strategies and exit")
    _add_common(c)

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
    return parser


PRESETS = {
    "demo": dict(),  # the CompareConfig defaults: raw pixels, background contrast 0.3, mean baseline
    "paper": dict(pixel_loss="normalized", background_contrast=0.8, sampling_baseline=None),
}

_COMPARE_FIELDS = dict(sampler_lr_scale="sampler_lr_scale", pixel_loss="pixel_loss",
                       background_contrast="background_contrast",
                       strategies="strategies", out="out", stride="stride", clips_per_video="clips_per_video",
                       steps="steps", batch_size="batch_size", lr="lr", train_clips="train_clips",
                       test_clips="test_clips", common_ratio="common_ratio", sampling_weight="sampling_weight",
                       sampling_estimator="sampling_estimator", size="size", img_size="img_size",
                       num_frames="num_frames", checkpoint_every="checkpoint_every", seed="seed", device="device")


SAMPLER_OPTIONS = {"variant": str, "width": int, "depth": int, "num_heads": int, "mlp_ratio": float,
                   "token_pool": tuple, "checkpoint": bool, "detach_input": bool}


def parse_sampler_options(items: Sequence[str]) -> Dict[str, Any]:
    """["variant=attention", "token_pool=1x2x2", ...] -> AdaptiveTokenSampler keyword arguments."""
    out: Dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in SAMPLER_OPTIONS:
            raise ValueError(f"--sampler takes KEY=VALUE with KEY in {sorted(SAMPLER_OPTIONS)}, got {item!r}")
        kind = SAMPLER_OPTIONS[key]
        try:
            if kind is tuple:
                out[key] = tuple(int(v) for v in value.lower().split("x"))
            elif kind is bool:
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                out[key] = value.lower() in ("true", "1")
            else:
                out[key] = kind(value)
        except ValueError:
            raise ValueError(f"--sampler {key} must be {'TxHxW ints' if kind is tuple else kind.__name__}, "
                             f"got {value!r}") from None
    return out


def _compare(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .compare import CompareConfig, run_compare
    from .masking import list_maskings

    if args.list:
        print("\n".join(list_maskings()))
        return 0
    kw = {f: getattr(args, a) for a, f in _COMPARE_FIELDS.items() if getattr(args, a) is not None}
    if args.videos is not None:
        kw["videos"] = [str(Path(p)) for p in args.videos]
    if args.tubelet is not None:
        kw["tubelet"] = tuple(args.tubelet)
    if args.sampler is not None:
        kw["masking_options"] = parse_sampler_options(args.sampler)
    if args.sampling_baseline is not None:
        kw["sampling_baseline"] = None if args.sampling_baseline == "none" else args.sampling_baseline
    for k, v in PRESETS[args.preset or "demo"].items():
        if k == "sampling_baseline" and args.sampling_baseline is not None:
            continue
        kw.setdefault(k, v)
    if args.quick:
        kw.setdefault("out", "runs/quick")
        cfg = CompareConfig.quick(**kw)
    else:
        cfg = CompareConfig(**kw)
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


def _visualize(args: argparse.Namespace) -> int:
    import torch

    from .compare import load_checkpoint
    from .compare.data import motion_energy, normalize_video, read_video
    from .compare.figures import masks_figure, write_animation
    from .compare.metrics import foreground_allocation

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


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``adamask`` command; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        for mod in args.imports:
            importlib.import_module(mod)
        if args.command == "compare":
            return _compare(args, argv)
        return _visualize(args)
    except KeyboardInterrupt:
        print("adamask: interrupted; files written so far are complete - run the same command again to resume",
              file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, ImportError, RuntimeError) as e:
        print(f"adamask: error: {e}", file=sys.stderr)
        return 2
