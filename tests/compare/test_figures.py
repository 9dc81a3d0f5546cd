"""Figures: valid PNGs of the documented pixel size, masked patches dimmed, GIF / MP4 animations."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from adamask.compare.figures import (  # noqa: E402
    CURVES_SIZE,
    DIM,
    PLOT_DPI,
    SUMMARY_SIZE,
    clip_panels,
    learning_curves_figure,
    masks_figure,
    masks_figure_size,
    summary_figure,
    write_animation,
)

GRID, TUB = (4, 2, 2), (2, 8, 8)


def _clip(seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (3, 8, 16, 16)).astype(np.float32)


def test_masks_figure_size_formula():
    # 1.5 in of labels + 0.9 in per slice, 0.35 in of title + 0.9 in per row, at 80 dpi
    assert masks_figure_size(4, 3) == (408, 244)
    assert masks_figure_size(8, 6) == (696, 460)


def test_masks_figure_png(tmp_path, png_size):
    mask = np.ones(16, bool)
    mask[[0, 5, 10]] = False
    probs = np.full(16, 1 / 16)
    p = masks_figure(
        _clip(), GRID, TUB, [("random", mask), ("tube", ~mask)], tmp_path / "m.png", probs=probs, title="clip"
    )
    assert png_size(p) == masks_figure_size(4, 4, heat_maps=True) == (468, 316)  # a colour scale for P
    assert p.stat().st_size < 300_000
    p2 = masks_figure(_clip(), GRID, TUB, [("random", mask)], tmp_path / "m2.png")
    assert png_size(p2) == (408, 172)
    p3 = masks_figure(_clip(), GRID, TUB, [("random", mask)], tmp_path / "m3.png", foreground=~mask)
    assert png_size(p3) == masks_figure_size(4, 3) == (408, 244)
    assert not list(tmp_path.glob(".*tmp*"))  # atomic: no temporary files left behind


def test_clip_panels_dim_masked_patches_only():
    v = _clip()
    mask = np.zeros(16, bool)
    mask[0] = True  # slice 0, top-left 8x8 patch
    pan = clip_panels(v, GRID, TUB, probs=np.linspace(0, 1, 16), mask=mask)
    frames = v[:, ::2].transpose(1, 2, 3, 0)
    assert np.allclose(pan["frames"], frames)
    assert np.allclose(pan["mask"][0, :8, :8], DIM * frames[0, :8, :8])
    assert np.allclose(pan["mask"][0, 8:], frames[0, 8:]) and np.allclose(pan["mask"][1:], frames[1:])
    assert pan["probs"].shape == frames.shape and 0 <= pan["probs"].min() and pan["probs"].max() <= 1


def _fake_results():
    def one(learned):
        steps = list(range(20))
        return dict(
            learned=learned,
            history=dict(
                step=steps,
                loss=[1.0 / (s + 1) for s in steps],
                reconstruction_loss=[1.0 / (s + 1) for s in steps],
                sampling_loss=[2.0 - 0.05 * s for s in steps] if learned else [None] * 20,
                eval_step=[10, 20],
                eval_loss=[0.5, 0.4],
            ),
            foreground_allocation=dict(mean=1.5 if learned else 1.0, std=0.2, n=10),
            mask_statistics=dict(visible_per_time_slice=[2.0, 1.0, 3.0, 2.0]),
        )

    return {"random_0.9": one(False), "adaptive_0.95": one(True)}


def test_learning_curves_and_summary_png(tmp_path, png_size):
    p = learning_curves_figure(_fake_results(), tmp_path / "curves.png")
    assert png_size(p) == (round(CURVES_SIZE[0] * PLOT_DPI), round(CURVES_SIZE[1] * PLOT_DPI)) == (1260, 324)
    q = summary_figure(_fake_results(), tmp_path / "summary.png")
    assert png_size(q) == (round(SUMMARY_SIZE[0] * PLOT_DPI), round(SUMMARY_SIZE[1] * PLOT_DPI)) == (1260, 666)


def test_animations(tmp_path):
    from PIL import Image

    mask = np.ones(16, bool)
    mask[[1, 2]] = False
    g = write_animation(_clip(), GRID, TUB, tmp_path / "a.gif", probs=np.full(16, 1 / 16), mask=mask, scale=2)
    with Image.open(g) as im:
        assert im.format == "GIF" and im.n_frames == 8 and im.size == (3 * 16 * 2, 16 * 2)
    av = pytest.importorskip("av")
    m = write_animation(_clip(), GRID, TUB, tmp_path / "a.mp4", mask=mask, scale=4)
    with av.open(str(m)) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 8 and (frames[0].width, frames[0].height) == (2 * 16 * 4, 16 * 4)
    with pytest.raises(ValueError, match="gif or .mp4"):
        write_animation(_clip(), GRID, TUB, tmp_path / "a.avi")


def _with_allocation(entry, start, end, pixel_loss="raw"):
    """A learned strategy's two seeds whose held-out allocation goes from ``start`` to ``end`` over training."""
    runs = []
    for seed in (0, 1):
        h = dict(
            entry["history"],
            eval_step=[10, 20],
            eval_loss=[0.5, 0.4],
            eval_allocation=[start + 0.1 * seed, end + 0.1 * seed],
            eval_probability_allocation=[start, end],
        )
        runs.append(dict(entry, seed=seed, history=h))
    return dict(runs=runs)


def test_allocation_and_preset_curves_png(tmp_path, png_size):
    """The allocation over training of each learned strategy (mean over seeds), and several runs side by side
    as the README's preset figure draws them: from a script run on finished run folders."""
    import importlib.util
    import json

    from adamask.compare.figures import ALLOCATION_SIZE, PRESET_CURVES_SIZE, allocation_curves_figure, mean_curve

    res = _fake_results()
    res["adaptive_0.95"] = _with_allocation(res["adaptive_0.95"], 1.0, 3.0)
    steps, mean, low, high = mean_curve(res["adaptive_0.95"], "eval_step", "eval_allocation")
    assert steps == [10, 20] and np.allclose(mean, [1.05, 3.05]) and np.allclose(low, [1.0, 3.0])
    assert np.allclose(high, [1.1, 3.1])
    p = allocation_curves_figure(res, tmp_path / "alloc.png")
    assert png_size(p) == (round(ALLOCATION_SIZE[0] * PLOT_DPI), round(ALLOCATION_SIZE[1] * PLOT_DPI))

    spec = importlib.util.spec_from_file_location(
        "preset_allocation", Path(__file__).resolve().parents[2] / "benchmarks" / "preset_allocation.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    argv = []
    for name, end in (("paper", 4.0), ("paper-photo", 1.0), ("demo", 2.0)):
        folder = tmp_path / name
        folder.mkdir()
        entry = _with_allocation(_fake_results()["adaptive_0.95"], 1.0, end)
        (folder / "results.json").write_text(
            json.dumps(dict(runtime_s=12.0, config=dict(steps=20), strategies={"adaptive_0.95": entry}))
        )
        argv += ["--run", f"{name}={folder}"]
    figure = tmp_path / "presets.png"
    assert script.main(argv + ["--figure", str(figure), "--json", str(tmp_path / "presets.json")]) == 0
    assert png_size(figure) == (round(PRESET_CURVES_SIZE[0] * PLOT_DPI), round(PRESET_CURVES_SIZE[1] * PLOT_DPI))
    rows = json.loads((tmp_path / "presets.json").read_text())["presets"]
    assert [(r["preset"], r["wall_s"], r["allocation"]) for r in rows] == [
        ("paper", 12.0, pytest.approx(4.05)),
        ("paper-photo", 12.0, pytest.approx(1.05)),
        ("demo", 12.0, pytest.approx(2.05)),
    ]


def _drawn(monkeypatch, draw):
    """The matplotlib figure ``draw(path)`` would save, drawn (its layout computed) instead of saved."""
    import adamask.compare.figures as figures

    shown = []
    monkeypatch.setattr(figures, "save_png", lambda fig, path, quantize=True: shown.append(fig) or Path(path))
    draw(Path("unused.png"))
    fig = shown[0]
    fig.canvas.draw()
    return fig


def test_every_panel_is_labelled_and_no_legend_covers_data(monkeypatch):
    """Summary, learning and allocation curves: each panel has a title and both axis labels, and every legend
    lies outside every panel."""
    from adamask.compare.figures import allocation_curves_figure

    res = _fake_results()
    res["adaptive_0.95"] = _with_allocation(res["adaptive_0.95"], 1.0, 3.0)
    for draw in (
        lambda p: summary_figure(res, p),
        lambda p: learning_curves_figure(res, p),
        lambda p: allocation_curves_figure(res, p),
    ):
        fig = _drawn(monkeypatch, draw)
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel(), ax.get_title()
        legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        assert legends
        for legend in legends:
            box = legend.get_window_extent(renderer)
            assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes)


def test_summary_error_bars_stay_within_each_quantitys_range(monkeypatch):
    """Allocations whose 95% interval reaches below 0 and accuracies whose interval reaches above 1 are drawn with
    bars cut at 0 and at 1."""
    res = _fake_results()
    for label, alloc, acc in (("random_0.9", (0.1, 1.9), (0.9, 1.0)), ("adaptive_0.95", (0.05, 0.5), (0.5, 1.0))):
        base = res[label]
        res[label] = dict(
            runs=[
                dict(
                    base,
                    seed=s,
                    foreground_allocation=dict(mean=a),
                    recon_loss_random_masks=0.01 + 0.2 * s,
                    probe=dict(knn_accuracy=c, linear_accuracy=c, test_clips=16),
                )
                for s, (a, c) in enumerate(zip(alloc, acc, strict=True))
            ]  # fmt: skip
        )
    fig = _drawn(monkeypatch, lambda p: summary_figure(res, p))
    ranges = {"allocation": (0.0, np.inf), "reconstruction MSE": (0.0, np.inf), "held-out accuracy": (0.0, 1.0)}
    for ax in fig.axes:
        low, high = ranges.get(ax.get_ylabel(), (-np.inf, np.inf))
        bars = [c for c in ax.containers if hasattr(c, "has_yerr") and c.has_yerr]
        if ax.get_ylabel() in ranges:
            assert bars
        for c in bars:
            ys = np.concatenate([seg[:, 1] for coll in c.lines[2] for seg in coll.get_segments()])
            assert ys.min() >= low - 1e-12 and ys.max() <= high + 1e-12
