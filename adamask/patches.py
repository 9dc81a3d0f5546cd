"""Compatibility name: the patch helpers live in `adamask.tokens`."""

from .tokens import LAYOUTS, normalized_targets, patchify, token_grid, token_mse, unpatchify

__all__ = ["patchify", "unpatchify", "normalized_targets", "token_mse", "token_grid", "LAYOUTS"]
