"""Audio that is not dance music, to test whether a model admits it is unsure.

Three kinds, each deterministic given its seed:

``speech``
    Speech-like formant noise: a glottal pulse train (f0 wandering 90–220 Hz) plus breath noise
    through three vowel formants that change every syllable (3–6 syllables a second, with
    pauses between phrases), so it has speech's spectrum and syllabic rhythm but no beat.
``pink``
    Pink (1/f) noise: no onsets, no pitch.
``chord``
    A sustained major or minor triad of harmonic tones with slow swells: pitch, no rhythm.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from tfcnn.errors import ConfigError


#: (F1, F2, F3) in Hz of a few vowels (adult averages), drawn per syllable.
_VOWEL_FORMANTS_HZ = np.array([
    (730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480),
    (570, 840, 2410), (660, 1720, 2410), (440, 1020, 2240),
])


def _speech(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    y = np.zeros(n)
    t = 0
    while t < n:
        phrase = int(rng.uniform(1.0, 3.0) * sample_rate)
        end = min(n, t + phrase)
        while t < end:
            syllable = int(rng.uniform(1 / 6, 1 / 3) * sample_rate)
            m = min(syllable, end - t)
            f0 = rng.uniform(90.0, 220.0) * np.linspace(1.0, rng.uniform(0.85, 1.15), m)
            phase = np.cumsum(f0 / sample_rate)
            pulses = (np.diff(np.floor(phase), prepend=0.0) > 0).astype(float)  # glottal clicks
            source = pulses + 0.05 * rng.standard_normal(m)
            voiced = np.zeros(m)
            for formant, bandwidth in zip(_VOWEL_FORMANTS_HZ[rng.integers(len(_VOWEL_FORMANTS_HZ))],
                                          (80.0, 100.0, 150.0)):
                lo, hi = (formant - bandwidth) / (sample_rate / 2), (formant + bandwidth) / (sample_rate / 2)
                sos = signal.butter(2, [lo, hi], btype="band", output="sos")
                voiced += signal.sosfilt(sos, source)
            envelope = np.sin(np.linspace(0.0, np.pi, m)) ** 0.7  # (m,) syllable swell
            y[t:t + m] = voiced * envelope * rng.uniform(0.5, 1.0)
            t += m
        t += int(rng.uniform(0.2, 0.8) * sample_rate)  # pause between phrases
    return y


def _pink(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spectrum.size, dtype=float)
    f[0] = 1.0
    return np.fft.irfft(spectrum / np.sqrt(f), n)


def _chord(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    third = 3 if rng.random() < 0.5 else 4
    t = np.arange(n) / sample_rate
    y = np.zeros(n)
    for semitones in (0, third, 7, 12):
        f = root * 2 ** (semitones / 12)
        for h in range(1, 8):
            if h * f < sample_rate / 2:
                y += np.sin(2 * np.pi * h * f * t + rng.uniform(0, 2 * np.pi)) / h ** 1.5
    swell = 0.75 + 0.25 * np.sin(2 * np.pi * rng.uniform(0.05, 0.15) * t)
    return y * swell


#: Renderer of each kind: (n_samples, sample_rate, rng) -> signal (n_samples,).
_RENDERERS = {"speech": _speech, "pink": _pink, "chord": _chord}
#: The kinds :func:`render_nondance` knows.
NONDANCE_KINDS: tuple[str, ...] = tuple(_RENDERERS)


def render_nondance(kind: str, *, duration_s: float = 30.0, sample_rate: int = 44100,
                    seed: int = 0) -> np.ndarray:
    """One clip of non-dance audio.

    Parameters
    ----------
    kind : {"speech", "pink", "chord"}
    duration_s : float, keyword-only
    sample_rate : int, keyword-only
    seed : int, keyword-only

    Returns
    -------
    np.ndarray, shape (round(duration_s * sample_rate),), float32
        Peak-normalised to 0.5.
    """
    if kind not in NONDANCE_KINDS:
        raise ConfigError(f"unknown kind {kind!r}; valid kinds: {', '.join(NONDANCE_KINDS)}")
    if not duration_s > 0:
        raise ConfigError(f"duration_s must be > 0, got {duration_s!r}")
    n = int(round(duration_s * sample_rate))
    y = _RENDERERS[kind](n, sample_rate, np.random.default_rng(seed))
    peak = float(np.max(np.abs(y))) or 1.0
    return (0.5 * y / peak).astype(np.float32)
