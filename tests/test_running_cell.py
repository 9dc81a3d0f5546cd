import pytest
import torch

import adamask
from adamask.compare.costs import step_costs
from adamask.masking import check_masking


def test_running_cell_pattern():
    s = adamask.create_masking("running_cell", grid=(4, 4, 6), mask_ratio=0.5)
    assert s.mask_ratio == 0.5 and s.num_visible == 48 and s.needs == "nothing"
    m = s.sample(8, generator=torch.Generator().manual_seed(0))
    check_masking(m, 96)
    cells = m.mask.view(8, 4, 2, 2, 3, 2).permute(0, 1, 2, 4, 3, 5).reshape(8, 4, 6, 4)  # (B, T', cell, 4 slots)
    assert (cells.sum(-1) == 2).all()  # every 2x2 cell leaves out int(4 * 0.5) = 2 positions
    assert (cells == cells[:, :, :1]).all()  # the same pattern in every cell of a slice
    # the pattern runs: each slice shifts it by one slot, so after 4 slices every slot was reconstructed
    slots = cells[:, :, 0].float()
    assert torch.equal(slots[:, 1], slots[:, 0].roll(-1, dims=-1))
    assert (slots.mean(1) == 0.5).all()
    phases = {tuple(r.tolist()) for r in slots[:, 0]}
    assert len(phases) > 1  # a random phase per clip


@pytest.mark.parametrize("ratio,kept", [(0.25, 3), (0.5, 2), (0.75, 1)])
def test_running_cell_ratios(ratio, kept):
    s = adamask.create_masking("running_cell", grid=(2, 4, 4), mask_ratio=ratio)
    assert s.num_visible == 2 * 4 * kept


def test_running_cell_errors():
    with pytest.raises(ValueError, match="even"):
        adamask.create_masking("running_cell", grid=(2, 3, 4))
    with pytest.raises(ValueError, match=r"2 x 2 cell"):
        adamask.create_masking("running_cell", grid=(2, 4, 4), mask_ratio=0.2)


def test_reference_mae_loss_is_the_mean_over_masked_and_decoded_tokens():
    torch.manual_seed(0)
    model = adamask.create_mae(
        "nano", masking="adaptive", mask_ratio=0.5, decoder_masking="running_cell", decoder_mask_ratio=0.5
    )
    video = torch.randn(3, *model.input_shape)
    out = model(video, generator=torch.Generator().manual_seed(1))
    dm = out.decoder_masking
    decoded = dm.visible_idx
    assert out.pred.shape[:2] == decoded.shape and decoded.shape[1] == model.num_tokens // 2
    targets = adamask.normalized_targets(video, model.tubelet)
    per_token = (out.pred - adamask.gather_tokens(targets, decoded)).pow(2).mean(-1)
    scored = out.masking.mask.gather(1, decoded)
    want = per_token[scored].mean()
    assert torch.allclose(out.reconstruction_loss, want, rtol=1e-5)
    assert torch.equal(out.masking.error_mask, out.masking.mask & ~dm.mask)
    assert torch.equal(out.token_error != 0, out.masking.error_mask)
    # the sampling loss averages over exactly those tokens
    want_ls = adamask.sampling_loss(out.masking.probs, out.masking.error_mask, out.token_error)
    assert torch.allclose(out.sampling_loss, want_ls)
    out.loss.backward()
    assert model.mask_sampler.head.weight.grad is not None


def test_decoder_flops_drop_with_running_cell():
    with torch.device("meta"):
        full = adamask.create_mae("small", masking="tube", mask_ratio=0.9)
        dual = adamask.create_mae(
            "small", masking="tube", mask_ratio=0.9, decoder_masking="running_cell", decoder_mask_ratio=0.5
        )
    a, b = step_costs(full)["decoder"]["gflops"], step_costs(dual)["decoder"]["gflops"]
    n, nv = full.num_tokens, full.mask_sampler.num_visible
    print(
        f"decoder GFLOP per clip: full {a:.1f}, running cell 0.5 {b:.1f} "
        f"({b / a:.2f}x; tokens {(nv + n // 2) / n:.2f}x)"
    )
    r = (nv + n // 2) / n  # the decoder sees N_v + N_d tokens instead of N: linear parts scale by r, attention by r^2
    assert r**2 < b / a < r


def test_decoder_masking_arguments():
    with pytest.raises(ValueError, match="decoder_mask_ratio needs decoder_masking"):
        adamask.create_mae("nano", masking="random", decoder_mask_ratio=0.5)
    with pytest.raises(ValueError, match="needs no tokens"):
        adamask.create_mae("nano", masking="random", decoder_masking="adaptive")
