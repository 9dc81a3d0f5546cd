"""Helpers for the tests that run other code: real upstream checkouts (VideoMAE, VideoMAEv2, mae_st),
clips on disk, and other processes (``python -m``, torchrun)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Sequence

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def checkout(env: str, marker: str, what: str) -> Path:
    """The checkout named by ``env``, or skip the test with the reason."""
    root = os.environ.get(env)
    if not root:
        pytest.skip(f"{env} is not set: point it at a {what} checkout to run this test")
    path = Path(root).resolve()
    if not (path / marker).is_file():
        pytest.skip(f"{env}={root} does not look like a {what} checkout (no {marker})")
    return path


@contextlib.contextmanager
def upstream_on_path(paths: Sequence[Path]) -> Iterator[None]:
    """Put ``paths`` first on sys.path; afterwards forget every module imported from them, so
    that checkouts sharing module names (utils, engine_for_pretraining, ...) do not collide."""
    from adamask.integrations.compat import install_compat_shims

    install_compat_shims()
    roots = [str(p) for p in paths]
    before = set(sys.modules)
    for r in reversed(roots):
        sys.path.insert(0, r)
    try:
        yield
    finally:
        for r in roots:
            while r in sys.path:
                sys.path.remove(r)
        for name in set(sys.modules) - before:
            f = getattr(sys.modules[name], "__file__", None) or ""
            if any(f.startswith(r) for r in roots) or name in ("mae_st",):
                del sys.modules[name]


def make_clips(folder: Path, n: int = 4, frames: int = 40, size=(240, 320)) -> List[Path]:
    """Write ``n`` small mp4 clips (moving noise) with PyAV; returns their paths."""
    av = pytest.importorskip("av")
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        path = folder / f"clip{i}.mp4"
        with av.open(str(path), "w") as c:
            s = c.add_stream("mpeg4", rate=8)
            s.height, s.width = size
            s.pix_fmt = "yuv420p"
            base = np.random.default_rng(i).integers(0, 255, (*size, 3), dtype=np.uint8)
            for t in range(frames):
                for pkt in s.encode(av.VideoFrame.from_ndarray(np.roll(base, 4 * t, axis=1), format="rgb24")):
                    c.mux(pkt)
            for pkt in s.encode():
                c.mux(pkt)
        out.append(path)
    return out


def run_python(how: Sequence[str], args: Sequence[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python how... args`` (``how``: ``["-m", module]``, ``["-c", code]`` or a script's path) with this
    checkout of adamask first on PYTHONPATH."""
    env: Dict[str, str] = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("OMP_NUM_THREADS", "4")
    return subprocess.run(
        [sys.executable, "-W", "ignore", *how, *args],
        cwd=str(cwd),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_module(module: str, args: Sequence[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m module args`` with this checkout of adamask first on PYTHONPATH."""
    return run_python(["-m", module], args, cwd, timeout)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (for torchrun's rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
