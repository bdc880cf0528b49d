"""Two runs side by side: read their per-fold scores, pair their folds, compare them.

A run is referred to by its folder (``runs/<id>``, its ``results.json``) or by a row of a
Table 1 file such as the shipped ``checkpoints/table1-synth.json``, written ``FILE:ARCH``
(``checkpoints/table1-synth.json:timefreq``). Folds are paired only when both runs recorded
the fingerprint of each fold's test songs and the fingerprints of their whole fold assignments
agree (:mod:`tfcnn.folds`); the statistics are :func:`tfcnn.evaluate.compare_accuracies`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfcnn.errors import RunError
from tfcnn.evaluate import DEFAULT_MARGIN, Comparison, compare_accuracies
from tfcnn.folds import PAPER_VALIDATION_FRACTION
from tfcnn.runs import read_results

#: Separator between a Table 1 file and the architecture of one of its rows.
TABLE_SEPARATOR = ":"


@dataclass(frozen=True)
class FoldScores:
    """The per-fold test results of one run, as a comparison needs them.

    Attributes
    ----------
    label : str
        How the run is named in messages and output.
    accuracies : tuple of float, shape (n_complete,)
        Song accuracy (%) of each complete fold.
    fingerprints : tuple of str, shape (n_complete,), or None
        Test-song fingerprint of each of those folds (:func:`tfcnn.folds.fold_fingerprint`);
        None when the run did not record them all.
    assignment : str or None
        Fingerprint of the run's whole fold assignment.
    test_train_ratio : float or None
        ``n_test / n_train`` of a fold: mean songs tested over mean songs the model was
        fitted on (validation songs, or the ``paper`` protocol's 1/9 of training patches,
        do not count); None when the run did not record the counts.
    n_folds : int
        Folds the run was planned with (K).
    n_test_tracks : float or None
        Mean test songs per fold (the data set's songs / K when the run did not record them;
        None when neither is known).
    n_classes : int or None
        Classes of the run (None when not recorded).
    """

    label: str
    accuracies: tuple[float, ...]
    fingerprints: tuple[str, ...] | None
    assignment: str | None
    test_train_ratio: float | None
    n_folds: int
    n_test_tracks: float | None = None
    n_classes: int | None = None

    @property
    def pairable(self) -> bool:
        """Whether the run recorded what pairing its folds needs."""
        return self.fingerprints is not None and self.assignment is not None


def _per_fold(values, n: int) -> list | None:
    """``values`` when it is a list of ``n`` non-null entries, else None."""
    if isinstance(values, list) and len(values) == n and all(v is not None for v in values):
        return values
    return None


def _tracks_per_fold(results: dict, n: int) -> float | None:
    """Songs per test fold from the data set's size, for results without per-fold counts."""
    dataset = results.get("dataset") if isinstance(results.get("dataset"), dict) else {}
    tracks = dataset.get("n_tracks") or results.get("n_tracks")
    k = results.get("n_folds") or n
    return float(tracks) / float(k) if isinstance(tracks, (int, float)) and tracks > 0 else None


def scores_from_results(results: dict, label: str) -> FoldScores:
    """:class:`FoldScores` from a ``results.json`` object (or a Table 1 row with the same keys).

    Raises
    ------
    RunError
        No per-fold accuracies in ``results``.
    """
    accuracies = results.get("per_fold")
    if not isinstance(accuracies, list) or not accuracies:
        raise RunError(f"{label}: no per-fold accuracies to compare")
    n = len(accuracies)
    fingerprints = _per_fold(results.get("fold_fingerprints"), n)
    n_train = _per_fold(results.get("n_train_tracks"), n)
    n_test = _per_fold(results.get("n_test_tracks"), n)
    ratio = None
    if n_train and n_test and min(n_train) > 0:
        # ``paper`` fits on 8/9 of its training songs' patches (the rest is validation)
        fitted = 1.0 - PAPER_VALIDATION_FRACTION if results.get("protocol") == "paper" else 1.0
        ratio = float(np.mean(n_test)) / (fitted * float(np.mean(n_train)))
    return FoldScores(
        label=label, accuracies=tuple(float(x) for x in accuracies),
        fingerprints=None if fingerprints is None else tuple(str(f) for f in fingerprints),
        assignment=results.get("assignment_fingerprint"), test_train_ratio=ratio,
        n_folds=int(results.get("n_folds") or n),
        n_test_tracks=float(np.mean(n_test)) if n_test else _tracks_per_fold(results, n),
        n_classes=len(results["classes"]) if isinstance(results.get("classes"), list) else None,
    )


def row_key(row: dict) -> str:
    """How ``FILE.json:KEY`` names a Table 1 row: its architecture, prefixed by its scenario
    and followed by its seed in a scenario table (``tempo/time``, ``tempo/time/s1``)."""
    parts = [str(row["scenario"])] if row.get("scenario") else []
    parts.append(str(row["arch"]))
    if row.get("scenario") and row.get("seed") is not None:
        parts.append(f"s{row['seed']}")
    return "/".join(parts)


def table_scores(path: str | os.PathLike) -> dict[str, FoldScores]:
    """Every row of a Table 1 file, by :func:`row_key` (``scripts/train_shipped.py``: the
    architecture; ``scripts/train_scenarios.py``: ``scenario/arch[/sSEED]``).

    A row's full results (the file's ``runs[key]``) are used where present, else the row.
    """
    path = Path(path)
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: no such Table 1 file") from None
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: not a readable Table 1 JSON file ({exc})") from None
    if not isinstance(table, dict):
        raise RunError(f"{path}: not a Table 1 file (expected a JSON object)")
    runs = table.get("runs") if isinstance(table.get("runs"), dict) else {}
    rows = {row_key(r): r for r in table.get("rows", []) if isinstance(r, dict) and "arch" in r}
    out = {}
    for arch in [*rows, *(a for a in runs if a not in rows)]:
        results = runs.get(arch) if isinstance(runs.get(arch), dict) else rows[arch]
        out[arch] = scores_from_results(results, f"{path}{TABLE_SEPARATOR}{arch}")
    return out


def load_scores(ref: str | os.PathLike) -> FoldScores:
    """Per-fold scores of a run folder or of ``TABLE.json:ARCH``.

    Raises
    ------
    RunError
        Not a run folder with results, not a Table 1 file, or no such row in it.
    """
    text = str(ref)
    file, sep, arch = text.rpartition(TABLE_SEPARATOR)
    if sep and file.endswith(".json") and not Path(text).exists():
        rows = table_scores(file)
        if arch not in rows:
            raise RunError(f"{file}: no row {arch!r}; rows: {', '.join(rows) or 'none'}")
        return rows[arch]
    if text.endswith(".json"):
        raise RunError(f"{text}: name a row of the table as {text}{TABLE_SEPARATOR}ARCH")
    results = read_results(text)
    if not results:
        raise RunError(f"{text}: no results yet (no fold is complete)")
    return scores_from_results(results, text)


def paired_accuracies(a: FoldScores, b: FoldScores) -> tuple[np.ndarray, np.ndarray]:
    """A's and B's accuracies on the folds both completed, matched by test songs.

    Returns
    -------
    (acc_a, acc_b) : tuple of np.ndarray, each shape (J,)
        Aligned: entry j of both is the fold that tested the same songs.

    Raises
    ------
    RunError
        A run without fingerprints, different fold assignments, or fewer than 2 common folds.
    """
    for run in (a, b):
        if not run.pairable:
            raise RunError(f"cannot pair folds: {run.label} did not record which songs each "
                           f"fold tested (trained before fold fingerprints); retrain it, or "
                           f"compare unpaired")
    if a.assignment != b.assignment:
        raise RunError(f"cannot pair folds: {a.label} and {b.label} split the songs into "
                       f"different folds (assignment {a.assignment} vs {b.assignment}); "
                       f"compare unpaired")
    b_index = {fp: i for i, fp in enumerate(b.fingerprints)}
    pairs = [(i, b_index[fp]) for i, fp in enumerate(a.fingerprints) if fp in b_index]
    if len(pairs) < 2:
        raise RunError(f"cannot pair folds: {a.label} and {b.label} have {len(pairs)} complete "
                       f"fold(s) in common; a comparison needs at least 2")
    ia, ib = (np.array(idx, dtype=np.int64) for idx in zip(*pairs))
    return np.asarray(a.accuracies)[ia], np.asarray(b.accuracies)[ib]


def compare_scores(a: FoldScores, b: FoldScores, *, margin: float = DEFAULT_MARGIN,
                   paired: bool = True) -> Comparison:
    """Compare run A with run B (A − B): paired fold by fold, or unpaired.

    ``n_test / n_train`` of the variance correction is the larger of the two runs' ratios
    (the wider interval); a run that did not record its song counts is taken as
    ``9 / (8 (K − 1))``, K-fold with 1/9 of the rest held out for validation as both
    protocols do, which the result notes.

    Raises
    ------
    RunError
        ``paired`` and the folds cannot be paired (see :func:`paired_accuracies`).
    ConfigError
        Fewer than 2 folds on a side, or a bad margin.
    """
    notes = []
    ratios = []
    for run in (a, b):
        if run.test_train_ratio is None:
            assumed = 1.0 / ((1.0 - PAPER_VALIDATION_FRACTION) * max(run.n_folds - 1, 1))
            notes.append(f"{run.label} did not record its song counts: n_test/n_train taken "
                         f"as 9/(8(K-1)) = {assumed:.3f}")
            ratios.append(assumed)
        else:
            ratios.append(run.test_train_ratio)
    if paired:
        acc_a, acc_b = paired_accuracies(a, b)
    else:
        acc_a, acc_b = np.asarray(a.accuracies), np.asarray(b.accuracies)
    return compare_accuracies(acc_a, acc_b, test_train_ratio=max(ratios), margin=margin,
                              paired=paired, labels=(a.label, b.label), notes=notes)
