"""Periodicity of 1×n temporal filters: dominant tempo, strength and its tempo interval.

A temporal filter of the Time architecture spans 60 frames ≈ 1.39 s: one beat at 60 BPM,
about five at 224 BPM (Pons, Lidy & Serra 2016, §3). Its weights are read as a signal over
frames; for every BPM of a 1-BPM grid two normalised terms are computed on the mean-removed
weights and combined into one score (:func:`periodicity_scores`). Its maximum is the
filter's dominant tempo; the half-power width of the score around it is the tempo interval
(a 60-frame window resolves about 43 BPM, so a tempo is never known to 1 BPM).

Only statistics of the weights live here; whether a score is more than noise is decided by
:mod:`tfcnn.interpret.smooth_null`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks

from tfcnn.config import BALLROOM_BPM_RANGE, FRONT_END
from tfcnn.errors import ConfigError

#: Frames per second of the paper's front end (hop 1024 at 44.1 kHz, §2).
DEFAULT_FRAME_RATE_HZ: float = FRONT_END.frame_rate_hz
#: Resolution of the BPM grid; finer would only interpolate (the window resolves ~43 BPM).
BPM_STEP: float = 1.0
#: The autocorrelation at lag L compares ``x[:W-L]`` with ``x[L:]``; fewer overlapping frames
#: than this fraction of the filter width make it meaningless, so such periods are left out.
#: For 1×60 filters this keeps lags ≤ 47 frames (≥ 55 BPM): 60 BPM (43 frames, §3) stays in.
MIN_OVERLAP_FRACTION: float = 0.2
#: The tempo interval: where the score stays above this fraction of its peak (half power:
#: the score is the square root of a product of powers, so 1/√2 of its peak).
INTERVAL_LEVEL: float = 1.0 / math.sqrt(2.0)
#: Octave-related tempi reported for every filter: (label, factor of the dominant BPM).
OCTAVE_RELATIONS: tuple[tuple[str, float], ...] = (
    ("x1/3", 1 / 3), ("x1/2", 0.5), ("x2/3", 2 / 3), ("x3/2", 1.5), ("x2", 2.0), ("x3", 3.0),
)
#: A candidate at an octave relation is the best score within this relative distance of it.
OCTAVE_TOLERANCE: float = 0.04
#: Local maxima of the score reported as candidates, at least this relative distance apart.
MAX_CANDIDATES: int = 5
CANDIDATE_SEPARATION: float = 0.08
CANDIDATE_PROMINENCE: float = 0.05
#: White-noise filters whose median peak score is the zero of ``strength``.
N_NOISE_FILTERS: int = 2000


@dataclass(frozen=True)
class FilterTempo:
    """Dominant tempo of one temporal filter (see :func:`filter_tempi`).

    Attributes
    ----------
    peak_bpm : float or None
        Where the score peaks; None when no BPM is testable or the filter is constant.
    interval : (float, float) or None
        Tempo interval around ``peak_bpm``: the BPMs where the score stays above
        :data:`INTERVAL_LEVEL` of its peak (the window's resolution as this filter shows it).
    strength : float
        Periodicity in [0, 1]: 0 = the median white-noise filter of the same width,
        1 = a perfectly periodic filter. Whether it beats noise is a separate test.
    raw_score : float
        ``sqrt(S · max(A, 0))`` at ``peak_bpm`` (the statistic the smoothness-matched null
        tests).
    spectral_power, acf_peak : float
        The two terms at ``peak_bpm``.
    spectral_bpm, acf_bpm : float or None
        Peaks of each term alone.
    candidates : tuple of (bpm, strength)
        Prominent local maxima and octave relatives of ``peak_bpm``, strongest first.
    octaves : tuple of (relation, bpm, strength, spectral_power)
        The score near ``peak_bpm`` × 1/3, 1/2, 2/3, 3/2, 2, 3 (inside the tested range).
    bpm_range : (float, float)
        The tempi actually tested.
    """

    peak_bpm: float | None
    interval: tuple[float, float] | None
    strength: float
    raw_score: float
    spectral_power: float
    acf_peak: float
    spectral_bpm: float | None
    acf_bpm: float | None
    candidates: tuple[tuple[float, float], ...]
    octaves: tuple[tuple[str, float, float, float], ...]
    bpm_range: tuple[float, float]

    def to_dict(self) -> dict:
        """JSON-able form (tuples become lists)."""
        return {
            "peak_bpm": self.peak_bpm,
            "interval": None if self.interval is None else list(self.interval),
            "strength": self.strength, "raw_score": self.raw_score,
            "spectral_power": self.spectral_power, "acf_peak": self.acf_peak,
            "spectral_bpm": self.spectral_bpm, "acf_bpm": self.acf_bpm,
            "candidates": [list(c) for c in self.candidates],
            "octaves": [list(o) for o in self.octaves], "bpm_range": list(self.bpm_range),
        }


def check_range(bpm_range, frame_rate) -> tuple[float, float, float]:
    """Validated ``(low, high, frame_rate)``; raises ConfigError naming the bad value."""
    try:
        lo, hi = (float(b) for b in bpm_range)
    except (TypeError, ValueError):
        raise ConfigError(f"bpm_range must be two numbers (low, high), got {bpm_range!r}") from None
    if not 0 < lo < hi:
        raise ConfigError(f"bpm_range must satisfy 0 < low < high, got {bpm_range!r}")
    frame_rate = float(frame_rate)
    if not frame_rate > 0:
        raise ConfigError(f"frame_rate must be > 0 frames per second, got {frame_rate!r}")
    return lo, hi, frame_rate


def as_filters(weights) -> np.ndarray:
    """``weights`` as float64 (n_filters, width) with width ≥ 4, finite; else ConfigError."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = w[None, :]
    if w.ndim != 2 or w.shape[1] < 4:
        raise ConfigError(
            f"temporal filters must have shape (width,) or (n_filters, width) with width >= 4, "
            f"got {np.shape(weights)}"
        )
    if not np.all(np.isfinite(w)):
        raise ConfigError("temporal filter weights contain NaN or infinite values")
    return w


@functools.lru_cache(maxsize=32)
def tempo_grid(width: int, frame_rate: float, lo: float, hi: float):
    """BPM grid, periods and least-squares sinusoid bases for filters of ``width`` frames.

    Returns
    -------
    bpms : (K,) tested tempi; periods : (K,) in frames; bases : (width, K, 2) orthonormal
    mean-free cos/sin pairs at each period.
    """
    bpms = np.arange(lo, hi + BPM_STEP / 2, BPM_STEP)
    periods = 60.0 * frame_rate / bpms                           # frames per beat
    min_overlap = max(2, int(math.ceil(MIN_OVERLAP_FRACTION * width)))
    keep = periods + 1 + min_overlap <= width
    bpms, periods = bpms[keep], periods[keep]
    n = np.arange(width, dtype=np.float64)
    phase = 2 * np.pi * n[None, :] / periods[:, None]            # (K, width)
    pair = np.stack([np.cos(phase), np.sin(phase)], axis=-1)     # (K, width, 2)
    pair -= pair.mean(axis=1, keepdims=True)                     # orthogonal to the constant
    bases = np.linalg.qr(pair)[0] if len(bpms) else pair         # (K, width, 2)
    for a in (bpms, periods, bases):
        a.setflags(write=False)
    return bpms, periods, np.ascontiguousarray(bases.transpose(1, 0, 2))


def _spectral_power(x: np.ndarray, bases: np.ndarray) -> np.ndarray:
    """Fraction of each mean-free filter's energy explained by a sinusoid at each period.

    The zero-padded spectrum's peak made exact for short filters (Lomb-Scargle): the DFT of a
    60-frame filter at 1.4-5 cycles leaks between its positive and negative frequencies and
    the mean removal; the least-squares fit of ``cos``/``sin`` does not.
    x : (n, width) mean-free; bases : (width, K, 2) → (n, K) in [0, 1].
    """
    energy = np.sum(x * x, axis=1)                               # (n,)
    width, k = bases.shape[:2]
    proj = (x @ bases.reshape(width, 2 * k)).reshape(len(x), k, 2)  # (n, K, 2)
    power = np.sum(proj * proj, axis=-1)                          # (n, K)
    return power / np.maximum(energy, np.finfo(float).tiny)[:, None]


def _autocorrelation(x: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation at fractional lags (linear interpolation between frames).

    ``A(L) = <x[:M], x[L:L+M]> / (|x[:M]| |x[L:L+M]|)``, 1 when the filter repeats itself
    after L frames. The sums are formed once per integer lag and combined per fractional lag.
    x : (n, width) mean-free; periods : (K,) → (n, K) in [-1, 1].
    """
    n, width = x.shape
    out = np.zeros((n, len(periods)))
    whole = np.floor(periods).astype(int)
    tiny = np.finfo(float).tiny
    for i0 in np.unique(whole):
        m = width - i0 - 1                                       # overlapping frames
        a, b0, b1 = x[:, :m], x[:, i0:i0 + m], x[:, i0 + 1:i0 + 1 + m]
        ab0, ab1, aa = (a * b0).sum(1), (a * b1).sum(1), (a * a).sum(1)
        b00, b11, b01 = (b0 * b0).sum(1), (b1 * b1).sum(1), (b0 * b1).sum(1)
        for k in np.flatnonzero(whole == i0):
            f = periods[k] - i0
            bb = (1 - f) ** 2 * b00 + 2 * f * (1 - f) * b01 + f * f * b11
            out[:, k] = ((1 - f) * ab0 + f * ab1) / np.maximum(np.sqrt(aa * bb), tiny)
    return out


def periodicity_scores(filters: np.ndarray, *, frame_rate: float = DEFAULT_FRAME_RATE_HZ,
                       bpm_range: Sequence[float] = BALLROOM_BPM_RANGE):
    """Raw periodicity score of every filter at every tested BPM.

    Parameters
    ----------
    filters : np.ndarray, shape (n_filters, width)
    frame_rate : float, keyword-only
    bpm_range : (float, float), keyword-only

    Returns
    -------
    bpms : (K,); spectral : (n, K); acf : (n, K); score : (n, K) = sqrt(spectral · max(acf, 0))
    """
    x = as_filters(filters)
    lo, hi, frame_rate = check_range(bpm_range, frame_rate)
    x = x - x.mean(axis=1, keepdims=True)
    bpms, periods, bases = tempo_grid(x.shape[1], frame_rate, lo, hi)
    spectral = _spectral_power(x, bases)
    acf = _autocorrelation(x, periods)
    # Spectrum and autocorrelation err in opposite octave directions: a 2-pulse filter has
    # spectral peaks at every harmonic (60, 120, 180 BPM), a 5-pulse filter autocorrelation
    # peaks at every multiple of its period (224, 112, 75 BPM). Their product keeps the tempo
    # both agree on (the DFT x ACF product of Peeters' tempo estimation).
    score = np.sqrt(spectral * np.clip(acf, 0.0, None))
    return bpms, spectral, acf, score


def peak_scores(filters: np.ndarray, **kwargs) -> np.ndarray:
    """Each filter's maximum raw score over the tested tempi, (n_filters,)."""
    bpms, _, _, score = periodicity_scores(filters, **kwargs)
    return score.max(axis=1) if len(bpms) else np.zeros(len(score))


@functools.lru_cache(maxsize=32)
def white_noise_median(width: int, frame_rate: float, lo: float, hi: float) -> float:
    """Median peak score of i.i.d. uniform filters (= untrained Glorot filters); fixed seed."""
    noise = np.random.default_rng(12345).uniform(-1.0, 1.0, size=(N_NOISE_FILTERS, width))
    return float(np.median(peak_scores(noise, frame_rate=frame_rate, bpm_range=(lo, hi))))


def strength_of(score: np.ndarray, chance: float) -> np.ndarray:
    """Raw score → strength in [0, 1]: ``(score - chance) / (1 - chance)``, clipped."""
    return np.clip((np.asarray(score) - chance) / (1.0 - chance), 0.0, 1.0)


def periodicity_map(filters: np.ndarray, *, frame_rate: float = DEFAULT_FRAME_RATE_HZ,
                    bpm_range: Sequence[float] = BALLROOM_BPM_RANGE
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Strength of every filter at every tested BPM (the heatmap).

    Returns
    -------
    bpms : np.ndarray, shape (K,)
    strengths : np.ndarray, shape (n_filters, K), in [0, 1]; a filter's maximum is its strength.
    """
    filters = as_filters(filters)
    lo, hi, frame_rate = check_range(bpm_range, frame_rate)
    bpms, _, _, score = periodicity_scores(filters, frame_rate=frame_rate, bpm_range=(lo, hi))
    return bpms, strength_of(score, white_noise_median(filters.shape[1], frame_rate, lo, hi))


def lag1_correlation(filters: np.ndarray) -> np.ndarray:
    """Lag-1 autocorrelation of each mean-free filter, (n_filters,): 0 white, → 1 smooth."""
    x = as_filters(filters)
    x = x - x.mean(axis=1, keepdims=True)
    den = np.maximum(np.sum(x * x, axis=1), np.finfo(float).tiny)
    return np.sum(x[:, :-1] * x[:, 1:], axis=1) / den


def half_power_interval(bpms: np.ndarray, score: np.ndarray, i: int) -> tuple[float, float]:
    """The contiguous BPMs around ``bpms[i]`` where ``score`` ≥ INTERVAL_LEVEL × ``score[i]``."""
    level = INTERVAL_LEVEL * score[i]
    lo = i
    while lo > 0 and score[lo - 1] >= level:
        lo -= 1
    hi = i
    while hi < len(score) - 1 and score[hi + 1] >= level:
        hi += 1
    return float(bpms[lo]), float(bpms[hi])


def _near(bpms: np.ndarray, curve: np.ndarray, target: float) -> int | None:
    """Index of the best ``curve`` value within OCTAVE_TOLERANCE of ``target``; None if none."""
    sel = np.flatnonzero(np.abs(bpms - target) <= OCTAVE_TOLERANCE * target)
    return None if not len(sel) else int(sel[np.argmax(curve[sel])])


def _one_filter(bpms, spectral, acf, score, chance) -> FilterTempo:
    """One filter's :class:`FilterTempo` from its (K,) curves."""
    strength = strength_of(score, chance)
    i = int(np.argmax(score))
    peak = float(bpms[i])
    # candidates: prominent local maxima (ripples of one broad peak are not candidates: a
    # 60 BPM cosine fills 1.4 cycles of a 60-frame filter, its peak is wide)
    maxima, _ = find_peaks(np.concatenate([[-1.0], score, [-1.0]]),
                           prominence=CANDIDATE_PROMINENCE)
    candidates: list[tuple[float, float]] = []
    for j in sorted(set((maxima - 1).tolist()) | {i}, key=lambda j: -score[j]):
        b = float(bpms[j])
        if (j == i or strength[j] > 0) and all(
                abs(b - c[0]) > CANDIDATE_SEPARATION * b for c in candidates):
            candidates.append((b, float(strength[j])))
    candidates = candidates[:MAX_CANDIDATES]
    octaves = []
    for label, factor in OCTAVE_RELATIONS:
        # best strength near the relation; ties (all 0) go to the strongest spectral peak
        at = _near(bpms, strength + 1e-6 * spectral, peak * factor)
        if at is None:
            continue
        hit = (float(bpms[at]), float(strength[at]))
        octaves.append((label, hit[0], hit[1], float(spectral[at])))
        if hit[1] > 0 and all(abs(hit[0] - c[0]) > OCTAVE_TOLERANCE * hit[0] for c in candidates):
            candidates.append(hit)
    candidates.sort(key=lambda c: -c[1])
    return FilterTempo(
        peak_bpm=peak, interval=half_power_interval(bpms, score, i),
        strength=float(strength[i]), raw_score=float(score[i]),
        spectral_power=float(spectral[i]), acf_peak=float(acf[i]),
        spectral_bpm=float(bpms[np.argmax(spectral)]), acf_bpm=float(bpms[np.argmax(acf)]),
        candidates=tuple(candidates), octaves=tuple(octaves),
        bpm_range=(float(bpms[0]), float(bpms[-1])),
    )


def filter_tempi(filters: np.ndarray, *, frame_rate: float = DEFAULT_FRAME_RATE_HZ,
                 bpm_range: Sequence[float] = BALLROOM_BPM_RANGE) -> list[FilterTempo]:
    """Dominant tempo, its interval and the periodicity strength of every filter.

    For every BPM of ``bpm_range`` (1-BPM grid; period ``P = 60·frame_rate/bpm`` frames) two
    normalised terms are computed on the mean-removed weights:

    * ``S(P)``: the fraction of the filter's variance explained by one sinusoid of period P
      (least-squares fit);
    * ``A(P)``: the normalised autocorrelation at lag P, restricted to lags that leave at
      least 20 % of the filter overlapping (≥ 55 BPM for 1×60).

    The score ``sqrt(S · max(A, 0))`` peaks at the dominant tempo; the tempo interval is where
    it stays above half power (:func:`half_power_interval`). The two terms fail in opposite
    octave directions (harmonics for S, multiples of the period for A), so their product keeps
    the tempo both support; the remaining ambiguity is reported in ``candidates`` and
    ``octaves``. ``strength`` rescales the score so that 0 is the median white-noise filter.

    Parameters
    ----------
    filters : np.ndarray, shape (n_filters, width) or (width,)
    frame_rate : float, keyword-only
        Frames per second (44100 / 1024 ≈ 43.07 for the paper's front end).
    bpm_range : (float, float), keyword-only
        Tempi to consider; Ballroom spans 60-224 BPM (§3).

    Returns
    -------
    list of FilterTempo, one per row

    Raises
    ------
    ConfigError
        Bad shape, non-finite weights, bad range or frame rate.
    """
    filters = as_filters(filters)
    lo, hi, frame_rate = check_range(bpm_range, frame_rate)
    bpms, spectral, acf, score = periodicity_scores(filters, frame_rate=frame_rate,
                                                    bpm_range=(lo, hi))
    chance = white_noise_median(filters.shape[1], frame_rate, lo, hi)
    # a constant filter has no periodicity at all (its mean-free energy is 0)
    flat = np.ptp(filters, axis=1) <= 1e-12 * np.maximum(np.abs(filters).max(axis=1), 1e-300)
    empty = FilterTempo(None, None, 0.0, 0.0, 0.0, 0.0, None, None, (), (), (lo, hi))
    return [empty if flat[r] or not len(bpms)
            else _one_filter(bpms, spectral[r], acf[r], score[r], chance)
            for r in range(len(filters))]


def filter_tempo(weights: np.ndarray, *, frame_rate: float = DEFAULT_FRAME_RATE_HZ,
                 bpm_range: Sequence[float] = BALLROOM_BPM_RANGE) -> FilterTempo:
    """:func:`filter_tempi` of one filter of shape (width,)."""
    w = np.asarray(weights)
    if w.ndim != 1:
        raise ConfigError(f"filter_tempo expects one filter of shape (width,), got {w.shape}")
    return filter_tempi(w[None, :], frame_rate=frame_rate, bpm_range=bpm_range)[0]
