"""The device check: adamask on a GPU at the paper's scale, one script, under 8 minutes on one H100.

    PYTHONPATH=. python3 benchmarks/gpu_check.py --out DIR                      # CUDA, every section
    PYTHONPATH=. python3 benchmarks/gpu_check.py --out DIR --sections sync,train
    PYTHONPATH=. python3 benchmarks/gpu_check.py --device cpu --smoke --out DIR # CPU smoke, seconds (CI)
    python3 benchmarks/gpu_check.py --list                                      # sections and time estimates

Sections (1-8): host syncs, mask generation (eager and captured in a CUDA graph), sampling loss (eager and
captured), the paper-scale training step (batch 16 and 32; eager, compiled, and both captured in CUDA graphs),
graph breaks of every registered strategy, the Hugging Face integration (wrapped vs stock, with host syncs),
``adamask compare`` on the device, DDP (not run on one GPU); run in the order 1 2 3 6 7 5 4 8: the training
step's compiles take whatever the run's time budget leaves (``--budget-s``), in order of importance. Prints each
section's table and its elapsed time, then every target; writes DIR/gpu_check.json atomically after every
section (device name, torch / CUDA versions, every figure, each target with its measured value and met:
true / false, or null where not measured or in smoke mode). Exit status 1 if a section raised.
Needs torch, einops, timm, transformers (sections 1 and 6), scikit-learn (7); no network, no PyAV.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import sys
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
for p in (str(HERE.parent), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import torch  # noqa: E402

from adamask.compare.rundir import write_json  # noqa: E402
from gpu_integration import section_compare, section_hf  # noqa: E402
from gpu_sections import Plan, make_plan, peak_bf16_flops, section_ddp, section_loss, section_masks, section_sync  # noqa: E402
from gpu_train import section_graph_breaks, section_train  # noqa: E402
from run import machine  # noqa: E402

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    estimate_s: float  # on one H100, full run (a section that compiles: without its compiles)
    run: Callable[[Plan], Dict[str, Any]]
    compiles: bool = False  # its compiles take what is left of the run's budget (Plan.compile_budget_s)


# run in this order: the training step, whose compiles take what is left of the budget, runs last (the JSON is
# written after every section, so a run cut short keeps everything measured before)
SECTIONS = (
    Section("sync", "1. no host sync in the masking path", 25, section_sync),
    Section("masks", "2. mask generation, B=32, N=1568: batched on device vs per-clip numpy + copy", 10, section_masks),
    Section("loss", "3. sampling_loss vs the authors' per-clip loop, B=32, N=1568, fwd+bwd", 10, section_loss),
    Section("hf", "6. Hugging Face AdaptiveVideoMAEForPreTraining (ViT-B config, random init)", 35, section_hf),
    Section("compare", "7. adamask compare on the device (embedded data, defaults)", 120, section_compare),
    Section(
        "compile", "5. graph breaks of the training step, every registered strategy (ViT-B)", 30, section_graph_breaks
    ),
    Section(
        "train",
        "4. training step at paper scale (ViT-B, batch 16 and 32, bf16): eager, compiled, CUDA graphs",
        90,
        section_train,
        compiles=True,
    ),
    Section("ddp", "8. DDP with NCCL", 0, section_ddp),
)
NUMBERS = {s.title.split(".")[0]: s for s in SECTIONS}


def pick_sections(spec: Optional[str]) -> List[Section]:
    """``"sync,train"`` or ``"1,4"`` (keys or numbers, comma-separated) -> the sections, in order; None: all."""
    if not spec:
        return list(SECTIONS)
    keys = {s.key: s for s in SECTIONS} | NUMBERS
    wanted = [w.strip() for w in spec.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in keys]
    if unknown:
        raise ValueError(f"--sections: unknown {unknown}; allowed: {', '.join(s.key for s in SECTIONS)} or 1-8")
    chosen = {keys[w].key for w in wanted}
    return [s for s in SECTIONS if s.key in chosen]


def environment(device: torch.device) -> Dict[str, Any]:
    env = {
        **machine(device),
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "cuda_available": torch.cuda.is_available(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(
            capability=f"{props.major}.{props.minor}",
            memory_gb=props.total_memory / 2**30,
            multiprocessors=props.multi_processor_count,
            gpu_count=torch.cuda.device_count(),
            peak_bf16_flops=peak_bf16_flops(env["device_name"]),
        )
    return env


def run_section(section: Section, plan: Plan) -> Dict[str, Any]:
    """One section, timed; an exception is recorded (status "error") and the run goes on."""
    t0 = time.perf_counter()
    try:
        res = section.run(plan)
        res.setdefault("status", "ok")
    except Exception as e:
        res = {
            "status": "error",
            "error": f"{type(e).__name__}: {e}",
            "traceback": traceback.format_exc()[-4000:],
            "lines": [f"ERROR {type(e).__name__}: {e}"],
            "targets": [],
        }
    res["seconds"] = time.perf_counter() - t0
    res["estimate_s"] = section.estimate_s
    gc.collect()  # the next section starts without this one's models
    if plan.device.type == "cuda":
        torch.cuda.empty_cache()
    return res


def targets_table(sections: Dict[str, Dict[str, Any]]) -> List[str]:
    lines = ["| section | target | value | goal | met |", "|---|---|---|---|---|"]
    for key, res in sections.items():
        for t in res.get("targets", []):
            met = "-" if t["met"] is None else ("yes" if t["met"] else "NO")
            lines.append(f"| {key} | {t['name']} | {t['shown']} | {t['target']} | {met} |")
    return lines


def run(plan: Plan, chosen: Sequence[Section], budget_s: Optional[float]) -> Dict[str, Any]:
    path = plan.out / "gpu_check.json"
    res: Dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "mode": "smoke" if plan.smoke else "full",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(plan.device),
        "budget_s": budget_s,
        "sections": {},
        "targets": [],
    }
    env = res["environment"]
    print(
        f"device: {env['device_name']}; torch {env['torch']}, CUDA {env['torch_cuda']}, cuDNN {env['cudnn']}; "
        f"{res['mode']} run"
    )
    t0 = time.perf_counter()
    for section in chosen:
        left = None if budget_s is None else budget_s - (time.perf_counter() - t0)
        print(f"\n== {section.title} (about {section.estimate_s:.0f} s on one H100)", flush=True)
        if left is not None and left < section.estimate_s / 2:
            out = {
                "status": "skipped",
                "reason": f"time budget: {left:.0f} s left, estimate {section.estimate_s} s",
                "lines": [],
                "targets": [],
            }
        else:
            timeout = plan.compare_timeout_s if left is None else max(30.0, min(plan.compare_timeout_s, left - 10))
            compiling = plan.compile_budget_s
            if section.compiles and left is not None:
                compiling = max(0.0, left - section.estimate_s)
            out = run_section(section, replace(plan, compare_timeout_s=timeout, compile_budget_s=compiling))
        res["sections"][section.key] = out
        print("\n".join(out["lines"]))
        print(
            f"-- {section.key}: {out['status']} in {out.get('seconds', 0):.1f} s "
            f"(total {time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
        res["targets"] = [{"section": k, **t} for k, r in res["sections"].items() for t in r.get("targets", [])]
        res["seconds"] = time.perf_counter() - t0
        write_json(path, res)
    print("\n" + "\n".join(targets_table(res["sections"])))
    print(f"\nwrote {path} ({res['seconds']:.0f} s)")
    return res


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("gpu-check"), help="output folder (gpu_check.json, compare/)")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, every section with a CPU meaning, seconds")
    p.add_argument(
        "--sections",
        default=None,
        help="comma-separated keys or numbers (default: all): " + ", ".join(s.key for s in SECTIONS),
    )
    p.add_argument(
        "--budget-s",
        type=float,
        default=450.0,
        help="full runs: skip a section when less than half its estimate is left of this budget, and "
        "bound the compare subprocess by what is left (default 450)",
    )
    p.add_argument("--list", action="store_true", help="list the sections and their time estimates, then exit")
    args = p.parse_args(argv)
    if args.list:
        for s in SECTIONS:
            print(f"{s.key:8s} about {s.estimate_s:4.0f} s on one H100   {s.title}")
        print(f"total    about {sum(s.estimate_s for s in SECTIONS):4.0f} s")
        return 0
    try:
        chosen = pick_sections(args.sections)
    except ValueError as e:
        p.error(str(e))
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available (use --device cpu --smoke for the CPU smoke run)")
    plan = make_plan(device, args.smoke, args.out)
    res = run(plan, chosen, None if args.smoke else args.budget_s)
    return 1 if any(r["status"] == "error" for r in res["sections"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
