"""The run folder of ``adamask compare`` and how its files are written: atomically (a temporary file in the same
folder, flushed to disk, then os.replace and a flush of the folder), as strict JSON, checked before anything is
written, opened (emptied with --overwrite, stale temporaries removed, config.json written), and the finished
results it holds.

A reader or an interrupted run never sees a partial file, and a completed write survives a crash. A write that
fails (a full disk, a file-size limit) removes its temporary file and raises a `WriteFailedError` naming the file;
the files written before it stay complete. A process killed at the wrong moment (kill -9, power loss) can leave
its temporary file behind: ``.<name>.tmp<pid>``; `clean_stale_temporaries` removes those of processes no longer
running. Reading the run folder's own files back (`read_json`) names the file and what is wrong with it. A run
holds its folder with an advisory lock (`run_dir_lock`) that dies with its process.

This module knows the folder's layout, not the configuration: the run's identity and its config.json come in
as JSON values.
"""

from __future__ import annotations

import hashlib
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

from .errors import RunFolderInUseError, UserError, WriteFailedError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

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
    "identity_hash",
    "identity_difference",
    "RUN_SUBFOLDERS",
    "RUN_FILES",
    "LOCK_FILE",
    "START_OVER",
    "finished_work",
    "check_run_dir",
    "run_dir_lock",
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


def _os_error(error: BaseException) -> Optional[OSError]:
    """The OSError behind ``error``: itself or one in its chain of causes and contexts (torch.save reports a
    failed write to its file object as a RuntimeError raised while handling the OSError); None without one."""
    seen = set()
    e: Optional[BaseException] = error
    while e is not None and id(e) not in seen:
        if isinstance(e, OSError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


@contextmanager
def atomic_path(path: os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for the caller to write (and close); on success the file is
    flushed to disk, replaces ``path``, and the folder is flushed after the rename; on error it is removed. A
    write that fails with an OSError (a full disk, a file-size limit, a read-only folder) raises a
    `WriteFailedError` naming ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        failure = None if isinstance(e, (UserError, KeyboardInterrupt)) else _os_error(e)
        if failure is None:
            raise
        reason = failure.strerror or str(failure)
        raise WriteFailedError(
            f"cannot write {path}: {reason}; nothing of it was kept and the files written before it are complete"
        ) from e
    fsync_dir(path.parent)


def atomic_write_bytes(path: os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj: Any, path: os.PathLike) -> None:
    """``torch.save(obj, path)`` atomically: the file is flushed to disk before the rename. torch writes through
    a Python file object, so a failed write surfaces as its OSError (`atomic_path`: a `WriteFailedError`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


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


def identity_hash(identity: Any) -> str:
    """A short hash (16 hex digits of SHA-256) of a JSON value, key order aside: what a strategy's result
    records of the configuration that produced it."""
    text = json.dumps(strict_json(identity), sort_keys=True, default=json_default, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def identity_difference(old: Any, new: Dict[str, Any], limit: int = 3) -> str:
    """The settings in which the identity ``old`` (as a file records it) differs from ``new``: "steps 3 there,
    2 here; ...", at most ``limit`` of them named."""
    if not isinstance(old, dict):
        return "it records no configuration"
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]

    def show(value: Any) -> str:
        return json.dumps(strict_json(value), default=json_default)

    text = "; ".join(f"{k} {show(old.get(k))} there, {show(new.get(k))} here" for k in keys[:limit])
    return text + (f"; {len(keys) - limit} more" if len(keys) > limit else "")


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
LOCK_FILE = ".lock"  # held by the run using the folder (`run_dir_lock`); holds its process id
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
        raise UserError(
            f"run folder {str(run_dir)!r} holds a run with a different configuration "
            f"({identity_difference(old.get('identity'), identity)}); {START_OVER}"
        )


def _lock(fd: int) -> None:
    """Take the advisory lock of the open file ``fd`` without waiting: BlockingIOError (or, on Windows, another
    OSError) when another process holds it. The kernel releases it when the file is closed or its process
    ends, however it ends."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:  # pragma: no cover - Windows
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)


def _holder(fd: int) -> str:
    """ " (process <pid>)" as the lock file ``fd`` records its holder, or "" where it cannot be read."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, AttributeError, UnicodeDecodeError):
        return ""
    return f" (process {text})" if text.isdigit() else ""


def _acquire(run_dir: Path) -> int:
    """Open and lock ``run_dir``'s lock file; returns its descriptor, the lock held. A `RunFolderInUseError`
    when another process holds it. A lock file removed while it was being locked (by a run that created the
    folder and then failed) is opened again."""
    path = run_dir / LOCK_FILE
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise WriteFailedError(f"cannot write the run folder {str(run_dir)!r}: {e.strerror or e}") from e
        try:
            _lock(fd)
        except OSError as e:
            holder = _holder(fd)
            os.close(fd)
            if isinstance(e, BlockingIOError) or fcntl is None:
                raise RunFolderInUseError(
                    f"run folder {str(run_dir)!r} is in use by another adamask compare run{holder}; wait for it "
                    f"to finish, or choose another --out"
                ) from e
            raise UserError(f"cannot lock the run folder {str(run_dir)!r}: {e.strerror or e}") from e
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            return fd
        os.close(fd)


@contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[Path]:
    """Hold the run folder ``run_dir`` within the block: an advisory lock on its `LOCK_FILE` (``fcntl.flock``;
    ``msvcrt.locking`` on Windows) that the kernel releases when the block ends or the process dies, kill -9
    included, so a folder is never left blocked. Another run on the same folder is refused meanwhile: a
    `RunFolderInUseError` naming the folder. The folder is created if needed (a `WriteFailedError` if it
    cannot be), and removed again, with the folders created for it, when the block leaves nothing in it."""
    missing = []  # the folders this call creates, deepest first
    p = run_dir
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteFailedError(f"cannot write the run folder {str(run_dir)!r}: {e.strerror or e}") from e
    fd = _acquire(run_dir)
    try:
        yield run_dir
    finally:
        try:
            if missing and [f.name for f in run_dir.iterdir()] == [LOCK_FILE]:
                (run_dir / LOCK_FILE).unlink()  # while still held: a run waiting on it opens the new one
                for folder in missing:
                    folder.rmdir()
        except OSError:
            pass  # a folder that is not empty, or a lock file Windows will not remove while it is open
        os.close(fd)


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
    except OSError as e:
        raise WriteFailedError(f"cannot write the run folder {str(run_dir)!r}: {e.strerror or e}") from e
    write_json(run_dir / "config.json", config)
    stale = clean_stale_temporaries(run_dir)
    if stale:
        log(f"removed {len(stale)} temporary file(s) left by an interrupted run: {', '.join(p.name for p in stale)}")
    return run_dir


def stored_result(run_dir: Path, stem: str, label: str, identity: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The result of the strategy run ``stem`` (of the strategy ``label``) finished by an earlier run (its JSON
    and checkpoint both exist), else None. It is reused only if the configuration that produced it is
    ``identity`` (its ``config_hash``: `identity_hash`); a result of another configuration is refused, a
    `UserError` naming the file."""
    done, ck = run_dir / "strategies" / f"{stem}.json", run_dir / "checkpoints" / f"{stem}.pt"
    if not (done.exists() and ck.exists()):
        return None
    remedy = f"delete it to evaluate {stem} again, or pass --overwrite to start over"
    result = read_json(done, remedy=remedy)
    if result.get("label") != label or not isinstance(result.get("history"), dict):
        raise UserError(f"{done}: not the result of {stem} written by adamask compare; {remedy}")
    if result.get("config_hash") != identity_hash(identity):
        raise UserError(
            f"{done}: the result of {stem} from a run of another configuration (configuration hash "
            f"{result.get('config_hash')}, this run's {identity_hash(identity)}), not reused; delete it and "
            f"{ck.name} to train {stem} again, or pass --overwrite to start over"
        )
    return result
