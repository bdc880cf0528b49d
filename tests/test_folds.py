"""Song-level folds: disjoint parts, every track tested once, groups intact, stratified."""

from __future__ import annotations

import numpy as np
import pytest

from tfcnn.errors import ConfigError
from tfcnn.folds import (FINGERPRINT_DIGITS, assignment_fingerprint, fingerprint,
                         fold_fingerprint, make_folds, paper_validation_split, song_keys)

# Ballroom's class sizes (698 tracks): the clean protocol must handle unequal classes.
BALLROOM_COUNTS = [111, 60, 82, 98, 86, 86, 65, 110]


def _ballroom_labels() -> np.ndarray:
    return np.repeat(np.arange(8), BALLROOM_COUNTS)


def _check_partition(folds, n: int) -> None:
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == list(range(n)), "every track tested exactly once"
    for k, f in enumerate(folds):
        assert f.index == k
        parts = [set(f.train.tolist()), set(f.val.tolist()), set(f.test.tolist())]
        assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
        assert set().union(*parts) == set(range(n))
        assert f.train.size > 0 and f.test.size > 0
        for a in (f.train, f.val, f.test):
            assert a.dtype == np.int64 and np.all(np.diff(a) > 0)


def test_clean_ten_folds_are_80_10_10_and_stratified():
    y = _ballroom_labels()
    folds = make_folds(y, n_folds=10, seed=0)
    assert len(folds) == 10
    _check_partition(folds, y.size)
    for f in folds:
        assert all(f.protocol == "clean" for f in folds)
        assert 0.78 <= f.train.size / y.size <= 0.82
        assert 0.08 <= f.val.size / y.size <= 0.12
        assert 0.09 <= f.test.size / y.size <= 0.11
        # validation is stratified too: every class present
        assert set(y[f.val].tolist()) == set(range(8))
    per_class = np.array([np.bincount(y[f.test], minlength=8) for f in folds])  # (fold, class)
    assert np.all(per_class.max(axis=0) - per_class.min(axis=0) <= 1)
    np.testing.assert_array_equal(per_class.sum(axis=0), BALLROOM_COUNTS)


def test_replica_groups_never_split_even_across_classes():
    y = _ballroom_labels()
    groups = [""] * y.size
    rng = np.random.default_rng(3)
    members = {}
    for gi in range(30):  # 30 groups of 2-4 replicas, some spanning two classes
        idx = rng.choice(y.size, size=int(rng.integers(2, 5)), replace=False)
        for i in idx:
            if groups[i] == "":
                groups[i] = f"g{gi}"
                members.setdefault(f"g{gi}", []).append(int(i))
    crossing = [g for g, m in members.items() if len(set(y[m].tolist())) > 1]
    assert crossing, "test needs a group crossing classes"
    folds = make_folds(y, groups, n_folds=10, seed=1)
    _check_partition(folds, y.size)
    for f in folds:
        where = {}
        for part, idx in (("train", f.train), ("val", f.val), ("test", f.test)):
            for i in idx:
                if groups[i]:
                    where.setdefault(groups[i], set()).add(part)
        assert all(len(parts) == 1 for parts in where.values()), where


def test_deterministic_with_seed():
    y = _ballroom_labels()
    a, b = make_folds(y, seed=5), make_folds(y, seed=5)
    c = make_folds(y, seed=6)
    for fa, fb in zip(a, b):
        np.testing.assert_array_equal(fa.test, fb.test)
        np.testing.assert_array_equal(fa.val, fb.val)
    assert any(not np.array_equal(fa.test, fc.test) for fa, fc in zip(a, c))


@pytest.mark.parametrize("per_class,n_folds", [(3, 2), (3, 3), (4, 2), (5, 5)])
def test_small_data_sets_work(per_class, n_folds):
    y = np.repeat(np.arange(8), per_class)
    folds = make_folds(y, n_folds=n_folds, seed=0)
    assert len(folds) == n_folds
    _check_partition(folds, y.size)
    for f in folds:
        assert f.val.size >= 1
        # each class is tested in (nearly) equal shares
        counts = np.bincount(y[f.test], minlength=8)
        assert counts.min() >= per_class // n_folds
        assert counts.max() <= -(-per_class // n_folds)


def test_paper_protocol_is_kfold_over_shuffled_songs():
    y = _ballroom_labels()
    folds = make_folds(y, n_folds=10, seed=0, protocol="paper")
    _check_partition(folds, y.size)
    for f in folds:
        assert f.protocol == "paper" and f.val.size == 0
        assert f.test.size in (69, 70)
    # shuffled: a test fold is not one contiguous run of track indices
    assert np.any(np.diff(folds[0].test) > 1)
    again = make_folds(y, n_folds=10, seed=0, protocol="paper")
    np.testing.assert_array_equal(folds[3].test, again[3].test)


def test_paper_validation_split_is_a_random_ninth():
    train, val = paper_validation_split(900, seed=4)
    assert val.size == 100 and train.size == 800
    assert set(train.tolist()) | set(val.tolist()) == set(range(900))
    assert not set(train.tolist()) & set(val.tolist())
    t2, v2 = paper_validation_split(900, seed=4)
    np.testing.assert_array_equal(val, v2)
    assert not np.array_equal(val, paper_validation_split(900, seed=5)[1])
    assert paper_validation_split(5, seed=0)[1].size == 1
    with pytest.raises(ConfigError, match="at least 2 training patches"):
        paper_validation_split(1, seed=0)


def test_bad_arguments_raise_config_error_with_the_numbers():
    y = np.repeat(np.arange(8), 3)
    with pytest.raises(ConfigError, match="n_folds must be an integer >= 2, got 1"):
        make_folds(y, n_folds=1)
    with pytest.raises(ConfigError, match="n_folds=4 needs at least 4 tracks per class.*only 3"):
        make_folds(y, n_folds=4)
    with pytest.raises(ConfigError, match="unknown protocol 'random'.*clean, paper"):
        make_folds(y, protocol="random")
    with pytest.raises(ConfigError, match="groups has 2 entries but labels has 24"):
        make_folds(y, ["a", "b"], n_folds=2)
    with pytest.raises(ConfigError, match="exceeds the 24 tracks"):
        make_folds(y, n_folds=25, protocol="paper")
    # every track in one replica group: nothing can be split
    with pytest.raises(ConfigError, match="exceeds the 1 replica groups"):
        make_folds(y, ["same"] * 24, n_folds=2)


def test_fingerprints_name_the_test_songs_not_their_order_or_numbering():
    labels = np.repeat(np.arange(4), 10)
    keys = song_keys([f"t{i:02d}" for i in range(40)], [f"c{y}" for y in labels])
    assert keys[0] == "c0/t00"
    folds = make_folds(labels, n_folds=5, seed=0)
    prints = [fold_fingerprint(f, keys) for f in folds]
    assert len(set(prints)) == 5 and all(len(p) == FINGERPRINT_DIGITS for p in prints)
    assert prints[0] == fingerprint(reversed([keys[i] for i in folds[0].test]))
    # the same partition numbered otherwise has the same assignment fingerprint
    assert (assignment_fingerprint(folds[::-1], keys) == assignment_fingerprint(folds, keys)
            == fingerprint(prints))
    # another seed splits the songs otherwise; so does a renamed song
    assert assignment_fingerprint(make_folds(labels, n_folds=5, seed=1), keys) != \
        assignment_fingerprint(folds, keys)
    renamed = ["c0/other", *keys[1:]]
    assert assignment_fingerprint(folds, renamed) != assignment_fingerprint(folds, keys)
    with pytest.raises(ConfigError, match="2 track ids but 1 class names"):
        song_keys(["a", "b"], ["c"])
