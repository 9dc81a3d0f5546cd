"""Train a tiny Hugging Face VideoMAE with adaptive masking on synthetic clips (CPU, seconds).

    python examples/train_hf_adaptive.py --steps 20
    python examples/train_hf_adaptive.py --steps 20 --trainer   # through transformers.Trainer

Prints the reconstruction loss (the stock VideoMAE loss) and the unweighted sampling loss per step.
The clips are moving bright squares on noise, so the sampler has something to find.
"""

from __future__ import annotations

import argparse
import tempfile
from typing import List, Optional, Sequence, Tuple

import torch
from transformers import VideoMAEConfig

from adamask.integrations.hf import AdaMaskTrainer, AdaptiveVideoMAEForPreTraining


def tiny_config(image_size: int = 32, num_frames: int = 4) -> VideoMAEConfig:
    return VideoMAEConfig(
        image_size=image_size,
        patch_size=8,
        num_frames=num_frames,
        tubelet_size=2,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        decoder_hidden_size=32,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=64,
        use_mean_pooling=False,
        norm_pix_loss=True,
    )


def synthetic_clips(n: int, num_frames: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """(n, T, 3, H, W) float32, ImageNet-normalised-looking: noise plus a square moving one pixel a frame."""
    x = 0.1 * torch.randn(n, num_frames, 3, size, size, generator=generator)
    side = size // 4
    for i in range(n):
        r, c = torch.randint(0, size - side - num_frames, (2,), generator=generator).tolist()
        for t in range(num_frames):
            x[i, t, :, r + t : r + t + side, c + t : c + t + side] += 2.0
    return x


class ClipDataset(torch.utils.data.Dataset):
    def __init__(self, clips: torch.Tensor) -> None:
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        return {"pixel_values": self.clips[i]}


def main(argv: Optional[Sequence[str]] = None) -> List[Tuple[float, float]]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--mask-ratio", type=float, default=0.75)
    p.add_argument("--sampling-weight", type=float, default=1e-4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trainer", action="store_true", help="train with AdaMaskTrainer instead of a plain loop")
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    cfg = tiny_config()
    model = AdaptiveVideoMAEForPreTraining(cfg, mask_ratio=args.mask_ratio, sampling_weight=args.sampling_weight)
    gen = torch.Generator().manual_seed(args.seed)
    history: List[Tuple[float, float]] = []

    if args.trainer:
        from transformers import TrainingArguments

        data = ClipDataset(synthetic_clips(max(args.batch_size * args.steps, 8), cfg.num_frames, cfg.image_size, gen))
        with tempfile.TemporaryDirectory() as out_dir:
            targs = TrainingArguments(
                output_dir=out_dir,
                per_device_train_batch_size=args.batch_size,
                max_steps=args.steps,
                logging_steps=1,
                learning_rate=args.lr,
                report_to=[],
                use_cpu=True,
                save_strategy="no",
                disable_tqdm=True,
                seed=args.seed,
            )
            trainer = AdaMaskTrainer(model=model, args=targs, train_dataset=data)
            trainer.train()
        for h in trainer.state.log_history:
            if "reconstruction_loss" in h:
                history.append((h["reconstruction_loss"], h["sampling_loss"]))
                print(
                    f"step {h['step']:4d}  loss {h['loss']:.4f}  reconstruction_loss "
                    f"{h['reconstruction_loss']:.4f}  sampling_loss {h['sampling_loss']:.4f}"
                )
        return history

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    for step in range(1, args.steps + 1):
        x = synthetic_clips(args.batch_size, cfg.num_frames, cfg.image_size, gen)
        out = model(pixel_values=x)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        rec, ls = out.reconstruction_loss.item(), out.sampling_loss.item()
        history.append((rec, ls))
        print(
            f"step {step:4d}  loss {out.loss.item():.4f}  reconstruction_loss {rec:.4f}  "
            f"sampling_loss {ls:.4f}  max_prob {out.probs.max().item():.4f}"
        )
    return history


if __name__ == "__main__":
    main()
