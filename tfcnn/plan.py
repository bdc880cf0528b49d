"""Plan a comparison: from a pilot's per-fold variance, the tracks per class and seeds that give
an interval of a chosen width.

The interval is the one ``compare`` and the lab report: the corrected (repeated) resampled t
of :func:`tfcnn.evaluate.compare_accuracies`, with ``J = K · seeds`` paired folds,
``se² = (1/J + ρ) · s²`` (``ρ = n_test / n_train``) and ``J − 1`` degrees of freedom. A
design changes two things in it:

- **seeds** add folds: ``1/J`` shrinks, ``ρ`` does not. However many seeds, the half-width
  stays above ``t · √(ρ · s²)``: repeating the cross-validation cannot remove the variance
  that comes from the test songs themselves.
- **tracks per class** change ``s²``, the variance of a fold's difference. It is modelled as
  two parts: test-song sampling, ``Σ p(1 − p) / n_test`` (each model's song accuracy ``p`` as
  a binomial proportion over the fold's ``n_test`` songs, the two models' errors taken as
  independent), which shrinks as ``1 / n_test``; and the rest of the pilot's variance (what
  training adds), which is kept as it is. ``ρ`` stays the pilot's (with K fixed it does not
  depend on the number of tracks).

Both are assumptions, stated with the result: more training songs may also shrink the
training part and move the accuracies, and a pilot's variance is itself an estimate from K − 1
degrees of freedom. The plan says what to try, not what will happen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tfcnn.errors import ConfigError
from tfcnn.evaluate import ALPHA, POWER, minimum_detectable_difference

#: Tracks per class and seeds tried by :func:`plan_table` unless told otherwise.
PER_CLASS_STEPS: tuple[int, ...] = (20, 30, 40, 60, 80, 100, 150, 200, 300, 400)
SEED_STEPS: tuple[int, ...] = (1, 2, 3, 5, 10)


@dataclass(frozen=True)
class Pilot:
    """What a plan needs from a pilot: its design and the variance of its fold differences.

    Attributes
    ----------
    label : str
    n_folds : int
        K of the pilot (kept by the plan).
    n_classes : int
    per_class : float
        Tracks per class of the pilot.
    fold_variance : float
        ``s²`` of the per-fold differences A − B (points², ddof 1), pooled over the pilot's
        seeds.
    sampling_variance : float
        The part of ``fold_variance`` from the test songs (points², at the pilot's size;
        at most ``fold_variance``).
    test_train_ratio : float
        ``ρ = n_test / n_train``.
    paired : bool
        True when ``fold_variance`` comes from two runs on the same folds; False when one
        run stands for both models (``2 · var(accuracy)``) or two runs' folds cannot be
        matched (``var(a) + var(b)``).
    """

    label: str
    n_folds: int
    n_classes: int
    per_class: float
    fold_variance: float
    sampling_variance: float
    test_train_ratio: float
    paired: bool

    @property
    def training_variance(self) -> float:
        """The part of ``fold_variance`` the plan keeps whatever the number of tracks."""
        return self.fold_variance - self.sampling_variance

    def n_test(self, per_class: float) -> float:
        """Test songs per fold at ``per_class`` tracks per class."""
        return self.n_classes * per_class / self.n_folds


def _binomial_variance(accuracy: float, n_test: float) -> float:
    """Points² of a song accuracy (%) over ``n_test`` songs."""
    p = min(max(accuracy / 100.0, 0.0), 1.0)
    return 1e4 * p * (1.0 - p) / n_test


def make_pilot(a, b=None, *, n_test: float, n_classes: int, test_train_ratio: float,
               n_folds: int, paired: bool = True, label: str = "pilot") -> Pilot:
    """A :class:`Pilot` from per-fold accuracies.

    Parameters
    ----------
    a : array-like of float, shape (J,)
        Per-fold song accuracies (%) of model A (seeds' folds concatenated).
    b : array-like of float, shape (J,) or (J_b,) unpaired, optional
        Model B's, aligned fold by fold with ``a``. Without it the difference of two models
        like A is planned: ``s² = 2 · var(a)``.
    n_test : float, keyword-only
        Test songs per fold of the pilot.
    n_classes, n_folds : int, keyword-only
    test_train_ratio : float, keyword-only
    paired : bool, keyword-only
        False: A's and B's folds cannot be matched; ``s² = var(a) + var(b)`` (independent
        models, usually larger than the paired variance).

    Raises
    ------
    ConfigError
        Fewer than 2 folds, arrays that are not aligned, or a bad design number.
    """
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 1 or a.size < 2 or not np.all(np.isfinite(a)):
        raise ConfigError(f"a pilot needs at least 2 finite per-fold accuracies, got {a.tolist()}")
    for name, value in (("n_test", n_test), ("test_train_ratio", test_train_ratio)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ConfigError(f"{name} must be a positive number, got {value!r}")
    for name, value in (("n_classes", n_classes), ("n_folds", n_folds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ConfigError(f"{name} must be an integer >= 2, got {value!r}")
    if b is None:
        variance = 2.0 * float(a.var(ddof=1))
        sampling = 2.0 * _binomial_variance(float(a.mean()), n_test)
    else:
        b = np.asarray(b, dtype=np.float64)
        if (b.ndim != 1 or b.size < 2 or (paired and b.shape != a.shape)
                or not np.all(np.isfinite(b))):
            need = f"one finite accuracy per fold of A ({a.size})" if paired else (
                "at least 2 finite accuracies")
            raise ConfigError(f"B needs {need}, got {b.tolist()}")
        variance = float((a - b).var(ddof=1)) if paired else float(a.var(ddof=1) + b.var(ddof=1))
        sampling = (_binomial_variance(float(a.mean()), n_test)
                    + _binomial_variance(float(b.mean()), n_test))
    return Pilot(label=label, n_folds=int(n_folds), n_classes=int(n_classes),
                 per_class=n_test * n_folds / n_classes, fold_variance=variance,
                 sampling_variance=min(sampling, variance),
                 test_train_ratio=float(test_train_ratio), paired=b is not None and paired)


@dataclass(frozen=True)
class Design:
    """One design's interval and power (points)."""

    per_class: int
    seeds: int
    n_folds: int          # paired folds J = K · seeds
    fold_variance: float  # the planned s²
    std_error: float
    half_width: float     # of the 95 % interval
    mdd: float            # minimum detectable difference at POWER

    @property
    def trainings(self) -> int:
        """Cost in units of one pilot-size model: tracks × seeds × folds, relative."""
        return self.per_class * self.seeds


def design(pilot: Pilot, *, per_class: int, seeds: int) -> Design:
    """The interval half-width and MDD of a comparison at ``per_class`` tracks and ``seeds``."""
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ConfigError(f"per_class must be an integer >= 1, got {per_class!r}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"seeds must be an integer >= 1, got {seeds!r}")
    from scipy import stats  # ~1.5 s to import: only when a plan is computed

    n_pilot, n_new = pilot.n_test(pilot.per_class), pilot.n_test(per_class)
    s2 = pilot.sampling_variance * n_pilot / n_new + pilot.training_variance
    j = pilot.n_folds * seeds
    se = math.sqrt((1.0 / j + pilot.test_train_ratio) * s2)
    t = float(stats.t.ppf(1.0 - ALPHA / 2, j - 1))
    return Design(per_class=per_class, seeds=seeds, n_folds=j, fold_variance=s2,
                  std_error=se, half_width=t * se,
                  mdd=minimum_detectable_difference(se, float(j - 1)))


def plan_table(pilot: Pilot, *, per_class=PER_CLASS_STEPS, seeds=SEED_STEPS) -> list[Design]:
    """Every design of ``per_class`` × ``seeds`` (the pilot's own size first)."""
    sizes = sorted({int(round(pilot.per_class)), *(int(n) for n in per_class)})
    return [design(pilot, per_class=n, seeds=s) for n in sizes for s in seeds]


def cheapest(designs: list[Design], *, half_width: float) -> Design | None:
    """The design with the fewest trainings (tracks × seeds) whose half-width is at most
    ``half_width``; fewer seeds on a tie. None when none reaches it."""
    ok = [d for d in designs if d.half_width <= half_width]
    return min(ok, key=lambda d: (d.trainings, d.seeds)) if ok else None


def seed_floor(pilot: Pilot, *, per_class: int) -> float:
    """The half-width infinitely many seeds approach at ``per_class``: ``z · √(ρ s²)``."""
    from scipy import stats

    d = design(pilot, per_class=per_class, seeds=1)
    return float(stats.norm.ppf(1.0 - ALPHA / 2)) * math.sqrt(
        pilot.test_train_ratio * d.fold_variance)


def format_plan(pilot: Pilot, designs: list[Design], *, half_width: float | None) -> str:
    """The plan as text: the pilot, a table of half-widths (and MDDs), the cheapest design."""
    kind = ("paired A − B over the pilot's folds" if pilot.paired
            else "unpaired: s² = var(A) + var(B) (independent models), a paired design may "
                 "need less")
    lines = [
        f"pilot: {pilot.label} ({kind})",
        f"  {pilot.n_folds} folds, {pilot.per_class:.0f} tracks per class, n_test/n_train = "
        f"{pilot.test_train_ratio:.3f}; fold sd of A − B {math.sqrt(pilot.fold_variance):.1f} "
        f"points, of which test-song sampling {math.sqrt(pilot.sampling_variance):.1f} "
        f"(shrinks with more tracks) and training {math.sqrt(pilot.training_variance):.1f} "
        f"(kept)",
        "",
        f"95 % interval half-width (points) / minimum detectable difference at "
        f"{100 * POWER:.0f} % power:",
    ]
    seeds = sorted({d.seeds for d in designs})
    sizes = sorted({d.per_class for d in designs})
    head = ["tracks/class", *(f"{s} seed{'s' if s > 1 else ''}" for s in seeds)]
    body = []
    for n in sizes:
        row = [str(n)]
        for s in seeds:
            d = next(x for x in designs if x.per_class == n and x.seeds == s)
            row.append(f"±{d.half_width:.1f} / {d.mdd:.1f}")
        body.append(row)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    for r in [head, *body]:
        lines.append("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    if half_width is not None:
        best = cheapest(designs, half_width=half_width)
        if best is None:
            lines.append(f"\nno design in the table reaches ±{half_width:g} points; more "
                         f"tracks per class than {sizes[-1]} are needed")
        else:
            folds = f"{best.n_folds} {'paired ' if pilot.paired else ''}folds"
            lines.append(f"\nfor ±{half_width:g} points: {best.per_class} tracks per class × "
                         f"{best.seeds} seed(s) ({folds}): ±{best.half_width:.1f}, detects "
                         f"{best.mdd:.1f} points {100 * POWER:.0f} % of the time")
    floor = seed_floor(pilot, per_class=int(round(pilot.per_class)))
    lines.append(f"seeds alone cannot go below ±{floor:.1f} points at the pilot's size "
                 f"(the n_test/n_train term of the corrected variance)")
    lines.append("assumptions: test-song variance ∝ 1/n_test with independent errors of A "
                 "and B; the training part and n_test/n_train stay the pilot's")
    return "\n".join(lines)
