import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from adamask.tokens import normalized_targets, patchify, token_grid, token_mse, unpatchify


@given(
    b=st.integers(1, 2),
    c=st.integers(1, 3),
    grid=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    tub=st.tuples(st.integers(1, 2), st.integers(1, 4), st.integers(1, 4)),
    layout=st.sampled_from(["bcthw", "btchw"]),
)
def test_roundtrip(b, c, grid, tub, layout):
    t, h, w = (g * p for g, p in zip(grid, tub, strict=True))
    shape = (b, c, t, h, w) if layout == "bcthw" else (b, t, c, h, w)
    video = torch.randn(shape)
    patches = patchify(video, tub, layout)
    assert patches.shape == (b, grid[0] * grid[1] * grid[2], tub[0] * tub[1] * tub[2] * c)
    assert torch.equal(unpatchify(patches, grid, tub, layout), video)


def test_token_order_is_thw_and_patch_order_is_p0p1p2c():
    video = torch.arange(2 * 4 * 4 * 4, dtype=torch.float32).view(1, 2, 4, 4, 4)  # B C T H W
    p = patchify(video, (2, 2, 2))
    assert p.shape == (1, 8, 16)
    # token 1 = (t=0, h=0, w=1); its first element is pixel (c=0, t=0, y=0, x=2)
    assert p[0, 1, 0] == video[0, 0, 0, 0, 2]
    # token 2 = (t=0, h=1, w=0); element 1 is channel 1 of the same pixel
    assert p[0, 2, 0] == video[0, 0, 0, 2, 0] and p[0, 2, 1] == video[0, 1, 0, 2, 0]
    # token 4 = (t=1, ...): frames 2-3
    assert p[0, 4, 0] == video[0, 0, 2, 0, 0]


def test_normalized_targets_match_manual_per_channel_stats():
    g = torch.Generator().manual_seed(0)
    video = torch.rand(2, 3, 4, 8, 8, generator=g) * 5 + 2
    tgt = normalized_targets(video, (2, 4, 4))
    assert tgt.shape == (2, 8, 2 * 4 * 4 * 3) and tgt.dtype == torch.float32
    # token 5 = (t=1, h=0, w=1) of sample 1, channel 2: its pixels, normalised by mean and unbiased std
    cube = video[1, 2, 2:4, 0:4, 4:8].reshape(-1)
    expected = (cube - cube.mean()) / (cube.std(unbiased=True) + 1e-6)
    assert torch.allclose(tgt[1, 5].view(32, 3)[:, 2], expected, atol=1e-5)


def test_btchw_layout_targets_equal_bcthw():
    video = torch.rand(1, 3, 4, 8, 8)
    a = normalized_targets(video, (2, 4, 4))
    b = normalized_targets(video.transpose(1, 2), (2, 4, 4), layout="btchw")
    assert torch.allclose(a, b)


def test_token_mse():
    pred, tgt = torch.zeros(2, 3, 4), torch.ones(2, 3, 4) * 2
    assert torch.equal(token_mse(pred, tgt), torch.full((2, 3), 4.0))
    with pytest.raises(ValueError, match="same shape"):
        token_mse(pred, tgt[:, :2])


def test_errors():
    with pytest.raises(ValueError, match="not divisible"):
        patchify(torch.zeros(1, 3, 5, 8, 8), (2, 4, 4))
    with pytest.raises(ValueError, match="shape"):
        patchify(torch.zeros(3, 4, 8, 8), (2, 4, 4))
    with pytest.raises(ValueError, match="layout"):
        patchify(torch.zeros(1, 3, 4, 8, 8), (2, 4, 4), layout="bthwc")
    with pytest.raises(TypeError, match="video"):
        normalized_targets([1, 2, 3])
    with pytest.raises(ValueError, match="tubelet"):
        token_grid((1, 3, 4, 8, 8), (2, 4))
    assert token_grid((1, 3, 16, 224, 224), (2, 16, 16)) == (8, 14, 14)
