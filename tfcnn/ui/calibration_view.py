"""Calibration measured, on the Results and Predict pages: expected calibration error with its
interval and the reliability diagram of the shipped models and of training runs.

The numbers are :mod:`tfcnn.calibration`'s (``results.json``'s ``reliability`` for runs,
``checkpoints/reliability-synth.json`` for the shipped models); this module only draws them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import streamlit as st

from tfcnn import plots
from tfcnn.calibration import Reliability, model_reliability, read_reliabilities
from tfcnn.errors import ConfigError
from tfcnn.result_sets import TableFile
from tfcnn.runs import read_results

#: What the numbers mean, under the table.
EXPLAIN = (
    "Measured on test songs, song level, with the confidence the Predict page shows (the "
    "calibrated probability of the predicted class). ECE: the song-weighted gap between "
    "confidence and accuracy over 10 confidence bins; 95 % interval: bootstrap over songs "
    "(it leans high on few songs: the ECE is biased upwards). 'Perfect calibration up to': "
    "the 95th percentile of the ECE a perfectly calibrated model with the same confidences "
    "shows on as many songs; an ECE below it is no evidence of miscalibration. Shipped models: "
    "their fold-0 model on its 48 test songs (the shipped Table 1 has no per-song "
    "probabilities); runs: every fold's test songs.")


def _row(label: str, rel: Reliability) -> dict:
    return {"model": label, "test songs": rel.n_songs, "ECE (%)": round(100 * rel.ece, 1),
            "95 % CI (%)": f"{100 * rel.ece_ci95[0]:.1f}-{100 * rel.ece_ci95[1]:.1f}",
            "perfect calibration up to (%)": round(100 * rel.ece_null95, 1),
            "mean confidence (%)": round(100 * rel.mean_confidence, 1),
            "accuracy (%)": round(100 * rel.accuracy, 1), "probability": rel.source}


def measured(shipped_file: str | os.PathLike | None,
             run_dirs: Mapping[str, str | os.PathLike], *,
             shipped_table: str | os.PathLike | None = None) -> dict[str, Reliability]:
    """The measurements on offer, by label: the shipped Table 1's runs (all folds, once
    retrained with this version), the shipped fold-0 models, then runs that have one."""
    records = {}
    if shipped_table is not None:
        for key, results in (TableFile.read(shipped_table).content.get("runs") or {}).items():
            if isinstance(results, dict):
                records[f"shipped {key} (all folds)"] = results.get("reliability")
    out = {}
    for label, rec in records.items():
        if isinstance(rec, dict):
            try:
                out[label] = Reliability.from_dict(rec)
            except ConfigError:  # an older or damaged record: nothing measured to show
                continue
    out.update({f"shipped {stem.removeprefix('synth-')} (fold 0)": rel
                for stem, rel in (read_reliabilities(shipped_file) if shipped_file
                                  else {}).items()})
    for label, folder in run_dirs.items():
        rec = (read_results(folder) or {}).get("reliability")
        if isinstance(rec, dict):
            try:
                out[label] = Reliability.from_dict(rec)
            except ConfigError:  # an older or damaged record: nothing measured to show
                continue
    return out


def calibration_panel(found: Mapping[str, Reliability]) -> None:
    """The Results page's table of ECEs and the reliability diagram."""
    if not found:
        st.info("No calibration measured yet: runs trained with this version record it; "
                "the shipped models' come from `python -m scripts.shipped_reliability`.")
        return
    st.dataframe(pd.DataFrame([_row(label, rel) for label, rel in found.items()]),
                 hide_index=True)
    st.plotly_chart(plots.reliability_diagram({k: v.bins for k, v in found.items()}))
    st.caption(EXPLAIN)


def model_line(checkpoint: str | os.PathLike, *, shipped_file: str | os.PathLike) -> str:
    """Predict's line on the chosen model's measured calibration."""
    rel = model_reliability(Path(checkpoint), shipped=shipped_file)
    if rel is None:
        return ("Calibration not measured for this model (trained before test-song "
                "confidences were recorded).")
    return f"Calibration measured: {rel.sentence()}."
