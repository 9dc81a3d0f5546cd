"""The comparison's report, drawn from the metric table and the statistics (`adamask.compare.stats`):
results.json's summary (the statistics with the honest summary's sentences) and results.md, the markdown
table, its rows grouped by visible budget with each cell the mean ± 95% interval over the seeds, bold where
better and italic† where worse than random at the same budget beyond noise, the untrained encoder's and
chance's probes, the legend, the paired differences and the honest summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .config import CompareConfig
from .metrics import METRICS, Metric, Result, is_number
from .stats import compare_results, runs_of, untrained_runs

__all__ = [
    "NO_DISCRIMINATION",
    "NOT_MEASURABLE",
    "Report",
    "honest_summary",
    "with_sentences",
    "results_summary",
    "legend",
    "differences_table",
    "markdown_table",
    "answer_block",
    "build_report",
]

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


def _probe_words(untrained: Any, statistics: Dict[str, Any], metrics: Sequence[Metric]) -> str:
    """The probes that ran (those with values for the untrained encoder; k-NN and linear where none has) and
    the label they predict."""
    base = statistics.get("untrained", {}).get("stats", {})
    ran = [m.describe().removesuffix(" probe") for m in _probe_metrics(metrics) if base.get(m.name, {}).get("n")]
    names = ", ".join(ran[:-1]) + f" and {ran[-1]}" if len(ran) > 1 else (ran[0] if ran else "k-NN and linear")
    label = untrained.get("label") if isinstance(untrained, dict) else None
    return f"{names}, {label} labels" if label else names


def _probe_metrics(metrics: Sequence[Metric]) -> List[Metric]:
    """The probes: the ranked metrics also measured on the untrained encoder."""
    return [m for m in metrics if m.untrained and m.better]


def _visible_words(results: Dict[str, Any], label: str, ref: str) -> str:
    a, b = (next((r for r in runs_of(results[k]) if r.get("num_visible") is not None), {}) for k in (label, ref))
    if not a or not b:
        return ""
    return f"{a['num_visible']} vs {b['num_visible']} of {a.get('num_tokens')} tokens visible, "


def _row_sentence(
    label: str, ref: str, vs: Dict[str, Any], metrics: Sequence[Metric], seeds: int, visible: str, words: Dict[str, Any]
) -> str:
    """One strategy against its group's reference, on the key metrics."""
    keyed = [m for m in metrics if m.key and m.name in vs and vs[m.name]["n"] > 0]
    plural = "s" if seeds != 1 else ""
    head = f"**{label}** vs {ref} ({visible}{seeds} seed{plural}; difference [95% interval])"
    if not keyed:
        return f"{head}: no key metric has values for both."
    if seeds < 2 or all(vs[m.name]["verdict"] == "one seed" for m in keyed):
        diffs = ", ".join(f"{m.describe(**words)} {m.format_difference(vs[m.name])}" for m in keyed)
        return f"{head}: one seed gives no interval, so none of these differences can be told from noise: {diffs}."
    parts = []
    for kind, relation in (
        ("better", "better than"),
        ("worse", "worse than"),
        ("indistinguishable", "indistinguishable from"),
        ("negligible", "a negligible difference (beyond noise, below the table's precision) from"),
    ):
        ms = [m for m in keyed if vs[m.name]["verdict"] == kind]
        if ms:
            what = ", ".join(f"{m.describe(**words)} ({m.format_difference(vs[m.name])})" for m in ms)
            parts.append(f"{relation} random at the same budget on {what}")
    return f"{head}: " + "; ".join(parts) + "."


NO_DISCRIMINATION = (
    "at this budget the probes do not tell a pretrained encoder from an untrained one, so they do "
    "not rank the strategies"
)


def _probe_parts(
    summary: Dict[str, Any], probed: Sequence[Metric], rows: Dict[str, Any], words: Dict[str, Any]
) -> Tuple[List[str], bool]:
    """The probes that came out above the untrained encoder and chance, above the untrained encoder only, or
    below it, as clauses; and whether any discriminated."""
    disc = summary["probes"]

    def listed(pairs: List[Tuple[str, Metric]]) -> str:
        return "; ".join(f"{k} on the {m.describe(**words)} ({m.format_difference(rows[k][m.name])})" for k, m in pairs)

    found = [(k, m) for m in probed for k in disc[m.name]["discriminating"]]
    only = [(k, m) for m in probed for k in disc[m.name]["above_untrained_only"]]
    worse = [(k, m) for k, v in rows.items() for m in probed if v[m.name]["verdict"] == "worse"]
    parts = [f"above both the untrained encoder and chance beyond noise: {listed(found)}"] if found else []
    if only:
        parts.append(
            f"above the untrained encoder but not above chance (a probe's noise near chance, not "
            f"learning): {listed(only)}"
        )
    if worse:
        parts.append(f"below the untrained encoder: {listed(worse)}")
    return parts, bool(found)


def _probe_sentence(
    summary: Dict[str, Any], metrics: Sequence[Metric], probe_words: str, words: Dict[str, Any]
) -> Optional[str]:
    """How the probes of the pretrained encoders compare with the untrained encoder's (same seeds) and with
    chance, and whether any probe discriminated at all."""
    probed = _probe_metrics(metrics)
    rows = {k: v["vs_untrained"] for k, v in summary["strategies"].items() if "vs_untrained" in v}
    if not probed or not rows:
        return None
    base = summary["untrained"]["stats"]
    chance = summary.get("chance")
    probed = [m for m in probed if any(v[m.name]["n"] for v in rows.values())] or probed  # those that ran
    shown = ", ".join(f"{m.describe(**words)} {m.format_interval(base[m.name])}" for m in probed)
    head = (
        f"Probes ({probe_words}; chance {chance:.2f}; untrained encoder: {shown})"
        if chance is not None
        else f"Probes ({probe_words})"
    )
    if all(v[m.name]["n"] == 0 for v in rows.values() for m in probed):
        return f"{head}: n/a."
    if summary["seeds"] < 2:
        return f"{head}: with one seed no probe can be told from the untrained encoder's noise."
    parts, found = _probe_parts(summary, probed, rows, words)
    n = sum(summary["probes"][m.name]["comparisons"] for m in probed)
    chances = (
        f"with {n} paired comparisons at 95%, about {n / 20:.1f} are expected to come out better or worse "
        f"by chance alone"
    )
    if found:
        return (
            f"{head}: " + "; ".join(parts) + f"; every other probe is indistinguishable from the untrained "
            f"encoder ({chances})."
        )
    detail = (
        "; ".join(parts)
        if parts
        else (
            "every strategy's encoder is indistinguishable from the untrained encoder on "
            + ("both probes" if len(probed) == 2 else f"all {len(probed)} probes" if len(probed) > 2 else "the probe")
        )
    )
    return f"{head}: no probe discriminated - {NO_DISCRIMINATION} ({detail}; {chances})."


def honest_summary(
    results: Dict[str, Any],
    summary: Dict[str, Any],
    metrics: Sequence[Metric] = METRICS,
    probe_words: str = "k-NN and linear",
    words: Optional[Dict[str, Any]] = None,
) -> List[str]:
    """The sentences under the table: per strategy that is not a reference, better / worse / indistinguishable
    from random at the same budget on each key metric; a strategy without a reference says so; then the
    probes against the untrained encoder. ``words``: what metric names may use ({common_ratio}, {target})."""
    words = words or {}
    out = []
    for g in summary["groups"]:
        for label in g["strategies"]:
            if label == g["reference"]:
                continue
            if g["reference"] is None:
                ratio = "" if g["ratio"] is None else f" {g['ratio']:g}"
                out.append(
                    f"**{label}** has no random run at its mask ratio{ratio} to be compared with at the same "
                    f"budget (add random:{g['ratio']:g} to the strategies)."
                    if g["ratio"] is not None
                    else f"**{label}** has no random run at its mask ratio to be compared with."
                )
                continue
            vs = summary["strategies"][label]["vs_reference"]
            out.append(
                _row_sentence(
                    label,
                    g["reference"],
                    vs,
                    metrics,
                    summary["seeds"],
                    _visible_words(results, label, g["reference"]),
                    words,
                )
            )
    probe = _probe_sentence(summary, metrics, probe_words, words)
    return out + ([probe] if probe else [])


def with_sentences(
    results: Dict[str, Any],
    statistics: Dict[str, Any],
    untrained: Any = None,
    common_ratio: float = 0.9,
    pixel_loss: str = "raw",
    metrics: Sequence[Metric] = METRICS,
) -> Dict[str, Any]:
    """results.json's summary: ``statistics`` (`adamask.compare.stats.compare_results` of ``results`` and
    ``untrained``) with ``sentences``, the honest summary."""
    words = _words(common_ratio, pixel_loss)
    probe_words = _probe_words(untrained, statistics, metrics)
    return dict(statistics, sentences=honest_summary(results, statistics, metrics, probe_words, words))


def results_summary(
    results: Dict[str, Any],
    metrics: Sequence[Metric] = METRICS,
    untrained: Any = None,
    common_ratio: float = 0.9,
    pixel_loss: str = "raw",
) -> Dict[str, Any]:
    """results.json's summary of ``results`` (each strategy's entry: its runs, one per seed) and ``untrained``
    (the untrained encoder's probes, one per seed): their statistics and the honest summary's sentences."""
    statistics = compare_results(results, untrained, metrics)
    return with_sentences(results, statistics, untrained, common_ratio, pixel_loss, metrics)


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


def _cell_over(m: Metric, runs: Sequence[Result], stats: Dict[str, Any]) -> str:
    """The cell of a strategy's runs (one per seed): a text column from the first run that has it, else the
    mean ± 95% interval of the values (``stats``: the statistics of the metrics over those runs)."""
    if m.text is not None:
        cells = [m.text(r) for r in runs]
        return next((c for c in cells if c != "n/a"), "n/a")
    return m.format_interval(stats[m.name])


def _cell(m: Metric, label: str, results: Dict[str, Any], summary: Dict[str, Any]) -> str:
    """The cell of ``label`` in ``m``'s column, marked by its paired verdict against the group's reference."""
    info = summary["strategies"][label]
    text = _cell_over(m, runs_of(results[label]), info["stats"])
    return _marked(text, info.get("vs_reference", {}).get(m.name, {}).get("verdict"))


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
    stats = summary["untrained"]["stats"]
    shown = [_cell_over(m, runs, stats) if m.untrained else "" for m in metrics]
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
    """Markdown lines: each compared strategy's differences to its reference on the key metrics that have values
    (mean over the seeds [95% interval], paired by seed, marked like the table); none without a compared
    strategy."""
    rows = [(k, v) for k, v in summary["strategies"].items() if "vs_reference" in v]
    keyed = [m for m in metrics if m.key and m.better and any(v["vs_reference"][m.name].get("n") for _, v in rows)]
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


# how the answer block words a verdict against the reference, per kind of quantity
_ALLOCATION_WORDS = dict(better="more", worse="fewer", indistinguishable="indistinguishable from the control")
_QUALITY_WORDS = dict(better="better", worse="worse", indistinguishable="indistinguishable")
_COSTS = dict(step_ms=("step time", " ms"), peak_mb=("peak memory", " MB"))
NOT_MEASURABLE = "not measurable at this budget: no probe separated a pretrained encoder from the untrained one"


def _versus(m: Metric, label: str, ref: str, summary: Dict[str, Any], words: Dict[str, str]) -> str:
    """ "<value> vs <reference value> (<verdict in words>, <difference [interval]>)" of metric ``m``."""
    info = summary["strategies"][label]
    mine, theirs = info["stats"][m.name]["mean"], summary["strategies"][ref]["stats"][m.name]["mean"]
    diff = info.get("vs_reference", {}).get(m.name, {})
    if not diff.get("n"):
        return f"{m.format(mine)} vs {m.format(theirs)}"
    verdict = diff["verdict"]
    said = {"one seed": "one seed: no interval", "negligible": "a negligible difference"}.get(verdict, "")
    return f"{m.format(mine)} vs {m.format(theirs)} ({words.get(verdict, said)}, {m.format_difference(diff)})"


def _downstream(label: str, ref: str, summary: Dict[str, Any], metrics: Sequence[Metric], words: Dict[str, Any]) -> str:
    """What the probes that told a pretrained encoder from the untrained one (and from chance) say of ``label``
    against ``ref``; "not measurable ..." where none did, and why."""
    probed = _probe_metrics(metrics)
    told = [m for m in probed if summary.get("probes", {}).get(m.name, {}).get("discriminates")]
    ran = {m.name for m in probed if summary["untrained"]["stats"].get(m.name, {}).get("n")}
    finetune = (
        ""
        if "finetune_accuracy" in ran or not any(m.name == "finetune_accuracy" for m in probed)
        else (" (the fine-tuning probe did not run: --finetune STEPS)")
    )
    if told:
        return "; ".join(f"{m.describe(**words)} {_versus(m, label, ref, summary, _QUALITY_WORDS)}" for m in told)
    if not ran:
        return "not measurable: the probe clips have no labels"
    if summary["seeds"] < 2:
        return f"not measurable: one seed gives no interval{finetune}"
    below = [
        m.describe(**words)
        for m in probed
        if any(
            v.get("vs_untrained", {}).get(m.name, {}).get("verdict") == "worse" for v in summary["strategies"].values()
        )
    ]
    if below:
        return (
            f"{NOT_MEASURABLE}; pretrained encoders came out below the untrained one on the {' and '.join(below)}: "
            f"at this budget pretraining does not help downstream{finetune}"
        )
    return NOT_MEASURABLE + finetune


def _cost(label: str, ref: str, summary: Dict[str, Any], metrics: Sequence[Metric]) -> str:
    """Step time and peak memory of ``label`` against ``ref``, as values and ratios."""
    parts = []
    for m in metrics:
        if m.name not in _COSTS:
            continue
        name, unit = _COSTS[m.name]
        mine, theirs = (summary["strategies"][k]["stats"][m.name]["mean"] for k in (label, ref))
        if is_number(mine) and is_number(theirs) and theirs:
            mine_text, theirs_text = m.format(mine, unit=False), m.format(theirs, unit=False)
            parts.append(f"{name} {mine_text} vs {theirs_text}{unit} ({mine / theirs:.2f}x)")
        else:
            parts.append(f"{name} {m.format(mine)} vs {m.format(theirs)}")
    return ", ".join(parts) or "not measured"


def answer_block(results: Dict[str, Any], summary: Dict[str, Any], metrics: Sequence[Metric] = METRICS,
                 words: Optional[Dict[str, Any]] = None) -> List[str]:  # fmt: skip
    """The lines results.md opens with: per strategy, against random masking at the same mask ratio (its
    equal-budget control), where the visible tokens go, the reconstruction on the same random masks, the
    downstream probes (or why they cannot tell) and the cost."""
    words = words or {}
    by_name = {m.name: m for m in metrics}
    seeds = summary["seeds"]
    lines = [
        f"**Answer**: each strategy against random masking with the same number of visible tokens, its "
        f"equal-budget control (mean over {seeds} seed{'s' if seeds != 1 else ''}; difference paired by seed "
        f"[95% interval]). Foreground allocation: the visible tokens' share on the foreground over the "
        f"foreground's share of all tokens (1.00 = uniform).",
        "",
    ]
    for g in summary["groups"]:
        ref = g["reference"]
        for label in g["strategies"]:
            if label == ref:
                continue
            if ref is None:
                add = "" if g["ratio"] is None else f" (add random:{g['ratio']:g})"
                lines.append(f"- **{label}**: no random run at its mask ratio to compare with{add}.")
                continue
            parts = []
            if "foreground_allocation" in by_name:
                where = _versus(by_name["foreground_allocation"], label, ref, summary, _ALLOCATION_WORDS)
                parts.append(f"foreground allocation {where}")
            if "recon_loss_random_masks" in by_name:
                rec = _versus(by_name["recon_loss_random_masks"], label, ref, summary, _QUALITY_WORDS)
                parts.append(f"reconstruction loss on the same random masks {rec}")
            parts.append(f"downstream: {_downstream(label, ref, summary, metrics, words)}")
            parts.append(f"cost: {_cost(label, ref, summary, metrics)}")
            diverged = summary["strategies"][label].get("diverged")
            tail = f" Diverged in {len(diverged)} of {seeds} seeds." if diverged else ""
            lines.append(f"- **{label}** vs {ref}: " + "; ".join(parts) + "." + tail)
    if len(lines) == 2:
        lines.append("- nothing to compare: every strategy run is random masking, the control (add others).")
    return lines + [""]


@dataclass
class Report:
    """What a comparison reports: ``summary``, results.json's summary (the statistics with the honest summary's
    sentences), and ``markdown``, results.md."""

    summary: Dict[str, Any]
    markdown: str


def build_report(
    results: Dict[str, Any],
    untrained: Dict[str, Any],
    statistics: Dict[str, Any],
    cfg: CompareConfig,
    metrics: Sequence[Metric] = METRICS,
    *,
    command: Optional[str] = None,
    data_note: Optional[str] = None,
) -> Report:
    """The report of a comparison run of ``cfg`` from its results (each strategy's results.json entry), the
    untrained encoder's probes and their ``statistics`` (`adamask.compare.stats.compare_results`); the
    ``command`` line heads results.md and ``data_note`` (a caveat of the data) ends it, where given."""
    summary = with_sentences(results, statistics, untrained, cfg.common_ratio, cfg.pixel_loss, metrics)
    table = markdown_table(results, untrained, cfg.common_ratio, cfg.pixel_loss, metrics, summary)
    head = f"Command: `{command}`\n\n" if command else ""
    answer = "\n".join(answer_block(results, summary, metrics, _words(cfg.common_ratio, cfg.pixel_loss)))
    note = f"\nNote on the data: {data_note}\n" if data_note else ""
    return Report(summary, head + answer + "\n**Full table**\n\n" + table + note)
