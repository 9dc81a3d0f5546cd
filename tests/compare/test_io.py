import json

import pytest

from adamask.compare.io import atomic_path, atomic_write_text, write_json


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
