"""The comparison's report, drawn from the metric table: results.json's summary (`results_summary`: the
statistics of `adamask.compare.verdicts` and the honest summary's sentences) and the markdown table, its
rows grouped by visible budget with each cell the mean ± 95% interval over the seeds, bold where better and
italic† where worse than random at the same budget beyond noise, the untrained encoder's and chance's
probes, the legend, the paired differences and the honest summary."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from .metrics import METRICS, Metric
from .verdicts import compare_results, honest_summary, runs_of, untrained_runs

__all__ = ["results_summary", "markdown_table", "legend", "differences_table"]

BOLD_RULE = (
    "Cells: mean ± half-width of the 95% interval over {seeds} seeds (Student t, {dof} degree{s} of "
    "freedom; an accuracy's interval is at least as wide as its rounding to one probe clip). **Bold** = "
    "better than random at the same mask ratio (the group's reference) beyond noise: the 95% interval of "
    "the difference paired by seed excludes 0 and the difference shows at the column's precision; "
    "*italic†* = worse beyond noise; unmarked = indistinguishable, negligible (beyond noise but below "
    "the column's precision) or not compared."
)
ONE_SEED = (
    "One seed: each cell is a single value with no interval, and nothing is marked better or worse - no "
    "difference can be told from noise; run with --seeds 3 or more."
)


def _words(common_ratio: float, pixel_loss: str) -> Dict[str, Any]:
    """What headers and legends may name: {common_ratio} and {target}."""
    target = "per-patch normalised pixels" if pixel_loss == "normalized" else "pixels"
    return dict(common_ratio=common_ratio, target=target)


def _probe_words(untrained: Any) -> str:
    label = untrained.get("label") if isinstance(untrained, dict) else None
    return f"k-NN and linear, {label} labels" if label else "k-NN and linear"


def results_summary(
    results: Dict[str, Any],
    metrics: Sequence[Metric] = METRICS,
    untrained: Any = None,
    common_ratio: float = 0.9,
    pixel_loss: str = "raw",
) -> Dict[str, Any]:
    """`adamask.compare.verdicts.compare_results` with ``sentences``, the honest summary. ``results``: each
    strategy's entry (its runs, one per seed); ``untrained``: the untrained encoder's probes, one per seed."""
    summary = compare_results(results, untrained, metrics)
    summary["sentences"] = honest_summary(
        results, summary, metrics, _probe_words(untrained), _words(common_ratio, pixel_loss)
    )
    return summary


def legend(
    common_ratio: float = 0.9, pixel_loss: str = "raw", metrics: Sequence[Metric] = METRICS, seeds: int = 1
) -> str:
    """The paragraph under the table: what a cell is and how bold works, then each metric's legend in table order."""
    parts = [ONE_SEED if seeds < 2 else BOLD_RULE.format(seeds=seeds, dof=seeds - 1, s="s" if seeds > 2 else "")]
    parts += [m.legend.format(**_words(common_ratio, pixel_loss)) for m in metrics if m.legend]
    return " ".join(parts)


def _row(cells: Sequence[str]) -> str:
    return "|" + "".join(f" {c} |" if c else " |" for c in cells)


def _marked(text: str, verdict: Optional[str]) -> str:
    if text == "n/a":
        return text
    return f"**{text}**" if verdict == "better" else f"*{text}†*" if verdict == "worse" else text


def _cell(m: Metric, label: str, results: Dict[str, Any], summary: Dict[str, Any]) -> str:
    """The cell of ``label`` in ``m``'s column, marked by its paired verdict against the group's reference."""
    text = m.cell_over(runs_of(results[label]))
    vs = summary["strategies"][label].get("vs_reference", {})
    return _marked(text, vs.get(m.name, {}).get("verdict"))


def _name(label: str, summary: Dict[str, Any], seeds: int) -> str:
    info = summary["strategies"][label]
    name = f"{label} (reference)" if info["reference"] == label else label
    diverged = info.get("diverged")
    if not diverged:
        return name
    steps = sorted({d["step"] for d in diverged})
    if len(diverged) == seeds:
        return f"{name} (diverged at step {', '.join(map(str, steps))})"
    return f"{name} (diverged in {len(diverged)} of {seeds} seeds)"


def _discrimination(m: Metric, summary: Dict[str, Any]) -> str:
    """Whether probe ``m`` told any pretrained encoder from the untrained one (and from chance): "yes: <labels>",
    "no" or "n/a" (no interval: one seed, or no probe values)."""
    d = summary.get("probes", {}).get(m.name)
    if not d or d["discriminates"] is None:
        return "n/a"
    return "yes: " + ", ".join(d["discriminating"]) if d["discriminates"] else "no"


def _reference_rows(untrained: Any, metrics: Sequence[Metric], summary: Dict[str, Any]) -> List[str]:
    """The untrained encoder's probes (mean ± interval over its seeds), the chance level and whether each probe
    told a pretrained encoder from both, in the probe columns."""
    runs = untrained_runs(untrained)
    if not runs or not any(m.untrained for m in metrics):
        return []
    shown = [m.cell_over(runs) if m.untrained else "" for m in metrics]
    rows = [_row(["untrained encoder (same seeds)"] + shown)]
    chance = [r["probe"].get("chance") for r in runs if isinstance(r["probe"], dict)]
    if any(c is not None for c in chance):
        rows.append(
            _row(["chance (most frequent class)"] + [m.format(chance[0]) if m.untrained else "" for m in metrics])
        )
        rows.append(
            _row(
                ["probe tells a pretrained encoder from the untrained one and chance?"]
                + [_discrimination(m, summary) if m.untrained else "" for m in metrics]
            )
        )
    return rows


def _diff_cell(m: Metric, d: Dict[str, Any]) -> str:
    if d.get("n", 0) == 0:
        return "n/a"
    return _marked(m.format_difference(d), d.get("verdict"))


def differences_table(
    summary: Dict[str, Any], metrics: Sequence[Metric] = METRICS, common_ratio: float = 0.9, pixel_loss: str = "raw"
) -> List[str]:
    """Markdown lines: each compared strategy's differences to its reference on the key metrics (mean over the
    seeds [95% interval], paired by seed, marked like the table); none without a compared strategy."""
    keyed = [m for m in metrics if m.key and m.better]
    rows = [(k, v) for k, v in summary["strategies"].items() if "vs_reference" in v]
    if not rows or not keyed:
        return []
    words = _words(common_ratio, pixel_loss)
    lines = [
        "Differences to random at the same mask ratio, paired by seed (mean [95% interval]):",
        "",
        _row(["strategy", "reference"] + [f"Δ {m.describe(**words)}" for m in keyed]),
        "|" + "---|" * (2 + len(keyed)),
    ]
    for label, v in rows:
        lines.append(_row([label, v["reference"]] + [_diff_cell(m, v["vs_reference"][m.name]) for m in keyed]))
    n = sum(d.get("verdict") not in (None, "one seed") for _, v in rows for d in v["vs_reference"].values())
    if n:
        lines += [
            "",
            f"The table marks {n} paired comparisons at 95%: about {n / 20:.1f} of them are expected to come "
            f"out better or worse by chance alone, so weigh a single mark with that in mind.",
        ]
    return lines


def _notes(untrained: Any) -> List[str]:
    notes = {r["probe"].get("note") for r in untrained_runs(untrained) if isinstance(r["probe"], dict)}
    return [f"Probes: n/a - {n}." for n in sorted(n for n in notes if n)]


def markdown_table(
    results: Dict[str, Any],
    untrained: Any = None,
    common_ratio: float = 0.9,
    pixel_loss: str = "raw",
    metrics: Sequence[Metric] = METRICS,
    summary: Optional[Dict[str, Any]] = None,
) -> str:
    """The comparison table (markdown): a block of rows per mask ratio, headed by its reference (random at
    that ratio), cells as mean ± 95% interval over the seeds marked against the reference, rows for the
    untrained encoder's probes and the chance level; then the legend, the paired differences, the honest
    summary and a note per diverged strategy. ``untrained``: the untrained encoder's probe dicts (one per seed,
    or its results.json entry); ``summary``: `results_summary`'s output, if already computed."""
    s = summary if summary is not None else results_summary(results, metrics, untrained, common_ratio, pixel_loss)
    seeds = s["seeds"]
    words = _words(common_ratio, pixel_loss)
    lines = [_row(["strategy"] + [m.header.format(**words) for m in metrics]), "|" + "---|" * (1 + len(metrics))]
    for g in s["groups"]:
        ratio = "" if g["ratio"] is None else f" {g['ratio']:g}"
        ref = f"reference {g['reference']}" if g["reference"] else "no random run at this ratio: not compared"
        lines.append(_row([f"**mask ratio{ratio}** ({ref})"] + [""] * len(metrics)))
        for label in g["strategies"]:
            lines.append(_row([_name(label, s, seeds)] + [_cell(m, label, results, s) for m in metrics]))
    lines += _reference_rows(untrained, metrics, s)
    lines += ["", legend(common_ratio, pixel_loss, metrics, seeds)]
    diffs = differences_table(s, metrics, common_ratio, pixel_loss)
    lines += [""] + diffs if diffs else []
    for sentence in s.get("sentences", []):
        lines += ["", sentence]
    for label, info in s["strategies"].items():
        for d in info.get("diverged", []):
            lines += [
                "",
                f"**{label}** diverged with seed {d['seed']}: {d['reason']} at step {d['step']}, so that run "
                f"was stopped there and not evaluated (n/a; its other seeds, if any, are still reported). A "
                f"lower --lr (or --sampler-lr-scale) usually helps.",
            ]
    lines += [line for n in _notes(untrained) for line in ("", n)]
    return "\n".join(lines) + "\n"
