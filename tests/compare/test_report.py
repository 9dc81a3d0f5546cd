"""The report: rows grouped by visible budget, cells as mean ± 95% interval over seeds, bold / italic† only for
paired differences to random at the same ratio beyond noise, the untrained encoder and chance, the paired
differences and the honest summary, all drawn from the metric table."""

import pytest

from adamask.compare.metrics import METRICS, Metric
from adamask.compare.report import legend, markdown_table, results_summary


def run(seed, loss, alloc, knn, learned, step_ms=10.0, visible=3):
    """One seed's result dict with what the table reads."""
    return dict(
        seed=seed,
        num_visible=visible,
        num_tokens=64,
        recon_loss_own_ratio=loss,
        recon_loss_common_ratio=loss,
        recon_loss_random_masks=loss,
        foreground_allocation=dict(mean=alloc, std=0.1, n=8),
        probability_allocation=None,
        probe=dict(knn_accuracy=knn, linear_accuracy=knn, test_clips=256),
        timing=dict(step_ms=step_ms, sampler_share=0.2),
        memory=dict(peak_mb=5.0 if learned else 4.0),
        mask_statistics=dict(spatial_coverage=0.5),
        learned=learned,
    )


def entry(name, ratio, runs):
    return dict(name=name, mask_ratio=ratio, label=f"{name}_{ratio:g}", seeds=[r["seed"] for r in runs], runs=runs)


def three_seeds():
    """random and adaptive at 0.95 (adaptive: clearly more allocation, clearly higher loss, the same probe and a
    noisy step time), tube at 0.9 without random at 0.9."""
    rnd = [run(s, 0.50 + 0.01 * s, 1.0 + 0.02 * s, 0.10 + 0.01 * s, False, 10.0 + s) for s in range(3)]
    ada = [
        run(
            s,
            0.60 + 0.01 * s,
            3.0 + 0.05 * s,
            0.10 + 0.01 * s + (0.01 if s == 1 else -0.005),
            True,
            10.0 + 4 * s * (-1) ** s,
        )
        for s in range(3)
    ]
    tube = [run(s, 0.55, 1.1, 0.1, False, 9.0, visible=8) for s in range(3)]
    results = {
        "random_0.95": entry("random", 0.95, rnd),
        "adaptive_0.95": entry("adaptive", 0.95, ada),
        "tube_0.9": entry("tube", 0.9, tube),
    }
    untrained = dict(
        label="digit",
        seeds=[0, 1, 2],
        runs=[dict(knn_accuracy=0.1 + 0.01 * s, linear_accuracy=0.1, chance=0.12, test_clips=256) for s in range(3)],
    )
    return results, untrained


def test_summary_pairs_by_seed_and_says_what_the_intervals_allow():
    results, untrained = three_seeds()
    s = results_summary(results, untrained=untrained)
    assert s["seeds"] == 3
    assert s["groups"] == [
        dict(ratio=0.95, reference="random_0.95", strategies=["random_0.95", "adaptive_0.95"]),
        dict(ratio=0.9, reference=None, strategies=["tube_0.9"]),
    ]
    ada = s["strategies"]["adaptive_0.95"]
    assert ada["reference"] == "random_0.95" and "vs_reference" not in s["strategies"]["random_0.95"]
    vs = ada["vs_reference"]
    # paired differences: loss +0.10 in every seed, allocation +2.0, +2.03, +2.06
    assert vs["recon_loss_random_masks"]["mean"] == pytest.approx(0.1)
    assert vs["recon_loss_random_masks"]["verdict"] == "worse"
    assert vs["foreground_allocation"]["mean"] == pytest.approx(2.03)
    assert vs["foreground_allocation"]["half_width"] == pytest.approx(4.3027 * 0.03 / 3**0.5, rel=1e-4)
    assert vs["foreground_allocation"]["verdict"] == "better"
    assert vs["knn_accuracy"]["verdict"] == vs["step_ms"]["verdict"] == "indistinguishable"
    assert vs["peak_mb"]["verdict"] == "worse"  # deterministic: +1.0 in every seed
    assert ada["stats"]["foreground_allocation"]["mean"] == pytest.approx(3.05)
    assert ada["vs_untrained"]["knn_accuracy"]["verdict"] == "indistinguishable"
    assert s["chance"] == 0.12
    assert "vs_reference" not in s["strategies"]["tube_0.9"]
    sentences = s["sentences"]
    assert sentences[0].startswith(
        "**adaptive_0.95** vs random_0.95 (3 vs 3 of 64 tokens visible, 3 seeds; "
        "difference [95% interval]): better than random at the same budget on foreground "
        "allocation (+2.03 ["
    )
    assert "; worse than random at the same budget on held-out loss on the same random masks (+0.1000 [" in sentences[0]
    assert "; indistinguishable from random at the same budget on k-NN probe (" in sentences[0]
    assert sentences[1] == (
        "**tube_0.9** has no random run at its mask ratio 0.9 to be compared with at the same "
        "budget (add random:0.9 to the strategies)."
    )
    assert sentences[2].startswith(
        "Probes (k-NN and linear, digit labels; chance 0.12; untrained encoder: k-NN probe 0.110 ± 0.025"
    )
    assert sentences[2].endswith(
        ": no probe discriminated - at this budget the probes do not tell a pretrained "
        "encoder from an untrained one, so they do not rank the strategies (every "
        "strategy's encoder is indistinguishable from the untrained encoder on both probes; "
        "with 6 paired comparisons at 95%, about 0.3 are expected to come out better or "
        "worse by chance alone)."
    )
    assert s["probes"]["knn_accuracy"] == dict(
        discriminating=[], above_untrained_only=[], comparisons=3, discriminates=False
    )


def test_table_groups_marks_and_differences():
    results, untrained = three_seeds()
    lines = markdown_table(results, untrained, common_ratio=0.75).splitlines()
    assert lines[0] == (
        "| strategy | visible / tokens | recon. loss, own masks | recon. loss @ 0.75 | recon. loss, "
        "same "
        "random masks @ 0.75 | foreground allocation | allocation of P | k-NN acc. | linear acc. | "
        "fine-tune acc. | step time | sampler share | peak MB | GFLOP / step x steps = train GFLOP | "
        "spatial coverage | masked error fg, same random masks | masked error bg, same random masks |"
    )
    assert lines[1] == "|" + "---|" * 17
    assert lines[2] == "| **mask ratio 0.95** (reference random_0.95) |" + " |" * 16
    assert lines[3].startswith("| random_0.95 (reference) | 3 / 64 | 0.5100 ± 0.0248 |")
    row = lines[4].split(" | ")
    assert row[0] == "| adaptive_0.95" and row[4] == "*0.6100 ± 0.0248†*" and row[5] == "**3.05 ± 0.12**"
    assert row[7] == "0.110 ± 0.033" and row[8] == "0.110 ± 0.033"  # indistinguishable: unmarked
    assert row[9] == "n/a"  # no fine-tuning probe
    assert row[11] == "20 ± 0%" and row[12] == "*5.0 ± 0.0†*"
    assert lines[5] == "| **mask ratio 0.9** (no random run at this ratio: not compared) |" + " |" * 16
    assert lines[6].startswith("| tube_0.9 | 8 / 64 | 0.5500 ± 0.0000 |") and "**" not in lines[6]
    assert lines[7] == (
        "| untrained encoder (same seeds) | | | | | | | 0.110 ± 0.025 | 0.100 ± 0.003 | n/a | | | | | | | |"
    )
    assert lines[8] == "| chance (most frequent class) | | | | | | | 0.120 | 0.120 | 0.120 | | | | | | | |"
    assert lines[9] == (
        "| probe tells a pretrained encoder from the untrained one and chance? | | | | | | | no | no | n/a "
        "| | | | | | | |"
    )
    assert lines[11].startswith(
        "Cells: mean ± half-width of the 95% interval over 3 seeds (Student t, 2 degrees of freedom;"
    )
    md = "\n".join(lines)
    assert (
        "| strategy | reference | Δ held-out loss on the same random masks | Δ foreground allocation | "
        "Δ k-NN probe "
        "| Δ linear probe | Δ step time |"
    ) in md
    assert "| adaptive_0.95 | random_0.95 | *+0.1000 [+0.1000, +0.1000]†* | **+2.03 [+1.96, +2.10]** |" in md
    # adaptive against random on the 6 compared columns (tube has no reference)
    assert (
        "The table marks 6 paired comparisons at 95%: about 0.3 of them are expected to come out better or worse "
        "by chance alone"
    ) in md


def test_one_seed_marks_nothing_and_says_so():
    results = {"random_0.9": [run(0, 0.5, 1.0, 0.8, False)], "adaptive_0.9": [run(0, 0.6, 2.0, 0.3, True)]}
    md = markdown_table(results, [dict(knn_accuracy=0.5, linear_accuracy=0.25, chance=0.1, test_clips=256)])
    assert "**0.6" not in md and "**2.00" not in md and "†" not in md.split("\n\n")[0]
    assert (
        "| adaptive_0.9 | 3 / 64 | 0.6000 | 0.6000 | 0.6000 | 2.00 | n/a | 0.300 | 0.300 | n/a | 10.0 ms | 20% |" in md
    )
    assert legend(seeds=1).startswith("One seed: each cell is a single value with no interval")
    assert "| adaptive_0.9 | random_0.9 | +0.1000 | +1.00 | -0.500 | -0.500 | +0.0 ms |" in md
    assert (
        "**adaptive_0.9** vs random_0.9 (3 vs 3 of 64 tokens visible, 1 seed; difference [95% interval]): one "
        "seed gives no interval, so none of these differences can be told from noise: held-out loss on the same "
        "random masks +0.1000, foreground allocation +1.00, k-NN probe -0.500, linear probe -0.500, step time "
        "+0.0 ms."
    ) in md
    assert "with one seed no probe can be told from the untrained encoder's noise." in md
    assert "paired comparisons at 95%" not in md  # one seed: nothing was compared
    assert "| probe tells a pretrained encoder from the untrained one and chance? | | | | | | | n/a | n/a |" in md


def test_a_probe_discriminates_only_above_both_the_untrained_encoder_and_chance():
    """Paired by seed against the untrained encoder (k-NN 0.10, 0.11, 0.12; chance 0.12): adaptive is far above
    both; random is above the untrained encoder in every seed but its interval reaches below chance (an
    untrained encoder below chance is the probe's noise); tube is below the untrained encoder."""
    results, untrained = three_seeds()
    for s, r in enumerate(results["adaptive_0.95"]["runs"]):
        r["probe"] = dict(r["probe"], knn_accuracy=0.60 + 0.01 * s)
    for s, r in enumerate(results["random_0.95"]["runs"]):
        r["probe"] = dict(r["probe"], knn_accuracy=0.115 + 0.01 * s + (0.002 if s == 1 else 0.0))
    for s, r in enumerate(results["tube_0.9"]["runs"]):
        r["probe"] = dict(r["probe"], knn_accuracy=0.05 + 0.01 * s)
    s = results_summary(results, untrained=untrained)
    assert s["probes"]["knn_accuracy"] == dict(
        discriminating=["adaptive_0.95"], above_untrained_only=["random_0.95"], comparisons=3, discriminates=True
    )
    assert s["probes"]["linear_accuracy"]["discriminates"] is False
    sentence = s["sentences"][-1]
    assert (
        "above both the untrained encoder and chance beyond noise: adaptive_0.95 on the k-NN probe (+0.500 "
        "[+0.496, +0.504]); above the untrained encoder but not above chance (a probe's noise near chance, not "
        "learning): random_0.95 on the k-NN probe (+0.016 ["
    ) in sentence
    assert "; below the untrained encoder: tube_0.9 on the k-NN probe (-0.050 [" in sentence
    assert sentence.endswith(
        "every other probe is indistinguishable from the untrained encoder (with 6 paired "
        "comparisons at 95%, about 0.3 are expected to come out better or worse by chance alone)."
    )
    md = markdown_table(results, untrained)
    assert (
        "| probe tells a pretrained encoder from the untrained one and chance? | | | | | | | yes: adaptive_0.95 | "
        "no |" in md
    )


def test_the_metric_table_drives_table_summary_and_legend():
    """One row added to the metric table reaches the header, the separator, every row (marked against the
    reference), the summary's statistics and comparisons, the honest summary (a key metric) and the legend."""
    results, untrained = three_seeds()
    for e, base in ((results["random_0.95"], 0.25), (results["adaptive_0.95"], 0.75), (results["tube_0.9"], 0.5)):
        for i, r in enumerate(e["runs"]):
            r["entropy"] = base + 0.01 * i
    row = Metric(
        "entropy",
        "mask entropy @ {common_ratio:g}",
        better="higher",
        digits=2,
        key=True,
        legend="Mask entropy = how spread out the visible tokens are, on {target}.",
    )
    metrics = (*METRICS, row)
    lines = markdown_table(results, untrained, common_ratio=0.75, metrics=metrics).splitlines()
    assert lines[0].endswith("| masked error bg, same random masks | mask entropy @ 0.75 |")
    assert lines[1] == "|" + "---|" * 18
    assert lines[3].endswith("| 0.50 ± 0.00 | n/a | n/a | 0.26 ± 0.02 |") and lines[4].endswith("| **0.76 ± 0.02** |")
    assert lines[7].endswith("| | |")  # the untrained encoder has no entropy
    text = legend(0.75, "raw", metrics, seeds=3)
    assert text.endswith(
        "only the background is reconstructed). Mask entropy = how spread out the visible tokens are, on pixels."
    ) and text in "\n".join(lines)
    summary = results_summary(results, metrics, untrained, common_ratio=0.75)
    vs = summary["strategies"]["adaptive_0.95"]["vs_reference"]["entropy"]
    assert vs["mean"] == pytest.approx(0.5) and vs["verdict"] == "better"
    assert "mask entropy @ 0.75 (+0.50 [+0.50, +0.50])" in summary["sentences"][0]
    assert "entropy" not in markdown_table(results, untrained)
    assert "entropy" not in results_summary(results)["strategies"]["adaptive_0.95"]["stats"]


def test_videos_without_labels_say_why_the_probe_is_na():
    nolabel = dict(
        knn_accuracy=None,
        linear_accuracy=None,
        chance=None,
        note="no labels: put the videos in one folder per class to get a probe",
    )
    results = {"random_0.9": [dict(run(0, 0.5, 1.0, None, False), probe=nolabel)]}
    md = markdown_table(results, dict(label=None, runs=[nolabel]))
    assert "| untrained encoder (same seeds) | | | | | | | n/a | n/a |" in md
    assert "Probes: n/a - no labels: put the videos in one folder per class to get a probe." in md
    assert "Probes (k-NN and linear): n/a." in md


def test_a_negligible_difference_is_not_bold_and_is_called_negligible():
    """Every encoder predicts the same thing on the same random masks (their losses differ by ~6e-6 in every
    seed): beyond noise, but the table shows 4 decimals - unmarked, and the summary says negligible."""
    rnd = [run(s, 0.214236 + 1e-6 * s, 1.0 + 0.02 * s, 0.1, False) for s in range(3)]
    mot = [run(s, 0.214230 + 1e-6 * s, 4.0 + 0.01 * s, 0.1, False) for s in range(3)]
    results = {"random_0.95": entry("random", 0.95, rnd), "motion_0.95": entry("motion", 0.95, mot)}
    s = results_summary(results)
    assert s["strategies"]["motion_0.95"]["vs_reference"]["recon_loss_random_masks"]["verdict"] == "negligible"
    md = markdown_table(results)
    assert "| motion_0.95 | 3 / 64 | 0.2142 ± 0.0000 | 0.2142 ± 0.0000 | 0.2142 ± 0.0000 | **4.01 ± 0.02** |" in md
    assert (
        "a negligible difference (beyond noise, below the table's precision) from random at the same budget on "
        "held-out loss on the same random masks (-0.0000 [-0.0000, -0.0000])"
    ) in s["sentences"][0]
