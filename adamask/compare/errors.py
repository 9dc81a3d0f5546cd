"""What the ``adamask`` command reports as the user's to fix, and what it does not.

`UserError` (a ValueError) marks bad input the user can fix: an option, a file, a missing extra, the
environment. The command prints its message on one line and exits with status 2. Every other exception
is a bug and keeps its traceback. The app raises UserError itself where input is read (options, run
folder files, videos, checkpoints), and `user_input` turns the ValueError / TypeError of the library's
argument checks into UserError while (and only while) the user's input is being checked.

Imports nothing heavy: the command line imports it before torch.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

__all__ = [
    "UserError",
    "MissingFileError",
    "MissingExtraError",
    "WriteFailedError",
    "RunFolderInUseError",
    "user_input",
    "missing_extra",
    "one_line",
    "brief",
]


class UserError(ValueError):
    """Bad input the user can fix; the message says what is wrong and names the option or file."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist (also a FileNotFoundError)."""


class MissingExtraError(UserError, ImportError):
    """An optional dependency is not installed (also an ImportError); the message says how to install it."""


class WriteFailedError(UserError, OSError):
    """A file could not be written (a full disk, a file-size limit, a read-only folder; also an OSError); the
    message names the file. Nothing of it is left behind: the files written before it are complete."""


class RunFolderInUseError(UserError):
    """Another process holds the run folder (`adamask.compare.rundir.run_dir_lock`); the message names it."""


def one_line(text: str) -> str:
    """``text`` on one line: line breaks and runs of spaces become single spaces."""
    return " ".join(str(text).split())


def brief(error: BaseException, limit: int = 200) -> str:
    """``Type: first line of the message``, at most ``limit`` characters: a foreign error inside one of ours."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextmanager
def user_input(what: str = "") -> Iterator[None]:
    """Within this block, a ValueError or TypeError is a problem of the user's input: re-raised as a
    UserError with the same message (prefixed by ``what``, e.g. "strategy adaptive_0.95: ")."""
    try:
        yield
    except UserError:
        raise
    except (ValueError, TypeError) as e:
        raise UserError(one_line(f"{what}{e}")) from e


def missing_extra(package: str, purpose: str, extra: str = "demo") -> MissingExtraError:
    """The error for a missing optional dependency: what needs it and how to install it, from PyPI or from a
    clone of the repository."""
    return MissingExtraError(
        f"{purpose} needs {package}, which is not installed: pip install 'adamask[{extra}]' "
        f"(in a clone of the repository: pip install '.[{extra}]')"
    )
