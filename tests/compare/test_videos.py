"""What the user's videos are told: short, still, truncated and non-video files named for what they are, and
which videos are held out (``--held-out``; a single video's held-out clips overlap its training content)."""

import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")
av = pytest.importorskip("av")

from adamask.cli import main  # noqa: E402
from adamask.compare.data import VideoReadError, load_video_clips, read_video  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_too_short_at_stride_one_does_not_suggest_a_lower_stride(tmp_path, write_video, moving_square):
    short = write_video(tmp_path / "short.mp4", moving_square(5, 32, 32), "mpeg4")
    with pytest.raises(VideoReadError) as e:
        read_video(short, num_frames=8, stride=1, img_size=32)
    assert "only 5 frames" in str(e.value) and "stride" in str(e.value) and "--stride" not in str(e.value)
    with pytest.raises(VideoReadError, match="lower --stride .at stride 1 it needs 8."):
        read_video(short, num_frames=8, stride=2, img_size=32)


def test_a_still_image_is_called_a_still_image(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "photo.png")
    with pytest.raises(VideoReadError, match=r"photo.png: a still image \(1 frame\), not a video"):
        read_video(tmp_path / "photo.png", num_frames=8, stride=1, img_size=32)


def test_truncated_files_are_called_truncated(tmp_path, write_video, moving_square):
    for name, codec in (("clip.avi", "mjpeg"), ("clip.mp4", "mpeg4")):
        full = write_video(tmp_path / name, moving_square(40, 48, 48), codec)
        cut = tmp_path / f"cut_{name}"
        cut.write_bytes(full.read_bytes()[: len(full.read_bytes()) // 3])
        with pytest.raises(VideoReadError, match=f"cut_{name}: .*truncated"):
            read_video(cut, num_frames=16, stride=2, img_size=32)


def test_non_video_files_in_a_folder_are_named(tmp_path, write_video, moving_square):
    write_video(tmp_path / "v" / "one.mp4", moving_square(24, 32, 40), "mpeg4")
    (tmp_path / "v" / "frame.jpg").write_bytes(b"jpeg")
    (tmp_path / "v" / ".DS_Store").write_bytes(b"x")
    messages = []
    _, skipped = load_video_clips(tmp_path / "v", num_frames=8, stride=2, img_size=32, log=messages.append)
    assert len(skipped) == 1 and "frame.jpg: not a video file" in skipped[0]
    assert messages == [f"skipping {skipped[0]}"]
    (tmp_path / "v" / "one.mp4").unlink()
    with pytest.raises(ValueError, match=r"no video files .* found in .* \(only other files: frame.jpg\)"):
        load_video_clips(tmp_path / "v", log=messages.append)


@pytest.fixture(scope="module")
def videos(tmp_path_factory, write_video, moving_square):
    root = tmp_path_factory.mktemp("videos")
    for j, name in enumerate(("a", "b", "c")):
        write_video(root / f"{name}.mp4", moving_square(30, 32, 32, step=1 + j), "mpeg4")
    return root


def compare(videos, out, *extra):
    return [
        "compare",
        "--quick",
        "--videos",
        *videos,
        "--stride",
        "2",
        "--out",
        str(out),
        "--strategies",
        "random",
        "--steps",
        "2",
        "--no-figures",
        "--quiet",
        *extra,
    ]


def test_held_out_names_the_evaluation_videos(videos, tmp_path):
    out = tmp_path / "run"
    assert main(compare([str(videos)], out, "--held-out", "a", "c.mp4")) == 0
    res = json.loads((out / "results.json").read_text())
    assert [p.rsplit("/", 1)[-1] for p in res["data"]["held_out"]] == ["a.mp4", "c.mp4"]
    assert res["data"]["train_clips"] == 2 and res["data"]["test_clips"] == 4
    assert res["config"]["held_out"] == ["a", "c.mp4"]


def test_held_out_errors(videos, tmp_path, capsys):
    assert main(compare([str(videos)], tmp_path / "r", "--held-out", "zzz")) == 2
    assert "--held-out 'zzz' names none of the videos (a.mp4, b.mp4, c.mp4)" in capsys.readouterr().err
    assert main(compare([str(videos)], tmp_path / "r", "--held-out", "a", "b", "c")) == 2
    assert "holds out every video (3)" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_single_video_warns_that_held_out_clips_overlap(videos, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(compare([str(videos / "a.mp4")], out)[:-1] + ["--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "warning: a single video: the held-out clips are other clips of the same video" in captured.err
    res = json.loads((out / "results.json").read_text())
    assert "overlap its training content" in res["data"]["note"] and res["data"]["held_out"] == []
    assert "Note on the data: a single video" in (out / "results.md").read_text()


def test_a_short_clip_is_told_what_was_extracted_and_what_a_run_needs(tmp_path, write_video, moving_square):
    """One 40-frame video: without --clips-per-video the run takes as many clips as it holds (up to 32, not 4),
    and says what it extracted and that it is too few; an explicit --clips-per-video wins."""
    from adamask.compare import CompareConfig, load_data
    from adamask.compare.data import clips_per_video_for, with_video_defaults

    video = write_video(tmp_path / "one.mp4", moving_square(40, 32, 32), "mpeg4")
    assert [clips_per_video_for(n) for n in (1, 8, 16, 64, 1000)] == [32, 32, 16, 4, 4]
    cfg = CompareConfig(videos=[str(video)], num_frames=8, stride=2, img_size=32)
    assert with_video_defaults(cfg).clips_per_video == 32 and with_video_defaults(cfg).seeds == cfg.seeds
    log = []
    clips = load_data(cfg, log.append)
    assert len(clips.train) + len(clips.test) == 40 - 15 + 1 == 26  # one clip per start frame
    advice = clips.description["advice"]
    assert advice[0].startswith("extracted 26 clips of 8 frames at stride 2 (each spans 15 frames), 32x32 px, from 1")
    assert "20 to pretrain on, 6 held out" in advice[0]  # every 4th clip
    assert any("too few for the comparison to mean much" in a for a in advice)
    assert any("--img-size" in a for a in advice)
    assert [f"note: {a}" for a in advice] == [m for m in log if m.startswith("note: ")]
    explicit = load_data(CompareConfig(videos=[str(video)], num_frames=8, stride=2, img_size=32, clips_per_video=3))
    assert len(explicit.train) + len(explicit.test) == 3


def test_videos_with_class_folders_get_the_fine_tuning_probe_and_the_advice(tmp_path, write_video, moving_square):
    for name, step in (("left", 1), ("right", 3)):
        for k in range(2):
            write_video(tmp_path / "v" / name / f"{name}{k}.mp4", moving_square(24, 32, 32, step=step + k), "mpeg4")
    out = tmp_path / "run"
    assert main(compare([str(tmp_path / "v")], out, "--finetune", "2", "--seeds", "2")) == 0
    res = json.loads((out / "results.json").read_text())
    (entry,) = res["strategies"].values()
    r = entry["runs"][1]
    assert len(r["probe"]["finetune"]["accuracies"]) == 2 and res["data"]["probe"]["label"] == "class folder"
    assert res["untrained_probe"]["runs"][1]["finetune"]["seeds"] == r["probe"]["finetune"]["seeds"]
    md = (out / "results.md").read_text()
    assert "Note on the data: extracted 8 clips" in md and "class(es) left have none held out" in md
