"""Shared fixtures of the integration tests: the test-only strategies and the tiny Hugging Face model.

Helper modules of this folder (``_toy_models``, ``_toy_strategies``, ``_strategy_checks``,
``_videomae_checks``, ``_upstream_helpers``) and the tests folder's ``_hf_helpers`` are imported by
name."""

from __future__ import annotations

import types

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def toy_strategies() -> types.ModuleType:
    """The test-only strategies ``toy_learned`` and ``toy_norm`` (module ``_toy_strategies``),
    registered for every test of this folder."""
    import _toy_strategies

    return _toy_strategies


@pytest.fixture
def model() -> torch.nn.Module:
    """The tiny `AdaptiveVideoMAEForPreTraining` (mask ratio 0.75, eval mode), built from seed 0."""
    pytest.importorskip("transformers")
    from _hf_helpers import tiny_config

    from adamask.integrations.hf import AdaptiveVideoMAEForPreTraining

    torch.manual_seed(0)
    return AdaptiveVideoMAEForPreTraining(tiny_config(), mask_ratio=0.75).eval()
