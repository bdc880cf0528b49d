"""Families of comparisons: seeds pooled as corrected repeated cross-validation, and Holm's
correction over the contrasts a table reports.

**Seeds pooled.** Each seed draws its own folds; two settings trained with the same seed test
the same songs fold by fold. The folds of every seed both settings share are concatenated and
compared as one set of ``J = K · seeds`` paired differences by
:func:`tfcnn.evaluate.compare_accuracies`: ``se² = (1/J + n_test/n_train) · s²``, ``J − 1``
degrees of freedom, the corrected repeated k-fold t of Bouckaert & Frank (2004). Its coverage
under the null, with seed effects, is simulated by ``scripts/sweep_null_coverage.py``.

**Many contrasts.** A table that reports m pairwise contrasts makes m tests; at 5 % each, some
"differences" appear by chance. Holm's step-down method (Holm 1979) keeps the chance of any
false "better" at 5 % for the family: sort the m p-values, multiply the i-th smallest by
``m − i + 1``, make the sequence non-decreasing, cap at 1; a contrast is declared where its
adjusted p is below 0.05. Holm has no interval of its own; beside it each contrast gets the
Bonferroni interval at ``1 − 0.05/m``, which holds for all m together (it is a little wider
than what Holm needs, so a contrast Holm declares can still have a simultaneous interval that
touches 0).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tfcnn.errors import ConfigError
from tfcnn.evaluate import ALPHA, Comparison, compare_accuracies, minimum_detectable_difference
from tfcnn.folds import PAPER_VALIDATION_FRACTION


def cv_test_train_ratio(n_folds: int, protocol: str = "clean") -> float:
    """``n_test / n_train`` of K-fold cross-validation under a protocol.

    ``clean``: one fold tests, one validates, K − 2 train (``1 / (K − 2)``). ``paper``: one
    fold tests, the model fits on 8/9 of the other K − 1 (``1 / ((K − 1) · 8/9)``). Both are
    1/8 at K = 10.
    """
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 3:
        raise ConfigError(f"n_folds must be an integer >= 3, got {n_folds!r}")
    if protocol == "paper":
        return 1.0 / ((n_folds - 1) * (1.0 - PAPER_VALIDATION_FRACTION))
    return 1.0 / (n_folds - 2)


def pooled_comparison(a: Mapping[int, Sequence[float]], b: Mapping[int, Sequence[float]], *,
                      test_train_ratio: float, labels: tuple[str, str] = ("A", "B"),
                      margin: float | None = None) -> Comparison | None:
    """A − B over the folds of every seed both have: the corrected repeated k-fold t.

    Parameters
    ----------
    a, b : mapping of seed to sequence of float
        Per-fold accuracies (%) of each seed, in fold order (a seed's fold j tested the same
        songs in A and B). A seed is used when both have it with the same number of folds.
    test_train_ratio : float, keyword-only
    labels : (str, str), keyword-only
    margin : float, optional, keyword-only
        Equivalence margin (default :data:`tfcnn.evaluate.DEFAULT_MARGIN`).

    Returns
    -------
    Comparison or None
        None when fewer than 2 paired folds are shared. Its ``notes`` name the seeds pooled.
    """
    seeds = [s for s in sorted(set(a) & set(b)) if len(a[s]) == len(b[s]) and len(a[s])]
    acc_a = np.concatenate([np.asarray(a[s], dtype=np.float64) for s in seeds]) if seeds else []
    acc_b = np.concatenate([np.asarray(b[s], dtype=np.float64) for s in seeds]) if seeds else []
    if len(acc_a) < 2:
        return None
    notes = [f"{len(seeds)} seed(s) pooled ({', '.join(str(s) for s in seeds)}): "
             f"{len(acc_a)} paired folds, corrected repeated k-fold t"] if len(seeds) > 1 else []
    kwargs = {} if margin is None else {"margin": margin}
    return compare_accuracies(acc_a, acc_b, test_train_ratio=test_train_ratio, labels=labels,
                              notes=notes, **kwargs)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input's order (see the module docstring)."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or not np.all((p >= 0) & (p <= 1)):
        raise ConfigError(f"p-values must be a list of numbers in [0, 1], got {list(p_values)!r}")
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()


@dataclass(frozen=True)
class Contrast:
    """One contrast of a family, with its per-contrast and family-wise reading.

    Attributes
    ----------
    comparison : Comparison
        The per-contrast comparison (95 % interval, p, verdict, MDD).
    p_holm : float
        Holm-adjusted p over the family.
    verdict : str
        At the family's level: ``"A better"`` / ``"B better"`` where ``p_holm < 0.05``, else
        ``"inconclusive"``.
    simultaneous_ci : (float, float)
        Bonferroni interval at ``1 − 0.05/m``.
    mdd : float
        Minimum detectable difference at 80 % power and the Bonferroni level ``0.05/m``
        (what the family can detect in every contrast).
    n_contrasts : int
        m.
    """

    comparison: Comparison
    p_holm: float
    verdict: str
    simultaneous_ci: tuple[float, float]
    mdd: float
    n_contrasts: int

    def to_dict(self) -> dict:
        c = self.comparison
        return {"a": c.runs[0], "b": c.runs[1], "difference": c.mean_difference,
                "ci95": list(c.ci95), "p": c.p_corrected_t, "verdict_alone": c.verdict,
                "mdd_alone": c.mdd, "p_holm": self.p_holm, "verdict": self.verdict,
                "simultaneous_ci": list(self.simultaneous_ci), "mdd": self.mdd,
                "n_contrasts": self.n_contrasts, "paired_folds": c.n_folds[0],
                "notes": list(c.notes)}


def family(comparisons: Sequence[Comparison]) -> list[Contrast]:
    """Holm over ``comparisons`` (each one contrast), with Bonferroni intervals and MDDs."""
    from scipy import stats  # ~1.5 s to import: only when a family is formed

    m = len(comparisons)
    if m == 0:
        return []
    adjusted = holm([c.p_corrected_t for c in comparisons])
    level = ALPHA / m
    out = []
    for c, p in zip(comparisons, adjusted):
        half = float(stats.t.ppf(1.0 - level / 2, c.df)) * c.std_error
        verdict = ("inconclusive" if p >= ALPHA
                   else "A better" if c.mean_difference > 0 else "B better")
        out.append(Contrast(
            comparison=c, p_holm=float(p), verdict=verdict,
            simultaneous_ci=(c.mean_difference - half, c.mean_difference + half),
            mdd=minimum_detectable_difference(c.std_error, c.df, alpha=level), n_contrasts=m))
    return out


def setting_contrasts(rows: Sequence[Mapping], params: Sequence[str], *,
                      test_train_ratio: float) -> list[Contrast]:
    """Every pair of a sweep's settings compared over the seeds they share, Holm over all.

    Parameters
    ----------
    rows : sequence of mapping
        Grid points as :func:`tfcnn.sweep.grid_rows` gives them (or a sweep report's
        ``points``): each with its ``params`` values, ``seed`` and ``accuracies`` (per
        complete fold, in fold order).
    params : sequence of str
        The swept parameters (a setting is their values).
    test_train_ratio : float, keyword-only

    Returns
    -------
    list of Contrast
        One per pair of settings, A the one with the higher mean over the pooled folds; pairs
        with fewer than 2 shared folds are left out (and not counted in m).
    """
    folds: dict[tuple, dict[int, list[float]]] = {}
    for row in rows:
        key = tuple(str(row.get(p)) for p in params)
        accuracies = [float(x) for x in row.get("accuracies") or [] if x is not None]
        if accuracies:
            folds.setdefault(key, {})[int(row["seed"])] = accuracies
    comparisons = []
    for x, y in itertools.combinations(folds, 2):
        c = pooled_comparison(folds[x], folds[y], test_train_ratio=test_train_ratio,
                              labels=(_name(x), _name(y)))
        if c is None:
            continue
        if c.mean_difference < 0:
            c = pooled_comparison(folds[y], folds[x], test_train_ratio=test_train_ratio,
                                  labels=(_name(y), _name(x)))
        comparisons.append(c)
    return family(comparisons)


def _name(setting: tuple) -> str:
    return " ".join(setting)


def family_sentence(m: int) -> str:
    """What the family-wise columns mean, for a caption or a report."""
    return (f"Holm-adjusted over the {m} contrast{'s' if m != 1 else ''} reported "
            f"(family-wise 5 %: the chance of "
            f"any false 'better' among them stays at 5 %); simultaneous intervals are "
            f"Bonferroni's at {100 * (1 - ALPHA / max(m, 1)):.1f} %; MDD at 80 % power and "
            f"that level.")


def format_contrasts(contrasts: Sequence[Contrast]) -> str:
    """The family as text: one line per contrast, then what the columns mean."""
    if not contrasts:
        return "(no two settings share 2 or more folds: no contrast)"
    lines = []
    for k in contrasts:
        c = k.comparison
        verdict = {"A better": f"{c.runs[0]} better", "B better": f"{c.runs[1]} better"}.get(
            k.verdict, k.verdict)
        lines.append(
            f"{c.runs[0]} − {c.runs[1]}: {c.mean_difference:+.1f} points, 95 % CI "
            f"{c.ci95[0]:+.1f} to {c.ci95[1]:+.1f} (alone); simultaneous "
            f"{k.simultaneous_ci[0]:+.1f} to {k.simultaneous_ci[1]:+.1f}; p Holm "
            f"{k.p_holm:.3g}: {verdict} (detects {k.mdd:.1f} points; {c.n_folds[0]} folds)")
    return "\n".join([*lines, family_sentence(len(contrasts))])
