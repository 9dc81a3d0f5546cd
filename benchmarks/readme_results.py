"""Put a comparison run's results.md into README.md, between the markers
``<!-- results:NAME:start -->`` and ``<!-- results:NAME:end -->``, and copy its figures into docs/figures.

    adamask compare --out runs/compare && python benchmarks/readme_results.py default=runs/compare
    python benchmarks/readme_results.py default=runs/compare paper=runs/paper --figures runs/compare

The README's tables and summaries are the command's own output, never edited by hand. ``--figures RUN`` copies
RUN/figures/{masks,errors}_clip{0,1}.png, allocation_curves.png, learning_curves.png and summary.png to
docs/figures/compare_<name>.png. The README is written atomically.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adamask.compare.rundir import atomic_write_text  # noqa: E402

FIGURES = ("masks_clip0", "masks_clip1", "errors_clip0", "allocation_curves", "learning_curves", "summary")


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the block between the markers of ``name`` replaced by ``body``."""
    pattern = re.compile(
        rf"(<!-- results:{re.escape(name)}:start -->\n).*?(<!-- results:{re.escape(name)}:end -->)", re.S
    )
    if not pattern.search(text):
        raise SystemExit(f"README.md has no <!-- results:{name}:start --> ... <!-- results:{name}:end --> block")
    return pattern.sub(lambda m: m.group(1) + body.rstrip("\n") + "\n" + m.group(2), text, count=1)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="NAME=RUN_FOLDER: the README block NAME gets RUN_FOLDER/results.md")
    p.add_argument("--figures", help="a run folder whose figures are copied to docs/figures")
    p.add_argument("--readme", default=str(ROOT / "README.md"))
    args = p.parse_args(argv)
    readme = Path(args.readme)
    text = readme.read_text(encoding="utf-8")
    for item in args.runs:
        name, sep, folder = item.partition("=")
        if not sep:
            raise SystemExit(f"expected NAME=RUN_FOLDER, got {item!r}")
        results = Path(folder) / "results.md"
        if not results.is_file():
            raise SystemExit(f"{results}: not found (run adamask compare --out {folder} first)")
        text = replace_block(text, name, results.read_text(encoding="utf-8"))
    atomic_write_text(readme, text)
    if args.figures:
        for stem in FIGURES:
            shutil.copyfile(
                Path(args.figures) / "figures" / f"{stem}.png", ROOT / "docs" / "figures" / f"compare_{stem}.png"
            )
    print(f"updated {readme}" + (f" and docs/figures from {args.figures}" if args.figures else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
