"""Compare masking strategies from Python instead of the ``adamask compare`` command.

    python examples/compare_strategies.py            # about two minutes (3 seeds) into runs/example
    python examples/compare_strategies.py --quick    # seconds

Also shows how a custom strategy joins the comparison: register it, then name it.
"""

import argparse

import torch

from adamask import MaskingStrategy, check_counts, masking_from_mask, register_masking
from adamask.compare import CompareConfig, run_compare


@register_masking("checkerboard", default_ratio=0.5)
class CheckerboardMasking(MaskingStrategy):
    """Hide every other token of a spatial checkerboard (shifted each time slice); the ratio is fixed at 0.5."""

    def __init__(self, grid, mask_ratio: float = 0.5) -> None:
        if mask_ratio != 0.5:
            raise ValueError(
                f"checkerboard masking hides exactly half of the tokens; mask_ratio must be 0.5, got {mask_ratio}"
            )
        super().__init__(grid, mask_ratio)
        t, h, w = self.grid
        tt, hh, ww = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")
        self.register_buffer("pattern", ((tt + hh + ww) % 2 == 0).flatten(), persistent=False)
        # counted without reading the buffer: the comparison also builds strategies on meta tensors (to count FLOPs)
        self.num_visible = sum((i + j + k) % 2 for i in range(t) for j in range(h) for k in range(w))
        check_counts(self.num_tokens, self.num_visible, "checkerboard masking")

    def sample(self, batch_size, device=None, generator=None):
        mask = self.pattern.to(device).unsqueeze(0).expand(batch_size, -1)
        return masking_from_mask(mask, self.num_visible)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    # random at 0.95 is adaptive's equal-budget control: the table compares each strategy with random at its ratio
    strategies = ["random:0.9", "random:0.95", "adaptive:0.95", "checkerboard:0.5"]
    if args.quick:
        cfg = CompareConfig.quick(strategies=strategies, out="runs/example-quick", device=args.device)
    else:
        cfg = CompareConfig(strategies=strategies, out="runs/example", steps=100, device=args.device)
    res = run_compare(cfg, overwrite=True, command="python examples/compare_strategies.py")

    def shown(stats: dict) -> str:  # mean ± half-width of the 95% interval over the seeds
        if stats["mean"] is None:
            return "n/a"
        return f"{stats['mean']:.3f}" + ("" if stats["half_width"] is None else f" ± {stats['half_width']:.3f}")

    for label, info in res["summary"]["strategies"].items():
        st = info["stats"]
        print(
            f"{label:>18}: loss@{cfg.common_ratio} {shown(st['recon_loss_common_ratio'])}  "
            f"foreground allocation {shown(st['foreground_allocation'])}  k-NN {shown(st['knn_accuracy'])}"
        )
    for sentence in res["summary"]["sentences"]:
        print(sentence)
    print(f"figures in {cfg.out}/figures")


if __name__ == "__main__":
    main()
