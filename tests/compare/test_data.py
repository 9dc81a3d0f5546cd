"""Embedded dataset ground truth, motion energy and video reading with PyAV on small real files."""

import numpy as np
import pytest
import torch

from adamask.compare.config import CompareConfig
from adamask.compare.data import (
    DIRECTIONS,
    SyntheticDigitClips,
    VideoReadError,
    embedded_options,
    find_videos,
    load_video_clips,
    motion_energy,
    read_video,
    render_clip,
    token_ground_truth,
)
from adamask.compare.evaluate import knn_probe

av = pytest.importorskip("av")


# ---------------------------------------------------------------------------------------------
# ground truth on constructed cases


def test_token_ground_truth_single_pixel():
    alpha = torch.zeros(4, 16, 16)
    alpha[1, 9, 3] = 1.0  # frame 1 -> slice 0; row 9 -> h' 1; col 3 -> w' 0
    gt = token_ground_truth(alpha, (2, 8, 8))
    assert gt.shape == (8,) and gt.dtype == torch.bool
    assert gt.nonzero().flatten().tolist() == [0 * 4 + 1 * 2 + 0]


def test_token_ground_truth_threshold():
    alpha = torch.zeros(2, 8, 8)
    alpha[0, 0, 0] = 0.2
    assert not token_ground_truth(alpha, (2, 8, 8)).any()
    alpha[1, 7, 7] = 0.3
    assert token_ground_truth(alpha, (2, 8, 8)).tolist() == [True]


def test_render_clip_and_ground_truth_of_a_moving_block():
    bg = np.zeros((16, 16, 3), np.float32)
    sprite = np.ones((4, 4), np.float32)
    positions = np.array([[0, 0], [0, 4], [8, 8], [12, 12]])  # (y, x) per frame
    frames, alpha = render_clip(bg, sprite, (1.0, 0.0, 0.0), positions)
    assert frames.shape == (4, 16, 16, 3) and alpha.shape == (4, 16, 16)
    assert alpha.sum() == 4 * 16
    assert frames[1, 0:4, 4:8, 0].min() == 1.0 and frames[1, 0:4, 4:8, 1:].max() == 0.0
    gt = token_ground_truth(torch.from_numpy(alpha), (2, 4, 4)).view(2, 4, 4)
    expected = torch.zeros(2, 4, 4, dtype=torch.bool)
    expected[0, 0, 0] = expected[0, 0, 1] = True  # frames 0-1: blocks at (0,0) and (0,1)
    expected[1, 2, 2] = expected[1, 3, 3] = True  # frames 2-3: blocks at (2,2) and (3,3)
    assert torch.equal(gt, expected)


def test_render_clip_clips_at_the_border():
    frames, alpha = render_clip(
        np.zeros((8, 8, 3), np.float32), np.ones((4, 4), np.float32), (1, 1, 1), np.array([[-2, 6]])
    )
    assert alpha[0].sum() == 2 * 2 and alpha[0, 0:2, 6:8].min() == 1.0


def test_synthetic_clips_are_deterministic_and_consistent():
    ds = SyntheticDigitClips(6, num_frames=8, img_size=32, tubelet=(2, 8, 8), sprite_size=8, seed=3)
    a, b = (
        ds.sample(2),
        SyntheticDigitClips(6, num_frames=8, img_size=32, tubelet=(2, 8, 8), sprite_size=8, seed=3).sample(2),
    )
    assert torch.equal(a["video"], b["video"]) and torch.equal(a["foreground"], b["foreground"])
    assert not torch.equal(a["video"], ds.sample(3)["video"])
    other_seed = SyntheticDigitClips(6, num_frames=8, img_size=32, tubelet=(2, 8, 8), sprite_size=8, seed=4)
    assert not torch.equal(a["video"], other_seed.sample(2)["video"])
    cs = ds.clipset()
    assert cs.videos.shape == (6, 3, 8, 32, 32) and cs.foreground.shape == (6, 4 * 4 * 4)
    assert 0.0 <= float(cs.videos.min()) and float(cs.videos.max()) <= 1.0
    assert cs.labels.min() >= 0 and cs.labels.max() <= 9
    for i in range(6):
        s = ds.sample(i)
        # the ground truth is exactly the tokens the digit's strokes touch, and is never empty
        assert torch.equal(s["foreground"], token_ground_truth(s["alpha"], (2, 8, 8)))
        assert s["foreground"].any()
        # every foreground token lies inside the sprite's bounding boxes over its frames
        box = torch.zeros(8, 32, 32)
        for t, (y, x) in enumerate(s["positions"]):
            box[t, max(y, 0) : y + 8, max(x, 0) : x + 8] = 1
        assert not (s["foreground"] & ~token_ground_truth(box, (2, 8, 8))).any()
        # background is static: outside the sprite, frames are identical
        still = s["alpha"].amax(0) == 0
        v = s["video"]
        assert torch.equal(v[:, 0][:, still], v[:, -1][:, still])


def test_the_direction_label_is_the_motion_each_clip_shows():
    """The digit moves in a straight line and stays whole in every frame (no bounce, no exit): the direction of
    its centroid's track from the first to the last frame is the label, within half a sector, in every clip."""
    for kw in (embedded_options(CompareConfig()), dict(num_frames=16, img_size=64, sprite_size=16)):
        ds = SyntheticDigitClips(64, **kw)
        for i in range(len(ds)):
            s = ds.sample(i)
            alpha = s["alpha"].double()
            ink = alpha.sum((1, 2))
            assert torch.allclose(ink, ink[0].expand_as(ink))  # the whole digit in every frame
            ys, xs = torch.meshgrid(torch.arange(alpha.shape[1]), torch.arange(alpha.shape[2]), indexing="ij")
            track = torch.stack([(alpha * ys).sum((1, 2)), (alpha * xs).sum((1, 2))], 1) / ink[:, None]  # (T, 2)
            dy, dx = (track[-1] - track[0]).tolist()
            angle = np.degrees(np.arctan2(dy, dx)) % 360
            expected = 360 / DIRECTIONS * s["direction"]
            assert min(abs(angle - expected), 360 - abs(angle - expected)) < 360 / DIRECTIONS / 2
            along = (track - track[0]) @ torch.tensor([dy, dx], dtype=torch.float64) / np.hypot(dy, dx)
            assert bool((along[1:] >= along[:-1] - 1.0).all())  # never turns back (1 px of rounding)
            assert np.hypot(dy, dx) >= 0.5 * (kw["img_size"] - kw["sprite_size"]) / 2  # a visible motion


def test_each_embedded_label_is_read_from_the_raw_pixels():
    """A label no pixel shows can rank no encoder: a k-NN probe of the raw pixels of the default run's data (512
    clips to fit on, 256 to score, as the probes use them) reads each label well above chance. Measured:
    digit 0.277 (chance 0.113), direction 0.957 (chance 0.148)."""
    ds = SyntheticDigitClips(768, **embedded_options(CompareConfig()))
    samples = [ds.sample(i) for i in range(len(ds))]
    x = torch.stack([s["video"] for s in samples]).flatten(1)
    for label, key in (("digit", "label"), ("direction", "direction")):
        y = torch.tensor([s[key] for s in samples])
        accuracy = knn_probe(x[:512], y[:512], x[512:], y[512:], k=10)
        chance = float(torch.bincount(y[512:]).max()) / 256
        print(f"{label}: raw-pixel k-NN {accuracy:.3f}, chance {chance:.3f}")
        assert accuracy > (2.0 if label == "digit" else 5.0) * chance


def test_synthetic_clips_bad_arguments():
    with pytest.raises(ValueError, match="sprite_size"):
        SyntheticDigitClips(2, img_size=16, sprite_size=16)
    with pytest.raises(ValueError, match="num_clips"):
        SyntheticDigitClips(0)
    with pytest.raises(ValueError, match="divisible"):
        SyntheticDigitClips(2, img_size=30, tubelet=(2, 8, 8))
    with pytest.raises(ValueError, match="speed.*stays inside the frame"):
        SyntheticDigitClips(2, num_frames=16, img_size=32, sprite_size=16, speed=(0.5, 2.0))
    with pytest.raises(ValueError, match="speed"):
        SyntheticDigitClips(2, speed=(1.0, 0.5))


def test_motion_energy_marks_moving_tokens_only():
    v = torch.zeros(3, 4, 16, 16)
    v[:, 2, 0:4, 12:16] = 1.0  # appears in frame 2 only (top-right token, slice 1)
    e = motion_energy(v, (2, 8, 8)).view(2, 2, 2)
    assert e[1, 0, 1] > 0 and (e.flatten().nonzero().numel() == 1)
    assert torch.all(motion_energy(torch.rand(3, 1, 8, 8).expand(3, 4, 8, 8), (2, 8, 8)) == 0)


# ---------------------------------------------------------------------------------------------
# real video files


@pytest.mark.parametrize("name,codec", [("clip.mp4", "mpeg4"), ("clip.avi", "mjpeg")])
def test_read_video_real_files(tmp_path, name, codec, write_video, moving_square):
    path = write_video(tmp_path / name, moving_square(40, 48, 64), codec)
    clips = read_video(path, num_frames=8, stride=2, img_size=32, num_clips=3)
    assert clips.shape == (3, 3, 8, 32, 32) and clips.dtype == torch.float32
    assert 0.0 <= float(clips.min()) and float(clips.max()) <= 1.0
    # the square is bright, the background dark: the frame means follow the decoded content
    assert 0.1 < float(clips.mean()) < 0.5
    e = motion_energy(clips[0], (2, 8, 8)).view(4, 4, 4)
    assert e[:, 1:3].sum() > 5 * e[:, [0, 3]].sum()  # motion lives in the rows of the square


def test_read_video_errors_name_the_file(tmp_path, write_video, moving_square):
    short = write_video(tmp_path / "short.mp4", moving_square(5, 32, 32), "mpeg4")
    with pytest.raises(VideoReadError, match="short.mp4.*only 5 frames"):
        read_video(short, num_frames=8, stride=2, img_size=32)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video" * 10)
    with pytest.raises(VideoReadError, match="broken.mp4"):
        read_video(broken, num_frames=4, stride=1, img_size=32)
    tiny = write_video(tmp_path / "tiny.avi", np.zeros((20, 8, 8, 3), np.uint8), "mjpeg")
    with pytest.raises(VideoReadError, match="tiny.avi.*8x8"):
        read_video(tiny, num_frames=4, stride=1, img_size=32)


def test_load_video_clips_skips_bad_files_with_a_message(tmp_path, write_video, moving_square):
    write_video(tmp_path / "a" / "one.mp4", moving_square(24, 32, 40), "mpeg4")
    write_video(tmp_path / "b" / "two.avi", moving_square(24, 40, 32), "mjpeg")
    (tmp_path / "b" / "bad.mp4").write_bytes(b"\x00" * 100)
    messages = []
    clips, errors = load_video_clips(
        tmp_path, num_frames=8, stride=2, img_size=32, tubelet=(2, 8, 8), clips_per_video=2, log=messages.append
    )
    assert len(clips) == 4 and clips.videos.shape == (4, 3, 8, 32, 32)
    assert clips.labels.tolist() == [0, 0, 1, 1] and clips.class_names == ["a", "b"]
    assert len(errors) == 1 and "bad.mp4" in errors[0] and "bad.mp4" in messages[0]
    assert clips.foreground.shape == (4, 64) and float(clips.foreground.min()) >= 0
    assert [p.name for p in find_videos(tmp_path)] == ["one.mp4", "bad.mp4", "two.avi"]
    with pytest.raises(ValueError, match="bad.mp4"):
        load_video_clips([tmp_path / "b" / "bad.mp4"], log=lambda s: None)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_videos(tmp_path / "nowhere")
