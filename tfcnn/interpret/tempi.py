"""Class tempo ranges, and matching a filter's tempo interval against them.

A class's tempo range is the interquartile range of its tracks' BPMs (real Ballroom's
annotations, or a data set's own: SynthBallroom knows every track's exact tempo). A filter's
tempo is an interval, so it *matches* a class when the interval overlaps the class's range; the
chance of that for an interval of the same width placed at random is :func:`overlap_chance`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tfcnn.config import BALLROOM_BPM_RANGE
from tfcnn.datasets import ballroom_track_table, load_dataset
from tfcnn.errors import DatasetError

#: A class's tempo range: these quantiles of its tracks' BPMs (the interquartile range: a
#: wider one, e.g. 5-95 %, covers most of 60-224 BPM and any tempo would "match" a class).
TEMPO_RANGE_QUANTILES: tuple[float, float] = (0.25, 0.75)
#: Grid step (BPM) of the chance computations.
CHANCE_STEP: float = 0.5


def class_tempi(source="ballroom") -> pd.DataFrame:
    """Per-track tempi of each class: columns ``dance``, ``bpm``.

    Parameters
    ----------
    source : "ballroom", a Dataset or a data-set folder
        ``"ballroom"``: the shipped Ballroom track table (real annotations). A Dataset or
        folder: its tracks' ``bpm`` column (SynthBallroom: the exact tempo of every track).

    Raises
    ------
    DatasetError
        The data set has no tempo annotations.
    """
    if isinstance(source, str) and source == "ballroom":
        table, name = ballroom_track_table(), "the shipped Ballroom table"
    else:
        if isinstance(source, (str, os.PathLike)):
            source = load_dataset(source)
        table, name = source.tracks, str(source.root)
    table = table.loc[table["bpm"].notna(), ["dance", "bpm"]].reset_index(drop=True)
    if table.empty:
        raise DatasetError(f"{name} has no tempo annotations (bpm column empty)")
    return table


def tempi_for(data_dir=None) -> tuple[pd.DataFrame, str, str | None]:
    """Class tempi to study against: a data set's own annotations, else real Ballroom's.

    Returns
    -------
    tempi : DataFrame (``dance``, ``bpm``)
    name : str
        ``"data-set"`` or ``"Ballroom"``.
    note : str or None
        Why the data set's tempi could not be used (the Ballroom table is used instead).
    """
    if data_dir is not None:
        try:
            return class_tempi(data_dir), "data-set", None
        except DatasetError as exc:
            return class_tempi("ballroom"), "Ballroom", f"{exc}; using the real Ballroom tempi."
    return class_tempi("ballroom"), "Ballroom", None


def class_tempo_ranges(tempi: pd.DataFrame, *, classes: Sequence[str] | None = None,
                       quantiles: Sequence[float] = TEMPO_RANGE_QUANTILES) -> pd.DataFrame:
    """Each class's tempo range: index ``dance``; columns ``low``, ``median``, ``high``, ``n``.

    ``low``/``high`` are the ``quantiles`` of the class's track BPMs, also stored in
    ``attrs["quantiles"]``. Classes without tracks are left out.
    """
    classes = list(classes) if classes is not None else list(dict.fromkeys(tempi["dance"]))
    rows = []
    for dance in classes:
        bpm = tempi.loc[tempi["dance"] == dance, "bpm"].to_numpy(float)
        if len(bpm):
            lo, hi = np.quantile(bpm, list(quantiles))
            rows.append({"dance": dance, "low": float(lo), "median": float(np.median(bpm)),
                         "high": float(hi), "n": int(len(bpm))})
    out = pd.DataFrame(rows, columns=["dance", "low", "median", "high", "n"]).set_index("dance")
    out.attrs["quantiles"] = tuple(float(q) for q in quantiles)
    return out


def classes_at(bpm: float, ranges: pd.DataFrame) -> list[str]:
    """Classes whose tempo range holds ``bpm``."""
    return [d for d, r in ranges.iterrows() if r["low"] <= bpm <= r["high"]]


def classes_overlapping(interval: tuple[float, float], ranges: pd.DataFrame) -> list[str]:
    """Classes whose tempo range overlaps the tempo ``interval`` (low, high)."""
    lo, hi = interval
    return [d for d, r in ranges.iterrows() if lo <= r["high"] and r["low"] <= hi]


def overlap_chance(width_bpm: float, ranges: pd.DataFrame, *,
                   bpm_range: Sequence[float] = BALLROOM_BPM_RANGE) -> float:
    """Probability that an interval of ``width_bpm``, centred uniformly in ``bpm_range``,
    overlaps some class's range (the chance level of a "class-relevant" filter)."""
    lo, hi = (float(b) for b in bpm_range)
    centres = np.arange(lo, hi + 1e-9, CHANCE_STEP)
    half = float(width_bpm) / 2
    hit = np.zeros(len(centres), dtype=bool)
    for _, r in ranges.iterrows():
        hit |= (centres - half <= r["high"]) & (r["low"] <= centres + half)
    return float(hit.mean())


def tempo_class_agreement(probes, ranges: pd.DataFrame) -> dict:
    """How often the class predicted for a probe has the probe's tempo in its range.

    Parameters
    ----------
    probes : :class:`tfcnn.interpret.probes.Probes`
    ranges : DataFrame from :func:`class_tempo_ranges`

    Returns
    -------
    dict
        ``agreement`` (fraction of probes), ``chance`` (expected fraction for a random class),
        ``per_kind`` {kind: fraction}.
    """
    per_kind = {}
    for k, kind in enumerate(probes.kinds):
        hits = [probes.classes[int(c)] in classes_at(b, ranges)
                for b, c in zip(probes.bpms, probes.predicted[k])]
        per_kind[kind] = float(np.mean(hits))
    chance = [len(classes_at(b, ranges)) / max(len(probes.classes), 1) for b in probes.bpms]
    return {"agreement": float(np.mean(list(per_kind.values()))),
            "chance": float(np.mean(chance)), "per_kind": per_kind}
