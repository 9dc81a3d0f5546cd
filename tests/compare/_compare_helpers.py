"""Shared pieces of the compare app's tests: the strategies of the shared --quick run (one of them a custom
strategy registered here), the run itself and the fixtures (imported by the test modules that use them; a
conftest.py here would shadow the one of tests/)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import torch

from adamask import RandomMasking, register_masking


@register_masking("every_other_test", default_ratio=0.5, override=True)
class EveryOther(RandomMasking):
    """A custom strategy for the tests: random masking registered under another name."""


STRATEGIES = ["random:0.9", "tube:0.9", "frame", "adaptive:0.95", "every_other_test"]
LABELS = ["random_0.9", "tube_0.9", "frame_0.9", "adaptive_0.95", "every_other_test_0.5"]


def run_quick(out: Path) -> Tuple[Path, List[str]]:
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


_RUNS: Dict[str, Tuple[Path, List[str]]] = {}


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from a second thread, and lose a lot to it on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    """One ``adamask compare --quick`` run of STRATEGIES per test session, shared by every module that reads
    its files -> (out, argv)."""
    pytest.importorskip("matplotlib")
    pytest.importorskip("av")
    if "quick" not in _RUNS:
        _RUNS["quick"] = run_quick(tmp_path_factory.mktemp("quick") / "run")
    return _RUNS["quick"]


def interrupt_at_step(monkeypatch, n: int):
    """Make the n-th training step (counted over the test) raise KeyboardInterrupt, as Ctrl-C would; returns
    the real `train_step` (to put back)."""
    import adamask.compare.train as train_mod

    real_step, calls = train_mod.train_step, {"n": 0}

    def dying_step(*a, **k):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real_step(*a, **k)

    monkeypatch.setattr(train_mod, "train_step", dying_step)
    return real_step
