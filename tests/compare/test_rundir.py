import json

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
