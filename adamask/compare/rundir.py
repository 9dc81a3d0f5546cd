"""The run folder of `adamask compare`: checked before anything is written, opened (emptied with
--overwrite, stale temporaries removed, config.json written), and the finished results it holds."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from .config import CompareConfig, StrategySpec
from .errors import UserError
from .io import clean_stale_temporaries, read_json, write_json

__all__ = [
    "RUN_SUBFOLDERS",
    "RUN_FILES",
    "START_OVER",
    "finished_work",
    "check_run_dir",
    "open_run_dir",
    "stored_result",
]

RUN_SUBFOLDERS = ("strategies", "checkpoints", "figures")
RUN_FILES = ("config.json", "results.json", "results.md")
START_OVER = "pass --overwrite to start over, or choose another --out"


def finished_work(run_dir: Path) -> bool:
    """Whether the run folder holds a strategy's result or checkpoint (not only a config.json)."""
    return any(
        f.is_file() and not f.name.startswith(".")
        for sub in ("strategies", "checkpoints")
        for f in (run_dir / sub).glob("*")
    )


def check_run_dir(cfg: CompareConfig, overwrite: bool) -> Path:
    """The run folder, checked without writing: ``--out`` must be a folder (or not exist), and one holding
    finished work of another configuration is refused unless ``overwrite``."""
    run_dir = Path(cfg.out)
    for p in (run_dir, *(run_dir / sub for sub in RUN_SUBFOLDERS)):
        if p.exists() and not p.is_dir():
            where = "" if p == run_dir else f" holds {str(p)!r}, which"
            raise UserError(f"--out {str(run_dir)!r}{where} is a file, not a folder; choose another --out")
    for p in (run_dir / f for f in RUN_FILES):
        if p.is_dir():
            raise UserError(f"{p}: a folder where the run keeps a file; remove it, or {START_OVER}")
    cfg_path = run_dir / "config.json"
    if overwrite or not finished_work(run_dir):
        return run_dir
    if not cfg_path.exists():
        raise UserError(f"run folder {str(run_dir)!r} holds results but no config.json; {START_OVER}")
    old = read_json(cfg_path, remedy=START_OVER)
    if old.get("identity") != cfg.identity():
        raise UserError(f"run folder {str(run_dir)!r} holds a run with a different configuration; {START_OVER}")
    return run_dir


def open_run_dir(cfg: CompareConfig, overwrite: bool, log: Callable[[str], None]) -> Path:
    """The run folder, emptied if ``overwrite``, without the temporary files of killed writers, with this
    run's config.json."""
    run_dir = check_run_dir(cfg, overwrite)
    if run_dir.exists() and overwrite:
        for sub in RUN_SUBFOLDERS:
            shutil.rmtree(run_dir / sub, ignore_errors=True)
        for f in RUN_FILES:
            (run_dir / f).unlink(missing_ok=True)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", dict(config=asdict(cfg), identity=cfg.identity()))
    except OSError as e:
        raise UserError(f"cannot write the run folder {str(run_dir)!r}: {e.strerror or e}") from e
    stale = clean_stale_temporaries(run_dir)
    if stale:
        log(f"removed {len(stale)} temporary file(s) left by an interrupted run: {', '.join(p.name for p in stale)}")
    return run_dir


def stored_result(run_dir: Path, spec: StrategySpec, replicate: int = 0) -> Optional[Dict[str, Any]]:
    """The result of a strategy's run of seed ``replicate`` finished by an earlier run (its JSON and checkpoint
    both exist), else None."""
    stem = spec.stem(replicate)
    done, ck = run_dir / "strategies" / f"{stem}.json", run_dir / "checkpoints" / f"{stem}.pt"
    if not (done.exists() and ck.exists()):
        return None
    remedy = f"delete it to evaluate {stem} again, or pass --overwrite to start over"
    result = read_json(done, remedy=remedy)
    if result.get("label") != spec.label or not isinstance(result.get("history"), dict):
        raise UserError(f"{done}: not the result of {stem} written by adamask compare; {remedy}")
    return result
