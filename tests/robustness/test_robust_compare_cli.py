"""Hostile use of ``adamask compare``: generated option combinations and damaged run folders.

Every case ends with exit status 0 - and the same command run again also exits 0 (nothing poisons the run
folder) - or with exit status 2, one line on stderr naming the problem and nothing trained. Anything else (a
traceback, a crash after training) fails the test with its traceback. Tiny runs: 2 steps, 4 clips, no figures.
"""

import contextlib
import io
import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

pytest.importorskip("matplotlib")
pytest.importorskip("av")

from adamask.cli import main  # noqa: E402
from adamask.compare.config import parse_strategy  # noqa: E402

TINY = ["compare", "--quick", "--steps", "2", "--train-clips", "4", "--test-clips", "4", "--no-figures", "--quiet"]
STRATEGIES = [
    "random",
    "tube:0.5",
    "frame:0.75",
    "frame:0.9",
    "random:0.99",
    "adaptive:0.95",
    "error_predictor:0.9",
    "motion:0.9",
    "motion_pixels:0.8",
    "running_cell",
]
OPTIONS = {
    "--steps": ["1", "2", "3", "0", "-1"],
    "--batch-size": ["0", "1", "3"],
    "--lr": ["1e-3", "inf", "nan", "-1", "0", "1e6"],
    "--common-ratio": ["0.5", "0.99", "1", "0", "nan"],
    "--sampler": [
        ["temperature=2"],
        ["temperature=0"],
        ["width=7"],
        ["width=8", "num_heads=3"],
        ["variant=mlp"],
        ["token_pool=1x2x2"],
        ["token_pool=3x3x3"],
        ["temperature=inf"],
    ],
    "--ratio-schedule": ["0.5:0.9", "0.5:0.99", "0.9:0.5:cosine:2", "0.5", "0.5:0.9:step:0", "0.5:0.9:wiggle"],
    "--decoder-masking": ["running_cell:0.5", "running_cell:0.2", "motion", "random:0.5", "nosuch"],
    "--sampling-baseline": ["none", "mean", "rloo"],
    "--sampling-entropy-weight": ["0.01", "-1", "inf"],
    "--sampling-weight": ["0", "1e-2", "nan"],
    "--sampler-lr-scale": ["10", "0", "-5"],
    "--seed": ["3", "-1", "99999999999"],
    "--background-contrast": ["0.5", "2"],
    "--tubelet": [["2", "8", "8"], ["3", "8", "8"], ["2", "16", "16"], ["8", "32", "32"]],
    "--img-size": ["32", "30", "16"],
    "--checkpoint-every": ["1", "0"],
    "--device": ["cpu", "meta", "nosuch"],
}
CASE = settings(max_examples=14, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def run(argv):
    """main(argv) -> (exit status, stderr); exceptions other than the user's errors propagate."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    return rc, err.getvalue()


def check_refusal(rc, err, out: Path, *names):
    """Exit 2 with one line naming the problem (one of ``names``, if given) and nothing trained."""
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("adamask: error: ") and "Traceback" not in err, err
    assert not names or any(n in lines[0] for n in names), err
    assert names or not list(out.glob("checkpoints/*.pt")), err


@CASE
@given(
    strategies=st.lists(st.sampled_from(STRATEGIES), min_size=1, max_size=3, unique=True),
    options=st.dictionaries(st.sampled_from(sorted(OPTIONS)), st.integers(0, 7), max_size=3),
)
@example(strategies=["adaptive:0.95"], options={"--steps": 0})  # 1 step: no timed step
@example(strategies=["adaptive:0.95", "random"], options={"--steps": 1})  # 2 steps: no timed step
@example(strategies=["random", "adaptive:0.95"], options={"--lr": 5})  # 1e6: diverges
@example(strategies=["random"], options={"--common-ratio": 1})  # 0.99 on 64 tokens
@example(strategies=["random"], options={"--lr": 1})  # inf
@example(strategies=["tube:0.5"], options={"--ratio-schedule": 1})  # reaches 0.99
@example(strategies=["random"], options={"--sampler": 7})  # temperature=inf, used by no strategy
@example(strategies=["motion_pixels:0.8", "error_predictor:0.9"], options={"--decoder-masking": 0})
def test_generated_option_combinations_finish_or_are_refused_before_training(strategies, options):
    argv = TINY + ["--strategies", *strategies]
    for key, i in options.items():
        value = OPTIONS[key][i % len(OPTIONS[key])]
        argv += [key, *(value if isinstance(value, list) else [value])]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        rc, err = run(argv + ["--out", str(out)])
        if rc == 2:
            check_refusal(rc, err, out)
            assert not out.exists(), f"refused after writing: {sorted(out.rglob('*'))}"
            return
        assert rc == 0, err
        res = json.loads((out / "results.json").read_text())
        labels = [parse_strategy(s).label for s in strategies]
        assert list(res["strategies"]) == labels
        steps = res["config"]["steps"]
        for label in labels:
            (r,) = res["strategies"][label]["runs"]  # one seed
            assert r["label"] == label and (out / r["checkpoint"]).is_file()
            assert (out / "strategies" / f"{label}.json").is_file()
            if r.get("diverged_at_step") is None:  # trained every step and evaluated
                assert r["history"]["step"] == list(range(steps))
                assert 0 < r["num_visible"] < r["num_tokens"] and r["grid"] and isinstance(r["probe"], dict)
                for key in ("recon_loss_own_ratio", "recon_loss_random_masks"):  # null where not finite
                    assert r[key] is None or math.isfinite(r[key]), (key, r[key])
            else:  # stopped at the step that diverged, named in the table
                assert 1 <= r["diverged_at_step"] <= steps and r["diverged_reason"]
                assert "recon_loss_own_ratio" not in r and f"**{label}** diverged" in (out / "results.md").read_text()
        assert run(argv + ["--out", str(out)]) == (0, "")  # the finished folder is loaded, not poisoned
        assert json.loads((out / "results.json").read_text())["strategies"] == res["strategies"]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished tiny run of random and adaptive (argv, folder)."""
    out = tmp_path_factory.mktemp("robust") / "run"
    argv = TINY + ["--strategies", "random", "adaptive", "--out", str(out)]
    assert run(argv) == (0, "")
    return argv, out


TARGETS = [
    "config.json",
    "results.json",
    "results.md",
    "strategies/random_0.9.json",
    "checkpoints/random_0.9.pt",
    "checkpoints/adaptive_0.95.pt",
]
DAMAGE = ["truncate", "garbage", "json_list", "json_number", "empty", "folder"]


def damage(path: Path, how: str, cut: float) -> None:
    data = path.read_bytes()
    path.unlink()
    if how == "folder":
        path.mkdir()
        return
    path.write_bytes(
        {
            "truncate": data[: int(len(data) * cut)],
            "garbage": bytes(range(256)) * 3,
            "json_list": b"[1, 2]",
            "json_number": b"7",
            "empty": b"",
        }[how]
    )


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(target=st.sampled_from(TARGETS), how=st.sampled_from(DAMAGE), cut=st.floats(0.0, 0.99), resumed=st.booleans())
@example(target="config.json", how="truncate", cut=0.5, resumed=False)
@example(target="config.json", how="json_list", cut=0.0, resumed=False)
@example(target="strategies/random_0.9.json", how="garbage", cut=0.0, resumed=False)
@example(target="checkpoints/adaptive_0.95.pt", how="truncate", cut=0.5, resumed=True)
@example(target="results.json", how="folder", cut=0.0, resumed=False)
def test_damaged_run_folders_are_named_or_recovered(finished_run, target, how, cut, resumed):
    """A damaged file of a finished run: the rerun recovers (rc 0) or names the file (rc 2), and the stale
    temporary files a kill -9 leaves are removed. ``resumed``: the damaged strategy's result is gone, so its
    checkpoint is read to resume it."""
    argv, src = finished_run
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        shutil.copytree(src, out)
        damage(out / target, how, cut)
        if resumed and target.startswith("checkpoints/"):
            (out / "strategies" / Path(target).with_suffix(".json").name).unlink()
        stale = [out / f".results.json.tmp{dead_pid()}", out / "checkpoints" / f".random_0.9.pt.tmp{dead_pid()}"]
        for f in stale:
            f.write_bytes(b"partial")
        rc, err = run([a if a != str(src) else str(out) for a in argv])
        if rc == 2:
            check_refusal(rc, err, out, Path(target).name)
        else:  # the finished results were loaded, not trained again, and the report rewritten from them
            assert rc == 0, err
            res = json.loads((out / "results.json").read_text())
            assert res["strategies"] == json.loads((src / "results.json").read_text())["strategies"]
            assert (out / "results.md").read_text() == (src / "results.md").read_text().replace(str(src), str(out))
            assert not any(f.exists() for f in stale)
