"""The command parses its arguments without torch (``--help`` is instant; its time is measured side by side
with ``import torch`` by benchmarks/startup.py, not by a timed test)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "timm", "einops", "numpy", "matplotlib", "sklearn", "av")


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["compare", "--help"],
        ["visualize", "--help"],
        ["costs", "--help"],
        ["list", "--help"],
        ["compare", "--bogus"],
    ],
)
def test_parsing_imports_nothing_heavy(argv):
    code = (
        "import sys\nfrom adamask.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout + proc.stderr


def test_help_lists_the_commands_and_exit_codes():
    proc = subprocess.run(
        [sys.executable, "-m", "adamask", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0
    assert "{compare,visualize,costs,list}" in proc.stdout and "2 bad input" in proc.stdout


def test_startup_benchmark_measures_interleaved_medians(monkeypatch, capsys, tmp_path):
    import startup  # benchmarks/startup.py (benchmarks/ is on pytest's pythonpath)

    order = []
    monkeypatch.setattr(startup, "COMMANDS", {"import torch": ["-c", "pass"], "adamask --help": ["-c", "pass"]})
    monkeypatch.setattr(startup, "time_once", lambda args, env: order.append(args) or 0.1 * len(order))
    assert startup.main(["--repeats", "2", "--json", str(tmp_path / "s.json")]) == 0
    assert len(order) == 6  # a warm-up round, then two rounds, alternating
    out = capsys.readouterr().out
    assert "| import torch | 0.400 | 0.300 | 0.500 | 1.00x |" in out and "| adamask --help | 0.500 |" in out
    assert (tmp_path / "s.json").is_file()
