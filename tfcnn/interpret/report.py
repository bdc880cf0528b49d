"""Words and tables for a computed tempo study: formatting only, no statistics.

The wording is fixed to what each statement shows: "periodic structure" (statement 1) is not
"learned tempo"; only filters that are periodic, tuned and class-relevant are consistent with
a learned tempo, and even they are not proof of it.
"""

from __future__ import annotations

import math

import pandas as pd

from tfcnn.interpret.smooth_null import FDR_Q
from tfcnn.interpret.study import Statement, TempoStudy, Verdict

#: Readable column names of the per-filter table (page and CLI).
READABLE_COLUMNS: dict[str, str] = {
    "filter": "Filter",
    "tempo": "Tempo (BPM, interval)",
    "strength": "Periodicity strength",
    "smoothness": "Smoothness (lag-1 corr.)",
    "p_value": "p vs equally smooth noise",
    "q_value": "q (FDR)",
    "periodic": "Periodic",
    "best_probe_bpm": "Strongest probe (BPM)",
    "tuned": "Tuned",
    "classes": "Class ranges overlapped",
    "most_active": "Most active class",
}
#: What the model without temporal filters has instead (study note code → words).
OTHER_FILTERS: dict[str, str] = {
    "frequency": "32×1 frequency filters",
    "blackbox": "12×8 time-frequency filters",
    "none": "no first-layer filters it can draw",
}


def tempo_label(peak_bpm: float, low: float, high: float) -> str:
    """``"~120 BPM, 100-145"``; ``"-"`` when there is no tempo."""
    if any(not isinstance(v, (int, float)) or math.isnan(v) for v in (peak_bpm, low, high)):
        return "-"
    return f"~{peak_bpm:.0f} BPM, {low:.0f}-{high:.0f}"


def _chance(stmt: Statement) -> str:
    return f"by chance about {stmt.expected:.1f}, p = {stmt.p_value:.2g}"


def verdict_lines(verdict: Verdict) -> list[str]:
    """The graded verdict as three lines (fewer when probes or class ranges are missing)."""
    v = verdict
    lines = [f"Periodic structure: {v.periodic.count} of {v.n_filters} filters are periodic "
             f"beyond noise as smooth as themselves (smoothness-matched surrogates, "
             f"Benjamini-Hochberg FDR q = {v.q:g})."]
    if v.tuned is None:
        lines.append("Tuned: not measured (no probes).")
    elif v.periodic.count == 0:
        lines.append("Tuned: nothing to test (no periodic filter).")
    else:
        lines.append(f"Tuned: {v.tuned.count} of these {v.tuned.out_of} respond most to "
                     f"click, drum or waltz probes at their own tempo interval, or half or "
                     f"double it ({_chance(v.tuned)}).")
    if v.relevant is None:
        lines.append("Class-relevant: not measured (no class tempo ranges).")
    elif v.relevant.out_of == 0:
        lines.append(f"Class-relevant: nothing to match against the {v.ranges_name} class "
                     f"tempo ranges (no {v.relevant_of} filter).")
    else:
        where = ", ".join(f"{c} ({n})" for c, n in v.class_counts)
        lines.append(f"Class-relevant: {v.relevant.count} of these {v.relevant.out_of} have a "
                     f"tempo interval overlapping a {v.ranges_name} class tempo range"
                     + (f": {where}" if where else "")
                     + f" ({_chance(v.relevant)}).")
    return lines


def verdict_summary(verdict: Verdict) -> str:
    """One closing sentence whose words follow the three statements' figures."""
    v = verdict
    if v.periodic.count == 0:
        return ("No filter shows periodic structure beyond its smoothness: nothing here "
                "supports a learned tempo.")
    holds = f"{v.periodic.count} filter{'s hold' if v.periodic.count != 1 else ' holds'}"
    checks = {"their tuning": v.tuned, "their class match": v.relevant}
    measured = {name: s for name, s in checks.items() if s is not None}
    weak = [name for name, s in measured.items() if not (s.count > 0 and s.p_value < 0.05)]
    if measured and not weak:
        return (f"{holds} periodic structure, and tuning and class ranges agree beyond "
                "chance: consistent with learned tempo.")
    why = (" and ".join(weak) + (" is" if len(weak) == 1 else " are") + " no better than chance"
           if weak else "tuning and class match are not measured")
    return f"{holds} periodic structure, but it is not shown to be learned tempo ({why})."


def study_text(study: TempoStudy) -> list[str]:
    """The verdict lines of a study, or what a model without temporal filters has instead."""
    if study.verdict is None:
        code = next((n.split(":", 1)[1] for n in study.notes
                     if n.startswith("no-temporal-filters:")), "none")
        return [f"A {study.arch} model has no 1×n temporal filters, so their tempo cannot be "
                f"measured; it has {OTHER_FILTERS.get(code, code)} instead."]
    return verdict_lines(study.verdict) + [verdict_summary(study.verdict)]


def readable_table(table: pd.DataFrame) -> pd.DataFrame:
    """The per-filter table with readable column names and the tempo as one label."""
    out = table.copy()
    out["tempo"] = [tempo_label(r.peak_bpm, r.bpm_low, r.bpm_high) for r in table.itertuples()]
    out["classes"] = out["classes"].map(lambda c: ", ".join(c) if c else "-")
    out = out[[c for c in READABLE_COLUMNS if c in out]]
    return out.rename(columns=READABLE_COLUMNS)


def _clean(value):
    """JSON-able: NaN → None, numpy scalars → Python."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def plain_records(frame: pd.DataFrame) -> list[dict]:
    """Rows of any DataFrame as JSON-able dicts (NaN → None)."""
    return [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def table_records(table: pd.DataFrame) -> list[dict]:
    """Per-filter JSON records; the tempo interval is one two-number field ``interval``."""
    rows = []
    for row in table.to_dict(orient="records"):
        rec = {k: _clean(v) for k, v in row.items() if k not in ("bpm_low", "bpm_high")}
        lo, hi = _clean(row["bpm_low"]), _clean(row["bpm_high"])
        rec["interval"] = None if lo is None else [lo, hi]
        rows.append(rec)
    return rows


def verdict_record(verdict: Verdict) -> dict:
    """The verdict's numbers and lines as JSON."""
    def stmt(s: Statement | None):
        return None if s is None else {"count": s.count, "out_of": s.out_of,
                                       "filters": list(s.filters), "expected": s.expected,
                                       "p_value": s.p_value}

    return {"q": verdict.q, "periodic": stmt(verdict.periodic), "tuned": stmt(verdict.tuned),
            "relevant": stmt(verdict.relevant), "relevant_of": verdict.relevant_of,
            "class_counts": dict(verdict.class_counts), "ranges": verdict.ranges_name,
            "lines": verdict_lines(verdict), "summary": verdict_summary(verdict)}


def growth_text(growth: pd.DataFrame) -> str:
    """A plain-text growth table (one row per snapshot)."""
    head = f"{'fold':>4} {'epoch':>5} {'periodic':>9} {'tuned':>14} {'class-relevant':>16}"
    lines = [head]
    for r in growth.itertuples():
        tuned = "-" if pd.isna(r.tuned) else f"{r.tuned:.0f} (~{r.tuned_expected:.1f})"
        rel = "-" if pd.isna(r.relevant) else f"{r.relevant:.0f} (~{r.relevant_expected:.1f})"
        lines.append(f"{r.fold:>4} {r.epoch:>5} {f'{r.periodic}/{r.n_filters}':>9} "
                     f"{tuned:>14} {rel:>16}")
    lines.append(f"(~x: expected by chance; periodic at FDR q = {FDR_Q:g})")
    return "\n".join(lines)
