"""The README's Python examples run as written, and the quick start prints what the README says."""

import re
from pathlib import Path

import pytest

from adamask import registry

TEXT = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, capsys):
    registry.list_maskings()  # loads the built-in strategies before the snapshot
    saved = dict(registry._REGISTRY)  # an example may register a strategy: leave the registry as found
    try:
        exec(compile(BLOCKS[index], f"README.md python block {index}", "exec"), {"__name__": f"readme_{index}"})
    finally:
        registry._REGISTRY.clear()
        registry._REGISTRY.update(saved)
    if index == 0:  # the quick start: its printed line is quoted right after the block
        quoted = re.search(r"```\n\nprints `([^`]*)`", TEXT)
        assert quoted is not None
        assert capsys.readouterr().out.strip() == quoted.group(1)
