"""Integrations of adamask's masking strategies into existing video-MAE training code, one target each.

``adamask.integrations.hf`` (Hugging Face ``transformers``), ``.videomae`` (VideoMAE v1/v2) and
``.mae_st`` (SpatiotemporalMAE); import the target directly: nothing is imported here, so that each
target's own dependencies stay optional.

Every target has the same verb: ``wrap(model, strategy="adaptive", ...)`` builds any registered
strategy the model draws (from its tokens, or from the clip it is called with), attaches it as the
sub-module ``mask_sampler`` and adds a learned strategy's loss term with the same `adamask.LossSettings`
(sampling_weight, sampling_estimator, sampling_baseline, sampling_entropy_weight). What they share lives
in ``adapter`` (the model side, and ``wrap`` itself, defined once from each target's `adapter.Target`),
``launch`` (the launchers' options) and ``compat`` (shims for running upstream code on current libraries
and on machines without CUDA). Several GPUs or machines (DDP, FSDP2, torchrun, accelerate):
docs/distributed.md.
"""
