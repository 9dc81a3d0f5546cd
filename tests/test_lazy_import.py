"""``import adamask`` imports nothing heavy: public names and submodules load on first use, and the registry
loads the built-in strategies on its first lookup, however it was imported."""

import subprocess
import sys
from pathlib import Path

import pytest

import adamask

ROOT = Path(__file__).resolve().parents[1]


def run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip()


def test_import_adamask_does_not_import_torch():
    assert run("import sys, adamask; print(sorted(m for m in ('torch', 'timm', 'einops') if m in sys.modules))") == "[]"


def test_every_public_name_and_submodule_resolves():
    for name in adamask.__all__:
        assert getattr(adamask, name) is not None
    assert adamask.masking.Masking is adamask.Masking and "Masking" in dir(adamask)
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        adamask.nosuch  # noqa: B018


def test_registry_alone_sees_the_builtins():
    names = run("from adamask.registry import list_maskings; print(' '.join(list_maskings()))").split()
    assert {"random", "tube", "frame", "adaptive", "motion", "error_predictor", "running_cell"} <= set(names)
    out = run(
        "from adamask.registry import register_masking\n"
        "try:\n    register_masking('tube')(lambda **k: None)\nexcept ValueError as e:\n    print(e)"
    )
    assert "already registered" in out
