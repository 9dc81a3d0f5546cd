"""Compare masking strategies from Python instead of the ``adamask compare`` command.

    python examples/compare_strategies.py            # a one-minute run into runs/example
    python examples/compare_strategies.py --quick    # seconds

Also shows how a custom strategy joins the comparison: register it, then name it.
"""
import argparse

import torch

from adamask import MaskingStrategy, register_masking
from adamask.compare import CompareConfig, run_compare
from adamask.masking import check_counts, masking_from_mask


@register_masking("checkerboard", default_ratio=0.5)
class CheckerboardMasking(MaskingStrategy):
    """Hide every other token of a spatial checkerboard (shifted each time slice); the ratio is fixed at 0.5."""

    def __init__(self, grid, mask_ratio: float = 0.5) -> None:
        if mask_ratio != 0.5:
            raise ValueError(f"checkerboard masking hides exactly half of the tokens; mask_ratio must be 0.5, "
                             f"got {mask_ratio}")
        super().__init__(grid, mask_ratio)
        t, h, w = self.grid
        tt, hh, ww = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")
        self.register_buffer("pattern", ((tt + hh + ww) % 2 == 0).flatten(), persistent=False)
        self.num_visible = int((~self.pattern).sum())
        check_counts(self.num_tokens, self.num_visible, "checkerboard masking")

    def sample(self, batch_size, device=None, generator=None):
        mask = self.pattern.to(device).unsqueeze(0).expand(batch_size, -1)
        return masking_from_mask(mask, self.num_visible)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    strategies = ["random:0.9", "adaptive:0.95", "checkerboard:0.5"]
    if args.quick:
        cfg = CompareConfig.quick(strategies=strategies, out="runs/example-quick", device=args.device)
    else:
        cfg = CompareConfig(strategies=strategies, out="runs/example", steps=100, device=args.device)
    res = run_compare(cfg, overwrite=True, command="python examples/compare_strategies.py")
    for label, r in res["strategies"].items():
        fa = r["foreground_allocation"]
        common = r["recon_loss_common_ratio"]
        print(f"{label:>18}: loss@{r['common_ratio']} {'n/a' if common is None else f'{common:.3f}'}  "
              f"foreground allocation {fa['mean']:.2f}  k-NN {r['probe']['knn_accuracy']:.2f}")
    print(f"figures in {cfg.out}/figures")


if __name__ == "__main__":
    main()
