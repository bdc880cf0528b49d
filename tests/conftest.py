"""Shared fixtures: real audio files written to disk, small enough for a quick test suite."""

from __future__ import annotations

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
