"""Start-up time of the library and the command, side by side in one run: ``import torch``, ``import adamask``
(and its core, the names a user imports first), ``adamask --help`` and ``adamask compare --help``.

Each command is a fresh ``python`` process; the commands run interleaved (round-robin, ``--repeats`` rounds after
one warm-up round), so a busy machine slows them alike. Prints the median wall time of each and its ratio to
``import torch``; ``--json PATH`` also writes them.

    python benchmarks/startup.py [--repeats 7] [--json startup.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

ROOT = Path(__file__).resolve().parents[1]
COMMANDS: Dict[str, List[str]] = {
    "import torch": ["-c", "import torch"],
    "import adamask": ["-c", "import adamask"],
    "import adamask core (create_masking, MaskedVideoAutoencoder)": [
        "-c",
        "from adamask import create_masking, MaskedVideoAutoencoder",
    ],
    "adamask --help": ["-m", "adamask", "--help"],
    "adamask compare --help": ["-m", "adamask", "compare", "--help"],
}


def time_once(args: Sequence[str], env: Dict[str, str]) -> float:
    """Seconds of one fresh ``python ARGS`` process (output discarded); raises if it fails."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - t0


def measure(repeats: int) -> Dict[str, Dict[str, float]]:
    """{command: {median_s, min_s, max_s}} over ``repeats`` interleaved rounds (after one warm-up round)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    times: Dict[str, List[float]] = {k: [] for k in COMMANDS}
    for r in range(repeats + 1):
        for name, args in COMMANDS.items():
            t = time_once(args, env)
            if r:  # round 0 warms the file cache
                times[name].append(t)
    return {k: dict(median_s=statistics.median(v), min_s=min(v), max_s=max(v)) for k, v in times.items()}


def table(res: Dict[str, Dict[str, float]]) -> str:
    base = res["import torch"]["median_s"]
    lines = ["| command | median s | min s | max s | x import torch |", "|---|---|---|---|---|"]
    for k, v in res.items():
        lines.append(
            f"| {k} | {v['median_s']:.3f} | {v['min_s']:.3f} | {v['max_s']:.3f} | {v['median_s'] / base:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] = ()) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7, help="interleaved rounds after the warm-up (default 7)")
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(list(argv))
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    res = measure(args.repeats)
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, "
        f"{args.repeats} interleaved rounds, medians"
    )
    print(table(res))
    if args.json:
        Path(args.json).write_text(
            json.dumps(dict(repeats=args.repeats, python=platform.python_version(), results=res), indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
