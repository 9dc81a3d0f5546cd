"""Where a training step's time goes: torch.profiler's top operators per configuration, and the
sampler / encoder / decoder / tokenizer / targets timed alone (forward + backward), interleaved.

    python benchmarks/profile_step.py [--batch 4] [--threads N] [--rows 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Callable, Dict, cast

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from adamask import AdaptiveTokenSampler, Masking, MaskingStrategy, sampling_loss  # noqa: E402
from adamask.mae import MaskedVideoAutoencoder  # noqa: E402
from timing import FULL, interleaved  # noqa: E402
from train_step import build_step, train_configs  # noqa: E402


def component_steps(batch: int, device: torch.device) -> Dict[str, Callable[[], None]]:
    """Each part of an adaptive-0.95 (paper block) and a tube-0.90 step alone, forward + backward."""
    cfg = FULL.train_model
    tube, tube_step = build_step(cfg, "tube", 0.9, None, batch, device)
    ada, ada_step = build_step(cfg, "adaptive", 0.95, {}, batch, device)
    tube_sampler = cast(MaskingStrategy, tube.mask_sampler)
    ada_sampler = cast(AdaptiveTokenSampler, ada.mask_sampler)
    video = torch.randn(batch, *ada.input_shape, device=device)
    tokens = ada.tokenize(video).detach()
    masks: Dict[str, Masking] = {"tube": tube_sampler.sample(batch, device), "adaptive": ada_sampler(tokens)}

    def sampler() -> None:
        m = ada_sampler(tokens)
        sampling_loss(m.probs, m.mask, torch.rand(batch, m.num_masked, device=device)).backward()

    def encoder(model: MaskedVideoAutoencoder, masking: Masking) -> Callable[[], None]:
        return lambda: model.encode(tokens, masking.visible_idx).sum().backward()

    def decoder(model: MaskedVideoAutoencoder, masking: Masking) -> Callable[[], None]:
        latent = torch.randn(batch, masking.num_visible, cfg["embed_dim"], device=device, requires_grad=True)
        return lambda: model.decode(latent, masking).sum().backward()

    return {
        "step: tube 0.90": tube_step,
        "step: adaptive 0.95 paper block": ada_step,
        "sampler (paper block) f+b + loss": sampler,
        f"encoder on {masks['tube'].num_visible} tokens f+b": encoder(tube, masks["tube"]),
        f"encoder on {masks['adaptive'].num_visible} tokens f+b": encoder(ada, masks["adaptive"]),
        "decoder f+b": decoder(tube, masks["tube"]),
        "tokenizer f+b": lambda: ada.tokenize(video).sum().backward(),
        "targets (normalised pixels)": lambda: ada.targets(video),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=FULL.train_batch)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--rows", type=int, default=15)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    cfg = FULL.train_model
    configs = train_configs(cfg["embed_dim"])
    for label, masking, ratio, opts in (configs[0], configs[2], configs[-1]):
        _, step = build_step(cfg, masking, ratio, opts, args.batch, device)
        step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(2):
                step()
        print(f"\n== {label}: top operators over 2 steps (self CPU time)")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    times = interleaved(component_steps(args.batch, device), args.repeats, device)
    print(f"\n== parts alone, batch {args.batch}, {torch.get_num_threads()} threads, ms median (min-max)")
    for name, t in times.items():
        print(f"{name:40s} {statistics.median(t) * 1e3:8.1f} ({min(t) * 1e3:.1f}-{max(t) * 1e3:.1f})")


if __name__ == "__main__":
    main()
