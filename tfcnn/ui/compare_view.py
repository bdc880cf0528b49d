"""The Results page's comparison of two result sets: margin input, interval, p values, verdict.

The numbers are :func:`tfcnn.compare.compare_scores`, the function behind
``python -m tfcnn compare``; this module only draws the result sets it is given and the result.
Folds are paired when both result sets tested the same songs in each fold; otherwise the
panel says why and shows the unpaired comparison, labelled as such.
"""

from __future__ import annotations

import streamlit as st

from tfcnn.compare import compare_scores, paired_accuracies
from tfcnn.errors import RunError, TfcnnError
from tfcnn.evaluate import ALPHA, DEFAULT_MARGIN, POWER, Comparison
from tfcnn.result_sets import ResultSet

#: How the verdict is reached, shown under it (the rule of tfcnn.evaluate.verdict_of).
RULE = ("Verdict rule: the 95 % interval of A − B entirely above 0 → A better, entirely "
        "below 0 → B better; otherwise equivalent within ±m points when both one-sided tests "
        f"(TOST) give p < {ALPHA:g}; otherwise inconclusive. A p ≥ {ALPHA:g} alone is not "
        "evidence that two results are the same: beside every verdict stands the smallest "
        f"difference this design finds {100 * POWER:.0f} % of the time (plan a larger design "
        "with `python -m tfcnn plan`).")


def _compare(a: ResultSet, b: ResultSet, margin: float) -> tuple[Comparison, str | None]:
    """Paired when possible, else unpaired; with the reason pairing was not possible."""
    try:
        paired_accuracies(a, b)
    except RunError as exc:
        return compare_scores(a, b, margin=margin, paired=False), str(exc)
    return compare_scores(a, b, margin=margin, paired=True), None


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def named_verdict(verdict: str, a: str, b: str) -> str:
    """``verdict`` with "A better" / "B better" naming the side (``a`` or ``b``)."""
    return {"A better": f"{a} better", "B better": f"{b} better"}.get(verdict, verdict)


#: The paper's headline comparisons (A, B), by architecture: Time-Frequency against Black-box
#: (its efficiency claim), the original code's initialisation against plain Time-Frequency,
#: and Time alone against Black-box.
HEADLINE_PAIRS: tuple[tuple[str, str], ...] = (("timefreq", "blackbox"),
                                               ("timefreq-init", "timefreq"),
                                               ("time", "blackbox"))


def headline_rows(sets: list[ResultSet], *, margin: float = DEFAULT_MARGIN) -> list[dict]:
    """One row per :data:`HEADLINE_PAIRS` pair whose architectures are both in ``sets``
    (the first set of each architecture): A − B, its 95 % interval, the verdict and what
    the design could have detected; the numbers of ``python -m tfcnn compare``."""
    by_arch: dict[str, ResultSet] = {}
    for rs in sets:
        if len(rs.accuracies) >= 2:
            by_arch.setdefault(rs.arch, rs)
    rows = []
    for a, b in HEADLINE_PAIRS:
        if a not in by_arch or b not in by_arch:
            continue
        try:
            result, unpaired_because = _compare(by_arch[a], by_arch[b], margin)
        except TfcnnError:
            continue
        rows.append({"A vs B": f"{a} vs {b}", "A − B (points)": round(result.mean_difference, 2),
                     "95 % interval": f"[{result.ci95[0]:+.2f}, {result.ci95[1]:+.2f}]",
                     "verdict": named_verdict(result.verdict, a, b),
                     "detectable (80 % power)": f"±{result.mdd:.1f}",
                     "paired": "yes" if unpaired_because is None else "no"})
    return rows


def headline_panel(sets: list[ResultSet]) -> None:
    """The headline comparisons of :func:`headline_rows` as a table, with the rule."""
    rows = headline_rows(sets)
    if not rows:
        return
    st.dataframe(rows, hide_index=True)
    st.caption(f"Folds paired by their test songs; equivalence margin ±{DEFAULT_MARGIN:g} "
               f"points. {RULE} Same numbers: `python -m tfcnn compare "
               "checkpoints/table1-synth.json:A checkpoints/table1-synth.json:B`.")


def comparison_panel(options: dict[str, ResultSet]) -> None:
    """Pick A and B among ``options`` and a margin; show the comparison of A − B."""
    options = {label: s for label, s in options.items() if len(s.accuracies) >= 2}
    if len(options) < 2:
        st.info("Choose two result sets with at least 2 complete folds each to compare them.")
        return
    labels = list(options)
    c1, c2, c3 = st.columns([2, 2, 1])
    a = c1.selectbox("A", labels, index=0)
    b = c2.selectbox("B", labels, index=1)
    margin = c3.number_input("Equivalence margin (± points)", min_value=0.1, max_value=50.0,
                             value=DEFAULT_MARGIN, step=0.5)
    try:
        result, unpaired_because = _compare(options[a], options[b], float(margin))
    except TfcnnError as exc:
        st.warning(str(exc))
        return
    if unpaired_because is None:
        st.caption(f"Paired: both tested the same songs in each of {result.n_folds[0]} folds.")
    else:
        st.warning(f"Unpaired comparison: {unpaired_because}.")
    verdict = named_verdict(result.verdict, f"A ({a})", f"B ({b})")
    st.markdown(f"**Verdict: {verdict}**: {result.power_sentence}.")
    # two rows: the interval needs the width of two p values to show in full
    cols = st.columns([1, 2, 1])
    cols[0].metric("A − B (points)", f"{result.mean_difference:+.2f}")
    cols[1].metric("95 % interval", f"[{result.ci95[0]:+.2f}, {result.ci95[1]:+.2f}]")
    cols[2].metric(f"Detectable ({100 * POWER:.0f} % power)", f"±{result.mdd:.1f}",
                   help="Minimum detectable difference: a true difference this large is found "
                        f"{100 * POWER:.0f} % of the time by this comparison (same corrected "
                        "t, these folds, this fold variance); smaller ones can go unnoticed.")
    cols = st.columns(3)
    cols[0].metric("p (corrected t)", _p(result.p_corrected_t))
    cols[1].metric("p (Wilcoxon)", _p(result.p_wilcoxon))
    cols[2].metric(f"p (equivalence ±{result.margin:g})", _p(result.p_equivalence))
    kind = "paired" if result.paired else "unpaired (Welch-type)"
    st.caption(
        f"{kind}; {result.n_folds[0]} vs {result.n_folds[1]} folds. Interval and p from the "
        f"corrected resampled t-test (Nadeau & Bengio 2003), n_test/n_train = "
        f"{result.test_train_ratio:.3f}: folds share training songs, so a plain t-test over "
        f"folds would be too confident. The {result.rank_test} p ignores that sharing and is "
        f"shown for reference. {RULE}")
    for note in result.notes:
        st.caption(f"Note: {note}")
