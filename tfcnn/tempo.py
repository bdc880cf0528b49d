"""A track's tempo from its log-mel: onset strength → autocorrelation → comb score → BPM.

The model sees the same log-mel (Pons et al. 2016, §2), so a tempo read from it shows what
temporal cue the network could use. Steps:

1. **Onset strength** (:func:`onset_strength`): the half-wave-rectified frame-to-frame
   increase of the log-mel, summed over the bands (spectral flux), minus its running mean
   (a slow loudness change is no onset).
2. **Autocorrelation** of the onset strength, normalised to 1 at lag 0.
3. **Comb score** per tempo on a fine BPM grid (:func:`tempo_scores`): the mean
   autocorrelation at the first :attr:`TempoSettings.n_harmonics` multiples of the beat period,
   read at fractional lags by linear interpolation. Multiples sharpen the estimate: at
   43 frames/s one frame is 4 % of a 200 BPM beat, a fifth of that at its fourth multiple.
4. **Octave choice** (:func:`estimate_tempo`): a periodic onset pattern scores high at its
   beat period and at every multiple of it, so the comb alone cannot tell a tempo from its
   half or third. The score is weighted by a log-normal prior over tempo (centre and width
   from :class:`TempoSettings`) inside the Ballroom range (60–224 BPM, paper §3), and the
   best-weighted tempo wins.

No librosa on this path: only NumPy over the log-mel the prediction already computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfcnn.config import BALLROOM_BPM_RANGE, FRONT_END, FrontEnd
from tfcnn.errors import AudioError, ConfigError


@dataclass(frozen=True)
class TempoSettings:
    """Parameters of the tempo estimate.

    Attributes
    ----------
    bpm_range : (float, float)
        Tempi considered (Ballroom: 60–224 BPM, paper §3).
    bpm_step : float
        Resolution of the BPM grid before parabolic refinement.
    n_harmonics : int
        Multiples of the beat period averaged in the comb score.
    prior_center_bpm, prior_octaves : float
        Log-normal tempo prior: centre and standard deviation in octaves. The centre is the
        geometric mean of the real Ballroom annotations (124 BPM, tfcnn/data/ballroom_tracks.csv);
        the width is a broad octave, so it mostly breaks the near-ties between a tempo and its
        half (their comb scores differ by a few per cent) and leaves the rest to the score.
    detrend_s : float
        Length of the running mean removed from the onset strength.
    """

    bpm_range: tuple[float, float] = BALLROOM_BPM_RANGE
    bpm_step: float = 0.25
    n_harmonics: int = 4
    prior_center_bpm: float = 124.0
    prior_octaves: float = 1.0
    detrend_s: float = 1.0

    def __post_init__(self) -> None:
        lo, hi = self.bpm_range
        if not 0 < lo < hi:
            raise ConfigError(f"bpm_range must satisfy 0 < low < high, got {self.bpm_range!r}")
        if not self.bpm_step > 0 or self.n_harmonics < 1 or not self.prior_octaves > 0:
            raise ConfigError(
                f"bpm_step and prior_octaves must be > 0 and n_harmonics >= 1, got "
                f"{self.bpm_step}, {self.prior_octaves}, {self.n_harmonics}"
            )


TEMPO_SETTINGS = TempoSettings()


@dataclass(frozen=True)
class TempoEstimate:
    """The tempo of one track.

    Attributes
    ----------
    bpm : float
        Estimated beats per minute.
    strength : float
        Autocorrelation comb score at ``bpm`` (0: no periodicity, 1: perfectly periodic).
    bpms : np.ndarray, shape (K,)
        The BPM grid.
    scores : np.ndarray, shape (K,)
        Comb score per grid tempo (before the prior).
    """

    bpm: float
    strength: float
    bpms: np.ndarray
    scores: np.ndarray


#: Frames per block of :func:`onset_strength` (a 21 MB float64 block of 40 bands).
_FLUX_FRAMES = 1 << 16


def onset_strength(spec: np.ndarray, *, front_end: FrontEnd = FRONT_END,
                   detrend_s: float = TEMPO_SETTINGS.detrend_s) -> np.ndarray:
    """Spectral-flux onset strength of a log-mel spectrogram.

    Parameters
    ----------
    spec : np.ndarray, shape (n_mels, T)
        Compressed log-mel (:func:`tfcnn.features.log_mel`), not normalised.
    front_end : FrontEnd, keyword-only
        Gives the frame rate.
    detrend_s : float, keyword-only
        Length of the running mean subtracted.

    Returns
    -------
    np.ndarray, shape (T,), float64
        Frame 0 is 0 (no previous frame).
    """
    spec = np.asarray(spec)
    if spec.ndim != 2 or spec.shape[1] < 2:
        raise AudioError(f"onset_strength expects a log-mel (n_mels, T >= 2), got {spec.shape}")
    onset = np.zeros(spec.shape[1])  # (T,) float64
    # In float64, a block of frames at a time: the same sums as the whole array at once,
    # without three float64 copies of an hours-long spectrogram.
    for start in range(0, spec.shape[1] - 1, _FLUX_FRAMES):
        block = np.asarray(spec[:, start:start + _FLUX_FRAMES + 1], dtype=np.float64)
        onset[start + 1:start + block.shape[1]] = np.maximum(np.diff(block, axis=1), 0.0).sum(
            axis=0)  # (frames - 1,)
    width = max(1, int(round(detrend_s * front_end.frame_rate_hz)))
    if width < onset.size:
        kernel = np.ones(width) / width
        onset = onset - np.convolve(onset, kernel, mode="same")
    else:
        onset = onset - onset.mean()
    return onset


def _autocorrelation(x: np.ndarray) -> np.ndarray:
    """Autocorrelation of ``x`` (T,) for lags 0..T-1, normalised to 1 at lag 0."""
    n = x.size
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(x, size)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size)[:n]
    return acf / acf[0] if acf[0] > 0 else np.zeros(n)


def tempo_scores(onset: np.ndarray, *, frame_rate_hz: float,
                 settings: TempoSettings = TEMPO_SETTINGS) -> tuple[np.ndarray, np.ndarray]:
    """Comb score of every tempo of the grid.

    Parameters
    ----------
    onset : np.ndarray, shape (T,)
        Onset strength (:func:`onset_strength`).
    frame_rate_hz : float, keyword-only
    settings : TempoSettings, keyword-only

    Returns
    -------
    bpms : np.ndarray, shape (K,)
    scores : np.ndarray, shape (K,)
        Mean normalised autocorrelation at the multiples of each beat period that fit in
        half the track (at least the first).
    """
    lo, hi = settings.bpm_range
    bpms = np.arange(lo, hi + settings.bpm_step / 2, settings.bpm_step)   # (K,)
    acf = _autocorrelation(np.asarray(onset, dtype=np.float64))          # (T,)
    max_lag = max(acf.size // 2, 1)
    periods = 60.0 * frame_rate_hz / bpms                                 # (K,) frames
    multiples = periods[:, None] * np.arange(1, settings.n_harmonics + 1)  # (K, H)
    usable = multiples <= max_lag
    usable[:, 0] = multiples[:, 0] < acf.size - 1
    values = np.interp(np.minimum(multiples, acf.size - 1), np.arange(acf.size), acf)
    counts = np.maximum(usable.sum(axis=1), 1)
    scores = np.where(usable, values, 0.0).sum(axis=1) / counts           # (K,)
    return bpms, scores


def _log_prior(bpms: np.ndarray, settings: TempoSettings) -> np.ndarray:
    octaves = np.log2(bpms / settings.prior_center_bpm)
    return -0.5 * (octaves / settings.prior_octaves) ** 2


def estimate_tempo(spec: np.ndarray, *, front_end: FrontEnd = FRONT_END,
                   settings: TempoSettings = TEMPO_SETTINGS) -> TempoEstimate:
    """Tempo of a track from its log-mel.

    Parameters
    ----------
    spec : np.ndarray, shape (n_mels, T)
        Compressed log-mel of the track (any length of at least two frames; a few seconds
        give one beat period's multiples, 30 s give a stable estimate).
    front_end : FrontEnd, keyword-only
    settings : TempoSettings, keyword-only

    Returns
    -------
    TempoEstimate
        ``bpm`` inside ``settings.bpm_range``.
    """
    onset = onset_strength(spec, front_end=front_end, detrend_s=settings.detrend_s)
    bpms, scores = tempo_scores(onset, frame_rate_hz=front_end.frame_rate_hz,
                                settings=settings)
    # The prior multiplies the positive part of the score: only the octave choice depends on
    # it, and a non-periodic track (scores <= 0 everywhere) still gets the prior's favourite.
    weighted = np.maximum(scores, 0.0) * np.exp(_log_prior(bpms, settings))
    k = int(np.argmax(weighted)) if weighted.max() > 0 else int(np.argmax(_log_prior(bpms, settings)))
    bpm = float(bpms[k])
    if 0 < k < bpms.size - 1:
        # parabolic refinement of the unweighted score around the chosen grid point
        a, b, c = scores[k - 1], scores[k], scores[k + 1]
        denom = a - 2 * b + c
        if denom < 0:
            bpm += float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5)) * settings.bpm_step
    return TempoEstimate(bpm=bpm, strength=float(scores[k]), bpms=bpms, scores=scores)


def tempo_resolution_bpm(bpm: float, *, front_end: FrontEnd = FRONT_END,
                         settings: TempoSettings = TEMPO_SETTINGS) -> float:
    """How finely :func:`estimate_tempo` resolves a tempo near ``bpm``, in BPM.

    One frame of lag at the last multiple of the beat period the comb reads: the period is
    ``P = 60 · frame_rate / bpm`` frames, a frame at the ``n``-th multiple moves the tempo by
    about ``bpm / (n · P)`` (0.7 BPM at 84 BPM, 4.1 BPM at 205 BPM with 43 frames/s and
    four multiples).
    """
    if not bpm > 0:
        raise ConfigError(f"bpm must be > 0, got {bpm!r}")
    period_frames = 60.0 * front_end.frame_rate_hz / float(bpm)
    return float(bpm) / (settings.n_harmonics * period_frames)
