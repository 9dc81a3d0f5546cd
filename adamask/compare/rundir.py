"""The run folder of ``adamask compare`` and how its files are written: atomically (a temporary file in the same
folder, flushed to disk, then os.replace and a flush of the folder), as strict JSON, checked before anything is
written, opened (emptied with --overwrite, stale temporaries removed, config.json written), and the finished
results it holds.

A reader or an interrupted run never sees a partial file, and a completed write survives a crash. A process
killed at the wrong moment (kill -9, power loss) can leave its temporary file behind: ``.<name>.tmp<pid>``;
`clean_stale_temporaries` removes those of processes no longer running. Reading the run folder's own files back
(`read_json`) names the file and what is wrong with it.

This module knows the folder's layout, not the configuration: the run's identity and its config.json come in
as JSON values.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import torch
from torch import Tensor

from .errors import UserError

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_torch_save",
    "json_default",
    "strict_json",
    "write_json",
    "read_json",
    "clean_stale_temporaries",
    "fsync_dir",
    "RUN_SUBFOLDERS",
    "RUN_FILES",
    "START_OVER",
    "finished_work",
    "check_run_dir",
    "open_run_dir",
    "stored_result",
]

_TMP = re.compile(r"^\.(?P<name>.+)\.tmp(?P<pid>\d+)$")


def fsync_dir(folder: os.PathLike) -> None:
    """Flush a folder's entries (a rename in it) to disk; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "r+b") as f:
        os.fsync(f.fileno())


@contextmanager
def atomic_path(path: os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for the caller to write (and close); on success the file is
    flushed to disk, replaces ``path``, and the folder is flushed after the rename; on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj: Any, path: os.PathLike) -> None:
    """``torch.save(obj, path)`` atomically: the file is flushed to disk before the rename."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _pid_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or cannot tell: leave its files alone
    return True


def clean_stale_temporaries(folder: os.PathLike, recursive: bool = True) -> List[Path]:
    """Remove the temporary files (``.<name>.tmp<pid>``) that writers killed before finishing left in
    ``folder`` (and its sub-folders): those whose process is no longer running. Returns the removed paths."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for f in folder.rglob(".*.tmp*") if recursive else folder.glob(".*.tmp*"):
        m = _TMP.match(f.name)
        if m and f.is_file() and not _pid_running(int(m.group("pid"))):
            f.unlink(missing_ok=True)
            removed.append(f)
    return removed


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` for paths, tensors and tuples; TypeError for anything else."""
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, Tensor):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def strict_json(o: Any) -> Any:
    """NaN / inf -> None, recursively, so the JSON stays strict."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: strict_json(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [strict_json(v) for v in o]
    return o


def write_json(path: os.PathLike, obj: Any, indent: int = 2) -> None:
    """Write ``obj`` as strict JSON (NaN -> null), atomically."""
    text = json.dumps(strict_json(obj), indent=indent, default=json_default, allow_nan=False)
    atomic_write_text(path, text + "\n")


def read_json(path: os.PathLike, remedy: str = "", expect: Optional[type] = dict) -> Any:
    """The JSON value in ``path``; a `UserError` naming the file and what is wrong if it cannot be read, is
    not JSON or (with ``expect``) holds another kind of value. ``remedy`` ends the message (what to do)."""
    path = Path(path)
    tail = f"; {remedy}" if remedy else ""
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as e:
        raise UserError(f"{path}: cannot be read ({e.strerror or e}){tail}") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e}){tail}") from e
    if expect is not None and not isinstance(value, expect):
        raise UserError(
            f"{path}: holds a JSON {type(value).__name__}, not the expected "
            f"{'object' if expect is dict else expect.__name__}{tail}"
        )
    return value


# ---------------------------------------------------------------------------------------------
# the run folder

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


def check_run_dir(run_dir: Path, identity: Dict[str, Any], overwrite: bool) -> None:
    """Check the run folder without writing: ``--out`` must be a folder (or not exist), and one holding
    finished work of a run of another ``identity`` (what config.json records) is refused unless ``overwrite``."""
    for p in (run_dir, *(run_dir / sub for sub in RUN_SUBFOLDERS)):
        if p.exists() and not p.is_dir():
            where = "" if p == run_dir else f" holds {str(p)!r}, which"
            raise UserError(f"--out {str(run_dir)!r}{where} is a file, not a folder; choose another --out")
    for p in (run_dir / f for f in RUN_FILES):
        if p.is_dir():
            raise UserError(f"{p}: a folder where the run keeps a file; remove it, or {START_OVER}")
    cfg_path = run_dir / "config.json"
    if overwrite or not finished_work(run_dir):
        return
    if not cfg_path.exists():
        raise UserError(f"run folder {str(run_dir)!r} holds results but no config.json; {START_OVER}")
    old = read_json(cfg_path, remedy=START_OVER)
    if old.get("identity") != identity:
        raise UserError(f"run folder {str(run_dir)!r} holds a run with a different configuration; {START_OVER}")


def open_run_dir(run_dir: Path, config: Dict[str, Any], overwrite: bool, log: Callable[[str], None]) -> Path:
    """The run folder, checked (`check_run_dir` with ``config["identity"]``), emptied if ``overwrite``, without the
    temporary files of killed writers, with ``config`` written as its config.json."""
    check_run_dir(run_dir, config["identity"], overwrite)
    if run_dir.exists() and overwrite:
        for sub in RUN_SUBFOLDERS:
            shutil.rmtree(run_dir / sub, ignore_errors=True)
        for f in RUN_FILES:
            (run_dir / f).unlink(missing_ok=True)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", config)
    except OSError as e:
        raise UserError(f"cannot write the run folder {str(run_dir)!r}: {e.strerror or e}") from e
    stale = clean_stale_temporaries(run_dir)
    if stale:
        log(f"removed {len(stale)} temporary file(s) left by an interrupted run: {', '.join(p.name for p in stale)}")
    return run_dir


def stored_result(run_dir: Path, stem: str, label: str) -> Optional[Dict[str, Any]]:
    """The result of the strategy run ``stem`` (of the strategy ``label``) finished by an earlier run (its JSON
    and checkpoint both exist), else None."""
    done, ck = run_dir / "strategies" / f"{stem}.json", run_dir / "checkpoints" / f"{stem}.pt"
    if not (done.exists() and ck.exists()):
        return None
    remedy = f"delete it to evaluate {stem} again, or pass --overwrite to start over"
    result = read_json(done, remedy=remedy)
    if result.get("label") != label or not isinstance(result.get("history"), dict):
        raise UserError(f"{done}: not the result of {stem} written by adamask compare; {remedy}")
    return result
