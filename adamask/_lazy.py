"""Lazy module attributes (PEP 562) read from one export table: the ``if TYPE_CHECKING:`` block of a package's
``__init__.py``, whose ``from .module import Name as Name`` lines tell type checkers what the package exports
and tell `lazy_attributes` which submodule defines each name. Keeps ``import adamask`` (and the ``adamask``
command's argument parsing) free of torch."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

__all__ = ["lazy_attributes", "export_table"]


def export_table(init_file: str) -> Dict[str, str]:
    """{public name: the submodule defining it} from the relative imports in the ``if TYPE_CHECKING:`` block of
    the package file ``init_file``."""
    tree = ast.parse(Path(init_file).read_text(encoding="utf-8"))
    table: Dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.level == 1 and stmt.module:
                    table.update({alias.asname or alias.name: stmt.module for alias in stmt.names})
    return table


def lazy_attributes(
    package: str, namespace: Dict[str, Any]
) -> Tuple[Callable[[str], Any], Callable[[], List[str]], List[str]]:
    """``(__getattr__, __dir__, __all__)`` for the package ``package`` whose globals are ``namespace``, from its
    export table (`export_table` of its ``__file__``). Unknown attributes are tried as submodules."""
    owner = export_table(namespace["__file__"])

    def __getattr__(name: str) -> Any:
        module = owner.get(name)
        if module is not None:
            value = getattr(importlib.import_module(f".{module}", package), name)
        else:
            try:
                value = importlib.import_module(f".{name}", package)
            except ModuleNotFoundError as e:
                if e.name != f"{package}.{name}":
                    raise
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        namespace[name] = value
        return value

    def __dir__() -> List[str]:
        return sorted(set(namespace) | set(owner))

    return __getattr__, __dir__, sorted(owner)
