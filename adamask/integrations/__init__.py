"""Integrations of adaptive masking into existing video-MAE training code.

One module per target, each imported on its own (``adamask.integrations.<target>``) so that no
optional dependency is needed to import the others. Every integration adds the sampler as a
sub-module named ``mask_sampler``.
"""
