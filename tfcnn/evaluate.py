"""Song-level evaluation: majority vote over patches, per-fold metrics, mean ± std over folds,
and the comparison of two sets of per-fold accuracies.

A song is longer than one 80-frame patch, so the network gives one estimate per patch and
"a simple majority vote approach serves to decide the estimated class" (Pons et al. 2016, §2).
Accuracies are in percent; the spread over folds is ``np.std`` (population), as the original.

Comparing two runs (:func:`compare_accuracies`): cross-validation folds share most of their
training songs, so their accuracies are correlated and a plain t-test over folds is too
liberal. The interval and the tests use the corrected resampled t-test of Nadeau & Bengio
(2003, "Inference for the generalization error", Machine Learning 52): the variance of the
mean difference is ``(1/J + n_test/n_train) · s²`` instead of ``s²/J`` (J folds, ``s²`` the
sample variance of the per-fold differences), with J − 1 degrees of freedom.

Power (:func:`minimum_detectable_difference`): beside every interval, the smallest true
difference the same corrected t would detect with 80 % probability, for the design at hand
(folds, test songs, the observed fold variance), so an interval that contains 0 says what it
could have found.
"""

from __future__ import annotations

import math
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




# --------------------------------------------------------------------------- comparing two runs

#: Level of every test and interval of :func:`compare_accuracies` (95 % intervals).
ALPHA = 0.05
#: Default equivalence margin, in accuracy points: "equivalent" means |A − B| < 2 points.
DEFAULT_MARGIN = 2.0
#: Fewest folds for which the two-sided Wilcoxon signed-rank test can give p < 0.05.
MIN_WILCOXON_FOLDS = 6
#: Power at which the minimum detectable difference is stated.
POWER = 0.8


def minimum_detectable_difference(std_error: float, df: float, *, power: float = POWER,
                                  alpha: float = ALPHA) -> float:
    """Smallest true difference the two-sided corrected t detects with probability ``power``.

    With the standard error ``se`` of the difference taken as known (the observed one, or a
    planned one), the t statistic of a true difference ``δ`` is non-central t with ``df``
    degrees of freedom and non-centrality ``δ / se``; the test rejects "no difference" when
    ``|t| > t_{1 − α/2, df}`` (the 95 % interval excludes 0). The result is the ``δ`` at which
    that happens with probability ``power``: about ``(t_{1 − α/2} + t_{power}) · se``
    (2.9 · se at 9 degrees of freedom).

    Parameters
    ----------
    std_error : float
        Corrected standard error of the difference, accuracy points (>= 0).
    df : float
        Degrees of freedom of the t (> 0).
    power : float, keyword-only
        In (alpha, 1).
    alpha : float, keyword-only
        Two-sided level of the test.

    Returns
    -------
    float
        Points (0 when ``std_error`` is 0: every difference is detected).
    """
    from scipy import optimize, stats  # ~1.5 s to import: kept off predict's path

    if not (math.isfinite(std_error) and std_error >= 0):
        raise ConfigError(f"std_error must be a finite number >= 0, got {std_error!r}")
    if not (math.isfinite(df) and df > 0):
        raise ConfigError(f"df must be a positive number, got {df!r}")
    if not (0 < alpha < 1 and alpha < power < 1):
        raise ConfigError(f"need 0 < alpha < power < 1, got alpha {alpha!r}, power {power!r}")
    if std_error == 0.0:
        return 0.0
    t_crit = float(stats.t.ppf(1.0 - alpha / 2, df))

    def shortfall(nc: float) -> float:
        # both tails: the far one matters only for a non-centrality near 0 (and scipy may
        # return NaN for it far out, where it is 0)
        far = float(stats.nct.cdf(-t_crit, df, nc))
        return float(stats.nct.sf(t_crit, df, nc)) + (far if math.isfinite(far) else 0.0) - power

    hi = t_crit + float(stats.norm.ppf(power)) * 4.0 + 4.0
    while shortfall(hi) < 0:
        hi *= 2.0
    return float(optimize.brentq(shortfall, 0.0, hi, xtol=1e-6)) * float(std_error)


@dataclass(frozen=True)
class Comparison:
    """Two runs' per-fold accuracies compared (A − B, in accuracy points).

    Attributes
    ----------
    runs : (str, str)
        Labels of A and B.
    paired : bool
        True: fold j of A and fold j of B tested the same songs, differences are per fold.
        False: an unpaired (Welch-type) comparison of the two sets of folds.
    n_folds : (int, int)
        Folds of A and of B that enter the comparison (equal when paired).
    mean_difference : float
        Mean of A minus mean of B, points.
    ci95 : (float, float)
        95 % interval of the difference from the corrected t (see :func:`compare_accuracies`).
    std_error, df : float
        Corrected standard error of ``mean_difference`` and the t's degrees of freedom.
    p_corrected_t : float
        Two-sided p of "no difference" from the corrected t.
    p_equivalence : float
        p of the two one-sided tests (TOST) of "|A − B| ≥ margin", on the corrected t.
    margin : float
        Equivalence margin, points.
    equivalent : bool
        ``p_equivalence < 0.05``.
    p_wilcoxon : float or None
        Wilcoxon signed-rank p (paired) or rank-sum / Mann-Whitney U p (unpaired); None
        when it cannot be computed (all differences zero). It ignores the correlation of
        the folds, so it is shown for reference and the verdict does not use it.
    rank_test : str
        Which rank test ``p_wilcoxon`` is.
    test_train_ratio : float
        The ``n_test / n_train`` of the variance correction.
    verdict : str
        ``"A better"``, ``"B better"``, ``"equivalent within ±m points"`` or
        ``"inconclusive"`` (rule in :func:`compare_accuracies`).
    mdd : float
        Minimum detectable difference, points: the true |A − B| the corrected t finds with
        probability :data:`POWER` given these folds and this fold variance
        (:func:`minimum_detectable_difference` of ``std_error`` and ``df``).
    notes : tuple of str
        Caveats (few folds, assumed ratio, identical accuracies, ...).
    """

    runs: tuple[str, str]
    paired: bool
    n_folds: tuple[int, int]
    mean_difference: float
    ci95: tuple[float, float]
    std_error: float
    df: float
    p_corrected_t: float
    p_equivalence: float
    margin: float
    equivalent: bool
    p_wilcoxon: float | None
    rank_test: str
    test_train_ratio: float
    verdict: str
    mdd: float
    notes: tuple[str, ...] = ()

    @property
    def power_sentence(self) -> str:
        """What the comparison could have found, in words (beside the verdict)."""
        return power_sentence(self.verdict, self.ci95, self.mdd)

    def to_dict(self) -> dict:
        """The ``compare --json`` object (lists for tuples; ``runs`` as ``{"a", "b"}``)."""
        return {
            "runs": {"a": self.runs[0], "b": self.runs[1]},
            "paired": self.paired,
            "method": ("paired corrected resampled t (Nadeau & Bengio 2003)" if self.paired
                       else "unpaired Welch-type t with the Nadeau & Bengio correction"),
            "n_folds": list(self.n_folds),
            "mean_difference": self.mean_difference,
            "ci95": list(self.ci95),
            "std_error": self.std_error,
            "df": self.df,
            "p_corrected_t": self.p_corrected_t,
            "p_wilcoxon": self.p_wilcoxon,
            "rank_test": self.rank_test,
            "margin": self.margin,
            "p_equivalence": self.p_equivalence,
            "equivalent": self.equivalent,
            "test_train_ratio": self.test_train_ratio,
            "verdict": self.verdict,
            "minimum_detectable_difference": {
                "points": self.mdd, "power": POWER, "alpha": ALPHA,
                "meaning": "the true |A − B| this design detects with probability 0.8 (same "
                           "corrected t, this fold variance)"},
            "power": self.power_sentence,
            "notes": list(self.notes),
        }


def _accuracies(values, what: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size < 2 or not np.all(np.isfinite(x)):
        raise ConfigError(f"{what} must be at least 2 finite per-fold accuracies, got "
                          f"{np.asarray(values).tolist()!r}")
    return x


@dataclass(frozen=True)
class CorrectedT:
    """The corrected resampled t of a difference A − B (see :func:`corrected_t`)."""

    mean_difference: float
    std_error: float
    df: float
    ci95: tuple[float, float]
    p_value: float  # two-sided, "no difference"
    p_equivalence: float  # TOST, "|A − B| >= margin"


def corrected_t(a: np.ndarray, b: np.ndarray, *, test_train_ratio: float, margin: float,
                paired: bool) -> CorrectedT:
    """Interval, p and equivalence p of A − B from the corrected resampled t.

    Paired (``a``, ``b`` aligned fold by fold, shape (J,)): ``d = a − b``,
    ``se² = (1/J + ρ) · var(d)``, ``df = J − 1``. Unpaired (shapes (n_a,), (n_b,)):
    ``se² = (1/n_a + ρ) · var(a) + (1/n_b + ρ) · var(b)``, Welch–Satterthwaite ``df``.
    ``ρ = test_train_ratio``, ``var`` with ddof 1. Inputs are checked by
    :func:`compare_accuracies`; call that one.
    """
    from scipy import stats  # ~1.5 s to import: kept off predict's path through song_vote

    rho = float(test_train_ratio)
    if paired:
        d = a - b                                                    # (J,)
        mean = float(d.mean())
        se = math.sqrt((1.0 / d.size + rho) * float(d.var(ddof=1)))
        df = float(d.size - 1)
    else:
        mean = float(a.mean() - b.mean())
        va = (1.0 / a.size + rho) * float(a.var(ddof=1))
        vb = (1.0 / b.size + rho) * float(b.var(ddof=1))
        se = math.sqrt(va + vb)
        df = (float((va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1)))
              if va + vb > 0 else float(a.size + b.size - 2))
    if se == 0.0:
        # Every fold gave the same difference: no spread to test against.
        return CorrectedT(mean, 0.0, df, (mean, mean), 1.0 if mean == 0.0 else 0.0,
                          0.0 if abs(mean) < margin else 1.0)
    t_crit = float(stats.t.ppf(1.0 - ALPHA / 2, df))
    # TOST: reject "difference <= -margin" and "difference >= +margin", both one-sided.
    p_lower = float(stats.t.sf((mean + margin) / se, df))
    p_upper = float(stats.t.cdf((mean - margin) / se, df))
    return CorrectedT(mean, se, df, (mean - t_crit * se, mean + t_crit * se),
                      float(2.0 * stats.t.sf(abs(mean) / se, df)), max(p_lower, p_upper))


def verdict_of(ci95: tuple[float, float], equivalent: bool, margin: float) -> str:
    """The verdict rule: the interval first, then equivalence.

    95 % interval entirely above 0 → ``"A better"``; entirely below 0 → ``"B better"``;
    otherwise TOST p < 0.05 → ``"equivalent within ±m points"``; otherwise
    ``"inconclusive"``. A difference that is both significant and within the margin is
    reported as a difference (``equivalent`` stays True in the result).
    """
    if ci95[0] > 0:
        return "A better"
    if ci95[1] < 0:
        return "B better"
    if equivalent:
        return f"equivalent within ±{margin:g} points"
    return "inconclusive"


def power_sentence(verdict: str, ci95: tuple[float, float], mdd: float) -> str:
    """A verdict's power in words: what the design could have found.

    An ``"inconclusive"`` verdict names the differences still possible (its 95 % interval)
    and the design's minimum detectable difference: differences smaller than it can go
    unnoticed, so the verdict is not "no difference".
    """
    could = (f"this design detects a true difference of {mdd:.1f} points or more "
             f"{100 * POWER:.0f} % of the time")
    if verdict == "inconclusive":
        return (f"every difference from {ci95[0]:+.1f} to {ci95[1]:+.1f} points is still "
                f"possible (95 % interval); {could}, smaller ones can go unnoticed")
    if verdict.startswith("equivalent"):
        return f"{verdict} (two one-sided tests); {could}"
    return f"detected; {could}"


def compare_accuracies(a, b, *, test_train_ratio: float, margin: float = DEFAULT_MARGIN,
                       paired: bool = True, labels: tuple[str, str] = ("A", "B"),
                       notes: Sequence[str] = ()) -> Comparison:
    """Compare two runs' per-fold accuracies: interval, p values, equivalence, verdict.

    Paired (same folds, same test songs): with ``d_j = a_j - b_j`` over J folds,
    ``se² = (1/J + ρ) · var(d)`` (``ρ = test_train_ratio``, ``var`` with ddof 1) and
    ``t = mean(d) / se`` with J − 1 degrees of freedom: the corrected resampled t-test of
    Nadeau & Bengio (2003), applied to k-fold cross-validation as Bouckaert & Frank (2004).
    Unpaired: each run's mean gets its own corrected variance ``(1/n + ρ) · var``; they add,
    with Welch–Satterthwaite degrees of freedom.

    The 95 % interval is ``mean ± t_{0.975, df} · se``; ``p_corrected_t`` is its two-sided p;
    equivalence is two one-sided tests (TOST) of ``|A − B| ≥ margin`` on the same t, at
    0.05 (the 90 % interval lies within ``±margin``). Verdict: :func:`verdict_of`.

    Parameters
    ----------
    a, b : array-like of float, shape (J,) paired, (n_a,) and (n_b,) unpaired
        Per-fold song accuracies, percent; paired arrays are aligned fold by fold.
    test_train_ratio : float, keyword-only
        ``n_test / n_train`` of one fold (songs tested over songs trained on); 10-fold
        ``clean``: 1/8.
    margin : float, keyword-only
        Equivalence margin in accuracy points (> 0).
    paired : bool, keyword-only
    labels : (str, str), keyword-only
        Names of A and B for the result.
    notes : sequence of str, keyword-only
        Caveats to carry into the result.

    Returns
    -------
    Comparison

    Raises
    ------
    ConfigError
        Fewer than 2 folds, paired arrays of different lengths, a margin or ratio that is not
        a finite positive number.
    """
    from scipy import stats  # ~1.5 s to import: kept off predict's path through song_vote

    a, b = _accuracies(a, "A"), _accuracies(b, "B")
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin > 0):
        raise ConfigError(f"margin must be a positive number of accuracy points, got {margin!r}")
    if not (isinstance(test_train_ratio, (int, float)) and math.isfinite(test_train_ratio)
            and test_train_ratio > 0):
        raise ConfigError(f"test_train_ratio must be a positive number, got "
                          f"{test_train_ratio!r}")
    notes = list(notes)
    if paired and a.shape != b.shape:
        raise ConfigError(f"a paired comparison needs the same folds on both sides, got "
                          f"{a.size} and {b.size} folds")
    t = corrected_t(a, b, test_train_ratio=test_train_ratio, margin=float(margin),
                    paired=paired)
    if paired:
        rank_test = "Wilcoxon signed-rank"
        d = a - b
        if np.all(d == 0):
            p_rank = None
            notes.append("the two runs have identical per-fold accuracies")
        else:
            # exact where there are no ties or zeros, else a permutation p (scipy's "auto")
            p_rank = float(stats.wilcoxon(d).pvalue)
        if d.size < MIN_WILCOXON_FOLDS:
            notes.append(f"only {d.size} paired folds: the Wilcoxon test cannot reach "
                         f"p < 0.05 with fewer than {MIN_WILCOXON_FOLDS}")
    else:
        rank_test = "Wilcoxon rank-sum (Mann-Whitney U)"
        p_rank = float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    equivalent = t.p_equivalence < ALPHA
    return Comparison(
        runs=(str(labels[0]), str(labels[1])), paired=bool(paired),
        n_folds=(int(a.size), int(b.size)), mean_difference=t.mean_difference,
        ci95=(float(t.ci95[0]), float(t.ci95[1])), std_error=t.std_error, df=t.df,
        p_corrected_t=t.p_value, p_equivalence=t.p_equivalence, margin=float(margin),
        equivalent=equivalent, p_wilcoxon=p_rank, rank_test=rank_test,
        test_train_ratio=float(test_train_ratio),
        verdict=verdict_of(t.ci95, equivalent, float(margin)),
        mdd=minimum_detectable_difference(t.std_error, t.df), notes=tuple(notes),
    )


def format_comparison(c: Comparison) -> str:
    """A :class:`Comparison` as a few lines of text (the CLI's output)."""
    def p(value):
        if value is None:
            return "—"
        return f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}"

    kind = ("paired over folds that tested the same songs" if c.paired
            else "unpaired (folds not matched)")
    folds = f"{c.n_folds[0]} folds" if c.paired else f"{c.n_folds[0]} vs {c.n_folds[1]} folds"
    verdict = {"A better": f"A ({c.runs[0]}) better",
               "B better": f"B ({c.runs[1]}) better"}.get(c.verdict, c.verdict)
    lines = [
        f"A = {c.runs[0]}",
        f"B = {c.runs[1]}",
        f"{kind}, {folds}",
        f"A − B = {c.mean_difference:+.2f} points, 95 % CI [{c.ci95[0]:+.2f}, "
        f"{c.ci95[1]:+.2f}] (corrected resampled t, n_test/n_train = {c.test_train_ratio:.3f}, "
        f"df = {c.df:.1f})",
        f"p (corrected t) = {p(c.p_corrected_t)} · p ({c.rank_test}) = {p(c.p_wilcoxon)} · "
        f"p (equivalence within ±{c.margin:g} points, TOST) = {p(c.p_equivalence)}",
        f"verdict: {verdict}",
        f"power: {c.power_sentence}",
    ]
    lines += [f"note: {note}" for note in c.notes]
    return "\n".join(lines)
