"""Words and tables for a computed tempo study: formatting only, no statistics.

The wording is fixed to what each statement shows: "periodic structure" (statement 1) is not
"learned tempo"; only filters that are periodic, tuned and class-relevant are consistent with
a learned tempo, and even they are not proof of it.
"""

from __future__ import annotations

import math

import pandas as pd

from tfcnn.config import BALLROOM_BPM_RANGE
from tfcnn.interpret.functional import FunctionalEvidence
from tfcnn.interpret.smooth_null import FDR_Q
from tfcnn.interpret.study import TEST_LR, Statement, TempoStudy, Verdict, tempo_shown

#: Readable column names of the per-filter table (page and CLI).
READABLE_COLUMNS: dict[str, str] = {
    "filter": "Filter",
    "tempo": "Tempo (BPM, interval)",
    "strength": "Periodicity strength",
    "smoothness": "Smoothness (lag-1 corr.)",
    "p_value": "p vs smooth noise",
    "pattern": "Best pattern",
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


def tempo_label(peak_bpm: float, low: float, high: float, *, strength: float = 1.0,
                bpm_range=BALLROOM_BPM_RANGE) -> str:
    """``"~120 BPM, 100-145"``; ``"-"`` without a tempo: no peak, strength 0, or a peak at an
    end of the searched range (a slow wave or a ramp peaks there, not a tempo)."""
    if any(not isinstance(v, (int, float)) or math.isnan(v) for v in (peak_bpm, low, high)):
        return "-"
    if not tempo_shown(peak_bpm, strength, bpm_range=bpm_range):
        return "-"
    return f"~{peak_bpm:.0f} BPM, {low:.0f}-{high:.0f}"


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _span(lo: float, hi: float) -> str:
    return _pct(lo) if round(100 * lo) == round(100 * hi) else f"{100 * lo:.0f}-{_pct(hi)}"


def power_sentence(verdict: Verdict) -> str:
    """What the filter test could have found at the verdict's level (measured by simulation)."""
    if not verdict.power:
        return ("Its power was not measured for filters of this shape (surrogate test): a "
                "filter it does not flag is not shown to be aperiodic.")
    parts = []
    for curve in verdict.power:
        name = "a cosine" if curve.pattern == "cosine" else "two onset bumps one beat apart"
        parts.append(f"{name} in {_span(*curve.over(100, 224))} of filters at 100-224 BPM")
    cos = verdict.power[0]
    slow = ", ".join(f"{_pct(cos.at(b))} at {b:.0f}" for b in cos.tempi if b < 100)
    looser = (f" (measured at p ≤ {cos.level:.2g}, looser than this level: at most)"
              if cos.level > verdict.level * (1 + 1e-9) else "")
    return (f"At that level (p ≤ {verdict.level:.2g}, a lone discovery among "
            f"{verdict.n_filters}) the test finds{looser} a pattern holding "
            f"{_pct(cos.share)} of a filter's variance (the rest AR(1) noise, φ = "
            f"{cos.noise_phi:g}): " + "; ".join(parts)
            + f". Below 100 BPM the window holds under 2.3 beats: the filter test searches "
            f"100-224 BPM and finds a slower cosine only where it leaks into that range "
            f"({slow}), so no periodic filter there is not evidence of none; the bank's "
            f"60-99 BPM band speaks for the slow tempi.")


def bank_sentence(verdict: Verdict) -> str | None:
    """The bank-level test in words; None when not computed."""
    if verdict.bank_p is None:
        return None
    bands = ", ".join(f"{lo:.0f}-{hi - 1:.0f} BPM {_p(p)}"
                      for (lo, hi), p in zip(verdict.bands, verdict.band_bank_p))
    return (f"The bank as a whole against smooth noise (the count of filters at p ≤ 0.05 "
            f"against a binomial over the {verdict.n_filters}, which treats them as "
            f"independent): {_p(verdict.bank_p)}; per tempo band, Holm-adjusted: {bands}.")


def periodic_line(verdict: Verdict) -> str:
    """Is tempo held in periodic filters? The count, its filters and its test."""
    v = verdict
    test = ("likelihood ratio of a sinusoid or two onsets a beat apart at 100-224 BPM "
            "against smooth noise, each averaged over its family, calibrated on simulated "
            "AR(1), AR(2) and Gaussian-smoothed noise"
            if v.test == TEST_LR else "smoothness-matched surrogates")
    where = ", ".join(f"{f} (~{b:.0f} BPM)" for f, b, _, _ in v.intervals)
    return (f"Periodic filters: {v.periodic.count} of {v.n_filters} "
            f"{'is' if v.periodic.count == 1 else 'are'} periodic at some tempo "
            f"beyond smooth noise ({test}; Benjamini-Hochberg, FDR q = {v.q:g})"
            + (f": {where}." if where else "."))


def functional_lines(evidence: FunctionalEvidence | None, ranges_name: str) -> list[str]:
    """Does the model use tempo? The probe → class and counterfactual tests in words."""
    if evidence is None:
        return ["Uses tempo: not measured (no probes or no class tempo ranges)."]
    lines = []
    if evidence.probe_class:
        parts = [f"{t.kind} ({t.meter}) {t.hits} of {t.n} against {t.expected:.1f} expected "
                 f"(95 % of shifts {t.null_range[0]:.0f}-{t.null_range[1]:.0f}; {_p(t.p_value)})"
                 for t in evidence.probe_class]
        lines.append(f"Probe → class: probes land in a class whose {ranges_name} tempo range "
                     f"holds their tempo: " + "; ".join(parts)
                     + " (null: the predictions shifted along the tempo axis).")
    cf = evidence.counterfactual
    if cf is None:
        lines.append("Counterfactual: not run (python -m tfcnn filters CHECKPOINT "
                     "--functional, or the page's toggle).")
    else:
        n = len(cf.renders)
        lo, hi = cf.difference_interval
        lines.append(
            f"Counterfactual: the same SynthBallroom tracks re-rendered at "
            f"{cf.renders['bpm'].nunique()} tempi land in a class whose range holds the new "
            f"tempo in {_pct(cf.hit_rate)} of {n} renders, against {_pct(cf.null_rate)} if "
            f"the prediction ignored tempo (difference {100 * (cf.hit_rate - cf.null_rate):+.0f} "
            f"points, 95 % interval {100 * lo:+.0f} to {100 * hi:+.0f}; permutation "
            f"{_p(cf.p_value)}); {_pct(cf.stay_rate)} stay in the track's own class.")
    return lines


def stretch_line(cf) -> str:
    """The time-stretch counterfactual on the user's tracks in words
    (:func:`tfcnn.interpret.stretch.stretch_counterfactual`)."""
    n_tracks = cf.renders["seed"].nunique()
    lo, hi = cf.difference_interval
    diff = 100 * (cf.hit_rate - cf.null_rate)
    interval = (f"{n_tracks} track{'s' if n_tracks != 1 else ''}: too few for an interval "
                f"over tracks" if math.isnan(lo)
                else f"95 % interval {100 * lo:+.0f} to {100 * hi:+.0f}")
    return (f"Your tracks, time-stretched (pitch kept) from their estimated tempo to "
            f"{cf.renders['bpm'].nunique()} class tempi: {_pct(cf.hit_rate)} of "
            f"{len(cf.renders)} stretches of {n_tracks} track{'s' if n_tracks != 1 else ''} "
            f"land in a class whose range holds the new tempo, against {_pct(cf.null_rate)} if "
            f"the prediction did not depend on the stretch (difference {diff:+.0f} points, "
            f"{interval}; "
            f"permutation {_p(cf.p_value)}); {_pct(cf.stay_rate)} keep the track's own "
            f"prediction. A stretch also smears or sharpens onsets, so this follows pace and "
            f"articulation together.")


def ablation_line(evidence: FunctionalEvidence | None) -> str:
    """Which filters matter for which class? The ablation's largest drops."""
    ab = None if evidence is None else evidence.ablation
    if ab is None:
        return ("Which filters matter: not measured (the ablation runs with --functional or "
                "the page's toggle).")
    top = ab.top(3)
    if not top:
        return (f"Which filters matter: zeroing any one filter changed no class's accuracy on "
                f"{ab.n_tracks} fresh tracks per class (steps of {100 / ab.n_tracks:.0f} "
                f"points: smaller effects go unseen).")
    drops = "; ".join(f"filter {i} → {c} -{100 * d:.0f} points" for i, c, d in top)
    return (f"Which filters matter: zeroing one filter at a time ({ab.n_tracks} fresh tracks "
            f"per class, steps of {100 / ab.n_tracks:.0f} points), the largest drops: {drops}.")


def verdict_lines(verdict: Verdict, evidence: FunctionalEvidence | None = None,
                  ranges_name: str | None = None) -> list[str]:
    """The verdict, one line per question: does the model use tempo, is tempo held in
    periodic filters (with what the test could have found), which filters matter."""
    name = verdict.ranges_name if ranges_name is None else ranges_name
    lines = functional_lines(evidence, name)
    lines.append(periodic_line(verdict) + " " + power_sentence(verdict))
    bank = bank_sentence(verdict)
    if bank:
        lines.append(bank)
    lines.append(ablation_line(evidence))
    return lines


def verdict_summary(verdict: Verdict, evidence: FunctionalEvidence | None = None) -> str:
    """One closing sentence whose words follow the figures above."""
    uses = None
    if evidence is not None:
        tests = [t.p_value for t in evidence.probe_class]
        if evidence.counterfactual is not None:
            tests.append(evidence.counterfactual.p_value)
        if tests:
            uses = min(tests) * len(tests) <= 0.05          # Bonferroni over the tests shown
    periodic = verdict.periodic.count
    held = (f"{periodic} of its {verdict.n_filters} temporal filters "
            f"{'holds' if periodic == 1 else 'hold'} periodic structure"
            if periodic else "the filter test detected no periodic temporal filter")
    if uses is None:
        return f"Whether the model uses tempo was not measured; {held}."
    if uses:
        return (f"The model's predictions follow tempo beyond chance (functional tests above); "
                f"{held}" + ("." if periodic else
                             " (a weak no where its power is low, see above): periodic "
                             "filters the test missed, or onset detectors combined by the "
                             "dense layer, may carry it."))
    if evidence.counterfactual is None:
        return (f"The probes alone do not show the predictions following tempo (the "
                f"counterfactual, the stronger test, was not run: --functional or the page's "
                f"toggle); {held}.")
    return f"The model's predictions are not shown to follow tempo; {held}."


def study_text(study: TempoStudy) -> list[str]:
    """The verdict lines of a study, or what a model without temporal filters has instead."""
    if study.verdict is None:
        code = next((n.split(":", 1)[1] for n in study.notes
                     if n.startswith("no-temporal-filters:")), "none")
        lines = [f"A {study.arch} model has no 1×n temporal filters, so their tempo cannot be "
                 f"measured; it has {OTHER_FILTERS.get(code, code)} instead."]
        return lines + functional_lines(study.functional, study.ranges_name)[:1]
    return (verdict_lines(study.verdict, study.functional, study.ranges_name)
            + [verdict_summary(study.verdict, study.functional)])


def readable_table(table: pd.DataFrame) -> pd.DataFrame:
    """The per-filter table with readable column names and the tempo as one label."""
    out = table.copy()
    out["tempo"] = [tempo_label(r.peak_bpm, r.bpm_low, r.bpm_high, strength=r.strength)
                    for r in table.itertuples()]
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


def verdict_record(verdict: Verdict, evidence: FunctionalEvidence | None = None) -> dict:
    """The verdict's numbers and lines as JSON."""
    def stmt(s: Statement | None):
        return None if s is None else {"count": s.count, "out_of": s.out_of,
                                       "filters": list(s.filters), "expected": s.expected,
                                       "p_value": s.p_value}

    return {"q": verdict.q, "test": verdict.test, "level": verdict.level,
            "periodic": stmt(verdict.periodic), "tuned": stmt(verdict.tuned),
            "relevant": stmt(verdict.relevant), "relevant_of": verdict.relevant_of,
            "class_counts": dict(verdict.class_counts), "ranges": verdict.ranges_name,
            "bank": None if verdict.bank_p is None else {
                "count_p": verdict.bank_p,
                "bands": [{"bpm": [lo, hi], "holm_p": p}
                          for (lo, hi), p in zip(verdict.bands, verdict.band_bank_p)]},
            "power": [{"pattern": c.pattern, "share": c.share, "noise_phi": c.noise_phi,
                       "level": c.level, "n": c.n, "tempi": list(c.tempi),
                       "power": list(c.power)} for c in verdict.power],
            "lines": verdict_lines(verdict, evidence),
            "summary": verdict_summary(verdict, evidence)}


def counterfactual_record(cf) -> dict:
    """A :class:`~tfcnn.interpret.functional.Counterfactual` as JSON (NaN interval: None)."""
    return {"hit_rate": cf.hit_rate, "null_rate": cf.null_rate,
            "difference": cf.hit_rate - cf.null_rate,
            "difference_interval": [None if math.isnan(v) else v
                                    for v in cf.difference_interval],
            "p_value": cf.p_value, "stay_rate": cf.stay_rate,
            "renders": plain_records(cf.renders)}


def functional_record(evidence: FunctionalEvidence | None) -> dict | None:
    """The functional tests' numbers as JSON (None when not measured)."""
    if evidence is None:
        return None
    cf, ab = evidence.counterfactual, evidence.ablation
    return {
        "probe_class": [{"kind": t.kind, "meter": t.meter, "hits": t.hits, "n": t.n,
                         "expected": t.expected, "null_range": list(t.null_range),
                         "p_value": t.p_value} for t in evidence.probe_class],
        "counterfactual": None if cf is None else counterfactual_record(cf),
        "ablation": None if ab is None else {
            "classes": list(ab.classes), "base_accuracy": ab.base.tolist(),
            "n_tracks_per_class": ab.n_tracks, "drop": ab.drop.tolist(),
            "largest": [{"filter": i, "class": c, "drop": d} for i, c, d in ab.top(5)]},
    }


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
