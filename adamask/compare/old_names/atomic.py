"""Compatibility name: atomic file writes live in `adamask.compare.io`."""

from adamask.compare.io import (  # noqa: F401
    atomic_path,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_text,
    json_default,
    strict_json,
    write_json,
)

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_torch_save",
    "json_default",
    "strict_json",
    "write_json",
]
