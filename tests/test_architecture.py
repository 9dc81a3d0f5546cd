"""The layout's rules, checked on the source (from the AST, imports under TYPE_CHECKING and inside functions
included): the import graph of ``adamask/`` has no cycle, and its arrows point one way - the core imports only
the core, the integrations and the comparison app import only the core and themselves, the command line only
the app and the core. A module's layer comes from its file's path, never from its import name, so a module
cannot pass for the core by being importable under a core-looking name."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "adamask"

ALLOWED = {
    "core": {"core"},
    "integrations": {"core", "integrations"},
    "compare": {"core", "compare"},
    "cli": {"core", "compare", "cli"},
}


def module_files(package: Path) -> Dict[str, Path]:
    """{dotted module name: file} of every module of ``package`` (a package's name is its __init__.py)."""
    out = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def layer(path: Path, package: Path) -> str:
    """The layer of a module, from where its file lies."""
    rel = path.relative_to(package).parts
    if rel[0] in ("compare", "integrations"):
        return rel[0]
    if rel[0] in ("cli.py", "__main__.py"):
        return "cli"
    return "core"


def imported(path: Path, name: str, modules: Dict[str, Path]) -> Set[str]:
    """The modules of ``modules`` that the module ``name`` (file ``path``) imports, anywhere in its file; an
    import of ``pkg.name`` that is a name defined in ``pkg`` counts as an import of ``pkg``."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    targets: List[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[: len(here) - (node.level - 1)] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets += [base] + [f"{base}.{a.name}" for a in node.names]
    root = next(iter(modules)).split(".")[0]
    out = set()
    for t in targets:
        if t != root and not t.startswith(root + "."):
            continue
        while t not in modules:
            t = t.rpartition(".")[0]
        # a package's own submodules import names of the package: not an edge to its __init__
        if t != name and not (modules[t].name == "__init__.py" and name.startswith(t + ".")):
            out.add(t)
    return out


def import_graph(package: Path) -> Dict[str, Set[str]]:
    modules = module_files(package)
    return {name: imported(path, name, modules) for name, path in modules.items()}


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def wrong_arrows(package: Path) -> List[str]:
    """``a (layer) -> b (layer)`` for every import that points against the layers' order."""
    modules = module_files(package)
    bad = []
    for name, targets in import_graph(package).items():
        own = layer(modules[name], package)
        for t in sorted(targets):
            theirs = layer(modules[t], package)
            if theirs not in ALLOWED[own]:
                bad.append(f"{name} ({own}) -> {t} ({theirs})")
    return bad


def test_the_import_graph_has_no_cycle():
    assert cycles(import_graph(PACKAGE)) == []


def test_arrows_point_from_the_app_and_the_integrations_to_the_core():
    assert wrong_arrows(PACKAGE) == []


def test_every_module_lies_in_a_known_layer():
    layers = {name: layer(path, PACKAGE) for name, path in module_files(PACKAGE).items()}
    assert set(layers.values()) == set(ALLOWED)
    assert layers["adamask.masking"] == "core" and layers["adamask.compare.run"] == "compare"


def own_names(tree: ast.Module) -> Set[str]:
    """Names a module defines at its top level (functions, classes, assignments)."""
    names: Set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def listed(tree: ast.Module) -> List[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            if isinstance(node.value, (ast.List, ast.Tuple)):
                return [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
    return []


@pytest.mark.parametrize(
    "path",
    sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_a_module_lists_only_its_own_names(path):
    """No module re-exports a neighbour's names in its ``__all__`` (a package's ``__init__`` is its export table)."""
    tree = ast.parse(path.read_text())
    assert sorted(set(listed(tree)) - own_names(tree)) == []


def test_the_core_does_not_import_the_app_or_integrations_at_import_time():
    code = (
        "import sys, adamask; bad = [m for m in sys.modules if m.startswith(('adamask.compare', "
        "'adamask.integrations', 'adamask.cli'))]; print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# the checker itself, on a package made for the purpose: it must catch what it is there to catch


def make_package(root: Path, files: Dict[str, str]) -> Path:
    pkg = root / "adamask"
    for rel, text in {"__init__.py": "", "compare/__init__.py": "", **files}.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    return pkg


def test_the_checker_finds_a_cycle_through_a_type_checking_import(tmp_path):
    pkg = make_package(
        tmp_path,
        {
            "a.py": "from .b import x\n",
            "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import y\nx = 1\n",
            "c.py": "def f():\n    from .a import z\ny = 2\n",
        },
    )
    assert cycles(import_graph(pkg)) == [["adamask.a", "adamask.b", "adamask.c"]]


def test_the_checker_classifies_by_path_not_by_name(tmp_path):
    # a module of the app importable as ``adamask.data`` would look like the core by its name
    pkg = make_package(
        tmp_path,
        {
            "running_cell.py": "from .compare.data import ClipSet\n",
            "compare/data.py": "ClipSet = 1\n",
            "compare/run.py": "from ..running_cell import x\n",
        },
    )
    assert wrong_arrows(pkg) == ["adamask.running_cell (core) -> adamask.compare.data (compare)"]
