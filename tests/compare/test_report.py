"""The report: the summary, the markdown table and its legend, all drawn from the metric table."""
from adamask.compare.metrics import METRICS, Metric
from adamask.compare.report import legend, markdown_table, results_summary


def fake(loss, alloc, knn, learned):
    """A strategy's result dict with what the table reads."""
    return dict(num_visible=3, num_tokens=64, recon_loss_own_ratio=loss, recon_loss_common_ratio=loss,
                recon_loss_random_masks=loss, foreground_allocation=dict(mean=alloc, std=0.1, n=8),
                probe=dict(knn_accuracy=knn, linear_accuracy=knn), timing=dict(step_ms=10.0, sampler_share=0.2),
                memory=dict(peak_mb=5.0 if learned else 4.0), mask_statistics=dict(spatial_coverage=0.5),
                learned=learned)


def test_table_reports_where_the_learned_strategy_loses():
    md = markdown_table({"random_0.9": fake(0.5, 1.0, 0.8, False), "adaptive_0.95": fake(0.6, 2.0, 0.3, True)})
    assert "**adaptive_0.95** is best on: foreground_allocation." in md
    for lost in ("recon_loss_common_ratio (best: random_0.9)", "knn_accuracy (best: random_0.9)",
                 "peak_mb (best: random_0.9)"):
        assert lost in md
    assert "| **0.5000** |" in md and "**2.00 ± 0.10**" in md
    assert "**10.0**" not in md  # equal step times: nothing bold


def test_the_metric_table_drives_table_summary_and_legend():
    """The default table's columns, and one row added to the metric table reaching the header, the separator,
    every row (bold where best), the untrained row, the summary and the legend."""
    results = {"random_0.9": fake(0.5, 1.0, 0.8, False), "adaptive_0.95": fake(0.6, 2.0, 0.3, True)}
    untrained = dict(knn_accuracy=0.5, linear_accuracy=0.25)
    lines = markdown_table(results, untrained, common_ratio=0.75).splitlines()
    assert lines[0] == ("| strategy | visible / tokens | recon. loss, own ratio | recon. loss @ 0.75 | recon. loss, "
                        "same random masks @ 0.75 | foreground allocation | k-NN acc. | linear acc. | step ms | "
                        "sampler share | peak MB | spatial coverage |")
    assert lines[1] == "|" + "---|" * 12
    assert lines[3] == ("| adaptive_0.95 | 3 / 64 | 0.6000 | 0.6000 | 0.6000 | **2.00 ± 0.10** | 0.300 | 0.300 | "
                        "10.0 | 20% | 5.0 | 0.50 |")
    assert lines[4] == "| untrained encoder (reference) | | | | | | 0.500 | 0.250 | | | | |"

    results["random_0.9"]["entropy"], results["adaptive_0.95"]["entropy"] = 0.25, 0.75
    row = Metric("entropy", "mask entropy @ {common_ratio:g}", better="higher", digits=2,
                 legend="Mask entropy = how spread out the visible tokens are, on {target}.")
    metrics = (*METRICS, row)
    md = markdown_table(results, untrained, common_ratio=0.75, metrics=metrics)
    lines = md.splitlines()
    assert lines[0].endswith("| spatial coverage | mask entropy @ 0.75 |") and lines[1] == "|" + "---|" * 13
    assert lines[2].endswith("| 0.50 | 0.25 |") and lines[3].endswith("| 0.50 | **0.75** |")
    assert lines[4] == "| untrained encoder (reference) | | | | | | 0.500 | 0.250 | | | | | |"
    text = legend(0.75, "raw", metrics)
    assert text.endswith("tensors saved for backward). Mask entropy = how spread out the visible tokens are, on "
                         "pixels.") and text in md
    summary = results_summary(results, metrics)
    assert summary["best"]["entropy"] == "adaptive_0.95"
    assert summary["learned_wins"]["adaptive_0.95"] == ["foreground_allocation", "entropy"]
    assert "**adaptive_0.95** is best on: foreground_allocation, entropy." in md
    assert "entropy" not in markdown_table(results) and "entropy" not in results_summary(results)["best"]
