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
resampled t, :func:`tfcnn.evaluate.compare_accuracies`), the chance interval by the binomial
distribution of the pooled song accuracy under the null.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from tfcnn.config import CLASSES
from tfcnn.datasets import DEFAULT_SYNTH_SCENARIO, SYNTH_NAME
from tfcnn.errors import ConfigError
from tfcnn.result_sets import ResultSet

#: Scenarios in display order (those of :data:`tfcnn.synth.scenarios.SCENARIOS`).
SCENARIO_ORDER: tuple[str, ...] = ("paper", "tempo", "rhythm", "timbre", "shuffled")
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
    """One cell of the matrix: an architecture's cross-validated accuracy on a scenario."""

    scenario: str
    arch: str
    mean: float
    std: float
    per_fold: tuple[float, ...]
    n_tracks: int | None
    wall_s: float | None
    dataset: str
    source: str  # the run folder or Table 1 file it was read from


@dataclass(frozen=True)
class Verdict:
    """Whether a cell matches its scenario's expectation.

    ``ok`` is None where the scenario states nothing about this architecture; ``detail``
    gives the figures behind the verdict (difference and p-value, or the chance interval).
    """

    scenario: str
    arch: str
    ok: bool | None
    detail: str


def matrix_cells(sets: Sequence[ResultSet]) -> list[Cell]:
    """The cells of the result sets on SynthBallroom scenarios (others skipped).

    A later set wins a repeated cell unless it has fewer folds: a short demo run does not
    replace a 10-fold result in the matrix.
    """
    cells: dict[tuple[str, str], Cell] = {}
    for rs in sets:
        scenario = scenario_of(rs.dataset)
        if scenario is None or rs.mean is None:
            continue
        per_fold = tuple(rs.accuracies)
        earlier = cells.get((scenario, rs.arch))
        if earlier is not None and len(per_fold) < len(earlier.per_fold):
            continue
        cells[(scenario, rs.arch)] = Cell(
            scenario=scenario, arch=rs.arch, mean=float(rs.mean), std=float(rs.std or 0.0),
            per_fold=per_fold, n_tracks=rs.n_tracks, wall_s=rs.wall_s, dataset=rs.dataset,
            source=rs.origin or rs.label)
    return sorted(cells.values(), key=lambda c: (_rank(c.scenario, SCENARIO_ORDER),
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


def _compare(hi: Cell, lo: Cell, *, margin: float) -> tuple[bool | None, str]:
    """``hi`` above ``lo`` by at least ``margin`` points, its 95 % interval above 0.

    The interval is the corrected resampled t over paired folds
    (:func:`tfcnn.evaluate.compare_accuracies`) with ``n_test / n_train = 1 / (K - 2)``
    (``clean`` K-fold: one test fold, one validation fold).
    """
    from tfcnn.evaluate import compare_accuracies

    diff = hi.mean - lo.mean
    k = len(hi.per_fold)
    if k != len(lo.per_fold) or k < 3:
        return None, f"{hi.arch} − {lo.arch} = {diff:+.1f} points (folds differ: no test)"
    c = compare_accuracies(hi.per_fold, lo.per_fold, test_train_ratio=1.0 / (k - 2),
                           labels=(hi.arch, lo.arch))
    ok = c.verdict == "A better" and diff >= margin
    return ok, (f"{hi.arch} − {lo.arch} = {diff:+.1f} points, 95 % CI "
                f"{c.ci95[0]:+.1f} to {c.ci95[1]:+.1f} (corrected t, p = {c.p_corrected_t:.2g})")


def verdicts(cells: list[Cell]) -> list[Verdict]:
    """One verdict per cell (see the module docstring for the expectations)."""
    by = {(c.scenario, c.arch): c for c in cells}
    out = []
    for c in cells:
        ok, detail = None, "no expectation stated for this architecture"
        time, freq = by.get((c.scenario, "time")), by.get((c.scenario, "frequency"))
        if c.scenario == "shuffled":
            if c.n_tracks:
                lo, hi = chance_interval(c.n_tracks)
                ok = lo <= c.mean <= hi
                detail = f"chance interval {lo:.1f}-{hi:.1f} % ({c.n_tracks} tracks)"
            else:
                detail = "number of tracks unknown: no chance interval"
        elif c.arch in ("time", "frequency") and time and freq:
            if c.scenario in ("tempo", "rhythm"):
                ok, detail = _compare(time, freq, margin=FAR_POINTS)
            elif c.scenario == "timbre":
                ok, detail = _compare(freq, time, margin=0.0)
            elif c.scenario == DEFAULT_SYNTH_SCENARIO:
                ok, detail = _compare(time, freq, margin=0.0)
        elif c.arch in ("time", "frequency"):
            detail = "needs both Time and Frequency on this scenario"
        out.append(Verdict(scenario=c.scenario, arch=c.arch, ok=ok, detail=detail))
    return out


def verdict_mark(ok: bool | None) -> str:
    """✓, ✗ or – for a verdict."""
    return "–" if ok is None else ("✓" if ok else "✗")


def matrix_text(cells: list[Cell]) -> str:
    """The matrix as a Markdown table: mean ± std, verdict mark and wall time per cell."""
    marks = {(v.scenario, v.arch): verdict_mark(v.ok) for v in verdicts(cells)}
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
            parts.append(f"{c.mean:.1f} ± {c.std:.1f} {marks[(scenario, arch)]}{wall}")
        lines.append(f"| {scenario} | " + " | ".join(parts) + " |")
    return "\n".join(lines)

