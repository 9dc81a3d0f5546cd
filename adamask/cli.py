"""The ``adamask`` command line: ``adamask compare``, ``adamask visualize`` and ``adamask costs``.

    adamask compare                                # embedded data, random/tube/frame 0.9 vs adaptive 0.95
    adamask compare --videos my_clips/ --out runs/mine
    adamask compare --strategies random:0.9 adaptive:0.95 mymask:0.8 --import mypackage.masks
    adamask visualize video.mp4 --checkpoint runs/compare/checkpoints/adaptive_0.95.pt --gif
    adamask costs --size base

The subcommands' options and handlers live in `adamask.compare.commands`.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from .compare.commands import add_commands, run_command
from .compare.config import PRESETS, SAMPLER_OPTIONS, parse_sampler_options  # noqa: F401 (importable from here)

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adamask", description="Compare and visualise video MAE masking strategies.")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``adamask`` command; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        for mod in getattr(args, "imports", []):
            importlib.import_module(mod)
        return run_command(args, argv)
    except KeyboardInterrupt:
        print("adamask: interrupted; files written so far are complete - run the same command again to resume",
              file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, ImportError, RuntimeError) as e:
        print(f"adamask: error: {e}", file=sys.stderr)
        return 2
