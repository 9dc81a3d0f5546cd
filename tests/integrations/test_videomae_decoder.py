"""VideoMAEv2 decoder masking with adamask: the running-cell generator drop-in, and a sampled encoder
mask combined with a decoder mask (the loss terms see only the tokens both masked and reconstructed)."""

from __future__ import annotations

import _videomae_checks as C
import numpy as np
import pytest
import torch
from _toy_models import toy_videomae as toy

from adamask import error_prediction_loss, sampling_loss
from adamask.integrations import videomae as vm


def cell_masks(batch: int, grid=(2, 2, 2), ratio: float = 0.5) -> torch.Tensor:
    gen = vm.RunningCellMaskingGenerator(grid, ratio)
    return torch.as_tensor(np.stack([gen() for _ in range(batch)])).flatten(1).to(torch.bool)


def test_running_cell_generator_is_a_drop_in_for_theirs():
    gen = vm.RunningCellMaskingGenerator((4, 6, 8), 0.5)
    m = gen()
    assert isinstance(m, np.ndarray) and m.dtype == np.float64 and m.shape == (4, 48)
    assert set(np.unique(m)) == {0.0, 1.0}
    assert (m.sum(1) == 24).all()  # 2 of every 2 x 2 cell not reconstructed, in every slice
    cells = m.reshape(4, 3, 2, 4, 2).transpose(0, 1, 3, 2, 4).reshape(4, 12, 4)
    assert (cells.sum(-1) == 2).all()
    # the pattern runs: each slice is the previous one moved by one cell position
    slots = cells[:, 0]  # (T', 4) one cell over time
    for t in range(1, 4):
        assert any(np.array_equal(np.roll(slots[t - 1], k), slots[t]) for k in (1, -1))
    assert "running_cell" in repr(gen)
    assert vm.RunningCellMaskingGenerator((2, 2, 2), 0.75)().sum() == 2 * 3
    with pytest.raises(ValueError, match="even H' and W'"):
        vm.RunningCellMaskingGenerator((2, 3, 4), 0.5)


def test_random_generator_count_is_robust_to_float_representation():
    # 0.29 * 100 = 28.999999999999996: VideoMAE's int() would mask 28
    assert vm.MaskingGenerator((4, 5, 5), 0.29, strategy="random")().sum() == 29
    assert vm.RandomMaskingGenerator((4, 5, 5), 0.29)().sum() == 29


@pytest.mark.parametrize("strategy, term", [("adaptive", "sampling"), ("error_predictor", "error")])
def test_learned_terms_use_only_tokens_both_masked_and_reconstructed(strategy, term):
    torch.manual_seed(0)
    model = toy(strategy=strategy, sampling_weight=0.5)
    decode_mask = cell_masks(4)
    out = vm.pretraining_losses(model, torch.randn(4, 3, 4, 16, 16), decode_mask, patch_size=8)
    m = out.masking
    both = m.mask & ~decode_mask
    assert torch.equal(m.error_mask, both) and torch.equal(m.scored_mask, both)
    assert torch.equal(out.decoder_masking.mask, decode_mask)
    assert out.decoder_masking.num_visible == 4 and out.pred.shape[1] == 4
    if term == "sampling":
        want = sampling_loss(m.probs, both, out.token_error)
        unscored = sampling_loss(m.probs, m.mask, out.token_error)  # zeros counted as errors
    else:
        want = error_prediction_loss(m.probs, both, out.token_error)
        unscored = error_prediction_loss(m.probs, m.mask, out.token_error)
    torch.testing.assert_close(out.sampling_loss, want)
    assert not torch.allclose(want, unscored)
    torch.testing.assert_close(out.loss, out.reconstruction_loss + 0.5 * want)
    assert (out.token_error[~both] == 0).all()


def test_sampled_encoder_mask_and_running_cell_decoder_mask_train_together():
    torch.manual_seed(0)
    model = toy()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    before = C.snapshot(model)
    enc = vm.MaskingGenerator((2, 2, 2), 0.75, strategy="adaptive", shape="frames")  # a placeholder
    loader = [
        (torch.randn(2, 3, 4, 16, 16), torch.as_tensor(np.stack([enc(), enc()])), cell_masks(2).view(2, 2, 4).float())
        for _ in range(2)
    ]
    stats = vm.train_one_epoch(model, loader, opt, "cpu", 0, None, patch_size=8)
    assert np.isfinite(stats["loss_rec"]) and np.isfinite(stats["loss_sampling"])
    assert C.changed(before, model, "mask_sampler.") > 0
