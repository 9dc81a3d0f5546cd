"""The layout's rules, checked: the core imports nothing above it, integrations and the compare app import
only the core, and modules and functions stay small."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "adamask"
MAX_FILE_LINES, MAX_FUNCTION_LINES = 400, 60


def adamask_imports(path: Path):
    """Absolute module names of every adamask import in ``path`` (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    pkg = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = pkg.rsplit(".", node.level - 1)[0] if node.level else ""
            mod = ".".join(p for p in (base, node.module or "") if p)
            out += [mod] + [f"{mod}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return [m for m in out if m == "adamask" or m.startswith("adamask.")]


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("compare", "integrations", "cli", "__main__"):
        return "cli" if parts[1] == "__main__" else parts[1]
    return "core"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_dependency_arrows(path):
    own = layer(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
    allowed = {
        "core": {"core"},
        "compare": {"core", "compare"},
        "integrations": {"core", "integrations"},
        "cli": {"core", "compare", "cli"},
    }[own]
    bad = [m for m in adamask_imports(path) if layer(m) not in allowed]
    assert not bad, f"{path.name} ({own}) imports {bad}"


def test_core_does_not_import_the_app_or_integrations_at_import_time():
    import subprocess
    import sys

    code = (
        "import sys, adamask; bad = [m for m in sys.modules if m.startswith(('adamask.compare', "
        "'adamask.integrations', 'adamask.cli'))]; print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_small_files_and_functions(path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_FILE_LINES, f"{path.name}: {len(text.splitlines())} lines"
    long = [
        (n.name, n.end_lineno - n.lineno + 1)
        for n in ast.walk(ast.parse(text))
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {long}"
