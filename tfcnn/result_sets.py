"""Result sets: one training run's (or one shipped Table 1 row's) cross-validation results,
read into one shape, and our Table 1 beside the paper's built from them.

A result set comes from a run folder (``results.json`` and ``progress.jsonl``, read through
:mod:`tfcnn.runs`) or from a row of a Table 1 file such as the shipped
``checkpoints/table1-synth.json`` (its ``runs[arch]`` and per-fold ``curves[arch]``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tfcnn.config import CLASSES
from tfcnn.runs import read_run
from tfcnn.table1 import paper_row_for

#: ``ResultSet.source`` of a row of a shipped Table 1 file and of a local training run.
SHIPPED, RUN = "shipped", "run"
#: ``ResultSet.dataset`` of results that did not record their data set.
UNKNOWN_DATASET = "unknown"


def fold_accuracies(results: dict) -> list[float]:
    """Per-fold song accuracies (%) of a ``results.json`` (its ``per_fold``); [] without."""
    per_fold = results.get("per_fold")
    return [float(v) for v in per_fold] if isinstance(per_fold, list) else []


@dataclass(frozen=True)
class ResultSet:
    """One architecture's cross-validation results, from a run or a shipped table.

    Attributes
    ----------
    label : str
        Unique name on the Results page (``shipped <arch>`` or the run folder's name).
    arch : str
        Architecture name.
    dataset : str
        Name of the data set it was trained and tested on (:data:`UNKNOWN_DATASET` when
        not recorded).
    n_params : int or None
        Trainable parameters of the model.
    mean, std : float or None
        Song accuracy (%) over the complete folds, mean and ``np.std``.
    accuracies : list of float, shape (n_complete,)
        Song accuracy (%) of each complete fold.
    folds : tuple of int, shape (n_complete,)
        Index of each complete fold, aligned with ``accuracies``.
    confusion : np.ndarray, shape (n_classes, n_classes), or None
        Song counts summed over the folds (rows: true class, columns: predicted).
    classes : tuple of str, shape (n_classes,)
    history : pd.DataFrame
        Epoch records (``fold``, ``epoch``, ``train_loss``, ``train_acc``, ``val_loss``,
        ``val_acc``, optional ``stage``; accuracies as fractions); empty when none.
    source : str
        :data:`SHIPPED` or :data:`RUN`.
    """

    label: str
    arch: str
    dataset: str
    n_params: int | None
    mean: float | None
    std: float | None
    accuracies: list[float]
    folds: tuple[int, ...]
    confusion: np.ndarray | None
    classes: tuple[str, ...]
    history: pd.DataFrame
    source: str

    @property
    def series(self) -> str:
        """Name of the group it is drawn in: all shipped rows of a data set share one."""
        return f"{SHIPPED} ({self.dataset})" if self.source == SHIPPED else self.label


def _dataset_name(results: dict) -> str:
    dataset = results.get("dataset")
    if isinstance(dataset, dict):
        return str(dataset.get("name") or UNKNOWN_DATASET)
    return str(dataset) if dataset else UNKNOWN_DATASET


def result_set(label: str, results: dict, *, source: str, arch: str | None = None,
               history: pd.DataFrame | None = None) -> ResultSet:
    """One ``results.json`` (or Table 1 row) as a :class:`ResultSet`; missing keys become
    None (``mean``/``std`` are computed from ``per_fold`` when only it is there)."""
    accs = fold_accuracies(results)
    mean = results.get("mean")
    std = results.get("std")
    if mean is None and accs:
        mean, std = float(np.mean(accs)), float(np.std(accs))
    folds = results.get("folds")
    if not (isinstance(folds, list) and len(folds) == len(accs)):
        folds = range(len(accs))  # older files: complete folds in order from 0
    confusion = results.get("confusion")
    classes = tuple(results.get("classes") or CLASSES)
    conf = np.asarray(confusion, dtype=float) if confusion is not None else None
    if conf is not None and conf.shape != (len(classes), len(classes)):
        conf = None
    return ResultSet(label=label, arch=str(arch or results.get("arch", "?")),
                     dataset=_dataset_name(results), n_params=results.get("n_params"),
                     mean=mean, std=std, accuracies=accs, folds=tuple(int(k) for k in folds),
                     confusion=conf, classes=classes,
                     history=history if history is not None else pd.DataFrame(),
                     source=source)


def _read_table(path: Path) -> dict:
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return table if isinstance(table, dict) else {}


def shipped_results(path: str | os.PathLike) -> list[ResultSet]:
    """The rows of a Table 1 file (``checkpoints/table1-synth.json``) with their per-fold
    training curves; [] when the file is absent or unreadable."""
    table = _read_table(Path(path))
    runs = table.get("runs") if isinstance(table.get("runs"), dict) else {}
    curves = table.get("curves") if isinstance(table.get("curves"), dict) else {}
    return [result_set(f"{SHIPPED} {arch}", results, source=SHIPPED, arch=arch,
                       history=pd.DataFrame(curves.get(arch) or []))
            for arch, results in runs.items() if isinstance(results, dict)]


def not_retrained(path: str | os.PathLike) -> dict[str, str]:
    """Architectures a Table 1 file leaves out, with the file's reason for each."""
    notes = _read_table(Path(path)).get("not_retrained")
    return {str(k): str(v) for k, v in notes.items()} if isinstance(notes, dict) else {}


def run_results(run_dir: str | os.PathLike) -> ResultSet | None:
    """Results of a training run folder (None when no fold is complete yet)."""
    run = read_run(Path(run_dir))
    if not run.results:
        return None
    return result_set(run.name, {**run.results, "n_params": run.n_params}, source=RUN,
                      arch=run.config.get("arch"), history=run.history)


def results_table(sets: Sequence[ResultSet]) -> pd.DataFrame:
    """Our Table 1 beside the paper's: one row per result set, numbers as numbers.

    Returns
    -------
    pd.DataFrame, one row per set
        ``run``, ``architecture``, ``mean (%)``, ``std (%)``, ``paper mean (%)``,
        ``paper std (%)`` (the paper's Ballroom row, NaN for an architecture it lacks),
        ``folds`` (complete), ``#params``, ``paper #params``, ``dataset``, ``source``.
    """
    rows = []
    for rs in sets:
        paper = paper_row_for(rs.arch)  # timefreq-init reproduces the timefreq row
        rows.append({
            "run": rs.label, "source": rs.source, "dataset": rs.dataset,
            "architecture": rs.arch, "#params": rs.n_params,
            "mean (%)": rs.mean, "std (%)": rs.std, "folds": len(rs.accuracies),
            "paper #params": paper.params if paper else None,
            "paper mean (%)": paper.mean if paper else None,
            "paper std (%)": paper.std if paper else None,
        })
    # ours beside the paper's first, so a narrow view shows the comparison
    table = pd.DataFrame(rows, columns=["run", "architecture", "mean (%)", "std (%)",
                                        "paper mean (%)", "paper std (%)", "folds", "#params",
                                        "paper #params", "dataset", "source"])
    for column in ("#params", "paper #params"):
        table[column] = table[column].astype("Int64")  # counts stay integers, None → <NA>
    for column in ("mean (%)", "std (%)", "paper mean (%)", "paper std (%)"):
        table[column] = table[column].astype(float)
    table["folds"] = table["folds"].astype(int)
    return table


def params_points(sets: Sequence[ResultSet]) -> pd.DataFrame:
    """The points of :func:`tfcnn.plots.accuracy_vs_params`: sets with a parameter count and
    a mean, as ``series``, ``arch``, ``params``, ``mean``, ``std`` (0 when unknown),
    ``hover``."""
    rows = [{"series": rs.series, "arch": rs.arch, "params": float(rs.n_params),
             "mean": float(rs.mean), "std": float(rs.std or 0.0),
             "hover": f"{rs.label} ({rs.dataset}, {len(rs.accuracies)} folds)"}
            for rs in sets if rs.n_params and rs.mean is not None]
    return pd.DataFrame(rows, columns=["series", "arch", "params", "mean", "std", "hover"])
