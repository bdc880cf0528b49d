"""The tempo estimate on audio whose tempo is known: click tracks and SynthBallroom tracks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from tfcnn.config import BALLROOM_BPM_RANGE
from tfcnn.errors import AudioError, ConfigError
from tfcnn.features import log_mel
from tfcnn.tempo import TempoSettings, estimate_tempo, onset_strength

from conftest import SAMPLE_RATE, click_track

#: Relative tolerance of a correct tempo (the MIREX "Accuracy 1" convention).
TOLERANCE = 0.04


def within(estimate: float, truth: float, factors=(1.0,)) -> bool:
    return any(abs(estimate / (f * truth) - 1.0) <= TOLERANCE for f in factors)


@pytest.mark.parametrize("bpm", [72.0, 97.0, 128.0, 151.0])
def test_click_track_tempo_is_exact(bpm):
    y = click_track(bpm=bpm, seconds=12.0, seed=int(bpm))
    est = estimate_tempo(log_mel(y, SAMPLE_RATE))
    assert within(est.bpm, bpm), (est.bpm, bpm)
    assert est.strength > 0.3


def test_fast_click_track_is_its_tempo_or_half():
    """A bare click at 190 BPM is as periodic at 95 BPM: the octave is ambiguous."""
    est = estimate_tempo(log_mel(click_track(bpm=190.0, seconds=12.0), SAMPLE_RATE))
    assert within(est.bpm, 190.0, (1.0, 0.5)), est.bpm


def test_noise_has_weak_periodicity():
    y = np.random.default_rng(0).standard_normal(12 * SAMPLE_RATE).astype(np.float32) * 0.1
    est = estimate_tempo(log_mel(y, SAMPLE_RATE))
    clicks = estimate_tempo(log_mel(click_track(bpm=120.0, seconds=12.0), SAMPLE_RATE))
    assert BALLROOM_BPM_RANGE[0] <= est.bpm <= BALLROOM_BPM_RANGE[1]
    assert est.strength < 0.5 * clicks.strength


def test_synth_ballroom_tempi_within_octave(synth_dataset):
    """8 dances x 4 tracks of 8 s, 3/4 dances included: the tempo or an octave of it.

    A uniform guess in 60-224 BPM lands within 4 % of the tempo, its double or its half for
    about a fifth of the tracks; the floor of 80 % would fail on such noise.
    """
    meta = pd.read_csv(synth_dataset / "metadata.csv")
    hits_octave, hits_exact = [], []
    for row in meta.itertuples():
        y, sr = sf.read(synth_dataset / row.dance / f"{row.track}.wav", dtype="float32")
        est = estimate_tempo(log_mel(y if y.ndim == 1 else y.mean(axis=1), sr))
        hits_exact.append(within(est.bpm, row.bpm))
        hits_octave.append(within(est.bpm, row.bpm, (1.0, 2.0, 0.5)))
    assert set(meta["beats_per_bar"]) == {3, 4}
    assert np.mean(hits_octave) >= 0.8, np.mean(hits_octave)
    assert np.mean(hits_exact) >= 0.5, np.mean(hits_exact)


def test_onset_strength_peaks_on_clicks():
    y = click_track(bpm=120.0, seconds=6.0)
    onset = onset_strength(log_mel(y, SAMPLE_RATE))
    frames_per_beat = 0.5 * SAMPLE_RATE / 1024
    beat_frames = np.round(np.arange(0, 12) * frames_per_beat).astype(int)
    on_beat = onset[np.clip(beat_frames[1:], 0, onset.size - 1)].mean()
    assert on_beat > 5 * np.median(np.abs(onset))


def test_onset_strength_of_a_long_spectrogram_equals_the_whole_array_formula():
    """Computed a block of frames at a time (bounded memory), the flux is the formula on the
    whole float64 array, to the bit, across block edges (150 000 frames ≈ 58 min)."""
    spec = np.random.default_rng(0).standard_normal((40, 150_000)).astype(np.float32)
    whole = np.concatenate([[0.0], np.maximum(np.diff(spec.astype(np.float64), axis=1),
                                              0.0).sum(axis=0)])
    width = int(round(TempoSettings().detrend_s * 44100 / 1024))
    expected = whole - np.convolve(whole, np.ones(width) / width, mode="same")
    np.testing.assert_array_equal(onset_strength(spec), expected)


def test_bad_input_is_named():
    with pytest.raises(AudioError, match=r"\(40, 1\)"):
        estimate_tempo(np.zeros((40, 1)))
    with pytest.raises(ConfigError, match="bpm_range"):
        TempoSettings(bpm_range=(200.0, 100.0))
