"""Does periodic structure grow with training? The study at each snapshot of a run.

``train --snapshots 0,1,5,25`` keeps a fold's weights at those epochs (0 = the initial
weights); :func:`growth_table` runs the tempo study on each (cached on disk) and lists the
three statements' figures against the epoch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from tfcnn.errors import RunError
from tfcnn.interpret.cache import cached_study
from tfcnn.interpret.study import TempoStudy
from tfcnn.runs import list_snapshots

#: Columns of :func:`growth_table`.
GROWTH_COLUMNS: tuple[str, ...] = (
    "fold", "epoch", "periodic", "n_filters", "tuned", "tuned_expected", "relevant",
    "relevant_expected", "path",
)


def growth_table(run_dir: str | os.PathLike, *,
                 study: Callable[..., TempoStudy] = cached_study, **study_params
                 ) -> pd.DataFrame:
    """The graded verdict's figures at every snapshot of a run, one row per snapshot.

    Parameters
    ----------
    run_dir : path
        A run folder trained with ``--snapshots``.
    study : callable, keyword-only
        ``study(path, **study_params) -> TempoStudy`` (default: the disk-cached study).
    **study_params
        Passed on (``tempi``, ``ranges_name``, ``probe_bpms``, ...).

    Returns
    -------
    DataFrame with :data:`GROWTH_COLUMNS`; ``tuned``/``relevant`` are NaN when not measured.

    Raises
    ------
    RunError
        The folder has no snapshots (the message says how to make them).
    """
    snapshots = list_snapshots(run_dir)
    if not snapshots:
        raise RunError(f"{run_dir}: no snapshots (train with --snapshots 0,1,5,25 to keep "
                       "some)")
    rows = []
    for fold, epoch, path in snapshots:
        verdict = study(path, **study_params).verdict
        if verdict is None:
            raise RunError(f"{path}: the model has no temporal filters to study")
        rows.append({"fold": fold, "epoch": epoch, **verdict.figures(), "path": str(path)})
    return pd.DataFrame(rows, columns=list(GROWTH_COLUMNS))


def run_with_snapshots(checkpoint_path: str | os.PathLike) -> Path | None:
    """The run folder of a fold checkpoint (``<run>/fold-XX/model.safetensors``) or of a
    snapshot, when that run kept snapshots; else None."""
    path = Path(checkpoint_path)
    for run_dir in (path.parent.parent, path.parent.parent.parent):
        if list_snapshots(run_dir):
            return run_dir
    return None
