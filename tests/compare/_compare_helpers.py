"""Shared pieces of the compare app's tests: the strategies of the shared --quick run (one of them a custom
strategy registered here) and the run itself."""
from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import torch

from adamask import RandomMasking, register_masking


@register_masking("every_other_test", default_ratio=0.5, override=True)
class EveryOther(RandomMasking):
    """A custom strategy for the tests: random masking registered under another name."""


STRATEGIES = ["random:0.9", "tube:0.9", "frame", "adaptive:0.95", "every_other_test"]
LABELS = ["random_0.9", "tube_0.9", "frame_0.9", "adaptive_0.95", "every_other_test_0.5"]


def quick_run(out: Path) -> Tuple[Path, List[str]]:
    """``adamask compare --quick`` of STRATEGIES into ``out`` with one thread -> (out, argv)."""
    from adamask.cli import main

    argv = ["compare", "--quick", "--out", str(out), "--quiet", "--strategies", *STRATEGIES]
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(argv) == 0
    finally:
        torch.set_num_threads(n)
    return out, argv
