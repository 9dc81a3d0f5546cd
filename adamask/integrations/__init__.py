"""Integrations of adaptive masking into existing video-MAE training code, one module per target
(e.g. ``adamask.integrations.hf`` for Hugging Face ``transformers``). Import the target's module
directly; nothing is imported here so that each target's own dependencies stay optional."""
