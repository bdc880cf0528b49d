"""Tables of result sets for download: numbers in numeric columns, one table per CSV file.

Every frame names the result set and its data set in columns (and :func:`csv_name` in the
file name), so a downloaded file says what it holds without the page around it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tfcnn.errors import RunError
from tfcnn.result_sets import ResultSet


def _identity(rs: ResultSet) -> dict:
    return {"run": rs.label, "source": rs.source, "dataset": rs.dataset,
            "architecture": rs.arch}


def per_fold_frame(sets: Sequence[ResultSet]) -> pd.DataFrame:
    """Each complete fold's song accuracy, one row per result set and fold (a long table).

    Returns
    -------
    pd.DataFrame, shape (sum of complete folds, 6)
        ``run``, ``source``, ``dataset``, ``architecture``, ``fold`` (int),
        ``accuracy (%)`` (float).
    """
    rows = [{**_identity(rs), "fold": fold, "accuracy (%)": float(acc)}
            for rs in sets for fold, acc in zip(rs.folds, rs.accuracies)]
    frame = pd.DataFrame(rows, columns=["run", "source", "dataset", "architecture", "fold",
                                        "accuracy (%)"])
    return frame.astype({"fold": int, "accuracy (%)": float})


def _counts(rs: ResultSet) -> np.ndarray:
    if rs.confusion is None:
        raise RunError(f"{rs.label}: no confusion matrix in its results")
    return np.rint(rs.confusion).astype(np.int64)  # song counts, stored as JSON numbers


def confusion_frame(rs: ResultSet) -> pd.DataFrame:
    """The song confusion matrix summed over folds: index true class, columns predicted.

    Returns
    -------
    pd.DataFrame, shape (n_classes, n_classes), int64
        Index named ``true \\ predicted``; write with ``index=True``.

    Raises
    ------
    RunError
        ``rs`` has no confusion matrix.
    """
    frame = pd.DataFrame(_counts(rs), index=list(rs.classes), columns=list(rs.classes))
    frame.index.name = "true \\ predicted"
    return frame


def recall_frame(rs: ResultSet) -> pd.DataFrame:
    """Per-class recall from the confusion matrix: songs of each class voted right.

    Returns
    -------
    pd.DataFrame, shape (n_classes, 8)
        ``run``, ``source``, ``dataset``, ``architecture``, ``class``, ``songs`` (int, tested
        over all folds), ``correct`` (int), ``recall (%)`` (float; NaN for a class with no
        test song).

    Raises
    ------
    RunError
        ``rs`` has no confusion matrix.
    """
    counts = _counts(rs)
    songs = counts.sum(axis=1)  # (n_classes,) songs tested per true class
    correct = np.diag(counts)
    recall = np.divide(100.0 * correct, songs, out=np.full(len(songs), np.nan),
                       where=songs > 0)
    return pd.DataFrame({**_identity(rs), "class": list(rs.classes), "songs": songs,
                         "correct": correct, "recall (%)": recall})


#: First characters a spreadsheet reads as a formula (or a hidden one: tab, carriage return).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutral_cell(value):
    """``value``, with a ``'`` put before a string a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_text(frame: pd.DataFrame, *, index: bool = False) -> str:
    """``frame`` as CSV for a user to download: every text cell, column name and index label
    that starts with ``= + - @``, a tab or a carriage return gets a leading ``'`` (a track
    named ``=HYPERLINK(...)`` stays text in a spreadsheet); numbers are written as they are."""
    safe = frame.copy()
    safe.columns = [neutral_cell(c) for c in safe.columns]
    if index:
        safe.index = [neutral_cell(i) for i in safe.index]
    for column in safe.columns[[dt == object or pd.api.types.is_string_dtype(dt)
                                for dt in safe.dtypes]]:
        safe[column] = safe[column].map(neutral_cell)
    return safe.to_csv(index=index)


def results_json(sets: Sequence[ResultSet]) -> str:
    """Every set's identity, Table 1 numbers and per-fold accuracies, as a JSON list."""
    return json.dumps([{"label": r.label, "source": r.source, "dataset": r.dataset,
                        "arch": r.arch, "n_params": r.n_params, "mean": r.mean, "std": r.std,
                        "folds": list(r.folds), "per_fold": r.accuracies} for r in sets],
                      indent=2)


def csv_name(table: str, *, dataset: str, label: str | None = None) -> str:
    """A download's file name: ``<table>_<dataset>[_<label>].csv``, only ``[A-Za-z0-9._-]``."""
    parts = [table, dataset] + ([label] if label else [])
    return "_".join(re.sub(r"[^A-Za-z0-9._-]+", "-", p).strip("-") or "unnamed"
                    for p in parts) + ".csv"


def datasets_of(sets: Sequence[ResultSet]) -> str:
    """The data set names of ``sets`` joined with ``-`` (for a file name), first seen first."""
    return "-".join(dict.fromkeys(rs.dataset for rs in sets)) or "none"
