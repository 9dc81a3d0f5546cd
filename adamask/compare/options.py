"""The options of the ``adamask`` subcommands (argparse), the presets and the ``--sampler KEY=VALUE`` options.

Imports nothing heavy (no torch): ``adamask --help`` and ``adamask compare --help`` parse their arguments
from this module alone; the subcommands import torch when they run (`adamask.compare.commands`).
"""

from __future__ import annotations

import argparse
import math
from typing import Any, Dict, Sequence

__all__ = ["PRESETS", "SAMPLER_OPTIONS", "CHEAP_SAMPLER", "CONFIG_OPTIONS", "parse_sampler_options", "add_commands"]

_PAPER_LOSS: Dict[str, Any] = dict(
    pixel_loss="normalized", sampling_baseline=None, sampling_weight=1e-4, sampling_estimator="paper"
)
PRESETS: Dict[str, Dict[str, Any]] = {
    "demo": dict(),  # the CompareConfig defaults: raw pixels, background contrast 0.3, mean baseline
    # the paper's loss (normalised pixels, no baseline, lambda 1e-4, its estimator) on a flat background, where
    # the reconstruction error concentrates on the moving digits and the sampler learns
    "paper": dict(_PAPER_LOSS, background_contrast=0.0),
    # the same on the photo at contrast 0.8: per-patch normalisation makes every background patch unit-variance
    # texture, foreground and background errors stay equal and the sampler stays uniform
    "paper-photo": dict(_PAPER_LOSS, background_contrast=0.8),
    # The largest run sized to finish in about 6 minutes on one H100 / H200 - NOT yet run on one. 64 x 64 px x 16
    # frames (512 tokens, digits 32 px), encoder 6 x 384 (ViT-S's width and heads, half its depth), decoder
    # 2 x 192, batch 32, 300 steps, 2 seeds, the fine-tuning probe on (150 steps x 2 seeds per encoder).
    # Sizing, from `adamask.compare.costs.step_costs` and the H100 timings in BENCHMARKS.md:
    # - FLOPs per step (batch 32, forward + backward): random 0.9 248 GFLOP, adaptive 0.95 406 GFLOP; one
    #   fine-tuning step (every token) 1290 GFLOP.
    # - Eager steps of this size are launch-bound on an H100: ViT-B (16 blocks with the decoder) took 37-46 ms
    #   a step with the GPU busy only 22-28 ms of it, about 75 kernels per block at ~30 us each, i.e. ~2.3 ms
    #   per block plus ~5 ms; here 8-9 blocks -> ~25 ms per pretraining step (compute: 248-406 GFLOP at
    #   >= 25 TFLOP/s in float32 = 10-16 ms, hidden under the launches); a fine-tuning step (6 blocks, bf16
    #   autocast, 1290 GFLOP at ~140 TFLOP/s = 9 ms) ~19 ms.
    # - Pretraining: 9 strategies (the default set, at most) x 2 seeds x 300 steps x ~27 ms = 146 s; fine-tuning:
    #   (18 + 2 untrained) encoders x 2 seeds x 150 steps x ~19 ms = 114 s; clips, evaluation, frozen probes and
    #   start-up ~80 s (the default CPU-sized run took 95 s on an H100, ~50 s of it outside the training steps):
    #   ~340 s.
    # The estimate is good to perhaps +-50%: --steps and --finetune scale the two big terms.
    "gpu": dict(
        device="cuda",
        size="small",
        model_overrides=dict(depth=6, decoder_depth=2),
        img_size=64,
        num_frames=16,
        batch_size=32,
        steps=300,
        warmup_steps=30,
        lr=5e-4,
        seeds=2,
        train_clips=1024,
        test_clips=128,
        checkpoint_every=1000,
        finetune_steps=150,
        finetune_seeds=2,
    ),
}

# the strategy keyword arguments that ``--sampler KEY=VALUE`` and a strategy's own ``NAME:RATIO:KEY=VALUE,...``
# accept, with their types (the adaptive sampler's; motion's temperature)
SAMPLER_OPTIONS = {
    "variant": str,
    "width": int,
    "depth": int,
    "num_heads": int,
    "mlp_ratio": float,
    "token_pool": tuple,
    "checkpoint": bool,
    "detach_input": bool,
    "temperature": float,
}

# the cheap sampler setting of the default comparison, beside the paper's block: the paper's MLP-only block at a
# quarter of the tiny model's width. On the default run (128 tokens, 3 seeds) it costs 0.08 training GFLOP per
# step against the paper block's 1.66 and keeps 90% of its foreground allocation (2.40 vs 2.66); attention at
# width 24 keeps as much for 0.12, width 12 keeps 73%, and pooling 1x2x2 (2x2 cells of a 4x4 grid) only 48%
CHEAP_SAMPLER = "variant=mlp,width=24"

# options whose value goes unchanged into the CompareConfig field of the same name
CONFIG_OPTIONS = (
    "strategies",
    "out",
    "stride",
    "clips_per_video",
    "steps",
    "batch_size",
    "lr",
    "train_clips",
    "test_clips",
    "common_ratio",
    "sampling_weight",
    "sampling_estimator",
    "sampler_lr_scale",
    "pixel_loss",
    "background_contrast",
    "size",
    "img_size",
    "num_frames",
    "checkpoint_every",
    "seed",
    "device",
    "ratio_schedule",
    "decoder_masking",
    "sampling_entropy_weight",
    "held_out",
    "seeds",
    "probe_label",
    "probe_train_clips",
    "probe_test_clips",
    "finetune_steps",
    "finetune_seeds",
    "threads",
    "budget",
    "compile",
)


def parse_sampler_options(items: Sequence[str], what: str = "--sampler") -> Dict[str, Any]:
    """["variant=attention", "token_pool=1x2x2", ...] -> strategy keyword arguments (those of `SAMPLER_OPTIONS`,
    with their types); ``what`` names the option in the errors."""
    out: Dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in SAMPLER_OPTIONS:
            raise ValueError(f"{what} takes KEY=VALUE with KEY in {sorted(SAMPLER_OPTIONS)}, got {item!r}")
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
                if kind is float and not math.isfinite(out[key]):
                    raise ValueError
        except ValueError:
            kind_text = {tuple: "TxHxW ints", bool: "true or false", float: "a finite number"}.get(kind, kind.__name__)
            raise ValueError(f"{what} {key} must be {kind_text}, got {value!r}") from None
    return out


def _add_import(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (e.g. one that registers a custom strategy with register_masking)",
    )


def _add_common(p: argparse.ArgumentParser) -> None:
    _add_import(p)
    p.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0); same seed = same run")


def _add_data_options(c: argparse.ArgumentParser) -> None:
    c.add_argument(
        "--videos",
        nargs="+",
        default=None,
        metavar="PATH",
        help="use these video files / folders instead of the embedded data (one sub-folder per class "
        "gives probe labels)",
    )
    c.add_argument(
        "--held-out",
        nargs="+",
        default=None,
        metavar="NAME",
        help="with --videos: hold out these videos (file name, stem or path) for evaluation; default: "
        "every 4th video, or with a single video every 4th clip, which overlaps training content",
    )
    c.add_argument("--stride", type=int, default=None, help="temporal stride when sampling video frames (default 4)")
    c.add_argument(
        "--clips-per-video",
        type=int,
        default=None,
        help="clips taken from each video, spread over it (default: about 256 in all - 256 / the number of "
        "videos, between 4 and 32; a short video gives fewer, one per start frame at most)",
    )
    c.add_argument("--train-clips", type=int, default=None, help="embedded training clips (default 256)")
    c.add_argument("--test-clips", type=int, default=None, help="embedded held-out clips (default 64)")
    c.add_argument(
        "--background-contrast",
        type=float,
        default=None,
        help="contrast of the embedded data's photo background in [0, 1] (default 0.3; 0 = flat grey)",
    )
    c.add_argument(
        "--probe-label",
        choices=["digit", "direction"],
        default=None,
        help="what the probes predict on the embedded data: the motion direction (8, default; a k-NN probe "
        "of the raw pixels reads it at 0.96) or the digit class (10; 0.28 from the raw pixels, which "
        "vary with the digit's position); with --videos: the class folders",
    )
    c.add_argument(
        "--probe-train-clips",
        type=int,
        default=None,
        help="embedded clips the probes are fitted on, apart from the training clips (default 512)",
    )
    c.add_argument(
        "--probe-test-clips", type=int, default=None, help="embedded clips the probes are scored on (default 256)"
    )
    c.add_argument(
        "--finetune",
        dest="finetune_steps",
        type=int,
        default=None,
        metavar="STEPS",
        help="also run the fine-tuning probe, the downstream measure of video MAE papers: each encoder (and "
        "the untrained one of its seed) on every token with a new head, trained end to end for STEPS "
        "steps on the probe clips, scored on held-out ones (default 0: off on the CPU, where it costs "
        "about 10x a pretraining run; on in --preset gpu)",
    )
    c.add_argument(
        "--finetune-seeds",
        type=int,
        default=None,
        help="fine-tuning runs per encoder, with their own seeds (head, batch order): the probe's own noise "
        "enters its intervals (default 2)",
    )


def _add_sampling_options(c: argparse.ArgumentParser) -> None:
    c.add_argument(
        "--sampling-weight",
        type=float,
        default=None,
        help="lambda of the learned strategies' loss term (default 1e-4, the paper's)",
    )
    c.add_argument(
        "--sampling-baseline",
        choices=["none", "mean", "rloo"],
        default=None,
        help="baseline subtracted from the errors in the sampling loss: the batch mean, a per-sample "
        "leave-one-out mean (rloo) or none (default mean; the paper: none)",
    )
    c.add_argument(
        "--sampling-estimator",
        choices=["paper", "plackett_luce"],
        default=None,
        help="sampling-loss estimator (default paper)",
    )
    c.add_argument(
        "--sampling-entropy-weight",
        type=float,
        default=None,
        help="weight of an entropy bonus on the sampler's distribution (default 0, the paper's)",
    )
    c.add_argument(
        "--sampler",
        nargs="+",
        default=None,
        metavar="KEY=VALUE",
        help="options of every strategy whose constructor takes them (by its signature: the adaptive "
        "sampler's and error_predictor's all of them, motion's temperature), e.g. variant=attention "
        "width=24 depth=1 num_heads=4 token_pool=1x2x2 checkpoint=true temperature=2; an option no "
        "strategy of the run takes is refused; a strategy's own options (NAME:RATIO:KEY=VALUE,...) win "
        "(default: the paper's block at the encoder's width)",
    )
    c.add_argument(
        "--sampler-lr-scale",
        type=float,
        default=None,
        help="learning-rate multiplier for the learned strategies' parameters (default 1)",
    )


def _add_training_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("--steps", type=int, default=None, help="training steps per strategy and seed (default 150)")
    c.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="runs per strategy with seeds --seed, --seed + 1, ... (model initialisation, batch order, mask "
        "draws; the same clips and the same seeds for every strategy): every number is reported as "
        "the mean with a 95%% interval over the seeds, and differences are paired by seed "
        "(default 3, the fewest that give an interval with some power while the default run stays "
        "within about 5 minutes on 2 CPU cores; 1 gives no interval)",
    )
    c.add_argument(
        "--budget",
        choices=["steps", "flops"],
        default=None,
        help="what every strategy gets the same of: 'steps' (default: --steps training steps each) or "
        "'flops' (equal compute: each trains for the training FLOPs of --steps steps of random masking at "
        "--common-ratio, its steps scaled by its cost per step from the cost accounting (adamask costs), "
        "its learning-rate schedule over its own steps; the table shows each strategy's GFLOP per step, "
        "steps and training FLOPs)",
    )
    c.add_argument("--batch-size", type=int, default=None, help="clips per step (default 16)")
    c.add_argument("--lr", type=float, default=None, help="peak learning rate of AdamW (default 1e-3)")
    c.add_argument("--common-ratio", type=float, default=None, help="common mask ratio for the loss (default 0.9)")
    c.add_argument(
        "--ratio-schedule",
        default=None,
        metavar="START:END[:KIND[:STEPS]]",
        help="change every strategy's mask ratio during training, e.g. 0.75:0.95 (linear over the run) "
        "or 0.75:0.95:cosine:100 (KIND linear, cosine or step); each strategy is evaluated at its "
        "own ratio",
    )
    c.add_argument(
        "--decoder-masking",
        default=None,
        metavar="NAME[:RATIO]",
        help="decoder masking during training, e.g. running_cell:0.5 (VideoMAE V2's dual masking: the "
        "decoder reconstructs only the tokens it leaves visible); evaluation decodes every token",
    )
    _add_sampling_options(c)
    c.add_argument(
        "--pixel-loss",
        choices=["normalized", "raw"],
        default=None,
        help="reconstruction target: raw pixels (default) or per-patch normalised pixels (the paper's)",
    )
    c.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="'demo' (default): raw-pixel loss, background contrast 0.3 and the mean baseline in the "
        "sampling loss; 'paper': the paper's loss (normalised pixels, no baseline, lambda 1e-4, its "
        "estimator) on a flat background, where it learns; 'paper-photo': the same on the photo at "
        "contrast 0.8, where it does not; 'gpu': the demo settings at the largest size meant to finish in "
        "about 6 minutes on one H100 (cuda; 64 x 64 px, a 6 x 384 encoder, batch 32, 300 steps, 2 seeds, "
        "the fine-tuning probe on) - sized from FLOP counts and H100 timings, NOT yet run on a GPU; "
        "explicit options win over the preset (--size drops its model changes)",
    )
    c.add_argument("--size", default=None, help="model size from MAE_CONFIGS (default tiny)")
    c.add_argument("--img-size", type=int, default=None, help="frame size in pixels (default 32)")
    c.add_argument("--num-frames", type=int, default=None, help="frames per clip (default 16)")
    c.add_argument(
        "--tubelet", type=int, nargs=3, default=None, metavar=("T", "H", "W"), help="tubelet size (default 2 8 8)"
    )


def _add_compare(sub: Any) -> None:
    c = sub.add_parser(
        "compare",
        help="pretrain the reference MAE once per masking strategy and compare them",
        description="Pretrain the reference video MAE for the same budget on the same clips with each "
        "strategy, then write results.json, results.md, checkpoints and PNG figures into "
        "the run folder. Rerunning the same command resumes an interrupted run. Exit "
        "status: 0 done, 2 bad input (one line on stderr), 130 interrupted. The default "
        "(9 strategies x 3 seeds of the tiny model, 150 steps on 32x32 px x 16 frame clips, "
        "tubelet 2x8x8 = 128 tokens, one CPU thread) takes 6-7 minutes on an idle 2-core "
        "CPU, longer when another job shares it. results.md opens with the answer, one line per "
        "strategy against random masking at the same budget, then the full table.",
    )
    c.add_argument(
        "--strategies",
        nargs="+",
        default=None,
        metavar="NAME[:RATIO][:KEY=VALUE,...]",
        help="strategies to compare, each with its own options if given (the --sampler options, e.g. "
        "adaptive:0.95:variant=attention,width=24; its label shows them: adaptive_0.95_attention-w24) "
        "(default: random:0.9 tube:0.9 frame:0.9 random:0.95 tube:0.95 motion:0.95 adaptive:0.95 "
        f"adaptive:0.95:{CHEAP_SAMPLER} error_predictor:0.95: the paper's sampler block beside its cheap "
        "MLP-only setting at width 24, about 1/20 of its FLOPs for 90%% of its foreground allocation on the "
        "embedded data; rows are grouped by mask ratio, random at each ratio is the reference); any "
        "registered name works (adamask list)",
    )
    c.add_argument("--out", default=None, help="run folder (default runs/compare, runs/quick with --quick)")
    c.add_argument("--quick", action="store_true", help="a tiny configuration that runs in seconds (for tests)")
    _add_data_options(c)
    _add_training_options(c)
    c.add_argument("--checkpoint-every", type=int, default=None, help="save a resumable checkpoint every N steps")
    c.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="run each training step's forward and both loss terms as one torch.compile graph (fullgraph; "
        "the backward is compiled with it). What changes: the masks are drawn from torch's global RNG, seeded "
        "per run and kept in the checkpoints, so the numbers differ from an uncompiled run's but are "
        "reproducible; the sampler's share of the step is not timed (n/a); the first steps of each "
        "strategy wait for the compiler (once per strategy: its seeds share the graph). Off by default, on "
        "CPU and on CUDA, as it does not pay for itself in a default run: on CPU (one thread, the tiny model, "
        "batch 16) compiling takes 22-39 s per strategy with a cold compiler cache (2-8 s warm) for a step "
        "12-21%% faster, 5-9 s saved over a strategy's 3 x 150 steps; on an H100 compiling a ViT-S step took "
        "44 s for a 1.34x faster step, while a default run's steps take about 26 ms each there (95 s for all "
        "3,600, evaluation included), so even a 2x faster step would save under 6 s per strategy",
    )
    c.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads of torch during the run (default 1: the reference models are tiny, a second "
        "thread gains little and, on a machine other jobs share, makes each step several times "
        "slower; 0 = torch's default)",
    )
    for flag, text in (
        ("--overwrite", "start over in an existing run folder"),
        ("--no-progress", "no progress bars: one line per 10%% instead (the default when stderr is not a terminal)"),
        ("--quiet", "print nothing but errors"),
        ("--no-figures", "skip the PNG figures"),
        ("--list", "list the registered strategies and exit (adamask list)"),
    ):
        c.add_argument(flag, action="store_true", help=text)
    _add_common(c)


def _add_visualize(sub: Any) -> None:
    v = sub.add_parser(
        "visualize",
        help="probability map, error map and sampled mask of a trained strategy on a video",
        description="Render, for a checkpoint's strategy on any video file, the frames, its probability "
        "map, the reconstruction error of the masked tokens and a sampled mask side by "
        "side (AdaMAE's Fig. 3), as PNG (and GIF / MP4 if asked). Frames of another aspect "
        "ratio are shown whole, the centre crop the model sees outlined.",
    )
    v.add_argument("video", help="a video file (mp4, avi, webm, ...)")
    v.add_argument("--checkpoint", required=True, help="a checkpoint from adamask compare (checkpoints/<label>.pt)")
    v.add_argument("--out", default=None, help="PNG path (default <video name>_<strategy>.png)")
    v.add_argument("--stride", type=int, default=4, help="temporal stride when sampling frames (default 4)")
    for flag, kind in (("--gif", "an animated GIF"), ("--mp4", "an MP4")):
        v.add_argument(flag, action="store_true", help=f"also write {kind} next to the PNG")
    _add_common(v)


def _add_costs(sub: Any) -> None:
    c = sub.add_parser(
        "costs",
        help="FLOPs and saved activations of one training step, per component",
        description="Count (on meta tensors, without running anything) the FLOPs and saved "
        "activations of one training step of the reference MAE per component, for "
        "random, tube and adaptive masking and cheaper sampler settings.",
    )
    c.add_argument(
        "--size",
        default="base",
        help="model size from MAE_CONFIGS at its own input: nano, tiny, small or base (default base: "
        "ViT-B, 16 x 224 x 224)",
    )


def _add_list(sub: Any) -> None:
    p = sub.add_parser(
        "list",
        help="the registered masking strategies: default ratio, learned or not, what they need",
        description="Every registered masking strategy with its default mask ratio, whether it is "
        "learned (trained by a loss term of its own) and what it looks at to draw its "
        "masks: the tokens, the video, or nothing.",
    )
    _add_import(p)


def add_commands(sub: Any) -> None:
    """Add compare, visualize, costs and list to an argparse ``add_subparsers()`` object."""
    _add_compare(sub)
    _add_visualize(sub)
    _add_costs(sub)
    _add_list(sub)
