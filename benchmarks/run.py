"""adamask benchmark suite: every comparison measured side by side in one run.

    python benchmarks/run.py                   # full run, CPU (a few minutes on 2 cores)
    python benchmarks/run.py --smoke           # tiny sizes, seconds (what CI runs)
    python benchmarks/run.py --device cuda     # CUDA-event timing, torch.cuda.max_memory_allocated
    python benchmarks/run.py --compile         # the training-step rows compiled (torch.compile, fullgraph)

Prints a table and writes JSON (atomically) to --json (default benchmarks/results.json).
Timings: repeats are interleaved (the order rotates every repeat), medians with min-max.

Modules: timing.py (sizes, interleaved timing), baselines.py (the re-implemented upstream behaviour),
micro.py (sampling loss, masks, draw), train_step.py (the training-step rows, whose configurations are
`adamask.compare.costs.paper_scale_configs`, and their targets).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adamask.compare.costs import format_cost_table, paper_scale_table  # noqa: E402
from adamask.compare.rundir import write_json  # noqa: E402
from micro import bench_draw, bench_loss, bench_masks  # noqa: E402
from timing import FULL, SMOKE  # noqa: E402
from train_step import bench_train, probe_memory, train_targets  # noqa: E402

SCHEMA_VERSION = 1


def _ms(s: Dict[str, Any]) -> str:
    return f"{s['median']:.3g} ({s['min']:.3g}-{s['max']:.3g})"


def format_tables(res: Dict[str, Any]) -> str:
    mc = res["machine"]
    load = "/".join(f"{x:.1f}" for x in mc["load_average_start"])
    out = [
        f"device: {mc['device_name']} ({mc['cpu_count']} cores); torch {mc['torch']}; {mc['threads']} threads; "
        f"{res['mode']} run; load average at start {load}",
        "",
    ]
    out.append(
        "| comparison | adamask ms, median (min-max) | baseline ms, median (min-max) | "
        "ratio of medians | target | met |"
    )
    out.append("|---|---|---|---|---|---|")
    for row in res["micro"]:
        if "ours_ms" not in row:
            continue
        ratio = f"time {row['time_ratio']:.2f}x" if "time_ratio" in row else f"speedup {row['speedup']:.1f}x"
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO")
        out.append(
            f"| {row['name']} vs {row['baseline']} | {_ms(row['ours_ms'])} | {_ms(row['baseline_ms'])} | "
            f"{ratio} | {row['target']} | {met} |"
        )
    for row in res["micro"]:
        if "multinomial" in row:
            out += ["", f"{row['name']}: multinomial -> {row['multinomial']}; gumbel_topk -> {row['gumbel_topk']}"]
        if "check" in row and "value_rel_err_vs_float64_loop" in row["check"]:
            c = row["check"]
            out += [
                "",
                f"sampling_loss vs the float64 loop: value rel. err {c['value_rel_err_vs_float64_loop']:.1e}, "
                f"grad (w.r.t. scores) rel. err {c['grad_rel_err_vs_float64_loop']:.1e}",
            ]
    tr = res["train"]
    m = tr["model"]
    out += [
        "",
        f"training step: encoder {m['depth']} x {m['embed_dim']}, decoder {m['decoder_depth']} x "
        f"{m['decoder_embed_dim']}, {m['num_frames']} x {m['img_size']}^2, tubelet {tuple(m['tubelet'])}, "
        f"batch {tr['batch']}, {tr['optimizer']}{', compiled' if tr.get('compiled') else ''}; memory: "
        f"{res['memory_method']}",
        "",
    ]
    out.append(
        "| config | step ms, median (min-max) | vs tube | step peak MB | vs tube | total peak MB | "
        "GFLOP | vs tube | saved act. MB | vs tube |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for r in tr["rows"]:
        out.append(
            f"| {r['config']} | {_ms(r['time_ms'])} | {r['time_vs_tube']:.2f}x | {r['step_peak_mb']:.0f} | "
            f"{r['step_peak_vs_tube']:.2f}x | {r['total_peak_mb']:.0f} | {r['gflops']:.1f} | "
            f"{r['gflops_vs_tube']:.2f}x | {r['activation_mb']:.0f} | {r['activation_vs_tube']:.2f}x |"
        )
    out += ["", "| training-step target | value | target | met |", "|---|---|---|---|"]
    for t in res["train_targets"]:
        met = "" if t["met"] is None else ("yes" if t["met"] else "NO")
        out.append(f"| {t['name']} | {t['value']:.2f}x | {t['target']} | {met} |")
    out += [
        "",
        f"paper-scale cost per clip ({res['paper_scale']['size']}), one training step, float32:",
        "",
        res["paper_scale"]["table"],
    ]
    return "\n".join(out)


def machine(device: torch.device) -> Dict[str, Any]:
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    return {
        "device": str(device),
        "device_name": name,
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_json_atomic(path: Path, data: Dict[str, Any]) -> None:
    """Write ``data`` as strict JSON (NaN -> null) via a temporary file and os.replace."""
    write_json(path, data, indent=1)


def run(smoke: bool, device: torch.device, compile: bool = False) -> Dict[str, Any]:
    sz = SMOKE if smoke else FULL
    load_start = list(os.getloadavg())
    t0 = time.perf_counter()
    micro = bench_loss(sz, device) + bench_masks(sz, device) + bench_draw(sz, device)
    train = bench_train(sz, device, compile)
    paper = paper_scale_table(sz.paper_size, **sz.paper_overrides)
    res: Dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "mode": "smoke" if smoke else "full",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {**machine(device), "load_average_start": load_start},
        "memory_method": (
            "torch.cuda.max_memory_allocated"
            if device.type == "cuda"
            else "peak RSS (VmHWM, reset via /proc/self/clear_refs) of one step in a fresh process"
        ),
        "micro": micro,
        "train": train,
        "train_targets": train_targets(train, smoke),
        "paper_scale": {"size": sz.paper_size, "rows": paper, "table": format_cost_table(paper)},
    }
    res["seconds"] = time.perf_counter() - t0
    res["machine"]["load_average_end"] = list(os.getloadavg())
    return res


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the suite runs (seconds)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument(
        "--compile",
        action="store_true",
        help="compile each training-step row (torch.compile of the forward and both loss terms, fullgraph; "
        "masks from the global RNG); its compilation runs in the warm-up call, outside the timings",
    )
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results.json", help="output JSON path")
    p.add_argument("--probe-memory", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe_memory:
        print(json.dumps(probe_memory(json.loads(args.probe_memory))))
        return 0
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)
    res = run(args.smoke, device, args.compile)
    print(format_tables(res))
    write_json_atomic(args.json, res)
    print(f"\nwrote {args.json} ({res['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
