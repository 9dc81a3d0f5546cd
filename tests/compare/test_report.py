"""The report: the summary, the markdown table and its legend, all drawn from the metric table."""


def test_table_reports_where_the_learned_strategy_loses():
    from adamask.compare import markdown_table

    def fake(loss, alloc, knn, learned):
        return dict(num_visible=3, num_tokens=64, recon_loss_own_ratio=loss, recon_loss_common_ratio=loss,
                    recon_loss_random_masks=loss, foreground_allocation=dict(mean=alloc, std=0.1, n=8),
                    probe=dict(knn_accuracy=knn, linear_accuracy=knn), timing=dict(step_ms=10.0, sampler_share=0.2),
                    memory=dict(peak_mb=5.0 if learned else 4.0), mask_statistics=dict(spatial_coverage=0.5),
                    learned=learned)

    md = markdown_table({"random_0.9": fake(0.5, 1.0, 0.8, False), "adaptive_0.95": fake(0.6, 2.0, 0.3, True)})
    assert "**adaptive_0.95** is best on: foreground_allocation." in md
    for lost in ("recon_loss_common_ratio (best: random_0.9)", "knn_accuracy (best: random_0.9)",
                 "peak_mb (best: random_0.9)"):
        assert lost in md
    assert "| **0.5000** |" in md and "**2.00 ± 0.10**" in md
    assert "**10.0**" not in md  # equal step times: nothing bold
