"""Train the reference video MAE with adaptive masking for a few steps and print both losses.

python examples/train_adaptive.py --steps 30
"""

import argparse
import time

import torch

import adamask


def synthetic_clips(batch: int, model: adamask.MaskedVideoAutoencoder, generator: torch.Generator) -> torch.Tensor:
    """Squares moving right over a dim random background: (B, C, T, H, W)."""
    c, t, h, w = model.input_shape
    video = torch.rand(batch, c, 1, 1, 1, generator=generator).expand(batch, c, t, h, w) * 0.2
    video = video.clone()
    side = h // 3
    top = torch.randint(0, h - side, (batch,), generator=generator)
    for f in range(t):
        x = (f * w // (2 * t)) % (w - side)
        for b in range(batch):
            video[b, :, f, top[b] : top[b] + side, x : x + side] += 0.8
    return video


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="tiny", choices=sorted(adamask.MAE_CONFIGS))
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--mask-ratio", type=float, default=0.9)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    model = adamask.create_mae(args.size, masking="adaptive", mask_ratio=args.mask_ratio).to(args.device)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and n not in model.no_weight_decay()]
    rest = [p for n, p in model.named_parameters() if not (p.ndim > 1 and n not in model.no_weight_decay())]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95)
    )
    g = torch.Generator().manual_seed(args.seed)
    n = model.num_tokens
    print(f"reference MAE '{args.size}': {n} tokens, {model.mask_sampler.num_visible} visible, device {args.device}")
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        video = synthetic_clips(args.batch_size, model, g).to(args.device)
        out = model(video)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        if step == 1 or step % 5 == 0 or step == args.steps:
            p = out.masking.probs.detach()
            kl = (p * (p * n).log()).sum(1).mean()
            print(
                f"step {step:4d}  reconstruction {out.reconstruction_loss.item():.4f}  "
                f"sampling {out.sampling_loss.item():.4f}  KL(P||uniform) {kl.item():.4f}"
            )
    print(f"done in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
