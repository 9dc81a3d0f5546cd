"""Fixtures of the comparison app's tests: one thread for the tiny models, the shared --quick run (one of its
strategies a custom strategy registered here) and its labels, a Ctrl-C at a chosen training step, real video
files and the pixel size of a PNG."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np
import pytest
import torch

from adamask import RandomMasking, register_masking


@register_masking("every_other_test", default_ratio=0.5, override=True)
class EveryOther(RandomMasking):
    """A custom strategy for the tests: random masking registered under another name."""


STRATEGIES = ["random:0.9", "tube:0.9", "frame", "adaptive:0.95", "every_other_test"]
LABELS = ["random_0.9", "tube_0.9", "frame_0.9", "adaptive_0.95", "every_other_test_0.5"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from a second thread, and lose a lot to it on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


_RUNS: Dict[str, Tuple[Path, List[str]]] = {}


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    """One ``adamask compare --quick`` run of STRATEGIES (one thread) per test session, shared by every module
    that reads its files -> (out, argv)."""
    pytest.importorskip("matplotlib")
    pytest.importorskip("av")
    from adamask.cli import main

    if "quick" not in _RUNS:
        out = tmp_path_factory.mktemp("quick") / "run"
        argv = ["compare", "--quick", "--out", str(out), "--quiet", "--strategies", *STRATEGIES]
        n = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            assert main(argv) == 0
        finally:
            torch.set_num_threads(n)
        _RUNS["quick"] = out, argv
    return _RUNS["quick"]


@pytest.fixture
def quick_labels() -> List[str]:
    """The labels of the --quick run's strategies, in order."""
    return list(LABELS)


@pytest.fixture
def interrupt_at_step(monkeypatch) -> Callable[[int], Callable]:
    """``interrupt_at_step(n)`` makes the n-th training step (counted over the test) raise KeyboardInterrupt, as
    Ctrl-C would, and returns the real `train_step` (to put back)."""
    import adamask.compare.train as train_mod

    def interrupt(n: int) -> Callable:
        real_step, calls = train_mod.train_step, {"n": 0}

        def dying_step(*a, **k):
            calls["n"] += 1
            if calls["n"] == n:
                raise KeyboardInterrupt
            return real_step(*a, **k)

        monkeypatch.setattr(train_mod, "train_step", dying_step)
        return real_step

    return interrupt


@pytest.fixture(scope="session")
def write_video() -> Callable[..., Path]:
    """``write_video(path, frames, codec, fps=10)``: frames (T, H, W, 3) uint8 -> a real video file encoded with
    PyAV."""
    av = pytest.importorskip("av")

    def write(path: Path, frames: np.ndarray, codec: str, fps: int = 10) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        h, w = frames.shape[1:3]
        with av.open(str(path), mode="w") as out:
            stream = out.add_stream(codec, rate=fps)
            stream.width, stream.height = w, h
            stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
            for f in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        return path

    return write


@pytest.fixture(scope="session")
def moving_square() -> Callable[..., np.ndarray]:
    """``moving_square(t, h, w, size=8, step=2)``: (T, H, W, 3) uint8, a white square moving right over a
    dark-grey background."""

    def frames(t: int, h: int, w: int, size: int = 8, step: int = 2) -> np.ndarray:
        v = np.full((t, h, w, 3), 40, np.uint8)
        for i in range(t):
            x = (i * step) % (w - size)
            v[i, h // 2 - size // 2 : h // 2 + size // 2, x : x + size] = 230
        return v

    return frames


@pytest.fixture(scope="session")
def png_size() -> Callable[[Path], Tuple[int, int]]:
    """``png_size(path)``: (width, height) from the IHDR chunk; asserts the PNG signature and chunk layout."""

    def size(path: Path) -> Tuple[int, int]:
        data = Path(path).read_bytes()
        assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
        length, kind = struct.unpack(">I4s", data[8:16])
        assert kind == b"IHDR" and length == 13
        return struct.unpack(">II", data[16:24])

    return size
