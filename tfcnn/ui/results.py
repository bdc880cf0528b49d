"""The Results page's views of result sets (:mod:`tfcnn.result_sets`): the result sets on
offer, Table 1 beside the paper's, one result in detail, and the CSV/JSON downloads
(tables from :mod:`tfcnn.export`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import streamlit as st

from tfcnn import export, plots
from tfcnn.errors import TfcnnError
from tfcnn.result_sets import RUN, UNRECORDED, ResultSet, results_table, run_results

#: How the table's numbers are shown (the CSV keeps them unrounded).
_TABLE_COLUMNS = {
    "#params": st.column_config.NumberColumn(format="localized"),
    "paper #params": st.column_config.NumberColumn(format="localized"),
    "folds": st.column_config.TextColumn(help="complete / planned"),
    "recipe": st.column_config.TextColumn(help="preset · epoch cap · protocol"),
    **{c: st.column_config.NumberColumn(format="%.2f")
       for c in ("mean (%)", "std (%)", "paper mean (%)", "paper std (%)")},
}


def run_result_sets(folders: Sequence[Path]) -> dict[str, tuple[ResultSet, Path]]:
    """Result sets of the run folders that have a complete fold, by label, with the folder;
    an unreadable run is reported with ``st.warning`` and left out."""
    found = {}
    for folder in folders:
        try:
            rs = run_results(folder)
        except TfcnnError as exc:
            st.warning(str(exc))
            continue
        if rs is not None:
            found[rs.label] = (rs, folder)
    return found


def shown_table(sets: Sequence[ResultSet]) -> pd.DataFrame:
    """Table 1 as the page shows it: :func:`tfcnn.result_sets.results_table` with what each
    row was trained under folded into two short columns next to its name, so they are in
    the first screen (``folds`` "2/10": complete of planned; ``recipe`` "quick · ≤ 10 epochs ·
    clean"). The CSV keeps them as separate columns."""
    table = results_table(sets)
    folds = [f"{c}/{p}" for c, p in zip(table["folds complete"], table["folds planned"])]
    recipe = []
    for preset, cap, protocol in zip(table["preset"], table["max epochs"], table["protocol"]):
        epochs = None if pd.isna(cap) else f"≤ {cap} epoch{'' if cap == 1 else 's'}"
        parts = [p for p in (preset, epochs, protocol) if p and p != UNRECORDED]
        recipe.append(" · ".join(parts) or "not recorded")
    table = table.drop(columns=["source", "folds complete", "folds planned", "preset",
                                "max epochs", "protocol"])
    table.insert(2, "folds", folds)
    table.insert(3, "recipe", recipe)
    return table


def table_view(sets: Sequence[ResultSet]) -> None:
    """Table 1 of ``sets`` beside the paper's, numbers in their own columns
    (:func:`shown_table`)."""
    st.dataframe(shown_table(sets), hide_index=True, column_config=_TABLE_COLUMNS)


def detail_view(sets: Sequence[ResultSet]) -> ResultSet:
    """Pick one result set (a run's first, if any); show its confusion matrix, per-class
    recall and training curves, one under another; return it."""
    own = [i for i, r in enumerate(sets) if r.source == RUN]
    detail = st.selectbox("Result", [rs.label for rs in sets], index=own[0] if own else 0)
    rs = next(r for r in sets if r.label == detail)
    if rs.confusion is not None:
        st.plotly_chart(plots.confusion_heatmap(rs.confusion, rs.classes),
                        key=f"confusion-{rs.label}")
        st.dataframe(export.recall_frame(rs)[["class", "songs", "correct", "recall (%)"]],
                     hide_index=True,
                     column_config={"recall (%)": st.column_config.NumberColumn(format="%.1f")})
        st.caption("Per-class recall: of each class's test songs (over all folds), the share "
                   "the song vote got right.")
    else:
        st.info("No confusion matrix in these results.")
    if not rs.history.empty:
        st.plotly_chart(plots.training_curves(rs.history), key=f"curves-{rs.label}")
        st.caption(f"{rs.label}: loss and accuracy per epoch of each of its "
                   f"{rs.history['fold'].nunique()} folds on its training and validation "
                   "patches.")
    else:
        st.info("No training curves for these results.")
    return rs


def export_view(sets: Sequence[ResultSet], detail: ResultSet) -> None:
    """One download per table: Table 1, per-fold accuracies (long), JSON of every set, and
    the confusion matrix and per-class recall of ``detail``."""
    datasets = export.datasets_of(sets)
    c1, c2, c3 = st.columns(3)
    c1.download_button("Table 1 (CSV)", export.csv_text(results_table(sets)),
                       file_name=export.csv_name("table1", dataset=datasets), mime="text/csv")
    c2.download_button("Per-fold accuracies (CSV)",
                       export.csv_text(export.per_fold_frame(sets)),
                       file_name=export.csv_name("per-fold", dataset=datasets),
                       mime="text/csv")
    c3.download_button("All results (JSON)", export.results_json(sets),
                       file_name=f"results_{datasets}.json", mime="application/json")
    if detail.confusion is None:
        return
    d1, d2 = st.columns(2)
    d1.download_button(f"Confusion matrix of {detail.label} (CSV)",
                       export.csv_text(export.confusion_frame(detail), index=True),
                       file_name=export.csv_name("confusion", dataset=detail.dataset,
                                                 label=detail.label), mime="text/csv")
    d2.download_button(f"Per-class recall of {detail.label} (CSV)",
                       export.csv_text(export.recall_frame(detail)),
                       file_name=export.csv_name("recall", dataset=detail.dataset,
                                                 label=detail.label), mime="text/csv")
