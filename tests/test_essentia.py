"""The front end against Essentia itself, the library the original code computed it with.

Pons et al. (2016) computed log-mels with Essentia: ``FrameGenerator(2048, 1024)`` →
``Windowing('blackmanharris62')`` → ``Spectrum`` → ``MelBands(numberBands=40)`` (its defaults:
HTK mel, unit-sum rows, power) → ``log10(1 + 10000 x)``. Essentia is a test dependency
(``requirements-test.txt``, installed by ``make test``), never a run-time one.
"""

from __future__ import annotations

import essentia.standard as es
import numpy as np
import pytest
import soundfile as sf

from tfcnn.audio import load_audio
from tfcnn.config import FRONT_END
from tfcnn.features import log_mel

SR = FRONT_END.sample_rate
TOLERANCE = 1e-5


def _essentia_log_mel(y: np.ndarray) -> np.ndarray:
    """(n_samples,) float32 → (40, T) float64, the original pipeline's calls."""
    window = es.Windowing(type="blackmanharris62")
    spectrum = es.Spectrum()
    mel = es.MelBands(numberBands=FRONT_END.n_mels)
    frames = es.FrameGenerator(y.astype(np.float32), frameSize=FRONT_END.n_fft,
                               hopSize=FRONT_END.hop_length)
    bands = np.array([mel(spectrum(window(frame))) for frame in frames], dtype=np.float64)
    return np.log10(1.0 + FRONT_END.compression * bands.T)  # (n_mels, T)


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(5 * SR) / SR
    clicks = np.zeros(5 * SR)
    clicks[:: SR // 2] = 0.9  # 120 BPM impulses
    return {
        "noise 220500": 0.3 * rng.standard_normal(220_500),  # 5 s: 217 frames (not 216)
        "sine 440 Hz": 0.5 * np.sin(2 * np.pi * 440.0 * t),
        "clicks": clicks,
        "shortest clip": 0.2 * rng.standard_normal(FRONT_END.min_patch_samples),
        "one sample short": 0.2 * rng.standard_normal(FRONT_END.min_patch_samples - 1),
        "multiple of hop": 0.2 * rng.standard_normal(100 * FRONT_END.hop_length),
    }


@pytest.mark.parametrize("name", list(_signals()))
def test_log_mel_equals_essentia(name):
    y = _signals()[name].astype(np.float32)
    ours, theirs = log_mel(y, SR), _essentia_log_mel(y)
    assert ours.shape == theirs.shape, f"{name}: frame count differs"
    assert ours.shape[1] == FRONT_END.n_frames(y.size)
    np.testing.assert_allclose(ours, theirs, atol=TOLERANCE, rtol=0)


def test_frame_counts_and_shortest_clip_follow_essentia():
    assert FRONT_END.n_frames(220_500) == 217
    assert FRONT_END.min_patch_samples == 79_873
    for n in (FRONT_END.min_patch_samples - 1, FRONT_END.min_patch_samples, 220_500, 102_400):
        frames = es.FrameGenerator(np.zeros(n, np.float32), frameSize=FRONT_END.n_fft,
                                   hopSize=FRONT_END.hop_length)
        assert sum(1 for _ in frames) == FRONT_END.n_frames(n)


def test_decoded_file_equals_essentia_monoloader(tmp_path):
    """A real WAV, decoded by Essentia's MonoLoader and by tfcnn: the same log-mel."""
    rng = np.random.default_rng(3)
    t = np.arange(int(3.3 * SR)) / SR
    y = 0.4 * np.sin(2 * np.pi * 220.0 * t) + 0.05 * rng.standard_normal(t.size)
    path = tmp_path / "tone.wav"
    sf.write(path, y, SR, subtype="PCM_16")

    theirs_audio = es.MonoLoader(filename=str(path), sampleRate=SR)()
    ours_audio = load_audio(path)
    assert ours_audio.shape == theirs_audio.shape
    np.testing.assert_allclose(ours_audio, theirs_audio, atol=1e-6)
    ours, theirs = log_mel(ours_audio, SR), _essentia_log_mel(theirs_audio)
    assert ours.shape == theirs.shape == (FRONT_END.n_mels, FRONT_END.n_frames(t.size))
    np.testing.assert_allclose(ours, theirs, atol=TOLERANCE, rtol=0)
