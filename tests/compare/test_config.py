"""The comparison's configuration: strategy specs and the --sampler options."""

import pytest


def test_sampler_options_parsed_and_checked():
    from adamask.compare.options import parse_sampler_options

    opts = parse_sampler_options(["variant=attention", "width=24", "token_pool=1x2x2", "checkpoint=true"])
    assert opts == {"variant": "attention", "width": 24, "token_pool": (1, 2, 2), "checkpoint": True}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_sampler_options(["colour=red"])
    with pytest.raises(ValueError, match="width must be int"):
        parse_sampler_options(["width=wide"])


def _parsed(*argv):
    from adamask.cli import build_parser
    from adamask.compare.commands import config_from_args

    return config_from_args(build_parser().parse_args(["compare", *argv]))


def test_presets_set_the_papers_loss_and_its_background():
    """demo = the defaults; paper = normalised pixels, no baseline, lambda 1e-4, the paper's estimator on a flat
    background; paper-photo = the same on the photo at contrast 0.8; explicit options win over a preset."""
    from adamask.compare import CompareConfig

    demo, paper, photo = _parsed(), _parsed("--preset", "paper"), _parsed("--preset", "paper-photo")
    assert demo == _parsed("--preset", "demo") == CompareConfig()
    assert (demo.pixel_loss, demo.sampling_baseline, demo.background_contrast) == ("raw", "mean", 0.3)
    for cfg, contrast in ((paper, 0.0), (photo, 0.8)):
        assert (
            cfg.pixel_loss,
            cfg.sampling_baseline,
            cfg.sampling_weight,
            cfg.sampling_estimator,
            cfg.background_contrast,
        ) == ("normalized", None, 1e-4, "paper", contrast)
        changed = {k for k, v in vars(cfg).items() if v != getattr(demo, k)}
        assert changed == {"pixel_loss", "sampling_baseline", "background_contrast"}  # lambda and estimator: as demo
    assert _parsed("--preset", "paper", "--background-contrast", "0.5").background_contrast == 0.5
    assert _parsed("--preset", "paper", "--sampling-baseline", "mean").sampling_baseline == "mean"


def test_the_default_budget_and_threads():
    from adamask.compare import DEFAULT_STRATEGIES, CompareConfig

    cfg = CompareConfig()
    assert DEFAULT_STRATEGIES == (
        "random:0.9",
        "tube:0.9",
        "frame:0.9",
        "random:0.95",
        "tube:0.95",
        "motion:0.95",
        "adaptive:0.95",
        "adaptive:0.95:variant=mlp,width=24",
        "error_predictor:0.95",
    )
    assert (cfg.img_size, cfg.num_frames, cfg.tubelet, cfg.steps, cfg.seeds, cfg.threads) == (
        32,
        16,
        (2, 8, 8),
        150,
        3,
        1,
    )
    assert _parsed("--threads", "0").threads == 0 and "threads" not in cfg.identity()
    with pytest.raises(ValueError, match=r"threads must be an int in \[0, inf\], got -1"):
        CompareConfig(threads=-1).validate()


def test_a_run_uses_its_threads_and_gives_the_others_back(tmp_path):
    import json

    import torch

    from adamask.compare import CompareConfig, run_compare

    cfg = CompareConfig.quick(
        out=str(tmp_path / "run"),
        strategies=["random"],
        steps=1,
        train_clips=4,
        test_clips=2,
        probe_train_clips=4,
        probe_test_clips=2,
        threads=1,
    )
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run_compare(cfg, progress="none", figures=False, log=lambda s: None)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert json.loads((tmp_path / "run" / "results.json").read_text())["environment"]["threads"] == 1


def test_a_strategy_spec_carries_its_own_options_and_shows_them_in_its_label():
    from adamask.compare import StrategySpec, parse_strategy

    spec = parse_strategy("adaptive:0.95:token_pool=1x2x2,width=24,variant=attention")
    assert spec == StrategySpec("adaptive", 0.95, (("variant", "attention"), ("width", 24), ("token_pool", (1, 2, 2))))
    assert spec.label == "adaptive_0.95_attention-w24-pool1x2x2" and spec.stem(1) == f"{spec.label}_seed1"
    assert spec.record() == dict(
        name="adaptive", mask_ratio=0.95, options=dict(variant="attention", width=24, token_pool=(1, 2, 2))
    )
    assert parse_strategy("adaptive:variant=mlp") == StrategySpec("adaptive", 0.95, (("variant", "mlp"),))
    assert parse_strategy("adaptive:0.9:checkpoint=true,temperature=2.5").label == "adaptive_0.9_ckpt-t2.5"
    assert parse_strategy("motion").label == "motion_0.95"
    for bad, words in (
        ("adaptive:0.9:0.95", r"must be NAME\[:RATIO\]\[:KEY=VALUE,...\]"),
        ("adaptive:width=8:0.9", r"must be NAME\[:RATIO\]\[:KEY=VALUE,...\]"),
        ("adaptive:0.95:colour=red", r"strategy 'adaptive:0.95:colour=red': option takes KEY=VALUE"),
        ("adaptive:0.95:width=wide", r"strategy 'adaptive:0.95:width=wide': option width must be int"),
    ):
        with pytest.raises(ValueError, match=words):
            parse_strategy(bad)


def test_the_gpu_preset_and_what_overrides_it():
    """--preset gpu: the CUDA-sized run with the fine-tuning probe on; explicit options win, and --size drops the
    preset's changes to its own model."""
    gpu = _parsed("--preset", "gpu")
    assert (gpu.device, gpu.size, gpu.model_overrides, gpu.img_size, gpu.seeds) == (
        "cuda",
        "small",
        dict(depth=6, decoder_depth=2),
        64,
        2,
    )
    assert (gpu.finetune_steps, gpu.finetune_seeds, gpu.batch_size, gpu.steps) == (150, 2, 32, 300)
    assert gpu.model_config()["depth"] == 6 and gpu.model_config()["embed_dim"] == 384
    small = _parsed("--preset", "gpu", "--size", "nano", "--finetune", "2", "--device", "cpu")
    assert (small.size, small.model_overrides, small.finetune_steps, small.device) == ("nano", {}, 2, "cpu")
    assert _parsed().finetune_steps == 0  # the CPU default: no fine-tuning probe


def test_the_gpu_preset_runs_on_the_cpu_with_a_tiny_override(tmp_path, one_thread):
    """Its whole pipeline - the default strategy set, 2 seeds, the fine-tuning probe - at a size of seconds."""
    import json

    from adamask.cli import main

    out = tmp_path / "gpu"
    tiny = ["--device", "cpu", "--size", "nano", "--img-size", "32", "--num-frames", "8", "--steps", "2"]
    clips = ["--train-clips", "16", "--test-clips", "8", "--probe-train-clips", "16", "--probe-test-clips", "8"]
    argv = ["compare", "--preset", "gpu", *tiny, *clips, "--finetune", "2", "--out", str(out), "--quiet"]
    assert main(argv + ["--no-figures"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["seeds"] == 2 and res["config"]["batch_size"] == 32 and len(res["strategies"]) == 9
    assert all(len(r["probe"]["finetune"]["accuracies"]) == 2 for e in res["strategies"].values() for r in e["runs"])
    assert res["summary"]["probes"]["finetune_accuracy"]["comparisons"] == 9
