"""Lazy module attributes (PEP 562): a package lists which submodule defines each public name, and the
name is imported on first use. Keeps ``import adamask`` (and the ``adamask`` command's argument parsing)
free of torch."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str, namespace: Dict[str, Any], exports: Mapping[str, Sequence[str]]
) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """``(__getattr__, __dir__)`` for the module ``package`` whose globals are ``namespace``: ``exports`` maps a
    submodule's name to the public names it defines. Unknown attributes are tried as submodules."""
    owner = {name: module for module, names in exports.items() for name in names}

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
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
