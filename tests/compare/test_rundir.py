import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adamask.compare.rundir import atomic_path, atomic_write_text, write_json


def test_write_json_is_strict_and_replaces(tmp_path):
    p = tmp_path / "sub" / "r.json"
    write_json(p, {"a": float("nan"), "b": (1, 2), "c": [float("inf"), 0.5]})
    assert json.loads(p.read_text()) == {"a": None, "b": [1, 2], "c": [None, 0.5]}
    atomic_write_text(p, "new")
    assert p.read_text() == "new" and [f.name for f in p.parent.iterdir()] == ["r.json"]


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert p.read_text() == "old" and [f.name for f in tmp_path.iterdir()] == ["x.txt"]
    with pytest.raises(TypeError, match="not JSON serialisable"):
        write_json(p, {"a": object()})
    assert p.read_text() == "old"


def test_atomic_writes_reach_the_disk_before_and_after_the_rename(tmp_path, monkeypatch):
    """The file is flushed before os.replace and its folder after it, for JSON and torch checkpoints alike."""
    import os
    import stat

    from adamask.compare import rundir

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(
        rundir.os, "fsync", lambda fd: events.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode))) or real_fsync(fd)
    )
    monkeypatch.setattr(rundir.os, "replace", lambda a, b: events.append(("replace",)) or real_replace(a, b))
    for write in (lambda p: rundir.write_json(p, {"a": 1}), lambda p: rundir.atomic_torch_save({"w": [1]}, p)):
        events.clear()
        write(tmp_path / "x")
        assert events == [("fsync", False), ("replace",), ("fsync", True)]


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    import os
    import subprocess
    import sys

    from adamask.compare.rundir import clean_stale_temporaries

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    (tmp_path / "sub").mkdir()
    dead = [tmp_path / f".results.json.tmp{proc.pid}", tmp_path / "sub" / f".a.pt.tmp{proc.pid}"]
    alive = [tmp_path / f".config.json.tmp{os.getpid()}", tmp_path / ".notes.tmpx", tmp_path / "data.tmp1"]
    for f in dead + alive:
        f.write_text("partial")
    assert sorted(clean_stale_temporaries(tmp_path)) == sorted(dead)
    assert all(f.exists() for f in alive) and not any(f.exists() for f in dead)


ROOT = Path(__file__).resolve().parents[2]


def test_a_failed_write_names_the_file_keeps_the_old_one_and_leaves_no_temporary(tmp_path, monkeypatch):
    """A disk that fills up in the middle of a write: a WriteFailedError (a UserError and an OSError) naming the
    file, the previous version intact, no temporary file."""
    import errno
    import pathlib

    from adamask.compare.errors import UserError, WriteFailedError

    p = tmp_path / "results.json"
    write_json(p, {"a": 1})

    def full_disk(self, data):
        with open(self, "wb") as f:
            f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pathlib.Path, "write_bytes", full_disk)
    with pytest.raises(WriteFailedError) as e:
        write_json(p, {"a": 2, "b": list(range(100))})
    assert isinstance(e.value, UserError) and isinstance(e.value, OSError)
    assert str(e.value).startswith(f"cannot write {p}: No space left on device;")
    assert json.loads(p.read_text()) == {"a": 1} and [f.name for f in tmp_path.iterdir()] == ["results.json"]


_LIMITED_WRITES = """
import json, resource, sys
import numpy as np, torch
from adamask.compare.errors import WriteFailedError
from adamask.compare.figures import pyplot, save_png
from adamask.compare.rundir import atomic_torch_save, write_json
out = sys.argv[1]
for name in ("r.json", "c.pt", "f.png"):
    write_json(f"{out}/{name}", "old")
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
fig = pyplot().figure(figsize=(4, 4), dpi=100)
fig.figimage(np.random.default_rng(0).random((400, 400, 3)))
writers = {
    "r.json": lambda p: write_json(p, list(range(5000))),
    "c.pt": lambda p: atomic_torch_save({"w": torch.randn(10000)}, p),
    "f.png": lambda p: save_png(fig, p, quantize=False),
}
errors = {}
for name, write in writers.items():
    try:
        write(f"{out}/{name}")
    except WriteFailedError as e:
        errors[name] = str(e)
print(json.dumps(errors))
"""


def test_writes_beyond_the_file_size_limit_fail_cleanly(tmp_path):
    """JSON, a torch checkpoint and a PNG under a real file-size limit (RLIMIT_FSIZE; Python ignores SIGXFSZ, so
    the write fails with EFBIG): each a WriteFailedError naming its file, the old file intact, no temporary -
    torch.save's own `unexpected pos` error never reaches the user."""
    pytest.importorskip("resource")
    pytest.importorskip("matplotlib")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", _LIMITED_WRITES, str(tmp_path)], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    errors = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ("r.json", "c.pt", "f.png"):
        assert errors[name].startswith(f"cannot write {tmp_path / name}: File too large;"), errors
        assert json.loads((tmp_path / name).read_text()) == "old"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["c.pt", "f.png", "r.json"]


def test_compare_ends_a_failed_checkpoint_write_in_one_line(tmp_path):
    """``adamask compare`` under a file-size limit its checkpoint exceeds: exit 2, one line naming the
    checkpoint, the files written before it complete, no temporary file."""
    resource = pytest.importorskip("resource")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = ["compare", "--quick", "--strategies", "random", "--steps", "2", "--no-figures", "--quiet"]

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    proc = subprocess.run(
        [sys.executable, "-m", "adamask", *argv, "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
        preexec_fn=limit,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"adamask: error: cannot write {out / 'checkpoints' / 'random_0.9.pt'}: File too large")
    assert json.loads((out / "config.json").read_text())["identity"]["steps"] == 2
    assert not list(out.rglob("*.tmp*")) and not list((out / "checkpoints").iterdir())


def test_a_run_folder_is_held_by_one_run_at_a_time(tmp_path):
    from adamask.compare.errors import RunFolderInUseError
    from adamask.compare.rundir import LOCK_FILE, run_dir_lock

    out = tmp_path / "new" / "run"
    with run_dir_lock(out):
        assert (out / LOCK_FILE).read_text() == f"{os.getpid()}\n"
        with pytest.raises(RunFolderInUseError) as e:
            with run_dir_lock(out):
                pass
        assert str(e.value) == (
            f"run folder {str(out)!r} is in use by another adamask compare run (process {os.getpid()}); wait for "
            f"it to finish, or choose another --out"
        )
    assert not (tmp_path / "new").exists()  # created for a run that wrote nothing: removed again
    out.mkdir(parents=True)
    (out / "config.json").write_text("{}")
    for _ in range(2):  # released at the end of the block: held again
        with run_dir_lock(out):
            pass
    assert sorted(f.name for f in out.iterdir()) == [LOCK_FILE, "config.json"]


def test_a_second_run_on_a_folder_in_use_is_refused_and_a_killed_run_leaves_it_free(tmp_path, capsys):
    """Two processes on one --out: the second exits 2 with one line naming the folder while the first trains;
    once the first is killed (kill -9), the folder is free at once."""
    import time

    from adamask.cli import main

    out = tmp_path / "run"
    argv = ["compare", "--quick", "--strategies", "random", "--no-figures", "--quiet", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(
        [sys.executable, "-m", "adamask", *argv, "--steps", "100000", "--checkpoint-every", "100000"],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not (out / "config.json").exists():  # written while the first run holds the folder
            assert first.poll() is None, first.stderr.read()
            assert time.monotonic() < deadline, "the first run did not start"
            time.sleep(0.2)
        assert main(argv + ["--steps", "2"]) == 2
        assert capsys.readouterr().err.strip().splitlines() == [
            f"adamask: error: run folder {str(out)!r} is in use by another adamask compare run (process "
            f"{first.pid}); wait for it to finish, or choose another --out"
        ]
        assert not (out / "results.json").exists() and not list(out.glob("strategies/*"))
    finally:
        first.kill()
        first.wait()
    assert first.returncode == -9
    assert main(argv + ["--steps", "2"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["steps"] == 2 and res["strategies"]["random_0.9"]["runs"][0]["steps"] == 2


def test_a_run_that_finished_between_the_check_and_the_lock_is_not_mixed_in(tmp_path, monkeypatch, capsys):
    """Another run (2 steps) finishes in the folder after this run (3 steps) checked it and before this run holds
    it: the folder is checked again under the lock (`open_run_dir`), and this run is refused, not mixed in."""
    from contextlib import contextmanager

    from adamask.cli import main
    from adamask.compare import run as run_mod

    out = tmp_path / "run"
    argv = ["compare", "--quick", "--strategies", "random", "--no-figures", "--quiet", "--out", str(out)]
    held = run_mod.run_dir_lock

    @contextmanager
    def another_run_first(run_dir):
        monkeypatch.setattr(run_mod, "run_dir_lock", held)
        assert main(argv + ["--steps", "2"]) == 0  # the other run, start to finish
        with held(run_dir) as d:
            yield d

    monkeypatch.setattr(run_mod, "run_dir_lock", another_run_first)
    assert main(argv + ["--steps", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"adamask: error: run folder {str(out)!r} holds a run with a different configuration (steps 2 there, 3 "
        f"here); pass --overwrite to start over, or choose another --out"
    ]
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["steps"] == 2 and res["strategies"]["random_0.9"]["runs"][0]["steps"] == 2
