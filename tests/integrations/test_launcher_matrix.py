"""The VideoMAE launcher on the CPU against the real checkouts (ADAMASK_VIDEOMAE_ROOT, ADAMASK_VIDEOMAEV2_ROOT;
skipped without them): v1 and v2 x every kind of mask type, each a run of their own script through
``python -m adamask.integrations.videomae`` (`main`) on a tiny fake dataset: masks drawn by their loader
(tube, random, frame: their training loop), by the wrapped model from the tokens (adaptive, learned;
motion) or from the clip (motion_pixels: adamask's loop). The cells of one version run one after the
other in one process (their script imported once); each cell's wall time is reported."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import _upstream_helpers as H
import _videomae_checks as C
import pytest
import torch

MASK_TYPES = ("tube", "random", "frame", "adaptive", "motion", "motion_pixels")
LEARNED = {"adaptive"}
IN_MODEL = {"adaptive", "motion", "motion_pixels"}

DRIVER = """
import json, sys, time
from adamask.integrations.videomae import main
cells = json.loads(sys.argv[1])
times = {}
for name, argv in cells.items():
    t0 = time.perf_counter()
    main(argv)
    times[name] = time.perf_counter() - t0
    print("CELL", name, round(times[name], 2), flush=True)
print("TIMES " + json.dumps(times), flush=True)
"""

VERSIONS = {
    # env, marker, what, their arguments for 2 steps (4 clips, batch 2) of the tiny model
    "v1": ("ADAMASK_VIDEOMAE_ROOT", "modeling_pretrain.py", "MCG-NJU/VideoMAE", ["--num_workers", "0"]),
    "v2": (
        "ADAMASK_VIDEOMAEV2_ROOT",
        "models/modeling_pretrain.py",
        "OpenGVLab/VideoMAEv2",
        ["--num_frames", "4", "--sampling_rate", "2", "--num_workers", "1"],  # their loader keeps its workers
    ),
}


def their_arguments(version: str, data: Path, out: Path, mask_type: str) -> list:
    csv = data / ("train.csv" if version == "v1" else "train_v2.csv")
    extra = ["--data_root", str(data)] if version == "v2" else []
    return [
        *extra,
        "--data_path",
        str(csv),
        "--mask_type",
        mask_type,
        "--mask_ratio",
        "0.75",
        "--model",
        "pretrain_videomae_tiny_patch8_32",
        "--input_size",
        "32",
        *VERSIONS[version][3],
        "--batch_size",
        "2",
        "--epochs",
        "1",
        "--warmup_epochs",
        "0",
        "--device",
        "cpu",
        "--output_dir",
        str(out),
        "--no_auto_resume",
        "--save_ckpt_freq",
        "1",
    ]


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_every_mask_type_runs_their_script_on_the_cpu(version, tmp_path, monkeypatch):
    env, marker, what, _ = VERSIONS[version]
    root = H.checkout(env, marker, what)
    if version == "v1" and (root / "models" / "modeling_pretrain.py").is_file():
        pytest.skip(f"{env} points at a VideoMAEv2 checkout")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # the tiny model's registration
    data = tmp_path / "data"
    clips = H.make_clips(data)
    (data / "train.csv").write_text("".join(f"{c} 0\n" for c in clips))
    (data / "train_v2.csv").write_text("".join(f"{c.name} 0 -1\n" for c in clips))
    ours = ["--repo", str(root), "--import", "_tiny_videomae", *(["--no-compile"] if version == "v2" else [])]
    cells = {m: [*ours, "--", *their_arguments(version, data, tmp_path / m, m)] for m in MASK_TYPES}
    r = H.run_python(["-c", DRIVER], [json.dumps(cells)], cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    times = json.loads(next(line for line in r.stdout.splitlines() if line.startswith("TIMES "))[6:])
    assert list(times) == list(MASK_TYPES)
    for mask_type in MASK_TYPES:
        log = json.loads((tmp_path / mask_type / "log.txt").read_text().splitlines()[-1])
        assert math.isfinite(log["train_loss"]) and log["epoch"] == 0, (mask_type, log)
        assert log["train_loss_scale"] == 1.0, (mask_type, log)  # their scaler, disabled without CUDA
        assert ("train_loss_sampling" in log) == (mask_type in LEARNED), (mask_type, log)
        state = torch.load(tmp_path / mask_type / "checkpoint-0.pth", map_location="cpu", weights_only=False)["model"]
        assert any(k.startswith("mask_sampler.") for k in state) == (mask_type in LEARNED), mask_type
        assert (f"adamask: {mask_type} masking on pretrain_videomae_tiny_patch8_32" in r.stdout) == (
            mask_type in IN_MODEL
        )
    C.write_log(os.environ.get("ADAMASK_CHECKOUT_LOG"), dict(test=f"launcher-matrix-{version}", seconds=times))
    print(f"{version} launcher matrix, seconds per cell: {times}")
