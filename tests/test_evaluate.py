"""Song vote, per-fold metrics and the mean ± std summary, on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from tfcnn.errors import ConfigError
from tfcnn.evaluate import (compare_accuracies, corrected_t, fold_metrics, format_comparison,
                            minimum_detectable_difference, song_vote, summarise, verdict_of)


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


# --------------------------------------------------------------------------- comparing two runs
#
# The corrected resampled t (Nadeau & Bengio 2003) is checked by simulation: fold differences
# d_j = delta + c + e_j share a common part c (folds share training songs) with correlation
# rho = r / (1 + r), r = n_test / n_train, the model under which the correction is exact.

RATIO = 1 / 8  # 10-fold "clean": 48 songs tested, 384 fitted on per fold (SynthBallroom)
STEP = 100 / 48  # one song of 48 in accuracy points


def _folds(rng, *, delta, sd, k=10, ratio=RATIO):
    """Per-fold accuracies (a, b) of two runs whose fold differences are equicorrelated."""
    rho = ratio / (1 + ratio)
    common = rng.normal(0.0, sd * np.sqrt(rho))
    d = delta + common + rng.normal(0.0, sd * np.sqrt(1 - rho), k)   # (k,)
    b = 85.0 + rng.normal(0.0, 3.0, k)
    return b + d, b


def _t(a, b, paired=True):
    return corrected_t(np.asarray(a), np.asarray(b), test_train_ratio=RATIO, margin=2.0,
                       paired=paired)


def _rate(rng, n_sims, test, **kw):
    """Share of simulated comparisons (the whole :func:`compare_accuracies`) passing ``test``."""
    return np.mean([test(compare_accuracies(*_folds(rng, **kw), test_train_ratio=RATIO))
                    for _ in range(n_sims)])


def test_corrected_interval_covers_a_null_difference_where_the_naive_one_does_not():
    rng = np.random.default_rng(0)
    covered, naive_covered = [], []
    for _ in range(400):
        a, b = _folds(rng, delta=0.0, sd=4.0)
        c = _t(a, b)
        covered.append(c.ci95[0] <= 0.0 <= c.ci95[1])
        d = a - b
        half = 2.262 * d.std(ddof=1) / np.sqrt(d.size)  # plain paired t, t_{0.975, 9}
        naive_covered.append(abs(d.mean()) <= half)
    assert np.mean(covered) >= 0.93
    # the plain t ignores the shared training data: its "95 %" interval covers ~83 %
    assert np.mean(naive_covered) < 0.88


def test_corrected_interval_covers_on_accuracies_rounded_to_whole_songs():
    rng = np.random.default_rng(1)
    covered = []
    for _ in range(400):
        a, b = _folds(rng, delta=0.0, sd=4.0)
        c = _t(np.round(a / STEP) * STEP, np.round(b / STEP) * STEP)
        covered.append(c.ci95[0] <= 0.0 <= c.ci95[1])
    assert np.mean(covered) >= 0.93


def test_corrected_interval_covers_in_a_real_cross_validation():
    """Two nearest-centroid classifiers on disjoint but equally informative feature sets,
    cross-validated on the same 10 folds of a fresh data set each time: their true
    difference is 0 by symmetry, and the folds share training songs as in a real run."""
    from tfcnn.folds import make_folds

    rng = np.random.default_rng(5)
    labels = np.repeat([0, 1], 100)
    folds = make_folds(labels, n_folds=10, seed=0)
    ratio = np.mean([f.test.size for f in folds]) / np.mean([f.train.size for f in folds])

    def accuracy(x, features, fold):
        train, test = x[fold.train][:, features], x[fold.test][:, features]
        y = labels[fold.train]
        c0, c1 = train[y == 0].mean(axis=0), train[y == 1].mean(axis=0)
        pred = np.sum((test - c1) ** 2, axis=1) < np.sum((test - c0) ** 2, axis=1)
        return 100.0 * np.mean(pred == labels[fold.test])

    covered = []
    for _ in range(200):
        x = rng.normal(0.0, 1.0, (labels.size, 6)) + 0.35 * labels[:, None]  # (songs, features)
        a = np.array([accuracy(x, [0, 1, 2], f) for f in folds])
        b = np.array([accuracy(x, [3, 4, 5], f) for f in folds])
        c = corrected_t(a, b, test_train_ratio=ratio, margin=2.0, paired=True)
        covered.append(c.ci95[0] <= 0.0 <= c.ci95[1])
    assert ratio == pytest.approx(1 / 8)
    assert np.mean(covered) >= 0.93


def test_unpaired_interval_covers_a_null_difference():
    rng = np.random.default_rng(2)
    rho = RATIO / (1 + RATIO)
    covered = []
    for _ in range(400):
        runs = [80.0 + rng.normal(0, 4 * np.sqrt(rho)) + rng.normal(0, 4 * np.sqrt(1 - rho), k)
                for k in (10, 8)]
        c = _t(*runs, paired=False)
        covered.append(c.ci95[0] <= 0.0 <= c.ci95[1])
    assert np.mean(covered) >= 0.93


def test_equivalence_is_rarely_declared_when_the_difference_equals_the_margin():
    rng = np.random.default_rng(3)
    for delta in (2.0, -2.0):
        rate = np.mean([_t(*_folds(rng, delta=delta, sd=2.0)).p_equivalence < 0.05
                        for _ in range(400)])
        assert rate <= 0.07, (delta, rate)  # TOST at level 0.05


def test_equivalence_is_found_when_runs_agree_and_differences_when_they_do_not():
    rng = np.random.default_rng(4)
    assert _rate(rng, 200, lambda c: c.verdict == "equivalent within ±2 points",
                 delta=0.0, sd=1.0) >= 0.9
    assert _rate(rng, 200, lambda c: c.verdict == "A better", delta=6.0, sd=2.0) >= 0.9
    # a null difference is called "A better" or "B better" about 5 % of the time
    assert _rate(rng, 400, lambda c: c.verdict in ("A better", "B better"),
                 delta=0.0, sd=4.0) <= 0.07


def test_corrected_t_on_a_hand_checked_example():
    # d = 1, 2, 3, 4 over J = 4 folds, n_test / n_train = 1/3 (4-fold, no validation):
    # mean 2.5, s² = 5/3, se² = (1/4 + 1/3) · 5/3 = 35/36, t = 2.5 / 0.98601 = 2.5355, df 3,
    # t_{0.975, 3} = 3.1824 → CI 2.5 ± 3.1379; Wilcoxon: all 4 signs positive, p = 2/16.
    c = compare_accuracies([81, 82, 83, 84], [80, 80, 80, 80], test_train_ratio=1 / 3)
    assert c.paired and c.n_folds == (4, 4) and c.df == 3
    assert c.mean_difference == pytest.approx(2.5)
    assert c.std_error == pytest.approx(np.sqrt(35 / 36))
    assert c.ci95 == pytest.approx((2.5 - 3.18245 * np.sqrt(35 / 36),
                                    2.5 + 3.18245 * np.sqrt(35 / 36)), abs=1e-4)
    assert c.p_wilcoxon == pytest.approx(0.125)
    # two-sided p of t = 2.5355 with 3 df (tables: between 0.05 and 0.10)
    assert 0.05 < c.p_corrected_t < 0.10 and c.p_corrected_t == pytest.approx(0.08502, abs=1e-4)
    # TOST at ±2: the weaker side is "difference >= +2", t = (2.5 - 2) / se = 0.5071 with
    # 3 df, p = P(T <= 0.5071) = 0.676
    assert c.p_equivalence == pytest.approx(0.6765, abs=1e-3)
    assert not c.equivalent and c.verdict == "inconclusive"
    assert any("fewer than 6" in note for note in c.notes)
    # the uncorrected variance s²/J would give se = 0.6455 and "A better" (t = 3.87 > 3.18)
    assert 2.5 / np.sqrt((5 / 3) / 4) > 3.18245


def test_verdict_rule():
    assert verdict_of((0.1, 3.0), False, 2.0) == "A better"
    assert verdict_of((-3.0, -0.1), True, 2.0) == "B better"  # a difference beats equivalence
    assert verdict_of((-1.0, 1.0), True, 2.0) == "equivalent within ±2 points"
    assert verdict_of((-1.0, 1.0), False, 0.5) == "inconclusive"


def test_identical_runs_are_equivalent_and_say_so():
    c = compare_accuracies([80, 90, 85], [80, 90, 85], test_train_ratio=0.5)
    assert c.mean_difference == 0 and c.ci95 == (0.0, 0.0) and c.p_wilcoxon is None
    assert c.equivalent and c.verdict == "equivalent within ±2 points"
    assert any("identical" in note for note in c.notes)


def test_unpaired_is_labelled_and_uses_the_rank_sum_test():
    c = compare_accuracies([90, 92, 94, 96], [80, 81, 82], test_train_ratio=0.25, paired=False)
    assert not c.paired and c.n_folds == (4, 3) and c.rank_test.startswith("Wilcoxon rank-sum")
    out = c.to_dict()
    assert out["paired"] is False and "unpaired" in out["method"]
    assert "unpaired" in format_comparison(c)
    # Welch–Satterthwaite: va = (1/4 + 1/4)·var_a, vb = (1/3 + 1/4)·var_b
    va, vb = 0.5 * np.var([90, 92, 94, 96], ddof=1), (7 / 12) * np.var([80, 81, 82], ddof=1)
    assert c.std_error == pytest.approx(np.sqrt(va + vb))
    assert c.df == pytest.approx((va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 2))


def test_comparison_json_keys_and_text():
    c = compare_accuracies(np.arange(10) + 80.0, np.arange(10) + 70.0 + np.arange(10) % 3,
                           test_train_ratio=RATIO, labels=("runs/a", "runs/b"), margin=1.5)
    out = c.to_dict()
    assert set(out) >= {"mean_difference", "ci95", "p_wilcoxon", "p_corrected_t", "margin",
                        "equivalent", "verdict", "paired", "n_folds", "runs"}
    assert out["runs"] == {"a": "runs/a", "b": "runs/b"} and out["margin"] == 1.5
    assert out["verdict"] == "A better" and out["ci95"][0] > 0
    text = format_comparison(c)
    assert "A (runs/a) better" in text and "95 % CI" in text and "±1.5 points" in text
    assert "equal" not in text.replace("equivalence", "")


def test_comparison_rejects_bad_input():
    with pytest.raises(ConfigError, match="same folds on both sides, got 3 and 2"):
        compare_accuracies([1, 2, 3], [1, 2], test_train_ratio=0.1)
    with pytest.raises(ConfigError, match=r"at least 2 finite per-fold accuracies, got \[80"):
        compare_accuracies([80.0], [70.0], test_train_ratio=0.1)
    with pytest.raises(ConfigError, match="margin must be a positive number.*got -1"):
        compare_accuracies([1, 2], [1, 3], test_train_ratio=0.1, margin=-1)
    with pytest.raises(ConfigError, match="test_train_ratio must be a positive number"):
        compare_accuracies([1, 2], [1, 3], test_train_ratio=0)


# --------------------------------------------------------------------------- power (MDD)
#
# Under the equicorrelated model above the corrected t is exact, so a difference planted at
# the minimum detectable difference must be found 80 % of the time and 0 must be "found" 5 %
# of the time (scripts/mdd_power.py repeats this with 2000 experiments and on songs).


def _interval_excludes_zero(c) -> bool:
    return c.ci95[0] > 0 or c.ci95[1] < 0


def test_mdd_matches_the_normal_approximation_and_scales_with_the_standard_error():
    from scipy import stats

    for df in (9, 29, 200):
        approx = stats.t.ppf(0.975, df) + stats.t.ppf(0.8, df)
        assert minimum_detectable_difference(1.0, df) == pytest.approx(approx, rel=0.02)
    assert minimum_detectable_difference(3.0, 9) == pytest.approx(
        3 * minimum_detectable_difference(1.0, 9))
    # fewer degrees of freedom, a larger MDD; higher power, a larger MDD
    assert minimum_detectable_difference(1.0, 2) > minimum_detectable_difference(1.0, 9)
    assert minimum_detectable_difference(1.0, 9, power=0.9) > minimum_detectable_difference(
        1.0, 9)
    assert minimum_detectable_difference(0.0, 9) == 0.0


def test_a_difference_planted_at_the_mdd_is_detected_80_percent_of_the_time():
    rng = np.random.default_rng(11)
    sd, k = 10.0, 10
    rho = RATIO / (1 + RATIO)
    # the true corrected standard error of the mean difference under _folds
    se = np.sqrt((1 / k + RATIO) * sd ** 2 * (1 - rho))
    mdd = minimum_detectable_difference(float(se), k - 1)
    n = 1500
    power = _rate(rng, n, _interval_excludes_zero, delta=mdd, sd=sd)
    size = _rate(rng, n, _interval_excludes_zero, delta=0.0, sd=sd)
    # binomial 99.9 % bands around 0.80 and 0.05 at n = 1500: ±0.034 and ±0.019
    assert 0.766 < power < 0.834
    assert 0.031 < size < 0.069
    # the comparison states that MDD from the observed variance: right on average
    stated = [compare_accuracies(*_folds(rng, delta=0.0, sd=sd), test_train_ratio=RATIO).mdd
              for _ in range(400)]
    assert np.sqrt(np.mean(np.square(stated))) == pytest.approx(mdd, rel=0.08)


def test_inconclusive_says_what_it_could_have_found():
    c = compare_accuracies([50, 40, 45, 55, 35, 60, 50, 40, 45, 52],
                           [48, 44, 40, 50, 40, 55, 52, 38, 47, 50], test_train_ratio=RATIO)
    assert c.verdict == "inconclusive"
    assert c.mdd == pytest.approx(minimum_detectable_difference(c.std_error, c.df))
    assert c.mdd > abs(c.mean_difference)
    sentence = c.power_sentence
    assert f"from {c.ci95[0]:+.1f} to {c.ci95[1]:+.1f} points is still possible" in sentence
    assert f"{c.mdd:.1f} points or more 80 % of the time" in sentence
    assert f"power: {sentence}" in format_comparison(c)
    out = c.to_dict()
    assert out["minimum_detectable_difference"]["points"] == c.mdd
    assert out["minimum_detectable_difference"]["power"] == 0.8
    assert out["power"] == sentence


def test_mdd_rejects_bad_input():
    with pytest.raises(ConfigError, match="std_error must be a finite number >= 0, got -1"):
        minimum_detectable_difference(-1.0, 9)
    with pytest.raises(ConfigError, match="df must be a positive number, got 0"):
        minimum_detectable_difference(1.0, 0)
    with pytest.raises(ConfigError, match="need 0 < alpha < power < 1"):
        minimum_detectable_difference(1.0, 9, power=0.01)
