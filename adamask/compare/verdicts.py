"""What the comparison supports, from the metric table: strategies grouped by visible budget (their mask
ratio) with random at that ratio as the group's reference, every metric as a mean with a 95% interval over
the seeds, differences to the reference and probes against the untrained encoder paired by seed, and the
honest summary those intervals allow ("better", "worse" or "indistinguishable").

A strategy's entry is its results.json entry (``runs``: one result dict per seed, in seed order), a list of
result dicts, or a single result dict (one seed). The untrained encoder: its probe dicts, one per seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .metrics import METRICS, Metric, Result
from .stats import interval, paired_difference, verdict

__all__ = [
    "runs_of",
    "untrained_runs",
    "Group",
    "budget_groups",
    "compare_results",
    "probe_discrimination",
    "honest_summary",
]


def runs_of(entry: Any) -> List[Result]:
    """The result dicts (one per seed) of a strategy's entry."""
    if isinstance(entry, (list, tuple)):
        return list(entry)
    if isinstance(entry, dict) and isinstance(entry.get("runs"), list):
        return entry["runs"]
    return [entry]


def untrained_runs(untrained: Any) -> List[Result]:
    """The untrained encoder's runs as result dicts holding only "probe" (from its entry, its list of probe
    dicts or a single probe dict)."""
    if untrained is None:
        return []
    probes = untrained.get("runs") if isinstance(untrained, dict) and "runs" in untrained else untrained
    probes = probes if isinstance(probes, (list, tuple)) else [probes]
    return [dict(probe=p) for p in probes]


def _spec(label: str, runs: Sequence[Result]) -> Tuple[str, Optional[float]]:
    """(strategy name, mask ratio) of an entry: from its runs, else from its label ``name_ratio``."""
    first = runs[0] if runs else {}
    if isinstance(first.get("name"), str) and first.get("mask_ratio") is not None:
        return first["name"], float(first["mask_ratio"])
    name, _, ratio = label.rpartition("_")
    try:
        return name, float(ratio)
    except ValueError:
        return label, None


@dataclass
class Group:
    """Strategies at one mask ratio (one visible budget) and their reference: random at that ratio, if run."""

    ratio: Optional[float]
    labels: List[str]
    reference: Optional[str]


def budget_groups(results: Dict[str, Any]) -> List[Group]:
    """The strategies grouped by mask ratio, in the order each ratio first appears."""
    groups: Dict[Optional[float], Group] = {}
    for label, entry in results.items():
        name, ratio = _spec(label, runs_of(entry))
        g = groups.setdefault(ratio, Group(ratio, [], None))
        g.labels.append(label)
        if name == "random" and g.reference is None:
            g.reference = label
    return list(groups.values())


def _pairs(runs: Sequence[Result], others: Sequence[Result]) -> Tuple[List[Result], List[Result]]:
    """Runs of two strategies matched by seed (by position where a run does not say its seed)."""
    seeds = [r.get("seed", i) for i, r in enumerate(runs)]
    theirs = {r.get("seed", i): r for i, r in enumerate(others)}
    matched = [(r, theirs[s]) for r, s in zip(runs, seeds, strict=True) if s in theirs]
    return [a for a, _ in matched], [b for _, b in matched]


def _paired(m: Metric, runs: Sequence[Result], others: Sequence[Result]) -> Dict[str, Any]:
    mine, theirs = _pairs(runs, others)
    steps = [s for s in (m.step(mine), m.step(theirs)) if s is not None]
    diff = paired_difference(m.values(mine), m.values(theirs), max(steps) if steps else None)
    return dict(diff, verdict=verdict(diff, m.better, m.negligible()))


def _diverged(runs: Sequence[Result]) -> List[Dict[str, Any]]:
    """Each run that diverged: its seed, the step and why."""
    return [
        dict(
            seed=r.get("seed", i),
            step=r["diverged_at_step"],
            reason=r.get("diverged_reason") or "its training loss was not finite",
        )
        for i, r in enumerate(runs)
        if r.get("diverged_at_step") is not None
    ]


def compare_results(
    results: Dict[str, Any], untrained: Any = None, metrics: Sequence[Metric] = METRICS
) -> Dict[str, Any]:
    """The statistics behind the report (results.json's summary): ``seeds`` (runs per strategy), ``groups``
    (ratio, reference, strategies), per strategy its ``stats`` (each metric's mean and 95% interval over the
    seeds), its ``reference`` and ``vs_reference`` (differences paired by seed, with a verdict, for the ranked
    metrics), ``vs_untrained`` (the probes against the untrained encoder of the same seed) and the runs that
    ``diverged`` (seed, step, reason); ``untrained``: the untrained encoder's probe statistics and ``chance``."""
    ref_runs = untrained_runs(untrained)
    groups = budget_groups(results)
    reference = {label: g.reference for g in groups for label in g.labels}
    out: Dict[str, Any] = {}
    for label, entry in results.items():
        runs = runs_of(entry)
        ref = reference[label]
        one: Dict[str, Any] = dict(stats={m.name: m.stats(runs) for m in metrics if m.text is None}, reference=ref)
        if ref is not None and ref != label:
            one["vs_reference"] = {m.name: _paired(m, runs, runs_of(results[ref])) for m in metrics if m.better}
        if ref_runs:
            one["vs_untrained"] = {m.name: _paired(m, runs, ref_runs) for m in metrics if m.untrained and m.better}
        if _diverged(runs):
            one["diverged"] = _diverged(runs)
        out[label] = one
    chance = interval([r["probe"].get("chance") for r in ref_runs if isinstance(r["probe"], dict)])["mean"]
    return dict(
        seeds=max((len(runs_of(e)) for e in results.values()), default=0),
        groups=[dict(ratio=g.ratio, reference=g.reference, strategies=g.labels) for g in groups],
        strategies=out,
        chance=chance,
        untrained=dict(stats={m.name: m.stats(ref_runs) for m in metrics if m.untrained}),
        probes=probe_discrimination(out, chance, metrics),
    )


def probe_discrimination(
    strategies: Dict[str, Any], chance: Optional[float], metrics: Sequence[Metric] = METRICS
) -> Dict[str, Dict[str, Any]]:
    """Whether each probe tells a pretrained encoder from an untrained one: per probe metric, the strategies
    whose accuracy is above the untrained encoder's (paired by seed) AND whose 95% interval lies above chance
    (``discriminating``), those above the untrained encoder only (``above_untrained_only``: an untrained
    encoder below chance is the probe's noise, not learning), how many paired comparisons were made
    (``comparisons``) and ``discriminates``: True / False, None where no comparison had an interval.
    ``strategies``: `compare_results`' per-strategy entries."""
    out: Dict[str, Dict[str, Any]] = {}
    for m in (m for m in metrics if m.untrained and m.better):
        found: List[str] = []
        only: List[str] = []
        n, decided = 0, False
        for label, info in strategies.items():
            vs = info.get("vs_untrained", {}).get(m.name)
            if not vs or vs["n"] == 0:
                continue
            n += 1
            decided = decided or vs["verdict"] not in (None, "one seed")
            if vs["verdict"] != "better":
                continue
            low = info["stats"][m.name]["low"]
            (found if chance is None or (low is not None and low > chance) else only).append(label)
        out[m.name] = dict(
            discriminating=found,
            above_untrained_only=only,
            comparisons=n,
            discriminates=bool(found) if decided else None,
        )
    return out


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
    probed = [m for m in metrics if m.untrained and m.better]
    rows = {k: v["vs_untrained"] for k, v in summary["strategies"].items() if "vs_untrained" in v}
    if not probed or not rows:
        return None
    base = summary["untrained"]["stats"]
    chance = summary.get("chance")
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
        else ("every strategy's encoder is indistinguishable from the untrained encoder on both probes")
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
