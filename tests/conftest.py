"""Shared fixtures: real audio files written to disk, small enough for a quick test suite;
and the ``safety`` marks of the safety probes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tfcnn.config import CLASSES

SAMPLE_RATE = 44100


def click_track(*, bpm: float, seconds: float, sample_rate: int = SAMPLE_RATE,
                pitch_hz: float = 1000.0, seed: int = 0) -> np.ndarray:
    """A decaying sine click on every beat plus a little noise, float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    y = 0.01 * rng.standard_normal(n)
    t = np.arange(int(0.05 * sample_rate)) / sample_rate
    click = np.sin(2 * np.pi * pitch_hz * t) * np.exp(-t * 80.0)
    for start in np.arange(0.0, seconds, 60.0 / bpm):
        i = int(start * sample_rate)
        j = min(n, i + click.size)
        y[i:j] += click[: j - i]
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)


@pytest.fixture(scope="session")
def folder_dataset(tmp_path_factory) -> Path:
    """A folder-per-class data set: 8 classes x 3 tracks x 6 s of click tracks.

    Each class has its own tempo and click pitch, so both temporal and spectral models can
    learn it quickly.
    """
    root = tmp_path_factory.mktemp("folder_dataset")
    for label, dance in enumerate(CLASSES):
        (root / dance).mkdir()
        for k in range(3):
            y = click_track(bpm=70 + 20 * label + 2 * k, seconds=6.0,
                            pitch_hz=300.0 + 150.0 * label, seed=10 * label + k)
            sf.write(root / dance / f"{dance}-{k}.wav", y, SAMPLE_RATE, subtype="PCM_16")
    return root


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory) -> Path:
    """A tiny SynthBallroom (8 dances x 4 tracks x 8 s), generated once per session."""
    from tfcnn.synth import generate

    root = tmp_path_factory.mktemp("synth") / "synth-ballroom"
    generate(root, per_class=4, seconds=8.0, seed=0, workers=2, progress=False)
    return root


# ----------------------------------------------------------------------------- safety probes

#: Name of the module-level table of safety probes a test module may hold: test name (with
#: its parameter id, or without to cover every parameter) → one row or a list of rows, each a
#: dict with ``probe`` (the hostile or unlucky input), ``before`` (what an earlier version
#: did) and ``must`` (what it must do now).
SAFETY_TABLE = "SAFETY_PROBES"


def _table_rows(item) -> list[dict]:
    table = getattr(item.module, SAFETY_TABLE, None) or {}
    rows = table.get(item.name) or table.get(getattr(item, "originalname", item.name)) or []
    return [rows] if isinstance(rows, dict) else list(rows)


def pytest_collection_modifyitems(config, items):
    """Mark the tests of each module's :data:`SAFETY_TABLE` ``safety``, and put every safety
    row of a test (table or ``@pytest.mark.safety(probe=..., before=..., must=...)``) in its
    report's properties, where ``scripts/safety_report.py`` reads them (junit XML)."""
    for item in items:
        for row in _table_rows(item):
            item.add_marker(pytest.mark.safety(**row))
        for mark in item.iter_markers("safety"):
            row = {"probe": mark.kwargs.get("probe") or _first_doc_line(item) or item.name,
                   "before": mark.kwargs.get("before", ""), "must": mark.kwargs.get("must", "")}
            item.user_properties.append(("safety", json.dumps(row, ensure_ascii=False)))


def _first_doc_line(item) -> str:
    doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
