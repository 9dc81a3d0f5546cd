"""The README's Python examples run as written, and the quick start prints what the README says."""

import re
from pathlib import Path

import pytest

from adamask import registry

ROOT = Path(__file__).resolve().parent.parent
TEXT = (ROOT / "README.md").read_text(encoding="utf-8")
README_RESULTS = ROOT / "benchmarks" / "readme_results.py"
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


def test_readme_results_block_holds_a_compare_table(tmp_path):
    """The default run's table in the README is a results.md put there by benchmarks/readme_results.py."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("readme_results", README_RESULTS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    block = re.search(r"<!-- results:default:start -->\n(.*?)<!-- results:default:end -->", TEXT, flags=re.S)
    assert block is not None and block.group(1).startswith("Command: `adamask compare")
    assert "| random_0.95 (reference) |" in block.group(1) and "indistinguishable" in block.group(1)
    text = "a\n<!-- results:x:start -->\nold\n<!-- results:x:end -->\nb\n"
    assert module.replace_block(text, "x", "new table\n") == (
        "a\n<!-- results:x:start -->\nnew table\n<!-- results:x:end -->\nb\n"
    )
    with pytest.raises(SystemExit, match="no <!-- results:y:start -->"):
        module.replace_block(text, "y", "t")
