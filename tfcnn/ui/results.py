"""What the Results page compares: result sets of runs and of the shipped models, and our
Table 1 beside the paper's."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tfcnn.config import CLASSES
from tfcnn.locations import SHIPPED_TABLE, checkpoints_dir
from tfcnn.runs import read_run
from tfcnn.table1 import paper_row_for


def fold_accuracies(results: dict) -> list[float]:
    """Per-fold song accuracies (%) of a ``results.json`` (its ``per_fold``); [] without."""
    per_fold = results.get("per_fold")
    return [float(v) for v in per_fold] if isinstance(per_fold, list) else []


@dataclass(frozen=True)
class ResultSet:
    """One row of the Results page: a run's (or the shipped) results."""

    label: str
    arch: str
    n_params: int | None
    mean: float | None
    std: float | None
    accuracies: list[float]
    confusion: np.ndarray | None
    classes: tuple[str, ...]
    history: pd.DataFrame
    source: str  # "shipped" | "run"


def result_set(label: str, results: dict, *, source: str, arch: str | None = None,
               history: pd.DataFrame | None = None) -> ResultSet:
    """One ``results.json`` as a :class:`ResultSet` (missing keys become None)."""
    accs = fold_accuracies(results)
    mean = results.get("mean")
    std = results.get("std")
    if mean is None and accs:
        mean, std = float(np.mean(accs)), float(np.std(accs))
    confusion = results.get("confusion")
    classes = tuple(results.get("classes") or CLASSES)
    conf = np.asarray(confusion, dtype=float) if confusion is not None else None
    if conf is not None and conf.shape != (len(classes), len(classes)):
        conf = None
    return ResultSet(label=label, arch=str(arch or results.get("arch", "?")),
                     n_params=results.get("n_params"), mean=mean, std=std, accuracies=accs,
                     confusion=conf, classes=classes,
                     history=history if history is not None else pd.DataFrame(),
                     source=source)


def shipped_results() -> list[ResultSet]:
    """The shipped SynthBallroom Table 1 (``checkpoints/table1-synth.json``); [] if absent."""
    try:
        table = json.loads((checkpoints_dir() / SHIPPED_TABLE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    if not isinstance(table, dict):
        return []
    curves = table.get("curves", {})
    return [result_set(f"shipped {arch}", results, source="shipped", arch=arch,
                       history=pd.DataFrame(curves.get(arch, [])))
            for arch, results in table.get("runs", {}).items() if isinstance(results, dict)]


def run_results(run_dir: str | os.PathLike) -> ResultSet | None:
    """Results of a training run folder (None when no fold is complete yet)."""
    run = read_run(Path(run_dir))
    if not run.results:
        return None
    return result_set(run.name, {**run.results, "n_params": run.n_params}, source="run",
                      arch=run.config.get("arch"), history=run.history)


def results_table(sets: Sequence[ResultSet]) -> pd.DataFrame:
    """Our Table 1 beside the paper's: one row per result set."""
    rows = []
    for rs in sets:
        paper = paper_row_for(rs.arch)  # timefreq-init reproduces the timefreq row
        rows.append({
            "run": rs.label, "architecture": rs.arch, "#params": rs.n_params,
            "accuracy (%)": (f"{rs.mean:.2f} ± {rs.std:.2f}" if rs.mean is not None
                             and rs.std is not None else "—"),
            "mean": rs.mean, "std": rs.std, "folds": len(rs.accuracies),
            "paper #params": paper.params if paper else None,
            "paper accuracy (%)": f"{paper.mean:.2f} ± {paper.std:.2f}" if paper else "—",
        })
    return pd.DataFrame(rows)
