"""What the command reports as the user's to fix (exit 2, one line naming the option or file) and what it does
not: a bug in our code keeps its traceback."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("matplotlib")
pytest.importorskip("av")

import adamask.compare.run as run_mod  # noqa: E402
from adamask.cli import main  # noqa: E402
from adamask.compare.errors import MissingExtraError, UserError, missing_extra  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[2]
TINY = ["compare", "--quick", "--train-clips", "4", "--test-clips", "4", "--steps", "2", "--no-figures", "--quiet"]


def refused(capsys, argv, *words):
    """main(argv) exits 2 with one line on stderr holding ``words``; returns the line."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("adamask: error: "), err
    assert all(w in err for w in words), err
    return err


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    def broken(*a, **k):
        raise TypeError("unsupported operand type(s) for *: 'int' and 'NoneType'")

    monkeypatch.setattr(run_mod, "compare_results", broken)
    with pytest.raises(TypeError, match="NoneType"):
        main(TINY + ["--strategies", "random", "--out", str(tmp_path / "r")])


def test_a_bug_in_a_subprocess_exits_1_with_a_traceback(tmp_path):
    (tmp_path / "buggy.py").write_text("raise RuntimeError('a bug in the imported module')\n")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"}
    proc = subprocess.run(
        [sys.executable, "-m", "adamask", "list", "--import", "buggy"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "a bug in the imported module" in proc.stderr


def test_unknown_import_is_the_users_error(capsys):
    refused(capsys, ["list", "--import", "no_such_module_here"], "--import no_such_module_here", "no module named")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("files") / "run"
    argv = TINY + ["--strategies", "random", "--out", str(out)]
    torch.set_num_threads(1)
    assert main(argv) == 0
    return argv, out


def copy_run(finished, tmp_path):
    import shutil

    argv, src = finished
    out = tmp_path / "run"
    shutil.copytree(src, out)
    return [str(out) if a == str(src) else a for a in argv], out


@pytest.mark.parametrize(
    "name,content,words",
    [
        ("config.json", b'{"identity": ', "config.json: not valid JSON"),
        ("config.json", b"[1, 2, 3]", "config.json: holds a JSON list, not the expected object"),
        ("strategies/random_0.9.json", b"\x00\xff garbage", "random_0.9.json: not valid JSON"),
        ("strategies/random_0.9.json", b'{"label": "tube_0.9"}', "random_0.9.json: not the result of random_0.9"),
    ],
)
def test_damaged_json_files_are_named(finished, tmp_path, capsys, name, content, words):
    argv, out = copy_run(finished, tmp_path)
    (out / name).write_bytes(content)
    refused(capsys, argv, words, "--overwrite")
    assert main(argv + ["--overwrite"]) == 0  # the remedy works


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really a zip", b"\x80\x02 pickle?"])
def test_a_damaged_checkpoint_is_named(finished, tmp_path, capsys, content):
    argv, out = copy_run(finished, tmp_path)
    (out / "strategies" / "random_0.9.json").unlink()  # so the checkpoint is read to resume
    (out / "checkpoints" / "random_0.9.pt").write_bytes(content)
    refused(capsys, argv, "random_0.9.pt: not a readable checkpoint", "delete it")
    refused(
        capsys,
        ["visualize", "v.mp4", "--checkpoint", str(out / "checkpoints" / "random_0.9.pt")],
        "random_0.9.pt: not a readable checkpoint",
    )


def test_out_that_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    refused(capsys, TINY + ["--out", str(tmp_path / "f")], "is a file, not a folder")
    refused(capsys, TINY + ["--out", str(tmp_path / "f" / "run")], "cannot write the run folder")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is missing")
def test_visualize_on_cuda_without_cuda_says_so(finished, capsys):
    _, out = finished
    refused(
        capsys,
        ["visualize", "v.mp4", "--checkpoint", str(out / "checkpoints" / "random_0.9.pt"), "--device", "cuda"],
        "CUDA is not available",
    )


def test_a_gpu_checkpoint_opens_on_the_cpu(finished, tmp_path, monkeypatch):
    """load_checkpoint reads onto the CPU first: a checkpoint's map location never reaches a missing device."""
    from adamask.compare import load_checkpoint

    seen = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: seen.append(k.get("map_location")) or real(*a, **k))
    model, _ = load_checkpoint(finished[1] / "checkpoints" / "random_0.9.pt", "cpu")
    assert seen == ["cpu"] and not model.training


def test_missing_extras_name_both_install_commands(tmp_path, capsys, monkeypatch):
    e = missing_extra("av (PyAV)", "reading videos")
    assert isinstance(e, (ImportError, ValueError, UserError)) and isinstance(e, MissingExtraError)
    assert "pip install 'adamask[demo]'" in str(e) and "pip install '.[demo]'" in str(e)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "av" else real(n, *a))
    (tmp_path / "v").mkdir()
    refused(
        capsys,
        TINY + ["--videos", str(tmp_path / "v"), "--out", str(tmp_path / "r")],
        "reading videos needs av",
        "pip install '.[demo]'",
    )
    assert not (tmp_path / "r").exists()


def test_config_of_a_run_with_no_finished_work_may_be_anything(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("[not json")
    assert main(TINY + ["--strategies", "random", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["identity"]["steps"] == 2


def test_a_result_or_checkpoint_of_another_configuration_is_never_reused(finished, tmp_path, capsys):
    """Each strategy's result records a hash of the configuration that produced it and its checkpoint the
    configuration itself: files from a run of other settings in the folder are refused, naming the file (and,
    for the checkpoint, what differs), not loaded as finished or resumed."""
    import shutil

    argv, out = copy_run(finished, tmp_path)
    other = tmp_path / "other"
    assert main(TINY + ["--strategies", "random", "--steps", "3", "--out", str(other)]) == 0
    for name in ("strategies/random_0.9.json", "checkpoints/random_0.9.pt"):
        shutil.copy(other / name, out / name)
    refused(capsys, argv, "random_0.9.json: the result of random_0.9 from a run of another configuration", "not reused")
    (out / "strategies" / "random_0.9.json").unlink()
    refused(
        capsys,
        argv,
        "random_0.9.pt: the checkpoint of a run of another configuration (steps 3 there, 2 here), not reused",
        "--overwrite",
    )
    assert main(argv + ["--overwrite"]) == 0
    done = json.loads((out / "strategies" / "random_0.9.json").read_text())
    assert (
        done["steps"] == 2
        and done["config_hash"] != json.loads((other / "strategies" / "random_0.9.json").read_text())["config_hash"]
    )
