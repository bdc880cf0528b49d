"""Song vote, per-fold metrics and the mean ± std summary, on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from tfcnn.errors import ConfigError
from tfcnn.evaluate import fold_metrics, song_vote, summarise


def test_majority_vote_over_patch_argmax():
    probs = [[0.6, 0.3, 0.1],
             [0.1, 0.5, 0.4],
             [0.7, 0.2, 0.1],
             [0.0, 0.1, 0.9]]
    assert song_vote(probs) == 0  # two votes for class 0


def test_majority_beats_summed_probability():
    # class 2 has the largest summed probability (1.9) but class 0 has more votes (2 vs 1)
    probs = [[0.50, 0.0, 0.50 - 1e-3],
             [0.51, 0.0, 0.49],
             [0.00, 0.0, 1.00]]
    assert np.argmax(np.sum(probs, axis=0)) == 2
    assert song_vote(probs) == 0


def test_tie_goes_to_highest_summed_probability():
    # one vote each for 0 and 1; class 1 sums to 1.1 > class 0's 0.9
    assert song_vote([[0.6, 0.4, 0.0], [0.3, 0.7, 0.0]]) == 1
    # a three-way tie among votes; class 2 has the most mass (1.2 vs 1.1 and 0.7)
    assert song_vote([[0.4, 0.3, 0.3], [0.3, 0.4, 0.3], [0.0, 0.4, 0.6]]) == 2
    # class 2 has the largest sum but no vote: it cannot win the 0-vs-1 tie
    probs = [[0.40, 0.00, 0.35, 0.25],
             [0.00, 0.45, 0.30, 0.25]]
    assert np.argmax(np.sum(probs, axis=0)) == 2
    assert song_vote(probs) == 1
    # exact tie in votes and sums: the lowest class index
    assert song_vote([[0.6, 0.4], [0.4, 0.6]]) == 0


def test_single_patch_vote_is_its_argmax():
    assert song_vote(np.array([[0.1, 0.2, 0.7]])) == 2


def test_song_vote_rejects_bad_shapes():
    with pytest.raises(ConfigError,
                       match=r"shape \(n_patches >= 1, n_classes >= 1\), got \(0, 3\)"):
        song_vote(np.zeros((0, 3)))
    with pytest.raises(ConfigError, match=r"got \(3,\)"):
        song_vote([0.1, 0.2, 0.7])
    with pytest.raises(ConfigError, match="non-finite"):
        song_vote([[np.nan, 0.5]])


def test_fold_metrics_song_and_patch_accuracy():
    tracks = [
        np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]]),  # label 0: vote 0 (2/3 patches right)
        np.array([[0.6, 0.4], [0.4, 0.6], [0.2, 0.8]]),  # label 1: vote 1 (2/3 right)
        np.array([[0.6, 0.4], [0.7, 0.3]]),              # label 1: vote 0 (0/2 right)
    ]
    m = fold_metrics(tracks, [0, 1, 1], n_classes=2)
    assert m["accuracy"] == pytest.approx(100 * 2 / 3)
    assert m["patch_accuracy"] == pytest.approx(100 * 4 / 8)
    assert m["confusion"] == [[1, 0], [1, 1]]
    assert m["predictions"] == [0, 1, 0]
    assert m["n_tracks"] == 3 and m["n_patches"] == 8


def test_fold_metrics_rejects_mismatches():
    with pytest.raises(ConfigError, match="2 arrays for 1 labels"):
        fold_metrics([np.ones((1, 2)), np.ones((1, 2))], [0], n_classes=2)
    with pytest.raises(ConfigError, match="3 classes, expected 2"):
        fold_metrics([np.ones((1, 3))], [0], n_classes=2)
    with pytest.raises(ConfigError, match=r"labels must lie in \[0, 2\)"):
        fold_metrics([np.ones((1, 2))], [2], n_classes=2)


def test_summarise_mean_population_std_and_summed_confusion():
    per_fold = [
        {"accuracy": 80.0, "patch_accuracy": 70.0, "confusion": [[4, 1], [0, 5]]},
        {"accuracy": 90.0, "patch_accuracy": 75.0, "confusion": [[5, 0], [1, 4]]},
        {"accuracy": 100.0, "patch_accuracy": 80.0, "confusion": [[5, 0], [0, 5]]},
    ]
    s = summarise(per_fold)
    assert s["mean"] == pytest.approx(90.0)
    # np.std (population, ddof=0), as the original: sqrt(200/3), not sqrt(100)
    assert s["std"] == pytest.approx(np.sqrt(200 / 3))
    assert s["per_fold"] == [80.0, 90.0, 100.0]
    assert s["patch_mean"] == pytest.approx(75.0)
    assert s["patch_std"] == pytest.approx(np.std([70.0, 75.0, 80.0]))
    assert s["confusion"] == [[14, 1], [1, 14]]
    assert s["n_folds"] == 3
    with pytest.raises(ConfigError, match="at least one fold"):
        summarise([])
