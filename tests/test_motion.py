import math

import pytest
import torch

import adamask
from adamask.compare.data import SyntheticDigitClips, normalize_video
from adamask.compare.measures import foreground_allocation
from adamask.motion import pixel_motion, token_motion


def moving_token_clip(b=2, t=4, h=4, w=4, d=8, seed=0):
    """Static random tokens, except one spatial position per clip whose embedding changes every slice."""
    g = torch.Generator().manual_seed(seed)
    static = torch.randn(b, 1, h * w, d, generator=g).expand(b, t, h * w, d).clone()
    moving = torch.tensor([5, 10][:b])
    static[torch.arange(b), :, moving] = torch.randn(b, t, d, generator=g) * 3
    return static.reshape(b, t * h * w, d), moving


@pytest.mark.parametrize("distance", ["l2", "cosine"])
def test_token_motion_finds_the_changing_position(distance):
    tokens, moving = moving_token_clip()
    score = token_motion(tokens, (4, 4, 4), distance).view(2, 4, 16)
    assert (score[:, 1:].argmax(-1) == moving[:, None]).all()
    assert score[:, 1:].sum(-1).sub(score[torch.arange(2), 1:, moving]).abs().max() < 1e-4  # nothing else changes
    assert torch.equal(score[:, 0], score[:, 1])  # first_slice="next": slice 0 copies slice 1
    assert (token_motion(tokens, (4, 4, 4), distance, "zero").view(2, 4, 16)[:, 0] == 0).all()
    mean = token_motion(tokens, (4, 4, 4), distance, "mean").view(2, 4, 16)
    assert torch.allclose(mean[:, 0], score[:, 1:].mean((1, 2))[:, None].expand(2, 16))


def test_zero_temperature_shows_the_highest_scores():
    tokens, moving = moving_token_clip()
    s = adamask.create_masking("motion", grid=(4, 4, 4), mask_ratio=0.9375, temperature=0.0)  # 4 visible
    m = s(tokens)
    assert s.num_visible == 4
    assert (m.visible_idx.remainder(16) == moving[:, None]).all()  # the moving position in every slice
    assert torch.equal(m.mask, s(tokens).mask)  # deterministic


def test_large_temperature_is_uniform():
    """Inclusion frequency of every token over many draws ~ N_v / N (chi-square-like bound)."""
    tokens, _ = moving_token_clip(b=1)
    s = adamask.create_masking("motion", grid=(4, 4, 4), mask_ratio=0.75, temperature=1e6)
    draws = 4000
    m = s(tokens.expand(draws, -1, -1), generator=torch.Generator().manual_seed(0))
    freq = (~m.mask).float().mean(0)
    p = 16 / 64
    se = math.sqrt(p * (1 - p) / draws)
    assert (freq - p).abs().max() < 5 * se
    chi2 = ((freq - p) ** 2 / (p * (1 - p) / draws)).sum().item()
    assert chi2 < 64 + 5 * math.sqrt(2 * 64)  # 63 degrees of freedom, ~5 sigma


def test_embedded_data_allocation_without_training():
    """Motion masking finds the moving digits with zero training: allocation far above 1 (uniform)."""
    torch.manual_seed(0)
    clips = SyntheticDigitClips(
        48, num_frames=16, img_size=64, tubelet=(2, 8, 8), sprite_size=16, seed=0, background_contrast=0.3
    ).clipset()
    model = adamask.create_mae("tiny", masking="motion", mask_ratio=0.95, img_size=64, num_frames=16, tubelet=(2, 8, 8))
    with torch.no_grad():
        tokens = model.tokenize(normalize_video(clips.videos))
    alloc = {}
    for temp in (0.5, 1e6):
        model.mask_sampler.temperature = temp
        gen = torch.Generator().manual_seed(0)
        alloc[temp] = (
            torch.stack(
                [foreground_allocation(model.sample_masking(tokens, gen).mask, clips.foreground) for _ in range(10)]
            )
            .nanmean()
            .item()
        )
    pixels = adamask.create_masking("motion_pixels", grid=model.grid, mask_ratio=0.95, tubelet=(2, 8, 8))
    alloc["pixels"] = foreground_allocation(pixels(clips.videos).mask, clips.foreground).nanmean().item()
    print(f"motion foreground allocation, untrained: {alloc}")
    assert alloc[0.5] > 5 and alloc["pixels"] > 5 and abs(alloc[1e6] - 1) < 0.1


def test_pixel_motion_of_a_moving_square():
    video = torch.zeros(1, 3, 8, 32, 32)
    for f in range(8):
        video[:, :, f, 8:16, 4 * f : 4 * f + 8] = 1.0  # moves right 4 px per frame
    score = pixel_motion(video, (2, 8, 8)).view(1, 4, 4, 4)
    assert (score[0, :, :1].sum() + score[0, :, 2:].sum()) == 0  # only the square's row changes
    assert (score[0, 1:, 1].sum(-1) > 0).all()
    s = adamask.create_masking("motion_pixels", grid=(4, 4, 4), mask_ratio=0.75, tubelet=(2, 8, 8), temperature=0.0)
    m = s(video[0])  # one clip (C, T, H, W) works too
    assert m.mask.shape == (1, 64) and (m.visible_idx.remainder(16) // 4 == 1).float().mean() > 0.5
    with pytest.raises(ValueError, match="grid"):
        s(torch.zeros(1, 3, 8, 32, 16))
    with pytest.raises(TypeError, match="video"):
        s.sample(2)


def test_motion_options_are_checked():
    for kw, match in (
        (dict(distance="l1"), "distance"),
        (dict(first_slice="prev"), "first_slice"),
        (dict(temperature=-1.0), "temperature"),
    ):
        with pytest.raises(ValueError, match=match):
            adamask.create_masking("motion", grid=(4, 4, 4), **kw)
    s = adamask.create_masking("motion", grid=(4, 4, 4))
    assert not adamask.is_learned(s) and s.needs == "tokens" and s.mask_ratio == 0.95
    with pytest.raises(TypeError, match="tokens"):
        s.sample(2)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), 1e38])
@pytest.mark.parametrize("temperature", [0.0, 0.5])
def test_one_bad_token_value_moves_only_its_own_scores(bad, temperature):
    """A non-finite (or overflowing) value in one token of time slice 1 changes three scores: its own, the next
    slice's at its position and slice 0's copy of its own (first_slice="next"); the clip's probabilities stay
    finite and its other draws stay as they were."""
    s = adamask.create_masking("motion", grid=(4, 4, 4), mask_ratio=0.75, temperature=temperature)
    tokens = torch.randn(2, 64, 8, generator=torch.Generator().manual_seed(0))
    broken = tokens.clone()
    broken[0, 20, 3] = bad
    clean = s(tokens, generator=torch.Generator().manual_seed(1))
    got = s(broken, generator=torch.Generator().manual_seed(1))
    assert torch.isfinite(got.probs).all() and torch.allclose(got.probs.sum(1), torch.ones(2))
    moved = (token_motion(broken, (4, 4, 4)) != token_motion(tokens, (4, 4, 4))).sum().item()
    assert moved <= 3
    shared = (~clean.mask[0] & ~got.mask[0]).sum().item()
    assert shared >= clean.num_visible - 3
    assert torch.equal(clean.mask[1], got.mask[1])


def test_one_bad_pixel_moves_only_its_own_scores():
    s = adamask.create_masking("motion_pixels", grid=(4, 4, 4), mask_ratio=0.75, tubelet=(2, 8, 8), temperature=0.0)
    video = torch.rand(1, 3, 8, 32, 32, generator=torch.Generator().manual_seed(0))
    broken = video.clone()
    broken[0, 1, 3, 5, 5] = float("nan")
    clean, got = s(video), s(broken)
    assert torch.isfinite(got.probs).all()
    assert (pixel_motion(broken, (2, 8, 8)) != pixel_motion(video, (2, 8, 8))).sum().item() <= 3
    assert (~clean.mask & ~got.mask).sum().item() >= clean.num_visible - 3


@pytest.mark.parametrize("name", ["motion", "motion_pixels"])
def test_one_time_slice_is_refused_naming_the_grid(name):
    with pytest.raises(ValueError, match=r"at least 2 time slices.*grid \(1, 4, 4\)"):
        adamask.create_masking(name, grid=(1, 4, 4), mask_ratio=0.5)
    with pytest.raises(ValueError, match=r"at least 2 time slices.*grid \(1, 4, 4\)"):
        token_motion(torch.randn(1, 16, 8), (1, 4, 4)) if name == "motion" else pixel_motion(
            torch.rand(1, 3, 2, 32, 32), (2, 8, 8)
        )
