"""What the launchers (``python -m adamask.integrations.<target> --repo PATH -- <their args>``) share:
splitting the command line at ``--``, taking an option out of their arguments, the options every
launcher accepts before ``--``, finding the script in the checkout, and the line that reports an adapted model."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

from torch import nn

from ..loss import BASELINES, DEFAULT_SAMPLING_WEIGHT, ESTIMATORS
from .adapter import SAMPLER_NAME

__all__ = [
    "split_launcher_argv",
    "pop_option",
    "add_sampler_arguments",
    "launcher_parser",
    "parse_launcher_argv",
    "run_options",
    "script_path",
    "wrap_options",
    "announce",
    "Swaps",
]

RUN_OPTIONS = (
    "script",
    "sampling_weight",
    "sampling_estimator",
    "sampling_baseline",
    "sampler_depth",
    "sampler_heads",
    "sampler_width",
    "sampling_entropy_weight",
)
_MISSING = object()


def split_launcher_argv(argv: Sequence[str]) -> Tuple[List[str], List[str]]:
    """``[ours..., "--", theirs...]`` -> (ours, theirs). Without "--" everything is ours."""
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


def pop_option(argv: List[str], name: str) -> Tuple[List[str], Optional[str]]:
    """Remove every ``name VALUE`` / ``name=VALUE`` from ``argv``; return (rest, last value or None)."""
    rest: List[str] = []
    value: Optional[str] = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == name:
            if i + 1 >= len(argv):
                raise ValueError(f"{name} needs a value")
            value = argv[i + 1]
            i += 2
            continue
        if a.startswith(name + "="):
            value = a[len(name) + 1 :]
        else:
            rest.append(a)
        i += 1
    return rest, value


def add_sampler_arguments(parser: argparse.ArgumentParser) -> None:
    """The launchers' shared options: modules to import, the loss settings and the learned strategy's
    size. A size option left out is not passed, so the strategy uses its own default."""
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (e.g. one that registers a strategy with adamask.register_masking)",
    )
    parser.add_argument(
        "--sampling-weight",
        type=float,
        default=DEFAULT_SAMPLING_WEIGHT,
        help="lambda, the weight of the learned strategy's loss term (default 1e-4)",
    )
    parser.add_argument(
        "--sampling-estimator",
        choices=ESTIMATORS,
        default="paper",
        help="estimator of the sampling loss (default: paper)",
    )
    parser.add_argument(
        "--sampling-baseline",
        choices=[b for b in BASELINES if b is not None],
        default=None,
        help="baseline of the sampling loss (default: none)",
    )
    parser.add_argument(
        "--sampling-entropy-weight",
        type=float,
        default=0.0,
        help="weight of the entropy bonus on the sampler's distribution (default 0, the paper's)",
    )
    parser.add_argument("--sampler-depth", type=int, default=None, help="sampler blocks (default 1)")
    parser.add_argument(
        "--sampler-heads",
        type=int,
        default=None,
        help="sampler heads (default: the largest count <= 8 dividing the width)",
    )
    parser.add_argument("--sampler-width", type=int, default=None, help="sampler width (default: encoder width)")


def launcher_parser(prog: str, description: str, repo_help: str, script: str) -> argparse.ArgumentParser:
    """A launcher's parser: ``--repo``, ``--script`` (default ``script``) and `add_sampler_arguments`."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--repo", required=True, help=repo_help)
    p.add_argument("--script", default=script, help="their pretraining script, relative to --repo")
    add_sampler_arguments(p)
    return p


def parse_launcher_argv(
    parser: argparse.ArgumentParser, argv: Optional[Sequence[str]]
) -> Tuple[argparse.Namespace, List[str]]:
    """``[ours..., "--", theirs...]`` (default ``sys.argv[1:]``) -> (our parsed options, their arguments);
    imports the ``--import`` modules."""
    ours, theirs = split_launcher_argv(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(ours)
    if not theirs:
        parser.error("give the pretraining script's arguments after '--'")
    for module in args.imports:
        importlib.import_module(module)
    return args, theirs


def script_path(repo: str, script: str) -> Tuple[str, str]:
    """(the checkout's absolute path, its ``script``); ValueError when the script is not there."""
    repo = os.path.abspath(repo)
    path = os.path.join(repo, script)
    if not os.path.isfile(path):
        raise ValueError(f"no {script} in --repo {repo!r}")
    return repo, path


def run_options(args: argparse.Namespace) -> Dict[str, Any]:
    """Parsed launcher options -> the keyword arguments of the launchers' ``run``."""
    return {name: getattr(args, name) for name in RUN_OPTIONS}


def wrap_options(
    sampling_weight: float = DEFAULT_SAMPLING_WEIGHT,
    sampling_estimator: str = "paper",
    sampling_baseline: Optional[str] = None,
    sampler_depth: Optional[int] = None,
    sampler_heads: Optional[int] = None,
    sampler_width: Optional[int] = None,
    sampling_entropy_weight: float = 0.0,
) -> Dict[str, Any]:
    """The launchers' option names -> the keyword arguments of the integrations' ``wrap``."""
    return dict(
        sampling_weight=sampling_weight,
        sampling_estimator=sampling_estimator,
        sampling_baseline=sampling_baseline,
        depth=sampler_depth,
        num_heads=sampler_heads,
        width=sampler_width,
        sampling_entropy_weight=sampling_entropy_weight,
    )


class Swaps:
    """Attribute replacements that last as long as a launcher's run::

        with Swaps() as swap:
            swap(module, "name", replacement)
            ...

    On leaving the block, also by an exception, every replaced attribute gets its old value back
    (last replaced first; one that did not exist is removed), so a run that fails or is refused
    leaves no replaced function behind in the process."""

    def __init__(self) -> None:
        self._undo: List[Tuple[Any, str, Any]] = []

    def __enter__(self) -> "Swaps":
        return self

    def __call__(self, obj: Any, name: str, value: Any) -> None:
        self._undo.append((obj, name, getattr(obj, name, _MISSING)))
        setattr(obj, name, value)

    def __exit__(self, *exc: Any) -> None:
        while self._undo:
            obj, name, value = self._undo.pop()
            if value is _MISSING:
                delattr(obj, name)
            else:
                setattr(obj, name, value)


def announce(model: nn.Module, strategy: str, built_by: str, grid: Sequence[int], mask_ratio: float) -> None:
    """Print one line saying which model a launcher adapted, and how."""
    n = sum(p.numel() for p in getattr(model, SAMPLER_NAME).parameters())
    print(
        f"adamask: {strategy} masking on {built_by}: {SAMPLER_NAME} ({n} parameters), grid {tuple(grid)}, "
        f"mask_ratio {mask_ratio}, sampling_weight {model.sampling_weight}",
        flush=True,
    )
