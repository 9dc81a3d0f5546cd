"""Integrations of adaptive masking into existing video-MAE training code, one module per target
(``adamask.integrations.hf`` for Hugging Face ``transformers``, ``.videomae`` for VideoMAE v1/v2,
``.mae_st`` for SpatiotemporalMAE). Import the target's module directly; nothing is imported here
so that each target's own dependencies stay optional. Every integration registers the sampler as
the sub-module ``mask_sampler``."""
