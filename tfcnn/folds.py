"""Song-level cross-validation splits (Pons et al. 2016, §2: 10-fold, 80/10/10).

Two protocols:

``clean`` (default)
    Stratified by class, song level, replica groups never split. Test = outer fold ``k``;
    validation = 1/9 of the remaining songs drawn stratified (and group-wise), the paper's
    8:1 train:validation ratio; train = the rest. With 10 folds that is 80/10/10 by songs
    (validation = one fold's worth); with fewer folds the training share grows.
``paper``
    The original code: unstratified K-fold over shuffled songs, test = fold ``k``, train = the
    rest, ``val`` empty. Training then holds out a random 1/9 of the *training patches* as
    validation (:func:`paper_validation_split`), so patches of one song can sit in both, and
    replica groups are ignored, exactly as the original did.

Every track is tested exactly once over the folds in both protocols.

Fingerprints name which songs a fold tests (:func:`fold_fingerprint`) and how a run split its
songs (:func:`assignment_fingerprint`), so two runs' folds are paired only when they tested the
same songs. A song is keyed ``"<class>/<track id>"`` (:func:`song_keys`), which does not depend
on where the data set lies on disk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from tfcnn.errors import ConfigError

PROTOCOLS: tuple[str, ...] = ("clean", "paper")

#: The original held out 1/9 of the training patches for validation (80/10/10 overall).
PAPER_VALIDATION_FRACTION = 1 / 9
#: ``clean`` draws 1/9 of the non-test songs (stratified) as validation: the same 8:1 ratio.
VALIDATION_WEIGHTS = np.array([1 / 9, 8 / 9])
#: Hex digits kept of a sha256 fingerprint (64 bits: ample to tell fold assignments apart).
FINGERPRINT_DIGITS = 16


@dataclass(frozen=True)
class Fold:
    """Track indices of one cross-validation fold.

    Attributes
    ----------
    index : int
        Fold number, 0-based.
    train, val, test : np.ndarray
        Sorted int64 track indices, pairwise disjoint. ``val`` is empty for ``paper``.
    protocol : str
        ``"clean"`` or ``"paper"``.
    """

    index: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    protocol: str

    def to_dict(self) -> dict:
        """JSON-able form (lists of ints)."""
        return {"index": self.index, "protocol": self.protocol,
                "train": self.train.tolist(), "val": self.val.tolist(),
                "test": self.test.tolist()}


def _group_ids(groups, n: int) -> np.ndarray:
    """Integer group id per track; an empty/None group makes the track its own group."""
    if groups is None:
        return np.arange(n)
    groups = list(groups)
    if len(groups) != n:
        raise ConfigError(f"groups has {len(groups)} entries but labels has {n}")
    ids: dict[str, int] = {}
    out = np.empty(n, dtype=np.int64)
    for i, g in enumerate(groups):
        key = "" if g is None or (isinstance(g, float) and np.isnan(g)) else str(g)
        # singletons get a key no real group can have
        out[i] = ids.setdefault(key if key else f"\0{i}", len(ids))
    return out


def _assign_parts(y: np.ndarray, g: np.ndarray, weights: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Deal whole groups to parts so each part holds its share of every class.

    Greedy largest-deficit assignment: groups (biggest first, otherwise in random order) go
    to the part whose expected-minus-current count of the group's classes is largest; ties go
    to the part that is emptiest overall. With singleton groups every part gets ``floor`` or
    ``ceil`` of its expected share of each class.

    Parameters
    ----------
    y : np.ndarray (n,)
        Class index per track.
    g : np.ndarray (n,)
        Group id per track.
    weights : np.ndarray (n_parts,)
        Share of each part (sums to 1).
    rng : np.random.Generator

    Returns
    -------
    np.ndarray (n,)
        Part index per track.
    """
    class_ids, y_idx = np.unique(y, return_inverse=True)
    group_ids, g_idx = np.unique(g, return_inverse=True)
    comp = np.zeros((group_ids.size, class_ids.size))        # (n_groups, n_classes)
    np.add.at(comp, (g_idx, y_idx), 1.0)
    target = weights[:, None] * comp.sum(axis=0)[None, :]    # (n_parts, n_classes)
    count = np.zeros_like(target)
    order = rng.permutation(group_ids.size)
    order = order[np.argsort(-comp[order].sum(axis=1), kind="stable")]  # big groups first
    part_of_group = np.empty(group_ids.size, dtype=np.int64)
    for gi in order:
        deficit = target - count                                # (n_parts, n_classes)
        score = deficit @ comp[gi]                              # (n_parts,)
        total = deficit.sum(axis=1)
        best = np.lexsort((-total, -score))[0]                  # max score, then max total
        part_of_group[gi] = best
        count[best] += comp[gi]
    return part_of_group[g_idx]


def make_folds(labels, groups=None, n_folds: int = 10, seed: int = 0,
               protocol: str = "clean") -> list[Fold]:
    """Song-level cross-validation folds.

    Parameters
    ----------
    labels : array-like of int, shape (n_tracks,)
        Class index per track.
    groups : sequence of str, shape (n_tracks,), optional
        Replica group per track (``""``/None: no group). Tracks sharing a group never go
        to different parts of a fold (``clean`` only; ``paper`` ignores them like the original).
    n_folds : int
        Number of folds K (paper: 10); each fold's test set is ~1/K of the songs.
    seed : int
        Shuffling seed; same inputs and seed give the same folds.
    protocol : {"clean", "paper"}

    Returns
    -------
    list of Fold
        ``n_folds`` folds; their test sets partition the tracks.

    Raises
    ------
    ConfigError
        Unknown protocol, ``n_folds < 2``, or more folds than the data can fill.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; valid protocols: {', '.join(PROTOCOLS)}")
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ConfigError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0 or not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"labels must be a non-empty 1-D array of class indices, got {y!r}")
    n = y.size
    g = _group_ids(groups, n)
    if protocol == "paper":
        return _paper_folds(n, int(n_folds), seed)

    classes, counts = np.unique(y, return_counts=True)
    smallest = int(counts.min())
    if n_folds > smallest:
        worst = classes[np.argmin(counts)]
        raise ConfigError(
            f"n_folds={n_folds} needs at least {n_folds} tracks per class for stratified "
            f"folds, but class {worst} has only {smallest}"
        )
    n_groups = np.unique(g).size
    if n_folds > n_groups:
        raise ConfigError(
            f"n_folds={n_folds} exceeds the {n_groups} replica groups/tracks to split"
        )

    rng = np.random.default_rng(seed)
    part = _assign_parts(y, g, np.full(n_folds, 1.0 / n_folds), rng)
    folds = []
    for k in range(n_folds):
        test = np.flatnonzero(part == k)
        rest = np.flatnonzero(part != k)
        if test.size == 0 or np.unique(g[rest]).size < 2:
            raise ConfigError(
                f"fold {k}: {test.size} test track(s) and {np.unique(g[rest]).size} song "
                f"group(s) left for train/validation; use fewer than {n_folds} folds"
            )
        # Validation keeps the paper's 8:1 train:validation ratio of songs (80/10/10 with
        # 10 folds), drawn stratified and group-wise from the non-test songs.
        in_val = _assign_parts(y[rest], g[rest], VALIDATION_WEIGHTS, rng) == 0
        if not in_val.any():
            # tiny data: no class has enough songs for a share; hold out one song of the
            # class with the most training songs so model selection still has something
            rest_classes, rest_counts = np.unique(y[rest], return_counts=True)
            biggest = rng.choice(rest_classes[rest_counts == rest_counts.max()])
            song = rng.choice(np.flatnonzero(y[rest] == biggest))
            in_val = g[rest] == g[rest][song]
        if in_val.all():
            raise ConfigError(f"fold {k}: no songs left for training; use fewer folds")
        val, train = rest[in_val], rest[~in_val]
        folds.append(Fold(index=k, train=train.astype(np.int64), val=np.sort(val).astype(np.int64),
                          test=np.sort(test).astype(np.int64), protocol="clean"))
    return folds


def _paper_folds(n: int, n_folds: int, seed: int) -> list[Fold]:
    """Unstratified K-fold over shuffled songs, as the original code."""
    # sklearn takes seconds to import; only this protocol needs it (not the fingerprints)
    from sklearn.model_selection import KFold

    if n_folds > n:
        raise ConfigError(f"n_folds={n_folds} exceeds the {n} tracks to split")
    cv = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    empty = np.empty(0, dtype=np.int64)
    return [Fold(index=k, train=np.sort(train).astype(np.int64), val=empty,
                 test=np.sort(test).astype(np.int64), protocol="paper")
            for k, (train, test) in enumerate(cv.split(np.zeros(n)))]


def paper_validation_split(n_patches: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The original's validation: a random 1/9 of the training patches.

    Parameters
    ----------
    n_patches : int
        Number of training patches of the fold.
    seed : int
        Seed of the draw (use the fold's seed).

    Returns
    -------
    (train_idx, val_idx) : tuple of np.ndarray
        Sorted, disjoint int64 indices into the patches; ``val_idx`` holds
        ``max(1, n_patches // 9)`` of them.
    """
    if (isinstance(n_patches, bool) or not isinstance(n_patches, (int, np.integer))
            or n_patches < 2):
        raise ConfigError(
            f"need at least 2 training patches to hold out validation, got {n_patches!r}"
        )
    n_val = max(1, int(n_patches * PAPER_VALIDATION_FRACTION))
    order = np.random.default_rng(seed).permutation(n_patches)
    return np.sort(order[n_val:]).astype(np.int64), np.sort(order[:n_val]).astype(np.int64)


def song_keys(track_ids: Sequence[str], classes: Sequence[str]) -> list[str]:
    """``"<class>/<track id>"`` per track: a song's identity, whatever the data set's location.

    Parameters
    ----------
    track_ids : sequence of str, shape (n_tracks,)
        ``Dataset.tracks.track``.
    classes : sequence of str, shape (n_tracks,)
        Class name per track (``Dataset.tracks.dance``).
    """
    if len(track_ids) != len(classes):
        raise ConfigError(f"{len(track_ids)} track ids but {len(classes)} class names")
    return [f"{c}/{t}" for c, t in zip(classes, track_ids)]


def fingerprint(keys: Iterable[str]) -> str:
    """Short sha256 (:data:`FINGERPRINT_DIGITS` hex digits) of a set of strings, order-free."""
    payload = "\n".join(sorted(str(k) for k in keys))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:FINGERPRINT_DIGITS]


def fold_fingerprint(fold: Fold, keys: Sequence[str]) -> str:
    """Fingerprint of the songs ``fold`` tests.

    Parameters
    ----------
    fold : Fold
    keys : sequence of str, shape (n_tracks,)
        :func:`song_keys` of the data set the fold indexes.
    """
    return fingerprint(keys[i] for i in fold.test)


def assignment_fingerprint(folds: Sequence[Fold], keys: Sequence[str]) -> str:
    """Fingerprint of a whole fold assignment: the set of its folds' test fingerprints.

    Two runs share it exactly when their folds test the same partition of the same songs
    (whatever the folds' numbering), so their per-fold scores can be paired.
    """
    return fingerprint(fold_fingerprint(fold, keys) for fold in folds)
