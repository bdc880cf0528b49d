"""Predict page helpers: readable model names, several files at once, tempo context, and a
data-set track's role in the chosen model's cross-validation split."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from tfcnn.assessment import Assessment, ballroom_tempo_ranges  # noqa: F401 (the page's)
from tfcnn.assessment import classify as classify_song
from tfcnn.checkpoint import read_metadata
from tfcnn.errors import TfcnnError
from tfcnn.export import csv_text
from tfcnn.inference import Prediction
from tfcnn.recalibrate import checkpoint_split
from tfcnn.runs import CONFIG_FILE

#: Columns of the several-files table (and of its CSV export), numbers as numbers: the
#: verdict, the rule that decided it (``why``) and the cutoffs it compared against.
TABLE_COLUMNS: tuple[str, ...] = ("file", "prediction", "status", "confidence (%)",
                                  "confidence cutoff (%)", "beat strength", "beat cutoff",
                                  "patches", "why", "tempo (BPM)", "tempo classes", "error")
#: Numeric columns of the table and how the page shows them (an empty cell shows as blank).
_NUMBER_FORMATS = {"confidence (%)": "{:.1f}", "confidence cutoff (%)": "{:.1f}",
                   "beat strength": "{:.2f}", "beat cutoff": "{:.2f}", "tempo (BPM)": "{:.1f}",
                   "patches": "{:.0f}"}


def checkpoint_label(path: str | os.PathLike) -> str:
    """``"timefreq · shipped · fold 0 · test 91.7 % · calibrated"`` from the file's header.

    A checkpoint inside a run folder names its run; anything else is "shipped" when it sits
    with the shipped models, else its file name.
    """
    path = Path(path)
    try:
        meta = read_metadata(path)
    except TfcnnError:
        return f"{path.name} (unreadable)"
    extra = meta.get("extra") or {}
    metrics = meta.get("metrics") or {}
    run = path.parent.parent
    parts = [str(meta.get("arch", "?")),
             f"run {run.name}" if (run / CONFIG_FILE).is_file() else f"shipped {path.stem}"]
    if isinstance(extra.get("fold"), int):
        parts.append(f"fold {extra['fold']}")
    if isinstance(metrics.get("accuracy"), (int, float)):
        parts.append(f"test {metrics['accuracy']:.1f} %")
    parts.append("calibrated" if meta.get("calibration") else "uncalibrated")
    return " · ".join(parts)


@dataclass(frozen=True)
class FileResult:
    """One classified file (``error`` set instead when it could not be)."""

    name: str
    prediction: Prediction | None = None
    assessment: Assessment | None = None
    signal: np.ndarray | None = None
    seconds: float = 0.0
    error: str | None = None

    def row(self) -> dict:
        """The file's row of :data:`TABLE_COLUMNS` (a text cell without a value is empty,
        a number without one NaN)."""
        empty = {c: "" for c in TABLE_COLUMNS if c not in _NUMBER_FORMATS}
        if self.error is not None:
            return {**empty, "file": self.name, "status": "error", "error": self.error}
        a, p = self.assessment, self.prediction
        cal = a.calibration
        return {**empty, "file": self.name, "prediction": p.prediction,
                "confidence (%)": round(100.0 * a.confidence, 1), "status": a.status,
                "why": a.why(), "confidence cutoff (%)": round(100.0 * cal.unsure_threshold, 1),
                "beat strength": round(a.tempo.strength, 3),
                "beat cutoff": (float("nan") if cal.beat_threshold is None
                                else round(cal.beat_threshold, 3)),
                "tempo (BPM)": round(a.tempo.bpm, 1),
                "tempo classes": ", ".join(a.tempo_match.classes) or "none",
                "patches": p.n_patches}


def classify(data: bytes, name: str, checkpoint, *, max_duration_s: float) -> FileResult:
    """Classify one file through the core's path (:func:`tfcnn.assessment.classify`, as
    ``python -m tfcnn predict``), refusing audio over the page's ``max_duration_s``; a
    project error becomes the result's ``error``."""
    try:
        result = classify_song(data, checkpoint, name=name, max_duration_s=max_duration_s,
                               keep_signal=True)
    except TfcnnError as exc:
        return FileResult(name, error=str(exc))
    return FileResult(name, result.prediction, result.assessment, result.prediction.signal,
                      result.seconds)


def results_table(results: list[FileResult]) -> pd.DataFrame:
    """One row per file, columns :data:`TABLE_COLUMNS` (numeric columns numeric)."""
    table = pd.DataFrame([r.row() for r in results], columns=list(TABLE_COLUMNS))
    return table.astype({c: float for c in _NUMBER_FORMATS})


def shown_table(table: pd.DataFrame):
    """The table as the page shows it: numbers rounded, a missing number blank (never
    "None"), the values underneath still numbers."""
    return table.style.format(_NUMBER_FORMATS, na_rep="")


#: Column widths of the shown table: the numbers narrow, so the cutoffs sit beside the
#: confidence in the first screen and the long "why" follows them.
_SHORT = {"confidence (%)": "conf. %", "confidence cutoff (%)": "cutoff %",
          "beat strength": "beat", "beat cutoff": "cutoff", "tempo (BPM)": "BPM",
          "patches": "patches"}
SHOWN_COLUMNS = {c: st.column_config.Column(_SHORT[c], width="small", help=c)
                 for c in _NUMBER_FORMATS}


def results_csv(table: pd.DataFrame) -> bytes:
    """The table as UTF-8 CSV (numbers unformatted, one header line, formula prefixes of
    names neutralised: :func:`tfcnn.export.csv_text`)."""
    return csv_text(table).encode("utf-8")


def tempo_sentence(assessment: Assessment, predicted: str, ranges: pd.DataFrame) -> str:
    """Whether the tempo explains the prediction, in one sentence with the numbers and the
    tolerance of the match (:class:`tfcnn.assessment.TempoMatch`)."""
    match = assessment.tempo_match
    text = (f"Estimated tempo ≈ {match.bpm:.0f} BPM (beat strength "
            f"{assessment.tempo.strength:.2f}): {match.text()}")
    if predicted in ranges.index:
        r = ranges.loc[predicted]
        text += (f". The predicted {predicted} spans {r['low']:.0f}–{r['high']:.0f} BPM "
                 f"in Ballroom")
    return f"{text}. ({match.rule()[0].upper()}{match.rule()[1:]}.)"


@st.cache_data(show_spinner="Rebuilding the model's cross-validation split…", max_entries=8)
def _split(checkpoint_path: str, stamp: float, data_dir: str) -> dict:
    split = checkpoint_split(checkpoint_path, data_dir)
    return {"train": split.train, "val": split.val, "test": split.test, "fold": split.fold}


def track_role(checkpoint_path: str | os.PathLike, data_dir: str | os.PathLike,
               track_id: str) -> str:
    """Whether a data-set track was in the model's training, validation or test songs.

    Returns a sentence; when the split cannot be rebuilt (another data set, a model without
    a recorded fold) the sentence says why.
    """
    path = Path(checkpoint_path)
    try:
        split = _split(str(path), path.stat().st_mtime, str(data_dir))
    except (TfcnnError, OSError) as exc:
        return f"Its role in this model's training is unknown: {exc}"
    for key, words in (("train", "a **training** song"), ("val", "a **validation** song"),
                       ("test", "a held-out **test** song")):
        if track_id in split[key]:
            return f"This track was {words} of the model (fold {split['fold']})."
    return "This track was not used by the model (not in its training, validation or test songs)."
