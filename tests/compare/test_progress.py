"""Progress on stderr: a bar only on a usable terminal, log lines elsewhere, and an interrupt message that starts
on a line of its own."""

import contextlib
import fcntl
import io
import os
import pty
import struct
import termios

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("av")

import adamask.compare.train as train_mod  # noqa: E402
from adamask.cli import INTERRUPTED, main  # noqa: E402
from adamask.compare.train import Progress, usable_terminal  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@contextlib.contextmanager
def terminal(columns: int):
    """A pseudo-terminal of ``columns`` columns, as a text stream."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    try:
        with os.fdopen(follower, "w") as stream:
            yield stream
    finally:
        os.close(leader)


def test_usable_terminal():
    assert not usable_terminal(io.StringIO())
    r, w = os.pipe()
    with os.fdopen(r) as rf, os.fdopen(w, "w") as pipe:
        assert not usable_terminal(pipe) and rf
    for columns, usable in ((0, False), (5, False), (80, True)):
        with terminal(columns) as t:
            assert usable_terminal(t) is usable


def test_a_bar_off_a_terminal_becomes_log_lines(capsys):
    with Progress(10, 0, "random_0.9", "bar") as bar:
        assert bar.mode == "lines" and bar.bar is None
        for step in range(1, 11):
            bar.update(step, dict(loss=0.5))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "random_0.9: step 1/10 loss=0.5" and len(lines) == 10


def test_the_interrupt_message_starts_on_its_own_line(tmp_path, capsys, monkeypatch, interrupt_at_step):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(train_mod, "usable_terminal", lambda stream=None: True)
    interrupt_at_step(3)
    argv = ["compare", "--quick", "--out", str(tmp_path / "r"), "--strategies", "random", "--no-figures"]
    assert main(argv) == 130
    err = capsys.readouterr().err
    before = err.split(INTERRUPTED)[0]
    assert "random_0.9" in before and before.endswith("\n")
