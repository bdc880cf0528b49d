"""Is a filter periodic beyond noise as smooth as itself? A calibrated test, and FDR control.

Trained filters are smoother than their white initialisation, and smoothness alone makes noise
look periodic: on 60 frames a slow random wave fills one or two "beats". The null hypothesis
is therefore matched to each filter's own smoothness:

    H0: the filter is a stationary Gaussian sequence whose power spectrum does not rise
    anywhere (non-increasing in frequency: white, red, AR(1), Gaussian-smoothed noise, ...).

A periodic filter has a spectral peak at its tempo, which such a spectrum cannot have. For
each filter the null spectrum is the non-increasing fit of its own periodogram (the maximum
likelihood fit under H0: antitonic regression, pool-adjacent-violators); surrogates drawn from
that spectrum (random phases, exponential periodogram ordinates) are as smooth as the filter
but hold no peak. The test statistic is the filter's peak periodicity score
(:func:`tfcnn.interpret.periodicity.peak_scores`), the number the table reports as strength;
its p-value is the share of surrogates that reach it.

Phase-randomised surrogates would keep the whole periodogram, peak included, and could not
test a statistic of the spectrum; an AR(1) fit cannot follow spectra that fall faster than a
Lorentzian (Gaussian smoothing). The non-increasing fit follows both. Its price is power: the
fit pools a peak with the lower frequencies, so a periodic filter must stand out of its own
smoothed spectrum (measured in docs/tempo-study.md).

Many filters: Benjamini-Hochberg adjusted p-values (q-values) control the false discovery rate
over a model's 32 filters, which are trained jointly and are not independent trials; BH holds
under the positive dependence of such tests and is reported as such.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfcnn.config import BALLROOM_BPM_RANGE
from tfcnn.errors import ConfigError
from tfcnn.interpret.periodicity import (DEFAULT_FRAME_RATE_HZ, as_filters, check_range,
                                         peak_scores)

#: Surrogates per filter. With 32 filters and q = 0.05 the smallest BH threshold is
#: 0.05/32 = 0.0016, so the p-value resolution 1/(B+1) must be finer than that.
N_SURROGATES: int = 999
#: False discovery rate of the headline test.
FDR_Q: float = 0.05
#: Surrogate filters per forward chunk (bounds memory to ~50 MB).
CHUNK: int = 20000
#: Fixed seed: a checkpoint's study is reproducible.
SEED: int = 20160704
#: The test looks for periods that repeat at least this many times inside the filter. Below
#: ~1.6 cycles (69 BPM for 1×60 filters) a period cannot be told from one slow wave: very
#: smooth noise (Gaussian-smoothed, lag-1 ≥ 0.95) then "peaks" at 60 BPM in 10 % of filters
#: against 5 % allowed (measured in docs/tempo-study.md).
MIN_CYCLES: float = 1.6


def tested_range(width: int, frame_rate: float, bpm_range: Sequence[float]) -> tuple[float, float]:
    """The tempi the test covers: ``bpm_range`` from the tempo of MIN_CYCLES per window up."""
    lo, hi, frame_rate = check_range(bpm_range, frame_rate)
    return max(lo, MIN_CYCLES * 60.0 * frame_rate / width), hi


def periodogram(filters: np.ndarray) -> np.ndarray:
    """Periodogram of each mean-free filter at Fourier frequencies 1..width//2, (n, width//2)."""
    x = as_filters(filters)
    spectrum = np.fft.rfft(x - x.mean(axis=1, keepdims=True), axis=1)
    return np.abs(spectrum[:, 1:]) ** 2


def nonincreasing_fit(power: np.ndarray) -> np.ndarray:
    """Least-squares non-increasing fit of each row (antitonic regression, pool-adjacent-
    violators: :func:`scipy.optimize.isotonic_regression`), same shape. power : (n, K)."""
    from scipy.optimize import isotonic_regression

    p = np.asarray(power, dtype=np.float64)
    return np.stack([isotonic_regression(row, increasing=False).x for row in p]) \
        if len(p) else p.copy()


def smooth_surrogates(spectrum: np.ndarray, n_surrogates: int, *, width: int,
                      rng: np.random.Generator) -> np.ndarray:
    """Gaussian sequences with a given periodogram mean, (n, n_surrogates, width).

    spectrum : (n, width//2), the expected periodogram at Fourier frequencies 1..width//2.
    Each surrogate's ordinates are ``spectrum · Exp(1)`` with uniform random phases (the
    distribution of a Gaussian sequence's periodogram), turned into a signal by an inverse FFT.
    """
    n, k = spectrum.shape
    amp = np.sqrt(spectrum[:, None, :] * rng.exponential(size=(n, n_surrogates, k)))
    phase = rng.uniform(0.0, 2 * np.pi, size=(n, n_surrogates, k))
    coef = np.zeros((n, n_surrogates, width // 2 + 1), dtype=np.complex128)
    coef[..., 1:k + 1] = amp * np.exp(1j * phase)
    if width % 2 == 0:                                  # the Nyquist term of a real signal
        coef[..., width // 2] = amp[..., -1] * np.sign(np.cos(phase[..., -1]))
    return np.fft.irfft(coef, n=width, axis=-1)


def smooth_null_pvalues(filters: np.ndarray, *, n_surrogates: int = N_SURROGATES,
                        seed: int = SEED, frame_rate: float = DEFAULT_FRAME_RATE_HZ,
                        bpm_range: Sequence[float] = BALLROOM_BPM_RANGE) -> np.ndarray:
    """p-value of each filter's peak periodicity score against equally smooth noise.

    Parameters
    ----------
    filters : np.ndarray, shape (n_filters, width)
    n_surrogates : int, keyword-only
        Surrogates per filter (B); p-values are multiples of 1/(B+1).
    seed : int, keyword-only
    frame_rate, bpm_range : keyword-only
        As for :func:`tfcnn.interpret.periodicity.periodicity_scores`.

    The statistic is the peak score over :func:`tested_range` (periods that repeat at least
    :data:`MIN_CYCLES` times in the filter).

    Returns
    -------
    np.ndarray, shape (n_filters,)
        ``(1 + #{surrogate score ≥ filter score}) / (1 + B)``; 1.0 for constant filters.
    """
    x = as_filters(filters)
    if int(n_surrogates) < 1:
        raise ConfigError(f"n_surrogates must be >= 1, got {n_surrogates!r}")
    n, width = x.shape
    b = int(n_surrogates)
    kw = dict(frame_rate=frame_rate, bpm_range=tested_range(width, frame_rate, bpm_range))
    observed = peak_scores(x, **kw)                                   # (n,)
    null_spectrum = nonincreasing_fit(periodogram(x))                 # (n, width//2)
    rng = np.random.default_rng(seed)
    exceed = np.zeros(n, dtype=np.int64)
    rows_per_chunk = max(1, CHUNK // b)
    for start in range(0, n, rows_per_chunk):
        rows = slice(start, min(n, start + rows_per_chunk))
        sur = smooth_surrogates(null_spectrum[rows], b, width=width, rng=rng)  # (r, B, width)
        scores = peak_scores(sur.reshape(-1, width), **kw).reshape(-1, b)      # (r, B)
        exceed[rows] = np.sum(scores >= observed[rows, None] - 1e-12, axis=1)
    p = (1.0 + exceed) / (1.0 + b)
    flat = np.ptp(x, axis=1) <= 1e-12 * np.maximum(np.abs(x).max(axis=1), 1e-300)
    p[flat] = 1.0
    return p


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), same order as ``p_values``
    (:func:`scipy.stats.false_discovery_control`).

    A filter is a discovery at false discovery rate q when its q-value is ≤ q.
    """
    from scipy.stats import false_discovery_control

    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or not np.all((p >= 0) & (p <= 1)):
        raise ConfigError(f"p-values must be a 1-D array in [0, 1], got {p!r}")
    if len(p) == 0:
        return p.copy()
    return false_discovery_control(p, method="bh")
