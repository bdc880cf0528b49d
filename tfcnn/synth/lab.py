"""The scenario × architecture matrix: accuracy per SynthBallroom scenario, and whether each
cell matches what the scenario's cue predicts.

Cells come from result sets (:class:`tfcnn.result_sets.ResultSet`: the entries of Table 1
files such as ``checkpoints/table1-scenarios.json``, and run folders); a set's data set name
gives its scenario (:func:`tfcnn.datasets.synth_name`). The expectations (Pons et al. 2016, §1: the Time
branch's 1×60 filters see temporal cues only, the Frequency branch's 32×1 filters spectral
cues only):

- ``tempo``, ``rhythm``: Time far above Frequency;
- ``timbre``: Frequency above Time;
- ``shuffled``: every architecture inside the chance interval (labels carry no cue);
- ``paper``: Time above Frequency, as in the paper's Table 1.

A comparison is judged by the 95 % interval of the paired difference over folds (corrected
resampled t, :func:`tfcnn.evaluate.compare_accuracies`; a cell run with several seeds pools
the folds of every seed both cells share, the corrected repeated k-fold t of
:func:`tfcnn.contrasts.pooled_comparison`), the chance interval by the binomial distribution
of the pooled song accuracy under the null. A verdict has three outcomes: the interval
**shows** the expectation, **contradicts** it (every difference the interval allows falls
short of it), or leaves it **not shown** (the interval allows both); each comes with the
difference the design detects 80 % of the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tfcnn.config import CLASSES
from tfcnn.datasets import DEFAULT_SYNTH_SCENARIO, SYNTH_NAME
from tfcnn.errors import ConfigError
from tfcnn.result_sets import ResultSet

#: Scenarios in display order (those of :data:`tfcnn.synth.scenarios.SCENARIOS`).
SCENARIO_ORDER: tuple[str, ...] = ("paper", "tempo", "rhythm", "timbre", "shuffled",
                                   "conflict")
#: Architectures in display order.
ARCH_ORDER: tuple[str, ...] = ("time", "frequency", "timefreq", "timefreq-init", "blackbox")
#: "Far above": at least this many accuracy points, and the 95 % interval above 0.
FAR_POINTS: float = 15.0
#: Level of the chance interval (1 - ALPHA) and of the comparisons' intervals.
ALPHA: float = 0.05

#: What each scenario predicts, in words (the README and the app show these).
EXPECTATIONS: dict[str, str] = {
    "paper": "Time above Frequency (as in the paper's Table 1: 81.8 vs 59.6 %)",
    "tempo": f"Time far above Frequency (≥ {FAR_POINTS:g} points, 95 % interval above 0)",
    "rhythm": f"Time far above Frequency (≥ {FAR_POINTS:g} points, 95 % interval above 0)",
    "timbre": "Frequency above Time (95 % interval above 0)",
    "shuffled": "every architecture inside the 95 % chance interval around 12.5 %",
}


def scenario_of(dataset: str | None) -> str | None:
    """Scenario of a data set name (``SynthBallroom`` → ``paper``, ``SynthBallroom-tempo`` →
    ``tempo``); None for any other data set."""
    if dataset == SYNTH_NAME:
        return DEFAULT_SYNTH_SCENARIO
    prefix = f"{SYNTH_NAME}-"
    return dataset[len(prefix):] if dataset and dataset.startswith(prefix) else None


def chance_interval(n_tracks: int, n_classes: int = len(CLASSES), *,
                    level: float = 1 - ALPHA) -> tuple[float, float]:
    """Central interval (%) of the pooled song accuracy of a classifier that guesses.

    Each of the ``n_tracks`` songs is tested once in K-fold cross-validation; under labels
    independent of the audio each is right with probability ``1 / n_classes``, so the
    number right is Binomial(n_tracks, 1 / n_classes).

    Returns
    -------
    (float, float)
        Lower and upper bound in percent (e.g. 9.6-15.6 % for 480 tracks, 8 classes).
    """
    from scipy import stats

    if int(n_tracks) != n_tracks or n_tracks < 1:
        raise ConfigError(f"n_tracks must be an integer >= 1, got {n_tracks}")
    if int(n_classes) != n_classes or n_classes < 2:
        raise ConfigError(f"n_classes must be an integer >= 2, got {n_classes}")
    tail = (1 - level) / 2
    dist = stats.binom(int(n_tracks), 1 / n_classes)
    return (100.0 * float(dist.ppf(tail)) / n_tracks,
            100.0 * float(dist.ppf(1 - tail)) / n_tracks)


@dataclass(frozen=True)
class Cell:
    """One cell of the matrix: an architecture's cross-validated accuracy on a scenario, over
    one or more seeds.

    Attributes
    ----------
    mean : float
        Mean over seeds of each seed's cross-validation mean (%).
    std : float
        ``np.std`` over the folds of all seeds (%).
    per_fold : tuple of float
        Every fold of every seed, seed by seed.
    per_seed : dict of int to tuple of float
        Each seed's fold accuracies, in fold order.
    """

    scenario: str
    arch: str
    mean: float
    std: float
    per_fold: tuple[float, ...]
    n_tracks: int | None
    wall_s: float | None
    dataset: str
    source: str  # the run folder or Table 1 file it was read from
    per_seed: dict[int, tuple[float, ...]] = field(default_factory=dict)

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(sorted(self.per_seed))

    @property
    def seed_means(self) -> tuple[float, ...]:
        """Each seed's cross-validation mean (%), in seed order."""
        return tuple(float(np.mean(self.per_seed[s])) for s in self.seeds)

    @property
    def seed_std(self) -> float | None:
        """``np.std`` of the seeds' means (None with one seed): the seed spread."""
        return float(np.std(self.seed_means)) if len(self.per_seed) > 1 else None


#: The outcomes of a verdict (``Verdict.status``) and their marks.
MARKS: dict[str, str] = {"shown": "✓", "contradicted": "✗", "not shown": "?", "none": "–"}


@dataclass(frozen=True)
class Verdict:
    """Whether a cell matches its scenario's expectation.

    ``status`` is ``"shown"`` (the interval supports the expectation), ``"contradicted"``
    (it excludes it), ``"not shown"`` (it allows both) or ``"none"`` (no expectation for
    this architecture, or nothing to test it with); ``detail`` gives the figures behind it
    (difference, interval, what the design detects, or the chance interval).
    """

    scenario: str
    arch: str
    status: str
    detail: str
    mdd: float | None = None

    @property
    def ok(self) -> bool | None:
        """True shown, False contradicted, None otherwise."""
        return {"shown": True, "contradicted": False}.get(self.status)


def matrix_cells(sets: Sequence[ResultSet]) -> list[Cell]:
    """The cells of the result sets on SynthBallroom scenarios (others skipped), seeds pooled.

    Sets of one (scenario, architecture) on a data set of the same size pool as seeds (a set
    that did not record its seed is seed 0). A later set replaces an earlier one of the same
    seed, and a set on a data set of another size replaces the whole cell, unless it has
    fewer folds: a short demo run does not replace a 10-fold result in the matrix.
    """
    groups: dict[tuple[str, str], dict[int, ResultSet]] = {}
    for rs in sets:
        scenario = scenario_of(rs.dataset)
        if scenario is None or rs.mean is None:
            continue
        seeds = groups.setdefault((scenario, rs.arch), {})
        if len(rs.accuracies) < max((len(r.accuracies) for r in seeds.values()), default=0):
            continue
        if any(r.n_tracks != rs.n_tracks for r in seeds.values()):
            seeds.clear()  # another set size: the cell starts over
        seeds[int(rs.seed or 0)] = rs
    cells = []
    for (scenario, arch), seeds in groups.items():
        last = list(seeds.values())[-1]
        per_seed = {s: tuple(r.accuracies) for s, r in sorted(seeds.items()) if r.accuracies}
        folds = [a for s in sorted(per_seed) for a in per_seed[s]]
        walls = [r.wall_s for r in seeds.values() if r.wall_s is not None]
        cells.append(Cell(
            scenario=scenario, arch=arch,
            mean=float(np.mean([r.mean for _, r in sorted(seeds.items())])),
            std=float(np.std(folds)) if len(seeds) > 1 else float(last.std or 0.0),
            per_fold=tuple(folds), n_tracks=last.n_tracks,
            wall_s=float(sum(walls)) if walls else None, dataset=last.dataset,
            source=last.origin or last.label, per_seed=per_seed))
    return sorted(cells, key=lambda c: (_rank(c.scenario, SCENARIO_ORDER),
                                        _rank(c.arch, ARCH_ORDER)))


def _rank(name: str, order: tuple[str, ...]) -> tuple[int, str]:
    return (order.index(name), "") if name in order else (len(order), name)


def accuracy_matrix(cells: list[Cell]) -> pd.DataFrame:
    """Mean accuracy (%) as a scenario × architecture table (NaN where nothing ran)."""
    if not cells:
        return pd.DataFrame(dtype=float)
    frame = pd.DataFrame([(c.scenario, c.arch, c.mean) for c in cells],
                         columns=["scenario", "arch", "mean"])
    table = frame.pivot(index="scenario", columns="arch", values="mean")
    rows = sorted(table.index, key=lambda s: _rank(s, SCENARIO_ORDER))
    cols = sorted(table.columns, key=lambda a: _rank(a, ARCH_ORDER))
    return table.loc[rows, cols]


def _compare(hi: Cell, lo: Cell, *, margin: float) -> tuple[str, str, float | None]:
    """Is ``hi`` above ``lo`` by at least ``margin`` points? Status, detail and MDD.

    Shown: the difference is at least ``margin`` and its 95 % interval lies above 0.
    Contradicted: the interval lies below ``margin`` (below 0 when ``margin`` is 0): every
    difference it allows falls short. Otherwise not shown. The interval is the corrected
    resampled t over paired folds (seeds pooled, :func:`tfcnn.contrasts.pooled_comparison`)
    with ``n_test / n_train = 1 / (K - 2)`` (``clean`` K-fold: one test fold, one
    validation fold).
    """
    from tfcnn.contrasts import pooled_comparison

    diff = hi.mean - lo.mean
    k = min((len(f) for f in (*hi.per_seed.values(), *lo.per_seed.values())), default=0)
    c = pooled_comparison(hi.per_seed, lo.per_seed, test_train_ratio=1.0 / max(k - 2, 1),
                          labels=(hi.arch, lo.arch)) if k >= 3 else None
    if c is None:
        return "none", f"{hi.arch} − {lo.arch} = {diff:+.1f} points (folds differ: no test)", None
    if c.ci95[0] > 0 and c.mean_difference >= margin:
        status = "shown"
    elif c.ci95[1] < margin:
        status = "contradicted"
    else:
        status = "not shown"
    shared = len(set(hi.per_seed) & set(lo.per_seed))
    seeds = f", {shared} seeds pooled" if shared > 1 else ""
    return status, (f"{hi.arch} − {lo.arch} = {c.mean_difference:+.1f} points, 95 % CI "
                    f"{c.ci95[0]:+.1f} to {c.ci95[1]:+.1f} (corrected t, {c.n_folds[0]} "
                    f"paired folds{seeds}, p = {c.p_corrected_t:.2g}); detects "
                    f"{c.mdd:.1f} points 80 % of the time"), c.mdd


def verdicts(cells: list[Cell]) -> list[Verdict]:
    """One verdict per cell (see the module docstring for the expectations)."""
    by = {(c.scenario, c.arch): c for c in cells}
    out = []
    for c in cells:
        status, detail, mdd = "none", "no expectation stated for this architecture", None
        time, freq = by.get((c.scenario, "time")), by.get((c.scenario, "frequency"))
        if c.scenario == "shuffled":
            if c.n_tracks:
                lo, hi = chance_interval(c.n_tracks)
                status = "shown" if lo <= c.mean <= hi else "contradicted"
                detail = f"chance interval {lo:.1f}-{hi:.1f} % ({c.n_tracks} tracks)"
            else:
                detail = "number of tracks unknown: no chance interval"
        elif c.arch in ("time", "frequency") and time and freq:
            if c.scenario in ("tempo", "rhythm"):
                status, detail, mdd = _compare(time, freq, margin=FAR_POINTS)
            elif c.scenario == "timbre":
                status, detail, mdd = _compare(freq, time, margin=0.0)
            elif c.scenario == DEFAULT_SYNTH_SCENARIO:
                status, detail, mdd = _compare(time, freq, margin=0.0)
        elif c.arch in ("time", "frequency"):
            detail = "needs both Time and Frequency on this scenario"
        elif c.scenario != "shuffled":
            against = [_compare(c, other, margin=0.0)[1] for other in (time, freq)
                       if other is not None]
            if against:
                detail = "no expectation stated; " + "; ".join(against)
        out.append(Verdict(scenario=c.scenario, arch=c.arch, status=status, detail=detail,
                           mdd=mdd))
    return out


def verdict_mark(verdict: Verdict) -> str:
    """✓ shown, ✗ contradicted, ? not shown, – no expectation (:data:`MARKS`)."""
    return MARKS[verdict.status]


def cell_text(cell: Cell) -> str:
    """A cell's accuracy: ``46.2 ± 9.4`` (one seed: mean ± fold std) or ``43.8, seeds 46.2 /
    43.8 / 41.2`` (several: the mean over seeds and each seed's mean)."""
    if len(cell.per_seed) > 1:
        return (f"{cell.mean:.1f}, seeds " + " / ".join(f"{m:.1f}" for m in cell.seed_means))
    return f"{cell.mean:.1f} ± {cell.std:.1f}"


def matrix_text(cells: list[Cell]) -> str:
    """The matrix as a Markdown table: mean ± std, verdict mark and wall time per cell."""
    marks = {(v.scenario, v.arch): verdict_mark(v) for v in verdicts(cells)}
    table = accuracy_matrix(cells)
    if table.empty:
        return "(no results)"
    by = {(c.scenario, c.arch): c for c in cells}
    head = "| scenario | " + " | ".join(table.columns) + " |"
    lines = [head, "|" + "---|" * (len(table.columns) + 1)]
    for scenario in table.index:
        parts = []
        for arch in table.columns:
            c = by.get((scenario, arch))
            if c is None:
                parts.append("—")
                continue
            wall = "" if c.wall_s is None else f" ({c.wall_s / 60:.0f} min)"
            parts.append(f"{cell_text(c)} {marks[(scenario, arch)]}{wall}")
        lines.append(f"| {scenario} | " + " | ".join(parts) + " |")
    return "\n".join(lines)

