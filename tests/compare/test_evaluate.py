"""Probes of a frozen encoder: k-NN and linear-probe accuracy of its features."""

import pytest
import torch

from adamask.compare.evaluate import knn_probe, linear_probe


def test_probes_on_separable_and_random_features():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(3, 16, generator=g) * 5
    y = torch.arange(90) % 3
    x = centers[y] + torch.randn(90, 16, generator=g)
    assert knn_probe(x[:60], y[:60], x[60:], y[60:], k=5) == 1.0
    assert linear_probe(x[:60], y[:60], x[60:], y[60:]) == 1.0
    noise = torch.randn(600, 16, generator=g)
    yr = torch.randint(0, 3, (600,), generator=g)
    assert knn_probe(noise[:400], yr[:400], noise[400:], yr[400:]) < 0.5
    assert linear_probe(noise[:400], yr[:400], noise[400:], yr[400:]) < 0.5
    with pytest.raises(ValueError, match="train_labels"):
        knn_probe(x, y[:10], x, y)
    with pytest.raises(ValueError, match="k must"):
        knn_probe(x, y, x, y, k=0)
