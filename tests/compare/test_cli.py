"""`adamask compare` / `adamask visualize` / `adamask costs` end to end: the files and table of a --quick run,
rerunning, user videos, bad input and the entry points."""

import json
import math
from pathlib import Path

import pytest
import torch

pytest.importorskip("matplotlib")
pytest.importorskip("av")

from adamask.cli import main  # noqa: E402
from adamask.compare import parse_strategy  # noqa: E402
from adamask.compare.figures import CURVES_SIZE, PLOT_DPI, SUMMARY_SIZE, masks_figure_size  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_quick_run_files_and_schema(quick_run, quick_labels):
    out, _ = quick_run
    res = json.loads((out / "results.json").read_text())
    assert res["schema"] == "adamask.compare/2"
    assert list(res["strategies"]) == quick_labels
    assert res["data"]["source"] == "embedded" and res["data"]["train_clips"] == 16 and res["data"]["test_clips"] == 8
    assert 0 < res["data"]["foreground_share"] < 0.6
    assert res["command"].startswith("adamask compare --quick")
    for label in quick_labels:
        entry = res["strategies"][label]
        assert entry["seeds"] == [0] and len(entry["runs"]) == 1  # --quick: one seed
        r = entry["runs"][0]
        assert r["seed"] == 0 and r["replicate"] == 0 and r["label"] == label
        assert (out / "strategies" / f"{label}.json").is_file() and (out / r["checkpoint"]).is_file()
        assert r["num_tokens"] == 64 and r["grid"] == [4, 4, 4] and r["steps"] == 6
        assert math.isfinite(r["recon_loss_own_ratio"]) and r["recon_loss_own_ratio"] > 0
        assert set(r["masked_error"]) == {"foreground", "background"} and min(r["masked_error"].values()) > 0
        assert math.isfinite(r["recon_loss_common_ratio"]) and r["common_ratio"] == 0.9
        assert math.isfinite(r["recon_loss_random_masks"])
        fa = r["foreground_allocation"]
        assert fa["n"] == 8 and 0 <= fa["mean"] <= 64
        assert 0 <= r["probe"]["knn_accuracy"] <= 1 and 0 <= r["probe"]["linear_accuracy"] <= 1
        assert r["timing"]["step_ms"] > 0 and r["memory"]["peak_mb"] > 0
        ms = r["mask_statistics"]
        assert len(ms["visible_per_time_slice"]) == 4
        assert sum(ms["visible_per_time_slice"]) == pytest.approx(r["num_visible"])
        assert 0 < ms["spatial_coverage"] <= 1
        h = r["history"]
        assert h["step"] == list(range(6)) and len(h["reconstruction_loss"]) == 6 and h["eval_step"][-1] == 6
        assert len(h["eval_allocation"]) == len(h["eval_probability_allocation"]) == len(h["eval_step"])
    runs = {k: res["strategies"][k]["runs"][0] for k in quick_labels}
    vis = {k: r["num_visible"] for k, r in runs.items()}
    assert vis == {"random_0.9": 6, "tube_0.9": 8, "frame_0.9": 16, "adaptive_0.95": 3, "every_other_test_0.5": 32}
    ad = runs["adaptive_0.95"]
    assert ad["learned"] and 0 < ad["timing"]["sampler_share"] < 1 and ad["probability_allocation"]["n"] == 8
    assert all(v is not None for v in ad["history"]["eval_probability_allocation"])
    assert runs["random_0.9"]["history"]["eval_probability_allocation"] == [None, None]
    assert runs["tube_0.9"]["mask_statistics"]["visible_per_slice_std"] == 0
    assert runs["frame_0.9"]["mask_statistics"]["spatial_coverage"] == 1.0
    probe = res["untrained_probe"]
    assert probe["seeds"] == [0] and probe["runs"][0]["knn_accuracy"] is not None and probe["label"] == "direction"
    assert res["data"]["probe"] == dict(
        label="direction", train_clips=16, test_clips=8, classes=[f"{45 * d} deg" for d in range(8)]
    )
    assert runs["random_0.9"]["probe"]["test_clips"] == 8  # the probe clips, not the 8 held-out ones by chance
    s = res["summary"]
    assert s["seeds"] == 1 and [g["reference"] for g in s["groups"]] == ["random_0.9", None, None]
    assert s["strategies"]["tube_0.9"]["vs_reference"]["foreground_allocation"]["verdict"] == "one seed"


def test_quick_run_table_and_figures(quick_run, quick_labels, png_size):
    out, _ = quick_run
    res = json.loads((out / "results.json").read_text())
    md = (out / "results.md").read_text()
    assert md.startswith("Command: `adamask compare --quick")
    for label in quick_labels[1:]:
        assert f"| {label} |" in md
    rows = [
        line for line in md.split("| untrained")[0].splitlines() if line.startswith("| ") and "mask ratio" not in line
    ]
    assert "| random_0.9 (reference) |" in md and not any("**" in line or "†" in line for line in rows)  # one seed
    assert "One seed: each cell is a single value with no interval" in md
    assert (
        "**tube_0.9** vs random_0.9 (8 vs 6 of 64 tokens visible, 1 seed; difference [95% interval]): one "
        "seed gives no interval" in md
    )
    assert "**adaptive_0.95** has no random run at its mask ratio 0.95" in md
    figs = sorted(res["figures"])
    assert figs == [
        "figures/allocation_curves.png",
        "figures/errors_clip0.png",
        "figures/errors_clip1.png",
        "figures/learning_curves.png",
        "figures/masks_clip0.png",
        "figures/masks_clip1.png",
        "figures/summary.png",
    ]
    # frames + ground truth + adaptive probabilities + one row per strategy, one column per time slice
    assert (
        png_size(out / "figures/masks_clip0.png")
        == masks_figure_size(4, 3 + len(quick_labels), heat_maps=True)
        == (468, 604)
    )
    # frames + adaptive's error map and probabilities
    assert png_size(out / "figures/errors_clip0.png") == masks_figure_size(4, 3, heat_maps=True)
    assert png_size(out / "figures/learning_curves.png") == (
        round(CURVES_SIZE[0] * PLOT_DPI),
        round(CURVES_SIZE[1] * PLOT_DPI),
    )
    assert png_size(out / "figures/summary.png") == (
        round(SUMMARY_SIZE[0] * PLOT_DPI),
        round(SUMMARY_SIZE[1] * PLOT_DPI),
    )
    assert not list(out.rglob(".*tmp*"))


def test_rerun_loads_finished_strategies(quick_run, capsys, quick_labels):
    out, argv = quick_run
    before = json.loads((out / "results.json").read_text())
    assert main([a for a in argv if a != "--quiet"] + ["--no-progress"]) == 0
    err = capsys.readouterr().err
    assert err.count("already done") == len(quick_labels)
    after = json.loads((out / "results.json").read_text())
    assert after["strategies"] == before["strategies"]


def test_bad_input_gives_clear_errors(tmp_path, capsys):
    assert main(["compare", "--quick", "--out", str(tmp_path / "a"), "--strategies", "nosuch:0.9"]) == 2
    assert "unknown masking strategy 'nosuch'" in capsys.readouterr().err
    assert main(["compare", "--quick", "--out", str(tmp_path / "a"), "--strategies", "random:1.5"]) == 2
    assert "random:1.5" in capsys.readouterr().err
    assert main(["compare", "--quick", "--out", str(tmp_path / "a"), "--common-ratio", "0"]) == 2
    assert "common_ratio" in capsys.readouterr().err
    assert main(["compare", "--quick", "--out", str(tmp_path / "a"), "--videos", str(tmp_path / "none")]) == 2
    assert "none" in capsys.readouterr().err
    assert main(["visualize", str(tmp_path / "v.mp4"), "--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err
    with pytest.raises(ValueError, match="mask ratio"):
        parse_strategy("tube:abc")


def test_other_configuration_in_same_folder_is_refused(quick_run, capsys):
    out, _ = quick_run
    assert main(["compare", "--quick", "--out", str(out), "--quiet", "--steps", "7"]) == 2
    assert "different configuration" in capsys.readouterr().err


def test_user_videos_end_to_end_and_visualize(tmp_path, capsys, write_video, moving_square, png_size):
    for cls, codec, ext in (("left", "mpeg4", "mp4"), ("right", "mjpeg", "avi")):
        for j in range(2):
            v = moving_square(30, 40, 48, step=2 + j)
            write_video(tmp_path / "videos" / cls / f"{cls}{j}.{ext}", v[:, :, ::-1] if cls == "right" else v, codec)
    (tmp_path / "videos" / "left" / "broken.mp4").write_bytes(b"garbage" * 50)
    write_video(tmp_path / "videos" / "right" / "short.avi", moving_square(6, 32, 32), "mjpeg")
    out = tmp_path / "run"
    argv = [
        "compare",
        "--quick",
        "--videos",
        str(tmp_path / "videos"),
        "--stride",
        "2",
        "--out",
        str(out),
        "--strategies",
        "random:0.9",
        "adaptive:0.9",
        "--no-progress",
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "broken.mp4" in err and "short.avi" in err
    res = json.loads((out / "results.json").read_text())
    d = res["data"]
    assert d["source"] == "videos" and d["classes"] == ["left", "right"] and len(d["files"]) == 4
    assert len(d["skipped_files"]) == 2 and any("only 6 frames" in e for e in d["skipped_files"])
    assert d["train_clips"] + d["test_clips"] == 8
    r = res["strategies"]["adaptive_0.9"]["runs"][0]
    assert r["probe"]["knn_accuracy"] is not None and math.isfinite(r["foreground_allocation"]["mean"])
    assert res["data"]["probe"]["label"] == "class folder" and r["probe"]["test_clips"] == d["test_clips"]
    # 40 x 48 frames, cropped to 32 x 32: each panel shows the whole frame at 40:48 around the crop
    assert png_size(out / "figures" / "masks_clip0.png") == masks_figure_size(4, 4, (32, 38), heat_maps=True)

    png = tmp_path / "vis" / "left0.png"
    video = tmp_path / "videos" / "left" / "left0.mp4"
    assert (
        main(
            [
                "visualize",
                str(video),
                "--checkpoint",
                str(out / "checkpoints" / "adaptive_0.9.pt"),
                "--out",
                str(png),
                "--stride",
                "2",
                "--gif",
            ]
        )
        == 0
    )
    assert png_size(png) == masks_figure_size(4, 4, (32, 38), heat_maps=True)  # frames, P, error map, sampled mask
    from PIL import Image

    with Image.open(png.with_suffix(".gif")) as im:
        assert im.n_frames == 8
    assert "foreground allocation" in capsys.readouterr().out


def test_python_dash_m_entry_point(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**__import__("os").environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-m", "adamask", "compare", "--list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 0 and {"random", "tube", "frame", "adaptive"} <= set(out.stdout.split())
    bad = subprocess.run(
        [sys.executable, "-m", "adamask", "compare", "--quick", "--strategies", "nosuch"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert bad.returncode == 2 and "unknown masking strategy 'nosuch'" in bad.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is missing")
def test_cuda_requested_without_cuda(tmp_path, capsys):
    assert main(["compare", "--quick", "--out", str(tmp_path / "c"), "--device", "cuda", "--quiet"]) == 2
    assert "cuda" in capsys.readouterr().err


def test_costs_subcommand_prints_the_cost_table(capsys):
    assert main(["costs", "--size", "tiny"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| config | N_v | tokenizer GFLOP | sampler GFLOP |")
    assert [r.split(" | ")[0] for r in lines[2:5]] == ["| random 0.90", "| tube 0.90", "| adaptive 0.95, paper block"]
    assert "| tube 0.90 | 8 |" in lines[3] and lines[3].endswith("| 1.00x |")
    labels = [r.split(" | ")[0][2:] for r in lines[2:] if r.startswith("| ")]
    assert labels[-5:] == [
        f"{c} + running cell 0.5"
        for c in ("random 0.90", "tube 0.90", "adaptive 0.95, paper block", "adaptive 0.95, attention, width 24, "
                  "pool 1x2x2", "motion 0.95")
    ]  # fmt: skip
    assert lines[-1].startswith("moonshot (size tiny): adaptive 0.95, attention, width 24, pool 1x2x2 + running cell")
    assert lines[-1].endswith("the goal (<= 0.55x) is judged at paper scale: --size base")
