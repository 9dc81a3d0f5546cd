"""Training progress on stderr: a tqdm bar where stderr is a usable terminal, else a log line every 10% of
the steps (a pipe, a file, a terminal of 0 columns), or nothing."""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, Optional, TextIO

__all__ = ["MIN_COLUMNS", "usable_terminal", "Progress"]

MIN_COLUMNS = 20  # narrower terminals get log lines: a bar there wraps into blank lines


def usable_terminal(stream: Optional[TextIO] = None) -> bool:
    """Whether ``stream`` (default sys.stderr) is a terminal at least MIN_COLUMNS wide, where a progress bar
    can redraw one line."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty()) and os.get_terminal_size(stream.fileno()).columns >= MIN_COLUMNS
    except (AttributeError, ValueError, OSError):  # closed, replaced or without a file descriptor
        return False


class Progress:
    """mode "bar": a tqdm bar when tqdm is installed and stderr is a usable terminal, else "lines"; "lines":
    a line every 10% of the steps; "none": silence. Use as a context manager (or call `close`): the bar is
    closed, ending its line, however the block ends (an interrupt message then starts on a line of its own)."""

    def __init__(self, total: int, initial: int, desc: str, mode: str) -> None:
        self.mode, self.total, self.desc, self.bar = mode, total, desc, None
        if mode == "bar":
            self.mode = "lines"
            if usable_terminal():
                try:
                    from tqdm.auto import tqdm
                except ImportError:
                    return
                self.bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, leave=True)
                self.mode = "bar"

    def update(self, step: int, losses: Dict[str, float]) -> None:
        text = " ".join(f"{k}={v:.4g}" for k, v in losses.items())
        if self.bar is not None:
            self.bar.n = step
            self.bar.set_postfix_str(text, refresh=True)
        elif self.mode == "lines" and (step % max(1, self.total // 10) == 0 or step == self.total):
            print(f"{self.desc}: step {step}/{self.total} {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
