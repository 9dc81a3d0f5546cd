"""The ``adamask`` command line: ``adamask compare``, ``visualize``, ``costs`` and ``list``.

    adamask compare                                # embedded data, random/tube/frame 0.9 vs adaptive 0.95
    adamask compare --videos my_clips/ --out runs/mine
    adamask compare --strategies random:0.9 adaptive:0.95 mymask:0.8 --import mypackage.masks
    adamask visualize video.mp4 --checkpoint runs/compare/checkpoints/adaptive_0.95.pt --gif
    adamask costs --size base
    adamask list

Exit status: 0 done; 2 bad input (an option, a file, a missing extra: one line on stderr, see
`adamask.compare.errors.UserError`); 130 interrupted; any other error is a bug and shows its traceback.
The options live in `adamask.compare.options` (no torch import: ``--help`` is instant), the handlers in
`adamask.compare.commands` (imported when a subcommand runs).
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .compare.errors import UserError, one_line
from .compare.options import add_commands

__all__ = ["main", "build_parser"]

INTERRUPTED = "adamask: interrupted; files written so far are complete - run the same command again to resume"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adamask",
        description="Compare and visualise video MAE masking strategies.",
        epilog="Exit status: 0 done, 2 bad input (one line on stderr), 130 interrupted.",
    )
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``adamask`` command; returns the exit status (0 ok, 2 bad input, 130 interrupted).
    Exceptions other than `UserError` are bugs: they propagate with their traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        from .compare.commands import run_command  # torch is imported from here on

        return run_command(args, argv)
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except UserError as e:
        print(f"adamask: error: {one_line(str(e))}", file=sys.stderr)
        return 2
