"""The presets side by side: the adaptive sampler's foreground allocation and held-out loss against the training
step under ``paper`` (the paper's loss on a flat background), ``paper-photo`` (the same on the photo at contrast
0.8) and ``demo`` (the defaults), written as docs/figures/preset_allocation.png, with each preset's wall time.

Each preset is one ``adamask compare --preset NAME`` run (default strategies and seeds; ``--extra`` adds options)
into OUT/NAME, resumed if it is there; ``--run NAME=FOLDER`` takes a finished run folder instead (its wall time is
the run's own ``runtime_s``). Prints, per preset, the wall time, the load average before and after it (the
machine may be shared), and the learned strategy's held-out loss and foreground allocation at the last step
(mean over seeds); ``--json PATH`` also writes them.

    python benchmarks/preset_allocation.py [--out runs/presets] [--run demo=runs/compare]
        [--figure docs/figures/preset_allocation.png] [--strategy adaptive:0.95] [--json presets.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adamask.compare.config import parse_strategy  # noqa: E402
from adamask.compare.figures import mean_curve, preset_curves_figure  # noqa: E402
from adamask.compare.rundir import write_json  # noqa: E402

PRESETS = ("paper", "paper-photo", "demo")


def run_preset(name: str, folder: Path, extra: Sequence[str]) -> Dict[str, Any]:
    """``adamask compare --preset NAME --out FOLDER`` (resumed if the folder holds part of it) -> its wall
    seconds and the 1-minute load average before and after."""
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "adamask", "compare", "--preset", name, "--out", str(folder), "--quiet", *extra],
        cwd=ROOT,
        check=True,
    )
    return dict(wall_s=time.perf_counter() - t0, load_before=load_before, load_after=os.getloadavg()[0])


def last(entry: Dict[str, Any], series: str) -> Optional[float]:
    """The mean over seeds of a history series at the last evaluation point."""
    steps, mean, _, _ = mean_curve(entry, "eval_step", series)
    return float(mean[-1]) if steps else None


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/presets", help="folder of the runs (default runs/presets)")
    p.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="NAME=FOLDER",
        help="use this finished run folder for preset NAME instead of running it",
    )
    p.add_argument("--figure", default=str(ROOT / "docs" / "figures" / "preset_allocation.png"))
    p.add_argument("--strategy", default="adaptive:0.95", help="the learned strategy drawn (default adaptive:0.95)")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more options for adamask compare")
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = p.parse_args(argv)
    given = dict(item.split("=", 1) for item in args.run)
    label = parse_strategy(args.strategy).label
    runs: Dict[str, Dict[str, Any]] = {}
    rows: List[Dict[str, Any]] = []
    for name in PRESETS:
        folder = Path(given.get(name, Path(args.out) / name))
        timing = {} if name in given else run_preset(name, folder, args.extra)
        res = json.loads((folder / "results.json").read_text())
        runs[name] = res
        entry = res["strategies"][label]
        rows.append(
            dict(
                preset=name,
                folder=str(folder),
                wall_s=timing.get("wall_s", res["runtime_s"]),
                load_before=timing.get("load_before"),
                load_after=timing.get("load_after"),
                held_out_loss=last(entry, "eval_loss"),
                allocation=last(entry, "eval_allocation"),
                seeds=len(entry["runs"]),
                steps=res["config"]["steps"],
            )
        )
    preset_curves_figure(runs, args.figure, strategies=[label])
    for r in rows:
        load = "" if r["load_before"] is None else f", load {r['load_before']:.1f} -> {r['load_after']:.1f}"
        print(
            f"{r['preset']:12s} {r['wall_s']:6.0f} s{load}; {label} at step {r['steps']} ({r['seeds']} seeds): "
            f"held-out loss {r['held_out_loss']:.3f}, foreground allocation {r['allocation']:.2f}"
        )
    print(f"figure: {args.figure}")
    if args.json:
        write_json(Path(args.json), dict(strategy=label, presets=rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
