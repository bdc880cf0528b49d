"""Song-level evaluation: majority vote over patches, per-fold metrics, mean ± std over folds.

A song is longer than one 80-frame patch, so the network gives one estimate per patch and
"a simple majority vote approach serves to decide the estimated class" (Pons et al. 2016, §2).
Accuracies are in percent; the spread over folds is ``np.std`` (population), as the original.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tfcnn.errors import ConfigError


def _check_probs(patch_probs, what: str = "patch_probs") -> np.ndarray:
    p = np.asarray(patch_probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] == 0:
        raise ConfigError(
            f"{what} must have shape (n_patches >= 1, n_classes >= 1), got {p.shape}"
        )
    if not np.all(np.isfinite(p)):
        raise ConfigError(f"{what} contains non-finite values")
    return p


def song_vote(patch_probs) -> int:
    """Class of a song by majority vote over its patches.

    Each patch votes for its arg-max class; the most voted class wins. A tie between classes
    goes to the tied class with the highest probability summed over the patches (then to the
    lowest index).

    Parameters
    ----------
    patch_probs : array-like, shape (n_patches, n_classes)
        Per-patch class probabilities.

    Returns
    -------
    int
        Class index.
    """
    p = _check_probs(patch_probs)
    votes = np.bincount(p.argmax(axis=1), minlength=p.shape[1])  # (n_classes,)
    tied = np.flatnonzero(votes == votes.max())
    return int(tied[np.argmax(p.sum(axis=0)[tied])])


def fold_metrics(track_patch_probs: list, labels, n_classes: int) -> dict:
    """Song and patch accuracy of one fold's test tracks.

    Parameters
    ----------
    track_patch_probs : list of array-like, each (n_patches_i, n_classes)
        Per-patch probabilities of each test track.
    labels : array-like of int, shape (n_tracks,)
        True class per track.
    n_classes : int

    Returns
    -------
    dict
        ``accuracy`` (song-level vote, %), ``patch_accuracy`` (%, every patch counted),
        ``confusion`` (n_classes × n_classes list, rows = true, columns = predicted, songs),
        ``predictions`` (list of int per track), ``n_tracks``, ``n_patches``.
    """
    labels = np.asarray(labels)
    if len(track_patch_probs) != labels.size or labels.size == 0:
        raise ConfigError(
            f"need one probability array per label and at least one track, got "
            f"{len(track_patch_probs)} arrays for {labels.size} labels"
        )
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ConfigError(
            f"labels must lie in [0, {n_classes}), got {labels.min()}..{labels.max()}"
        )
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    predictions, patch_hits, n_patches = [], 0, 0
    for probs, label in zip(track_patch_probs, labels):
        p = _check_probs(probs)
        if p.shape[1] != n_classes:
            raise ConfigError(f"patch_probs have {p.shape[1]} classes, expected {n_classes}")
        vote = song_vote(p)
        predictions.append(vote)
        confusion[label, vote] += 1
        patch_hits += int(np.sum(p.argmax(axis=1) == label))
        n_patches += p.shape[0]
    return {
        "accuracy": 100.0 * float(np.trace(confusion)) / labels.size,
        "patch_accuracy": 100.0 * patch_hits / n_patches,
        "confusion": confusion.tolist(),
        "predictions": predictions,
        "n_tracks": int(labels.size),
        "n_patches": int(n_patches),
    }


def summarise(per_fold: list[dict]) -> dict:
    """Mean ± std over folds (Table 1), in percent.

    Parameters
    ----------
    per_fold : list of dict
        :func:`fold_metrics` results (at least ``accuracy``; ``patch_accuracy`` and
        ``confusion`` when present).

    Returns
    -------
    dict
        ``mean``, ``std`` (``np.std``, population, as the original code), ``per_fold``
        (accuracy per fold), ``patch_mean``, ``patch_std``, ``per_fold_patch``,
        ``confusion`` (summed over folds, or None), ``n_folds``.
    """
    if not per_fold:
        raise ConfigError("summarise needs at least one fold result, got none")
    acc = np.array([float(f["accuracy"]) for f in per_fold])
    out = {"mean": float(acc.mean()), "std": float(acc.std()), "per_fold": acc.tolist(),
           "n_folds": len(per_fold)}
    if all("patch_accuracy" in f for f in per_fold):
        patch = np.array([float(f["patch_accuracy"]) for f in per_fold])
        out.update(patch_mean=float(patch.mean()), patch_std=float(patch.std()),
                   per_fold_patch=patch.tolist())
    confusions = [np.asarray(f["confusion"]) for f in per_fold if f.get("confusion") is not None]
    out["confusion"] = np.sum(confusions, axis=0).tolist() if confusions else None
    return out


@dataclass(frozen=True)
class PairedTest:
    """Paired comparison of two result sets over the same folds."""

    n_folds: int
    mean_difference: float  # a - b, accuracy points
    wilcoxon_p: float | None
    ttest_p: float | None
    note: str

    @property
    def significant(self) -> bool:
        """Whether the Wilcoxon test (or the t-test without it) gives p < 0.05."""
        p = self.wilcoxon_p if self.wilcoxon_p is not None else self.ttest_p
        return p is not None and p < 0.05


def paired_test(a: Sequence[float], b: Sequence[float]) -> PairedTest:
    """Wilcoxon signed-rank and paired t-test of per-fold accuracies ``a`` vs ``b``.

    Raises :class:`ConfigError` when the two runs do not have the same number of folds.
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ConfigError(f"a paired test needs the same folds on both sides, got {a.size} "
                          f"and {b.size} folds")
    n = a.size
    if n < 2:
        raise ConfigError(f"a paired test needs at least 2 folds, got {n}")
    diff = a - b
    notes = []
    wilcoxon_p = ttest_p = None
    if np.allclose(diff, 0.0):
        notes.append("the two runs have identical per-fold accuracies")
    else:
        try:
            wilcoxon_p = float(stats.wilcoxon(a, b).pvalue)
        except ValueError as exc:
            notes.append(f"Wilcoxon test not available: {exc}")
        if np.std(diff) > 0:
            ttest_p = float(stats.ttest_rel(a, b).pvalue)
    if n < 6:
        # With n <= 5 pairs the smallest two-sided Wilcoxon p is 2 / 2**n >= 0.0625.
        notes.append(f"only {n} folds: the Wilcoxon test cannot reach p < 0.05 with fewer "
                     f"than 6 folds; train 10 folds for a meaningful test")
    return PairedTest(n_folds=n, mean_difference=float(diff.mean()), wilcoxon_p=wilcoxon_p,
                      ttest_p=ttest_p, note="; ".join(notes))
