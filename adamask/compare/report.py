"""The comparison's report, drawn from the metric table: which strategy is best on each ranked metric
(results.json's summary), the markdown table with the best values in bold, its legend, and where each
learned strategy wins or loses."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

from .metrics import METRICS, Metric, Result, is_number

__all__ = ["results_summary", "markdown_table", "legend"]


def results_summary(results: Dict[str, Result], metrics: Sequence[Metric] = METRICS) -> Dict[str, Any]:
    """Which strategy is best on each ranked metric (None if no strategy has a value), and for each
    learned strategy that did not diverge the metrics it is best on and those it is not (with the best
    strategy); ``diverged``: the step at which each diverged strategy's loss turned non-finite."""
    diverged = {k: r["diverged_at_step"] for k, r in results.items() if r.get("diverged_at_step") is not None}
    best: Dict[str, Optional[str]] = {}
    for m in metrics:
        if m.better is None:
            continue
        vals = {k: m.value(r) for k, r in results.items() if k not in diverged and is_number(m.value(r))}
        pick = min if m.better == "lower" else max
        best[m.name] = pick(vals, key=vals.get) if vals else None
    learned = [k for k, r in results.items() if r.get("learned") and k not in diverged]
    wins = {k: [m for m, b in best.items() if b == k] for k in learned}
    loses = {k: {m: b for m, b in best.items() if b is not None and b != k} for k in learned}
    out: Dict[str, Any] = dict(best=best, learned_wins=wins, learned_loses=loses)
    if diverged:
        out["diverged"] = diverged
    return out


def _words(common_ratio: float, pixel_loss: str) -> Dict[str, Any]:
    """What headers and legends may name: {common_ratio} and {target}."""
    target = "per-patch normalised pixels" if pixel_loss == "normalized" else "pixels"
    return dict(common_ratio=common_ratio, target=target)


def legend(common_ratio: float = 0.9, pixel_loss: str = "raw", metrics: Sequence[Metric] = METRICS) -> str:
    """The paragraph under the table: how bold works, then each metric's legend in table order."""
    parts = ["Bold = best in its column (ties bold; none if all equal)."]
    parts += [m.legend.format(**_words(common_ratio, pixel_loss)) for m in metrics if m.legend]
    return " ".join(parts)


def _row(cells: Sequence[str]) -> str:
    return "|" + "".join(f" {c} |" if c else " |" for c in cells)


def _cell(m: Metric, label: str, results: Dict[str, Result], best: Dict[str, Optional[str]]) -> str:
    """The cell of ``label`` in ``m``'s column, bold if best (ties too), unless every strategy has the same value."""
    text = m.cell(results[label])
    b = best.get(m.name)
    if b is None or len(results) < 2:
        return text
    vals = {m.value(r) for r in results.values()}
    return f"**{text}**" if m.value(results[label]) == m.value(results[b]) and len(vals) > 1 else text


def markdown_table(results: Dict[str, Result], untrained: Optional[Dict[str, Any]] = None,
                   common_ratio: float = 0.9, pixel_loss: str = "raw", metrics: Sequence[Metric] = METRICS) -> str:
    """The comparison table (markdown) with the best value of each column in bold, a row for the untrained
    encoder's probes (``untrained``: its probe dict), the legend and an honest summary of each learned
    strategy."""
    s = results_summary(results, metrics)
    lines = [_row(["strategy"] + [m.header.format(**_words(common_ratio, pixel_loss)) for m in metrics]),
             "|" + "---|" * (1 + len(metrics))]
    diverged = s.get("diverged", {})
    for label in results:
        name = f"{label} (diverged at step {diverged[label]})" if label in diverged else label
        lines.append(_row([name] + [_cell(m, label, results, s["best"]) for m in metrics]))
    if untrained is not None:
        reference = dict(probe=untrained)
        shown = [m.cell(reference) if m.untrained else "" for m in metrics]
        if any(m.untrained and m.value(reference) is not None for m in metrics):
            lines.append(_row(["untrained encoder (reference)"] + shown))
    lines += ["", legend(common_ratio, pixel_loss, metrics)]
    for label, step in diverged.items():
        lines += ["", f"**{label}** diverged: its training loss was not finite at step {step}, so it was stopped "
                      f"there and not evaluated (n/a). A lower --lr (or --sampler-lr-scale) usually helps."]
    for k in s["learned_wins"]:
        w = ", ".join(s["learned_wins"][k]) or "nothing"
        lo = ", ".join(f"{m} (best: {b})" for m, b in s["learned_loses"][k].items()) or "nothing"
        lines += ["", f"**{k}** is best on: {w}. It is not best on: {lo}."]
    return "\n".join(lines) + "\n"
