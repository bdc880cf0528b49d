"""Two result sets side by side: pair their folds, compare them.

The result sets are :class:`tfcnn.result_sets.ResultSet` (a run folder, or a row of a Table 1
file such as ``checkpoints/table1-synth.json:timefreq``, read by
:func:`tfcnn.result_sets.load_result_set`). Folds are paired only when both recorded the
fingerprint of each fold's test songs and the fingerprints of their whole fold assignments
agree (:mod:`tfcnn.folds`); the statistics are :func:`tfcnn.evaluate.compare_accuracies`.
"""

from __future__ import annotations

import numpy as np

from tfcnn.errors import RunError
from tfcnn.evaluate import DEFAULT_MARGIN, Comparison, compare_accuracies
from tfcnn.folds import PAPER_VALIDATION_FRACTION
from tfcnn.result_sets import ResultSet


def paired_accuracies(a: ResultSet, b: ResultSet) -> tuple[np.ndarray, np.ndarray]:
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


def compare_scores(a: ResultSet, b: ResultSet, *, margin: float = DEFAULT_MARGIN,
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
