"""Do the 1×60 temporal filters learn tempo? (Pons, Lidy & Serra 2016, §3, open question).

Longer than 600 lines: statistics, nulls, probes and their report share this one module.

A temporal filter of the Time architecture spans 60 frames ≈ 1.39 s: one beat at 60 BPM,
about five at 224 BPM (§3). This module measures, for every such filter of a checkpoint:

1. **Periodicity of the weights** (:func:`filter_tempo`): dominant BPM, a normalised strength
   in [0, 1] and the octave-related candidates, from the filter's autocorrelation and its
   spectrum.
2. **A random baseline** (:func:`random_baseline`): the same statistics for untrained filters
   of the same shape (``build_model`` with many seeds), so "tuned to 125 BPM" means more than
   what a random filter shows by chance. Untrained filters are white while trained ones are
   smooth, and smooth noise looks periodic too, so a stricter null is applied as well:
   red noise (AR(1)) as smooth as each filter (:func:`red_noise_thresholds`).
3. **Probes** (:func:`probe_sweep`): click tracks and drum loops at every BPM 60..224 through
   the model's own front end, normalisation and layers: each filter's pooled activation
   (a tuning curve per filter) and the predicted class per BPM (the tempo → class map).
4. **A table and a verdict** (:func:`filter_table`, :func:`verdict`) computed from the numbers.

Everything returns arrays, dataclasses or DataFrames; figures live in
:mod:`tfcnn.interpret_plots`, the page in ``pages/5_Filters.py``.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tfcnn.config import BALLROOM_BPM_RANGE, FRONT_END, FrontEnd
from tfcnn.errors import CheckpointError, ConfigError, DatasetError

# --------------------------------------------------------------------------------------------
# constants of the study (one place; no magic numbers in the bodies below)
# --------------------------------------------------------------------------------------------
#: Frames per second of the paper's front end (hop 1024 at 44.1 kHz, §2).
DEFAULT_FRAME_RATE_HZ: float = FRONT_END.frame_rate_hz
#: Resolution of the BPM grid on which periodicity is evaluated.
BPM_STEP: float = 0.25
#: The autocorrelation at lag L compares ``x[:W-L]`` with ``x[L:]``; fewer overlapping frames
#: than this fraction of the filter width make it meaningless, so such periods are left out.
#: For 1×60 filters this keeps lags ≤ 47 frames (≥ 55 BPM): the paper's 60 BPM (43 frames,
#: §3) stays in.
MIN_OVERLAP_FRACTION: float = 0.2
#: Quantile of the random baseline above which a filter counts as tuned (significant).
SIGNIFICANCE_QUANTILE: float = 0.95
#: White-noise filters simulated to calibrate the chance level of :func:`filter_tempo`.
N_NOISE_FILTERS: int = 2000
#: Untrained models per random baseline (x 32 filters each = 1600 null filters).
N_BASELINE_MODELS: int = 50
#: Red-noise null: AR(1) filters with the trained filter's lag-1 correlation (on this grid),
#: this many per grid point. Trained filters are smoother than their white initialisation and
#: smoothness alone raises the periodicity score of noise (the AR(1) background of spectral
#: peak tests, Torrence & Compo 1998).
AR1_STEP: float = 0.05
AR1_MAX: float = 0.95
N_RED_NOISE: int = 800
#: Octave-related tempi reported for every filter: (label, factor of the dominant BPM).
OCTAVE_RELATIONS: tuple[tuple[str, float], ...] = (
    ("x1/3", 1 / 3), ("x1/2", 0.5), ("x2/3", 2 / 3), ("x3/2", 1.5), ("x2", 2.0), ("x3", 3.0),
)
#: A candidate at an octave relation is the best score within this relative distance of it.
OCTAVE_TOLERANCE: float = 0.04
#: Local maxima of the score reported as candidates (besides the octave relations), at
#: least this relative distance apart (ripples of one peak are not candidates).
MAX_CANDIDATES: int = 5
CANDIDATE_SEPARATION: float = 0.08
CANDIDATE_PROMINENCE: float = 0.05
#: Probes: tempi (BPM), duration (s) and kinds. 8 s gives four 80-frame patches per probe.
PROBE_BPMS: tuple[float, ...] = tuple(float(b) for b in range(60, 225, 2))
PROBE_SECONDS: float = 8.0
PROBE_KINDS: tuple[str, ...] = ("click", "drums")
#: Probes rendered and transformed together (bounds memory: ~30 MB of STFT per probe).
PROBE_BATCH: int = 8
#: A class's tempo range: these quantiles of its tracks' BPMs (the interquartile range: a
#: wider one, e.g. 5-95 %, covers most of 60-224 BPM and any tempo would "match" a class).
TEMPO_RANGE_QUANTILES: tuple[float, float] = (0.25, 0.75)


# --------------------------------------------------------------------------------------------
# periodicity of one filter
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FilterTempo:
    """Dominant tempo of one temporal filter (see :func:`filter_tempo`).

    Attributes
    ----------
    bpm : float or None
        Dominant tempo in BPM; None when the filter is not periodic beyond chance
        (``strength`` at or below ``min_strength``).
    strength : float
        Chance-corrected periodicity in [0, 1]: 0 = what a typical white-noise filter of the
        same width shows, 1 = a perfectly periodic filter.
    peak_bpm : float or None
        Where the score peaks even when it is weak (for plots); None if no BPM is testable.
    candidates : tuple of (bpm, strength)
        Local maxima of the score and the octave relatives of ``peak_bpm``, strongest first.
    octaves : tuple of (relation, bpm, strength, spectral_power)
        The score near ``peak_bpm`` × 1/3, 1/2, 2/3, 3/2, 2, 3 (those inside the range) and
        the spectral term there: a strong harmonic that the autocorrelation rejects (e.g. the
        off-beat accents of an 80 BPM pattern at 160 BPM) has spectral power but strength 0.
    spectral_bpm, acf_bpm : float or None
        Peaks of the spectral and autocorrelation terms alone (method details).
    spectral_power, acf_peak : float
        Spectral term (fraction of the filter's variance explained by one sinusoid) and
        autocorrelation term (normalised correlation at the period lag) at ``peak_bpm``.
    raw_score : float
        ``sqrt(spectral_power · acf_peak)`` at ``peak_bpm`` before chance correction.
    min_strength : float
        The threshold below which ``bpm`` is None (95th percentile of white-noise filters).
    bpm_range : (float, float)
        The tempi actually tested (the requested range, clipped to what the width can hold).
    method : str
        One line naming the method.
    """

    bpm: float | None
    strength: float
    peak_bpm: float | None
    candidates: tuple[tuple[float, float], ...]
    octaves: tuple[tuple[str, float, float, float], ...]
    spectral_bpm: float | None
    acf_bpm: float | None
    spectral_power: float
    acf_peak: float
    raw_score: float
    min_strength: float
    bpm_range: tuple[float, float]
    method: str = ("sqrt(least-squares sinusoid power x normalised autocorrelation at the "
                   "period lag), chance-corrected against white noise")

    def to_dict(self) -> dict:
        """JSON-able form (tuples become lists)."""
        return {
            "bpm": self.bpm, "strength": self.strength, "peak_bpm": self.peak_bpm,
            "candidates": [list(c) for c in self.candidates],
            "octaves": [list(o) for o in self.octaves],
            "spectral_bpm": self.spectral_bpm, "acf_bpm": self.acf_bpm,
            "spectral_power": self.spectral_power, "acf_peak": self.acf_peak,
            "raw_score": self.raw_score, "min_strength": self.min_strength,
            "bpm_range": list(self.bpm_range), "method": self.method,
        }


def _check_range(bpm_range, frame_rate) -> tuple[float, float, float]:
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


@functools.lru_cache(maxsize=32)
def _grid(width: int, frame_rate: float, lo: float, hi: float):
    """BPM grid, least-squares sinusoid bases and ACF lags for filters of ``width`` frames.

    Returns
    -------
    bpms : (K,) tested tempi; periods : (K,) in frames; bases : (K, width, 2) orthonormal
    bases of the mean-free cos/sin pair at each period.
    """
    bpms = np.arange(lo, hi + BPM_STEP / 2, BPM_STEP)
    periods = 60.0 * frame_rate / bpms  # frames per beat
    min_overlap = max(2, int(math.ceil(MIN_OVERLAP_FRACTION * width)))
    keep = periods + 1 + min_overlap <= width
    bpms, periods = bpms[keep], periods[keep]
    n = np.arange(width, dtype=np.float64)
    phase = 2 * np.pi * n[None, :] / periods[:, None]          # (K, width)
    pair = np.stack([np.cos(phase), np.sin(phase)], axis=-1)   # (K, width, 2)
    pair -= pair.mean(axis=1, keepdims=True)                   # orthogonal to the constant
    bases = np.linalg.qr(pair)[0] if len(bpms) else pair       # (K, width, 2) orthonormal
    return bpms, periods, bases


def _spectral_power(x: np.ndarray, bases: np.ndarray) -> np.ndarray:
    """Fraction of each mean-free filter's energy explained by a sinusoid at each period.

    This is the zero-padded spectrum's peak power made exact for short filters: the DFT of a
    60-frame filter at 1.4-5 cycles leaks between its positive and negative frequencies and
    the mean removal, which biases a plain FFT peak by a few BPM; the least-squares fit of
    ``cos``/``sin`` (orthonormalised against the constant) does not (Lomb-Scargle).

    x : (n, width) mean-free; bases : (K, width, 2) → (n, K) in [0, 1].
    """
    energy = np.sum(x * x, axis=1)                              # (n,)
    proj = np.einsum("nw,kwj->nkj", x, bases)                    # (n, K, 2)
    power = np.sum(proj * proj, axis=-1)                         # (n, K)
    return power / np.maximum(energy, np.finfo(float).tiny)[:, None]


def _autocorrelation(x: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation at fractional lags (linear interpolation between frames).

    ``A(L) = <x[:M], x[L:L+M]> / (|x[:M]| |x[L:L+M]|)``: 1 when the filter repeats itself
    after L frames. x : (n, width) mean-free; periods : (K,) → (n, K) in [-1, 1].
    """
    n, width = x.shape
    out = np.zeros((n, len(periods)))
    for k, lag in enumerate(periods):
        i0 = int(np.floor(lag))
        frac = lag - i0
        m = width - i0 - 1                                       # overlapping frames
        a = x[:, :m]
        b = (1 - frac) * x[:, i0:i0 + m] + frac * x[:, i0 + 1:i0 + 1 + m]
        den = np.sqrt(np.sum(a * a, axis=1) * np.sum(b * b, axis=1))
        out[:, k] = np.sum(a * b, axis=1) / np.maximum(den, np.finfo(float).tiny)
    return out


def _raw_scores(filters: np.ndarray, frame_rate: float, lo: float, hi: float):
    """(bpms (K,), spectral (n, K), acf (n, K), score (n, K)) for filters (n, width)."""
    x = np.asarray(filters, dtype=np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    bpms, periods, bases = _grid(x.shape[1], frame_rate, lo, hi)
    spectral = _spectral_power(x, bases)
    acf = _autocorrelation(x, periods)
    # Spectrum and autocorrelation err in opposite octave directions: a 2-pulse filter has
    # spectral peaks at every harmonic (60, 120, 180 BPM), a 5-pulse filter autocorrelation
    # peaks at every multiple of its period (224, 112, 75 BPM). Their product keeps only the
    # tempo both agree on (the DFT x ACF product of Peeters' tempo estimation).
    score = np.sqrt(spectral * np.clip(acf, 0.0, None))
    return bpms, spectral, acf, score


@functools.lru_cache(maxsize=32)
def _noise_levels(width: int, frame_rate: float, lo: float, hi: float) -> tuple[float, float]:
    """(median, 95th percentile) of the peak raw score of i.i.d. uniform filters.

    Uniform i.i.d. weights are exactly what Glorot-uniform initialisation gives, so this is
    the chance level of an untrained filter of this width (fixed seed: deterministic).
    """
    rng = np.random.default_rng(12345)
    noise = rng.uniform(-1.0, 1.0, size=(N_NOISE_FILTERS, width))
    bpms, _, _, score = _raw_scores(noise, frame_rate, lo, hi)
    if not len(bpms):
        return 0.0, 1.0
    peaks = score.max(axis=1)
    median = float(np.median(peaks))
    corrected = np.clip((peaks - median) / (1 - median), 0, 1)
    return median, float(np.quantile(corrected, SIGNIFICANCE_QUANTILE))


def _corrected(score: np.ndarray, chance: float) -> np.ndarray:
    return np.clip((score - chance) / (1.0 - chance), 0.0, 1.0)


def periodicity_map(filters: np.ndarray, *, frame_rate: float = DEFAULT_FRAME_RATE_HZ,
                    bpm_range: Sequence[float] = BALLROOM_BPM_RANGE
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Chance-corrected periodicity of every filter at every tested BPM (the heatmap).

    Parameters
    ----------
    filters : np.ndarray, shape (n_filters, width)
    frame_rate : float, keyword-only
        Frames per second of the input the filters convolve.
    bpm_range : (float, float), keyword-only

    Returns
    -------
    bpms : np.ndarray, shape (K,)
    scores : np.ndarray, shape (n_filters, K), in [0, 1]; a filter's maximum is its strength.
    """
    filters = _as_filters(filters)
    lo, hi, frame_rate = _check_range(bpm_range, frame_rate)
    bpms, _, _, score = _raw_scores(filters, frame_rate, lo, hi)
    chance, _ = _noise_levels(filters.shape[1], frame_rate, lo, hi)
    return bpms, _corrected(score, chance)


def _as_filters(weights) -> np.ndarray:
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


def _near(bpms: np.ndarray, curve: np.ndarray, target: float) -> tuple[float, float] | None:
    """Best (bpm, value) of ``curve`` within OCTAVE_TOLERANCE of ``target``; None if off-grid."""
    sel = np.abs(bpms - target) <= OCTAVE_TOLERANCE * target
    if not sel.any():
        return None
    i = np.flatnonzero(sel)[np.argmax(curve[sel])]
    return float(bpms[i]), float(curve[i])


def _tempo_from_curves(bpms, spectral, acf, score, chance, min_strength, lo, hi) -> FilterTempo:
    """One filter's :class:`FilterTempo` from its (K,) curves."""
    if not len(bpms):
        return FilterTempo(None, 0.0, None, (), (), None, None, 0.0, 0.0, 0.0,
                           min_strength, (lo, hi))
    corrected = _corrected(score, chance)
    i = int(np.argmax(score))
    peak = float(bpms[i])
    strength = float(corrected[i])
    # candidates: prominent local maxima of the score (ripples of one broad peak are not
    # candidates: a 60 BPM cosine fills 1.4 cycles of a 60-frame filter, its peak is wide)
    from scipy.signal import find_peaks  # imported here: scipy.signal takes ~1 s to import

    padded = np.concatenate([[-1.0], score, [-1.0]])
    maxima, _ = find_peaks(padded, prominence=CANDIDATE_PROMINENCE)
    order = sorted(set((maxima - 1).tolist()) | {i}, key=lambda j: -score[j])
    candidates: list[tuple[float, float]] = []
    for j in order:
        b = float(bpms[j])
        if (j == i or corrected[j] > 0) and all(
                abs(b - c[0]) > CANDIDATE_SEPARATION * b for c in candidates):
            candidates.append((b, float(corrected[j])))
    candidates = candidates[:MAX_CANDIDATES]
    octaves = []
    for label, factor in OCTAVE_RELATIONS:
        # best strength near the relation; ties (all 0) go to the strongest spectral peak
        hit = _near(bpms, corrected + 1e-6 * spectral, peak * factor)
        if hit is not None:
            at = int(np.argmin(np.abs(bpms - hit[0])))
            hit = (hit[0], float(corrected[at]))
            octaves.append((label, hit[0], hit[1], float(spectral[at])))
            if hit[1] > 0 and all(abs(hit[0] - c[0]) > OCTAVE_TOLERANCE * hit[0]
                                  for c in candidates):
                candidates.append(hit)
    candidates.sort(key=lambda c: -c[1])
    return FilterTempo(
        bpm=peak if strength > min_strength else None,
        strength=strength,
        peak_bpm=peak,
        candidates=tuple(candidates),
        octaves=tuple(octaves),
        spectral_bpm=float(bpms[np.argmax(spectral)]),
        acf_bpm=float(bpms[np.argmax(acf)]),
        spectral_power=float(spectral[i]),
        acf_peak=float(acf[i]),
        raw_score=float(score[i]),
        min_strength=min_strength,
        bpm_range=(float(bpms[0]), float(bpms[-1])),
    )


def filter_tempi(filters: np.ndarray, *, frame_rate: float = DEFAULT_FRAME_RATE_HZ,
                 bpm_range: Sequence[float] = BALLROOM_BPM_RANGE,
                 min_strength: float | None = None) -> list[FilterTempo]:
    """:func:`filter_tempo` for every row of ``filters (n_filters, width)`` (vectorised)."""
    filters = _as_filters(filters)
    lo, hi, frame_rate = _check_range(bpm_range, frame_rate)
    bpms, spectral, acf, score = _raw_scores(filters, frame_rate, lo, hi)
    chance, noise_q = _noise_levels(filters.shape[1], frame_rate, lo, hi)
    threshold = noise_q if min_strength is None else float(min_strength)
    # a constant filter has no periodicity at all (its mean-free energy is 0)
    flat = np.ptp(filters, axis=1) <= 1e-12 * np.maximum(np.abs(filters).max(axis=1), 1e-300)
    out = []
    for r in range(len(filters)):
        if flat[r]:
            out.append(FilterTempo(None, 0.0, None, (), (), None, None, 0.0, 0.0, 0.0,
                                   threshold, (lo, hi)))
            continue
        out.append(_tempo_from_curves(bpms, spectral[r], acf[r], score[r], chance, threshold,
                                      lo, hi))
    return out


def filter_tempo(weights: np.ndarray, *, frame_rate: float = DEFAULT_FRAME_RATE_HZ,
                 bpm_range: Sequence[float] = BALLROOM_BPM_RANGE,
                 min_strength: float | None = None) -> FilterTempo:
    """Dominant tempo and periodicity strength of one temporal filter.

    The filter is read as a signal over frames (``frame_rate`` frames per second): a filter
    that responds to beats has peaks one beat period apart. For every BPM of ``bpm_range``
    (0.25 BPM grid; period ``P = 60·frame_rate/bpm`` frames) two normalised terms are
    computed on the mean-removed weights:

    * ``S(P)``: the fraction of the filter's variance explained by one sinusoid of period P
      (least-squares fit; the zero-padded spectrum's peak made exact for a 60-frame window).
    * ``A(P)``: the normalised autocorrelation at lag P (fractional lags interpolated),
      restricted to lags that leave at least 20 % of the filter overlapping (≥ 55 BPM for
      1×60; a 60-frame filter holds one 60 BPM beat, 43 frames, Pons et al. 2016 §3).

    The score is ``sqrt(S · max(A, 0))``; its maximum gives the dominant BPM, and the
    strength is that maximum corrected for chance: ``(score - m) / (1 - m)`` clipped to
    [0, 1], where m is the median peak score of i.i.d. uniform (= untrained Glorot) filters
    of the same width. A filter whose strength does not exceed ``min_strength`` (default: the
    95th percentile of those noise filters) gets ``bpm = None``.

    Octaves: the two terms fail in opposite directions. A filter with two pulses 43 frames
    apart has equal spectral peaks at 60, 120 and 180 BPM (harmonics), while one with five
    pulses at 224 BPM autocorrelates at 224, 112 and 75 BPM (multiples of the period). The
    product keeps the tempo both support, which resolves those cases; the remaining ambiguity
    is reported rather than hidden: ``candidates`` lists the score's local maxima and the
    score near 1/3, 1/2, 2/3, 3/2, 2 and 3 times the dominant BPM, and ``octaves`` names each
    relation, so a filter whose 2× tempo is nearly as strong says so.

    Parameters
    ----------
    weights : np.ndarray, shape (width,)
        One temporal filter (e.g. a row of ``models.temporal_filters(model)``).
    frame_rate : float, keyword-only
        Frames per second (44100 / 1024 ≈ 43.07 for the paper's front end).
    bpm_range : (float, float), keyword-only
        Tempi to consider; Ballroom spans 60-224 BPM (§3).
    min_strength : float, optional, keyword-only
        Threshold for reporting a BPM; default calibrated on white noise (see above).

    Returns
    -------
    FilterTempo

    Raises
    ------
    ConfigError
        Weights not 1-D with at least 4 taps, non-finite, or a bad range/frame rate.
    """
    w = np.asarray(weights)
    if w.ndim != 1:
        raise ConfigError(f"filter_tempo expects one filter of shape (width,), got {w.shape}")
    return filter_tempi(w[None, :], frame_rate=frame_rate, bpm_range=bpm_range,
                        min_strength=min_strength)[0]


# --------------------------------------------------------------------------------------------
# checkpoints and their filters
# --------------------------------------------------------------------------------------------
def _as_checkpoint(checkpoint):
    """A loaded :class:`tfcnn.checkpoint.Checkpoint` from a path or a loaded one."""
    if isinstance(checkpoint, (str, os.PathLike)):
        from tfcnn.checkpoint import load_checkpoint

        return load_checkpoint(Path(checkpoint))
    if not hasattr(checkpoint, "model"):
        raise CheckpointError(
            f"expected a checkpoint path or a loaded Checkpoint, got {type(checkpoint).__name__}"
        )
    return checkpoint


def checkpoint_filters(checkpoint) -> dict[str, np.ndarray | None]:
    """Every kind of first-layer filter a checkpoint has, for display.

    Returns
    -------
    dict
        ``temporal`` (n_filters, width) for time/timefreq(-init), ``frequency``
        (n_filters, height) for frequency/timefreq(-init), ``blackbox``
        (n_filters, height, width) for blackbox; None where the model has none.
    """
    from tfcnn.models import conv_filters, frequency_filters, temporal_filters

    model = _as_checkpoint(checkpoint).model
    return {"temporal": temporal_filters(model), "frequency": frequency_filters(model),
            "blackbox": conv_filters(model)}


def _frame_rate(checkpoint) -> float:
    front_end = getattr(checkpoint, "front_end", None) or FRONT_END
    return float(front_end.frame_rate_hz)


# --------------------------------------------------------------------------------------------
# random baseline
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RandomBaseline:
    """Periodicity of untrained filters: the null distribution of :func:`filter_tempo`.

    Attributes
    ----------
    arch : str
        Architecture the untrained models were built with.
    n_models : int
        Untrained models (seeds 0 .. n_models-1).
    strengths : np.ndarray, shape (n_models * n_filters,)
        Strength of every untrained filter.
    peak_bpms : np.ndarray, shape (n_models * n_filters,)
        Their score peaks (NaN where no BPM is testable).
    quantile : float
        E.g. 0.95.
    threshold : float
        ``quantile`` of ``strengths``: a trained filter above it is "tuned".
    example : np.ndarray, shape (n_filters, width)
        The filters of the seed-0 model, to show next to the trained ones.
    """

    arch: str
    n_models: int
    strengths: np.ndarray
    peak_bpms: np.ndarray
    quantile: float
    threshold: float
    example: np.ndarray

    def p_values(self, strengths) -> np.ndarray:
        """One-sided p-value of each strength against the null: ``(1 + #null ≥ s) / (1 + N)``."""
        s = np.atleast_1d(np.asarray(strengths, dtype=float))
        null = np.sort(self.strengths)
        n_ge = len(null) - np.searchsorted(null, s, side="left")
        return (1.0 + n_ge) / (1.0 + len(null))


@functools.lru_cache(maxsize=16)
def _baseline_cached(arch: str, params_json: str, n_classes: int, n_models: int,
                     quantile: float, frame_rate: float, lo: float, hi: float) -> RandomBaseline:
    from tfcnn.models import build_model, temporal_filters

    params = json.loads(params_json)
    banks = []
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG state alone
        for seed in range(n_models):
            torch.manual_seed(seed)
            filters = temporal_filters(build_model(arch, n_classes, **params))
            if filters is None:
                raise ConfigError(f"architecture {arch!r} with {params} has no temporal filters")
            banks.append(filters)
    stacked = np.concatenate(banks, axis=0)                      # (n_models * n_filters, width)
    tempi = filter_tempi(stacked, frame_rate=frame_rate, bpm_range=(lo, hi))
    strengths = np.array([t.strength for t in tempi])
    peaks = np.array([np.nan if t.peak_bpm is None else t.peak_bpm for t in tempi])
    for a in (strengths, peaks):
        a.setflags(write=False)
    return RandomBaseline(arch=arch, n_models=n_models, strengths=strengths, peak_bpms=peaks,
                          quantile=quantile, threshold=float(np.quantile(strengths, quantile)),
                          example=banks[0])


def random_baseline(arch: str, arch_params: Mapping | None = None, *, n_classes: int = 8,
                    n_models: int = N_BASELINE_MODELS,
                    quantile: float = SIGNIFICANCE_QUANTILE,
                    frame_rate: float = DEFAULT_FRAME_RATE_HZ,
                    bpm_range: Sequence[float] = BALLROOM_BPM_RANGE) -> RandomBaseline:
    """Strengths of the temporal filters of ``n_models`` untrained models (seeds 0..n-1).

    The models are built exactly as training starts them (``build_model`` with the same
    architecture and parameters), so the null distribution has the same filter width and
    initialisation as the trained filters it is compared with. Cached per arguments.

    Parameters
    ----------
    arch : str
        Architecture with temporal filters (``time``, ``timefreq``, ``timefreq-init``).
    arch_params : mapping, optional
        Its parameters (a checkpoint's ``arch_params``), e.g. ``{"time_filter": [1, 60]}``.
    n_classes, n_models, quantile, frame_rate, bpm_range : keyword-only
        See the module constants.

    Returns
    -------
    RandomBaseline

    Raises
    ------
    ConfigError
        Unknown architecture, one without temporal filters, or bad counts.
    """
    if int(n_models) < 1:
        raise ConfigError(f"n_models must be >= 1, got {n_models!r}")
    if not 0.0 < float(quantile) < 1.0:
        raise ConfigError(f"quantile must be in (0, 1), got {quantile!r}")
    lo, hi, frame_rate = _check_range(bpm_range, frame_rate)
    params = {k: v for k, v in dict(arch_params or {}).items() if k != "n_classes"}
    return _baseline_cached(str(arch), json.dumps(params, sort_keys=True), int(n_classes),
                            int(n_models), float(quantile), frame_rate, lo, hi)


# --------------------------------------------------------------------------------------------
# probes: click tracks and drum loops at every tempo
# --------------------------------------------------------------------------------------------
def _render_probe(kind: str, bpm: float, seconds: float, sample_rate: int) -> np.ndarray:
    from tfcnn.synth import render_click_track, render_drum_loop

    renderers = {
        "click": lambda: render_click_track(bpm=bpm, seconds=seconds, sample_rate=sample_rate),
        "drums": lambda: render_drum_loop(bpm=bpm, seconds=seconds, sample_rate=sample_rate),
    }
    try:
        return renderers[kind]()
    except KeyError:
        raise ConfigError(
            f"unknown probe kind {kind!r}; valid kinds: {', '.join(renderers)}"
        ) from None


@functools.lru_cache(maxsize=64)
def _probe_patches(kind: str, bpms: tuple[float, ...], seconds: float,
                   front_end: FrontEnd) -> np.ndarray:
    """Log-mel patches of every probe, not normalised: (n_bpm, n_patches, n_mels, frames).

    Cached: the probes do not depend on the checkpoint, only on the front end.
    """
    from tfcnn.features import log_mel_module, to_patches

    module = log_mel_module(front_end)  # the front end of training and predict, batched
    out = []
    for start in range(0, len(bpms), PROBE_BATCH):
        y = np.stack([_render_probe(kind, bpm, seconds, front_end.sample_rate)
                      for bpm in bpms[start:start + PROBE_BATCH]])     # (batch, n_samples)
        with torch.inference_mode():
            specs = module(torch.from_numpy(y.astype(np.float32))).numpy()  # (batch, mels, T)
        out.extend(to_patches(spec, patch_frames=front_end.patch_frames) for spec in specs)
    n = min(len(p) for p in out)
    if n == 0:
        raise ConfigError(f"probes of {seconds} s are shorter than one patch "
                          f"({front_end.patch_seconds:.2f} s)")
    patches = np.stack([p[:n] for p in out])
    patches.setflags(write=False)
    return patches


@dataclass(frozen=True)
class Probes:
    """What the model does with click tracks and drum loops at every tempo.

    Attributes
    ----------
    bpms : np.ndarray, shape (n_bpm,)
    kinds : tuple of str
        Probe kinds, e.g. ("click", "drums").
    classes : tuple of str
    activations : np.ndarray, shape (n_kinds, n_filters, n_bpm) or None
        Each temporal filter's pooled activation (post-ReLU, max over bands as in the model,
        mean over time and patches); None for models without temporal filters.
    probabilities : np.ndarray, shape (n_kinds, n_bpm, n_classes)
        Mean class probability over the probe's patches.
    predicted : np.ndarray, shape (n_kinds, n_bpm), int
        Class of each probe by song vote over its patches (as ``predict``).
    """

    bpms: np.ndarray
    kinds: tuple[str, ...]
    classes: tuple[str, ...]
    activations: np.ndarray | None
    probabilities: np.ndarray
    predicted: np.ndarray

    @property
    def tuning(self) -> np.ndarray | None:
        """Tuning curves, (n_filters, n_bpm): activation averaged over probe kinds."""
        return None if self.activations is None else self.activations.mean(axis=0)

    def tempo_class_map(self) -> pd.DataFrame:
        """Long table: ``kind``, ``bpm``, ``predicted`` (class name), ``probability``."""
        rows = []
        for k, kind in enumerate(self.kinds):
            for b, bpm in enumerate(self.bpms):
                c = int(self.predicted[k, b])
                rows.append({"kind": kind, "bpm": float(bpm), "predicted": self.classes[c],
                             "probability": float(self.probabilities[k, b, c])})
        return pd.DataFrame(rows)


def _forward_with_time_branch(model: torch.nn.Module, x: torch.Tensor,
                              n_filters: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits ``(batch, n_classes)`` and the time branch's pooled map ``(batch, n_filters, T')``.

    The activation is read with a forward hook on the model's own time branch (conv → ReLU →
    max-pool over all bands, §1), so the measured quantity is exactly what the dense layer sees.
    """
    captured: list[torch.Tensor] = []
    branch = getattr(model, "time_branch", None)
    handle = None
    if branch is not None and n_filters:
        handle = branch.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        logits = model(x)
    finally:
        if handle is not None:
            handle.remove()
    if not captured:
        return logits, None
    pooled = captured[0]                                   # (batch, n_filters * T')
    return logits, pooled.reshape(pooled.shape[0], n_filters, -1)


def probe_sweep(checkpoint, *, bpms: Sequence[float] = PROBE_BPMS,
                seconds: float = PROBE_SECONDS, kinds: Sequence[str] = PROBE_KINDS,
                batch_size: int = 256) -> Probes:
    """Feed click tracks and drum loops at every BPM through a checkpoint.

    The probes go through the checkpoint's own front end, normalisation (its scalar
    mean/std) and 80-frame patches, the same stages as training and ``predict``.

    Parameters
    ----------
    checkpoint : path or Checkpoint
    bpms : sequence of float, keyword-only
        Probe tempi (default 60, 62, ..., 224: Ballroom's range, §3).
    seconds : float, keyword-only
        Probe duration; 8 s gives four patches.
    kinds : sequence of str, keyword-only
        ``"click"`` (:func:`tfcnn.synth.render_click_track`) and/or ``"drums"``
        (:func:`tfcnn.synth.render_drum_loop`).
    batch_size : int, keyword-only
        Patches per forward pass.

    Returns
    -------
    Probes
    """
    from tfcnn.evaluate import song_vote
    from tfcnn.models import temporal_filters

    ckpt = _as_checkpoint(checkpoint)
    bpms = tuple(float(b) for b in bpms)
    kinds = tuple(kinds)
    if not bpms or not kinds:
        raise ConfigError(f"probe_sweep needs at least one BPM and one kind, got {bpms}, {kinds}")
    if float(seconds) <= 0:
        raise ConfigError(f"probe seconds must be > 0, got {seconds!r}")
    front_end = getattr(ckpt, "front_end", None) or FRONT_END
    model = ckpt.model.eval()
    filters = temporal_filters(model)
    n_filters = None if filters is None else filters.shape[0]
    n_classes = len(ckpt.classes)

    acts = None if n_filters is None else np.zeros((len(kinds), n_filters, len(bpms)))
    probs = np.zeros((len(kinds), len(bpms), n_classes))
    predicted = np.zeros((len(kinds), len(bpms)), dtype=np.int64)
    for k, kind in enumerate(kinds):
        patches = _probe_patches(kind, bpms, float(seconds), front_end)  # (n_bpm, P, mels, 80)
        n_bpm, n_patch = patches.shape[:2]
        x = patches.reshape(n_bpm * n_patch, 1, *patches.shape[2:])        # (n_bpm·P, 1, mels, 80)
        x = torch.from_numpy(((x - ckpt.norm_mean) / ckpt.norm_std).astype(np.float32))
        logits, pooled = [], []
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                lg, pl = _forward_with_time_branch(model, x[start:start + batch_size], n_filters)
                logits.append(lg)
                if pl is not None:
                    pooled.append(pl.mean(dim=2))              # (batch, n_filters): mean over time
        p = torch.softmax(torch.cat(logits), dim=1).numpy().reshape(n_bpm, n_patch, n_classes)
        probs[k] = p.mean(axis=1)
        predicted[k] = [song_vote(p[b]) for b in range(n_bpm)]
        if acts is not None:
            a = torch.cat(pooled).numpy().reshape(n_bpm, n_patch, n_filters)
            acts[k] = a.mean(axis=1).T                          # (n_filters, n_bpm)
    return Probes(bpms=np.array(bpms), kinds=kinds, classes=tuple(ckpt.classes),
                  activations=acts, probabilities=probs, predicted=predicted)


def probe_class_activations(probes: Probes) -> np.ndarray:
    """Mean pooled activation of each filter over the probes predicted as each class.

    Returns
    -------
    np.ndarray, shape (n_filters, n_classes)
        NaN for classes the model never predicts on the probes.
    """
    if probes.activations is None:
        raise ConfigError("these probes have no temporal-filter activations (model without "
                          "temporal filters)")
    n_classes = len(probes.classes)
    out = np.full((probes.activations.shape[1], n_classes), np.nan)
    for c in range(n_classes):
        kind_idx, bpm_idx = np.nonzero(probes.predicted == c)
        if len(kind_idx):
            out[:, c] = probes.activations[kind_idx, :, bpm_idx].mean(axis=0)
    return out


def dataset_class_activations(checkpoint, data_dir, *, max_tracks_per_class: int = 10,
                              batch_size: int = 256) -> np.ndarray:
    """Mean pooled activation of each temporal filter over a data set's patches, per class.

    Parameters
    ----------
    checkpoint : path or Checkpoint
    data_dir : path
        Any layout :func:`tfcnn.datasets.load_dataset` reads, with the checkpoint's classes.
    max_tracks_per_class : int, keyword-only
        First tracks of each class used (keeps this to seconds).

    Returns
    -------
    np.ndarray, shape (n_filters, n_classes); NaN for classes without tracks.
    """
    from tfcnn.audio import load_audio
    from tfcnn.datasets import load_dataset
    from tfcnn.features import log_mel, to_patches
    from tfcnn.models import temporal_filters

    ckpt = _as_checkpoint(checkpoint)
    filters = temporal_filters(ckpt.model)
    if filters is None:
        raise ConfigError(f"a {ckpt.arch} model has no temporal filters")
    dataset = load_dataset(data_dir)
    missing = sorted(set(dataset.classes) - set(ckpt.classes))
    if missing:
        raise DatasetError(f"data set {dataset.root} has classes the checkpoint does not know: "
                           f"{', '.join(missing)}")
    front_end = getattr(ckpt, "front_end", None) or FRONT_END
    model = ckpt.model.eval()
    out = np.full((filters.shape[0], len(ckpt.classes)), np.nan)
    for dance, group in dataset.tracks.groupby("dance"):
        patches = []
        for path in group["path"].head(int(max_tracks_per_class)):
            y = load_audio(path, sample_rate=front_end.sample_rate)
            spec = log_mel(y, front_end.sample_rate, front_end=front_end)
            patches.append(to_patches(spec, patch_frames=front_end.patch_frames))
        x = np.concatenate(patches)
        if not len(x):
            continue
        x = torch.from_numpy(((x[:, None] - ckpt.norm_mean) / ckpt.norm_std).astype(np.float32))
        with torch.no_grad():
            means = [_forward_with_time_branch(model, x[s:s + batch_size], filters.shape[0])[1]
                     .mean(dim=2) for s in range(0, len(x), batch_size)]
        out[:, list(ckpt.classes).index(dance)] = torch.cat(means).mean(dim=0).numpy()
    return out


# --------------------------------------------------------------------------------------------
# class tempi
# --------------------------------------------------------------------------------------------
def class_tempi(source="ballroom") -> pd.DataFrame:
    """Per-track tempi of each class: columns ``dance``, ``bpm``.

    Parameters
    ----------
    source : "ballroom", a Dataset or a data-set folder
        ``"ballroom"``: the shipped Ballroom track table (real annotations). A Dataset or
        folder: its tracks' ``bpm`` column (SynthBallroom: the exact tempo of every track).

    Raises
    ------
    DatasetError
        The data set has no tempo annotations.
    """
    if isinstance(source, str) and source == "ballroom":
        from tfcnn.datasets import ballroom_track_table

        table = ballroom_track_table()
        name = "the shipped Ballroom table"
    else:
        if isinstance(source, (str, os.PathLike)):
            from tfcnn.datasets import load_dataset

            source = load_dataset(source)
        table = source.tracks
        name = str(source.root)
    table = table.loc[table["bpm"].notna(), ["dance", "bpm"]].reset_index(drop=True)
    if table.empty:
        raise DatasetError(f"{name} has no tempo annotations (bpm column empty)")
    return table


def tempi_for(data_dir=None) -> tuple[pd.DataFrame, str, str | None]:
    """Class tempi to study against: a data set's own annotations, else real Ballroom's.

    Parameters
    ----------
    data_dir : path or None
        A data set folder (SynthBallroom: exact tempi; Ballroom: the annotations); None for
        the shipped Ballroom table.

    Returns
    -------
    tempi : DataFrame (``dance``, ``bpm``)
    name : str
        ``"data-set"`` or ``"Ballroom"``, for the verdict.
    note : str or None
        Why the data set's tempi could not be used (the Ballroom table is used instead).
    """
    if data_dir is not None:
        try:
            return class_tempi(data_dir), "data-set", None
        except DatasetError as exc:
            return class_tempi("ballroom"), "Ballroom", f"{exc}; using the real Ballroom tempi."
    return class_tempi("ballroom"), "Ballroom", None


def class_tempo_ranges(tempi: pd.DataFrame, *, classes: Sequence[str] | None = None,
                       quantiles: Sequence[float] = TEMPO_RANGE_QUANTILES) -> pd.DataFrame:
    """Each class's tempo range: index ``dance``; columns ``low``, ``median``, ``high``, ``n``.

    ``low``/``high`` are the ``quantiles`` (default 25 % / 75 %) of the class's track BPMs,
    also stored in ``attrs["quantiles"]``. Classes without tracks are left out.
    """
    classes = list(classes) if classes is not None else list(dict.fromkeys(tempi["dance"]))
    rows = []
    for dance in classes:
        bpm = tempi.loc[tempi["dance"] == dance, "bpm"].to_numpy(float)
        if len(bpm):
            lo, hi = np.quantile(bpm, list(quantiles))
            rows.append({"dance": dance, "low": float(lo), "median": float(np.median(bpm)),
                         "high": float(hi), "n": int(len(bpm))})
    out = pd.DataFrame(rows, columns=["dance", "low", "median", "high", "n"]).set_index("dance")
    out.attrs["quantiles"] = tuple(float(q) for q in quantiles)
    return out


def classes_at(bpm: float, ranges: pd.DataFrame) -> list[str]:
    """Classes whose tempo range holds ``bpm``."""
    return [d for d, r in ranges.iterrows() if r["low"] <= bpm <= r["high"]]


def _quantile_label(ranges: pd.DataFrame) -> str:
    lo, hi = ranges.attrs.get("quantiles", TEMPO_RANGE_QUANTILES)
    return f"{100 * lo:.0f}-{100 * hi:.0f} % of its tracks"


def range_coverage(ranges: pd.DataFrame, *, bpm_range: Sequence[float] = BALLROOM_BPM_RANGE,
                   octaves: bool = False) -> float:
    """Fraction of the tempi in ``bpm_range`` that fall in some class's range.

    The chance level of "a filter's tempo matches a class": a filter peaking at a random
    tempo would match this often. With ``octaves``, half and double tempo also count.
    """
    grid = np.arange(float(bpm_range[0]), float(bpm_range[1]) + 1e-9, 0.5)
    factors = (1.0, 0.5, 2.0) if octaves else (1.0,)
    hit = np.zeros(len(grid), dtype=bool)
    for _, r in ranges.iterrows():
        for f in factors:
            hit |= (grid * f >= r["low"]) & (grid * f <= r["high"])
    return float(hit.mean())


def tempo_class_agreement(probes: Probes, ranges: pd.DataFrame) -> dict:
    """How often the class predicted for a probe has the probe's tempo in its real range.

    Returns
    -------
    dict
        ``agreement`` (fraction of probes), ``chance`` (expected fraction for a random class),
        ``per_kind`` {kind: fraction}.
    """
    per_kind, chance = {}, []
    for k, kind in enumerate(probes.kinds):
        hits = [probes.classes[int(c)] in classes_at(b, ranges)
                for b, c in zip(probes.bpms, probes.predicted[k])]
        per_kind[kind] = float(np.mean(hits))
    for b in probes.bpms:
        chance.append(len(classes_at(b, ranges)) / max(len(probes.classes), 1))
    return {"agreement": float(np.mean(list(per_kind.values()))),
            "chance": float(np.mean(chance)), "per_kind": per_kind}


# --------------------------------------------------------------------------------------------
# red-noise (smoothness-matched) null
# --------------------------------------------------------------------------------------------
def lag1_correlation(filters: np.ndarray) -> np.ndarray:
    """Lag-1 autocorrelation of each mean-free filter, (n_filters,): 0 white, → 1 smooth."""
    x = _as_filters(filters)
    x = x - x.mean(axis=1, keepdims=True)
    den = np.maximum(np.sum(x * x, axis=1), np.finfo(float).tiny)
    return np.sum(x[:, :-1] * x[:, 1:], axis=1) / den


@functools.lru_cache(maxsize=256)
def _red_noise_threshold(phi: float, width: int, frame_rate: float, lo: float, hi: float,
                         quantile: float) -> float:
    """``quantile`` of the strengths of stationary AR(1) filters ``x_t = φ x_{t-1} + e_t``."""
    rng = np.random.default_rng(int(round(phi * 1000)) + 7 * width)
    x = np.empty((N_RED_NOISE, width))
    x[:, 0] = rng.standard_normal(N_RED_NOISE) / np.sqrt(1.0 - phi * phi)  # stationary start
    for t in range(1, width):
        x[:, t] = phi * x[:, t - 1] + rng.standard_normal(N_RED_NOISE)
    tempi = filter_tempi(x, frame_rate=frame_rate, bpm_range=(lo, hi))
    return float(np.quantile([t.strength for t in tempi], quantile))


def red_noise_thresholds(filters: np.ndarray, *, frame_rate: float = DEFAULT_FRAME_RATE_HZ,
                         bpm_range: Sequence[float] = BALLROOM_BPM_RANGE,
                         quantile: float = SIGNIFICANCE_QUANTILE) -> np.ndarray:
    """Per filter: the strength that red noise as smooth as the filter exceeds 5 % of the time.

    Each filter's lag-1 correlation φ (clipped to [0, 0.95], rounded to a 0.05 grid) defines
    an AR(1) null; :data:`N_RED_NOISE` such filters give the ``quantile`` of strength. A filter
    above it holds a period that its smoothness does not explain.

    Returns
    -------
    np.ndarray, shape (n_filters,)
    """
    filters = _as_filters(filters)
    lo, hi, frame_rate = _check_range(bpm_range, frame_rate)
    phis = np.round(np.clip(lag1_correlation(filters), 0.0, AR1_MAX) / AR1_STEP) * AR1_STEP
    return np.array([_red_noise_threshold(round(float(p), 4), filters.shape[1], frame_rate,
                                          lo, hi, float(quantile)) for p in phis])


# --------------------------------------------------------------------------------------------
# the per-filter table, the verdict, the whole study
# --------------------------------------------------------------------------------------------
TABLE_COLUMNS: tuple[str, ...] = (
    "filter", "bpm", "peak_bpm", "strength", "p_value", "significant", "smoothness",
    "red_threshold", "beyond_smooth", "candidates", "most_active", "activation",
)


def filter_table(checkpoint, *, activations=None, baseline: RandomBaseline | None = None,
                 bpm_range: Sequence[float] = BALLROOM_BPM_RANGE) -> pd.DataFrame:
    """One row per temporal filter of a checkpoint: its tempo and whether it beats chance.

    Parameters
    ----------
    checkpoint : path or Checkpoint
        A model with 1×n temporal filters (``time``, ``timefreq``, ``timefreq-init``).
    activations : Probes or np.ndarray (n_filters, n_classes), optional, keyword-only
        Mean pooled activation per class (from :func:`probe_class_activations`,
        :func:`dataset_class_activations`, or a :class:`Probes` to derive it from); fills
        ``most_active``. Without it that column is None.
    baseline : RandomBaseline, optional, keyword-only
        Default: :func:`random_baseline` for the checkpoint's architecture and parameters.
    bpm_range : (float, float), keyword-only

    Returns
    -------
    pandas.DataFrame, shape (n_filters, 12)
        ``filter`` (int), ``bpm`` (float, NaN when not periodic beyond white noise),
        ``peak_bpm``, ``strength`` (0..1), ``p_value`` (vs the random baseline),
        ``significant`` (strength above the baseline's 95th percentile), ``smoothness``
        (lag-1 correlation), ``red_threshold`` (95th percentile of equally smooth AR(1)
        noise), ``beyond_smooth`` (significant against both nulls), ``candidates``
        (list of [bpm, strength], octave relatives included), ``most_active`` (class name or
        None), ``activation`` (that class's mean activation, NaN without activations).

    Raises
    ------
    ConfigError
        The model has no temporal filters, or ``activations`` has the wrong shape.
    """
    from tfcnn.models import temporal_filters

    ckpt = _as_checkpoint(checkpoint)
    filters = temporal_filters(ckpt.model)
    if filters is None:
        raise ConfigError(f"a {ckpt.arch!r} model has no 1×n temporal filters to analyse "
                          "(only time, timefreq and timefreq-init have them)")
    frame_rate = _frame_rate(ckpt)
    tempi = filter_tempi(filters, frame_rate=frame_rate, bpm_range=bpm_range)
    if baseline is None:
        baseline = random_baseline(ckpt.arch, ckpt.arch_params, n_classes=len(ckpt.classes),
                                   frame_rate=frame_rate, bpm_range=bpm_range)
    strengths = np.array([t.strength for t in tempi])
    if isinstance(activations, Probes):
        activations = probe_class_activations(activations)
    if activations is not None:
        activations = np.asarray(activations, dtype=float)
        if activations.shape != (len(filters), len(ckpt.classes)):
            raise ConfigError(f"activations must have shape (n_filters, n_classes) = "
                              f"{(len(filters), len(ckpt.classes))}, got {activations.shape}")
    smooth = lag1_correlation(filters)
    red = red_noise_thresholds(filters, frame_rate=frame_rate, bpm_range=bpm_range,
                               quantile=baseline.quantile)
    rows = []
    for i, (t, p) in enumerate(zip(tempi, baseline.p_values(strengths))):
        most, act = None, float("nan")
        if activations is not None and np.isfinite(activations[i]).any():
            c = int(np.nanargmax(activations[i]))
            most, act = ckpt.classes[c], float(activations[i, c])
        rows.append({
            "filter": i,
            "bpm": float("nan") if t.bpm is None else t.bpm,
            "peak_bpm": float("nan") if t.peak_bpm is None else t.peak_bpm,
            "strength": t.strength,
            "p_value": float(p),
            "significant": bool(t.strength > baseline.threshold),
            "smoothness": float(smooth[i]),
            "red_threshold": float(red[i]),
            "beyond_smooth": bool(t.strength > max(red[i], baseline.threshold)),
            "candidates": [[round(b, 2), round(s, 3)] for b, s in t.candidates],
            "most_active": most,
            "activation": act,
        })
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def _tempo_list(bpms: Sequence[float]) -> str:
    values = sorted(round(float(b)) for b in bpms)
    return ", ".join(str(v) for v in values)


def verdict(table: pd.DataFrame, baseline: RandomBaseline, *, probes: Probes | None = None,
            ranges: pd.DataFrame | None = None, ranges_name: str = "Ballroom",
            bpm_range: Sequence[float] = BALLROOM_BPM_RANGE) -> str:
    """A short written verdict computed from the numbers of :func:`filter_table`.

    Parameters
    ----------
    table : DataFrame from :func:`filter_table`.
    baseline : the random baseline the table was computed against.
    probes : Probes, optional, keyword-only
        Adds the tempo → class agreement with ``ranges``.
    ranges : DataFrame from :func:`class_tempo_ranges`, optional, keyword-only
        Class tempo ranges; tuned tempi are matched against them (also at half/double tempo).
    ranges_name : str, keyword-only
        Where the ranges come from, for the text.
    bpm_range : (float, float), keyword-only
        The tempi the table was computed over (peaks at its edges are pointed out).

    The answer rests on the stricter of the two nulls when the table has it (``beyond_smooth``:
    above both the untrained filters and equally smooth red noise); the count against the
    untrained filters alone is reported too.

    Returns
    -------
    str
        A few sentences, the last one the answer.
    """
    from scipy.stats import binom

    n = len(table)
    alpha = 1.0 - baseline.quantile
    tuned = table[table["significant"]]
    k = len(tuned)
    p_binom = float(binom.sf(k - 1, n, alpha)) if n else 1.0
    lines = [
        f"{k} of {n} temporal filters are significantly periodic: strength above "
        f"{baseline.threshold:.2f}, the {100 * baseline.quantile:.0f}th percentile of "
        f"{len(baseline.strengths)} untrained {baseline.arch} filters "
        f"(chance alone flags about {alpha * n:.1f}; binomial p = {p_binom:.2g})."
    ]
    # strongly periodic: stronger than every untrained filter (chance: n / (N + 1) ≈ 0.02)
    n_strong = int(np.sum(table["strength"] > baseline.strengths.max()))
    if n_strong:
        lines.append(f"{n_strong} of them are stronger than all {len(baseline.strengths)} "
                     "untrained filters.")
    # the stricter null: red noise as smooth as each filter (untrained filters are white)
    strict = "beyond_smooth" in table
    if strict:
        final = table[table["beyond_smooth"]]
        k_final = len(final)
        p_final = float(binom.sf(k_final - 1, n, alpha)) if n else 1.0
        lines.append(
            f"But trained filters are smoother than untrained ones (mean lag-1 correlation "
            f"{table['smoothness'].mean():.2f} vs "
            f"{np.mean(lag1_correlation(baseline.example)):.2f}), "
            f"and smoothness alone raises the score; against red noise (AR(1)) as smooth as "
            f"each filter, {k_final} of {n} stay periodic (chance about {alpha * n:.1f}; "
            f"binomial p = {p_final:.2g}).")
        which = "These"
    else:
        final, k_final, p_final, which = tuned, k, p_binom, "Their"
    if k_final:
        lines.append(f"{which} filters' dominant tempi: {_tempo_list(final['peak_bpm'])} BPM "
                     f"(median {np.median(final['peak_bpm']):.0f}; untrained filters peak at "
                     f"median {np.nanmedian(baseline.peak_bpms):.0f}).")
        lo, hi = (float(b) for b in bpm_range)
        n_edge = int(np.sum((final["peak_bpm"] <= lo + 1) | (final["peak_bpm"] >= hi - 1)))
        if n_edge:
            lines.append(f"{n_edge} of them {'peaks' if n_edge == 1 else 'peak'} at an edge of "
                         f"{lo:.0f}-{hi:.0f} BPM: the period may lie outside the range (e.g. "
                         "eighth notes above 224 BPM).")
    match_p = 1.0                       # binomial p of the direct class matches
    if k_final and ranges is not None and len(ranges):
        direct, octave, n_direct, n_octave = {}, {}, 0, 0
        for bpm in final["peak_bpm"]:
            hits = classes_at(bpm, ranges)
            alt = sorted({d for f in (0.5, 2.0) for d in classes_at(bpm * f, ranges)})
            n_direct += bool(hits)
            n_octave += bool(alt) and not hits
            for d in hits:
                direct[d] = direct.get(d, 0) + 1
            for d in ([] if hits else alt):
                octave[d] = octave.get(d, 0) + 1
        fmt = lambda counts: ", ".join(f"{d} ({c})" for d, c in  # noqa: E731
                                       sorted(counts.items(), key=lambda kv: -kv[1]))
        # the ranges cover part of 60-224 BPM (with octaves most of it): give the chance
        chance = range_coverage(ranges)
        match_p = float(binom.sf(n_direct - 1, k_final, chance)) if n_direct else 1.0
        text = (f"{n_direct} of these {k_final} peak inside a {ranges_name} class tempo range "
                f"({_quantile_label(ranges)})")
        text += f": {fmt(direct)}" if direct else ""
        text += (f"; by chance {100 * chance:.0f} % would (the share of 60-224 BPM inside "
                 f"some range; binomial p = {match_p:.2g}).")
        if n_octave:
            text += (f" {n_octave} more {'matches' if n_octave == 1 else 'match'} at half or "
                     f"double tempo: {fmt(octave)}.")
        lines.append(text)
    if probes is not None and ranges is not None and len(ranges):
        agree = tempo_class_agreement(probes, ranges)
        lines.append(
            f"On click and drum probes (60-224 BPM), the predicted class has the probe's tempo in "
            f"its {ranges_name} range for {100 * agree['agreement']:.0f} % of tempi "
            f"(a random class: {100 * agree['chance']:.0f} %)."
        )
    fit = ("." if ranges is None or not len(ranges) else
           ", at tempi of the classes." if match_p < 0.05 else
           ", though their tempi match the classes' ranges no better than chance.")
    if p_final < 0.01 and k_final >= 2:
        answer = (f"Answer: yes — {k_final} filters hold a beat period beyond chance"
                  + (" and beyond their smoothness" if strict else "") + fit)
    elif p_binom < 0.01 and k >= 2:
        answer = ("Answer: not clearly — the filters are more periodic than untrained ones, "
                  "but no more than equally smooth noise.")
    elif p_binom < 0.05 or p_final < 0.05:
        answer = "Answer: weak evidence — only slightly more periodic filters than chance."
    else:
        answer = ("Answer: no evidence — the filters are not more periodic than untrained "
                  "ones; what they learn is not a beat period.")
    lines.append(answer)
    return " ".join(lines)


@dataclass(frozen=True)
class TempoStudy:
    """Everything the Filters page and the CLI show for one checkpoint.

    Attributes
    ----------
    arch : str
    classes : tuple of str
    frame_rate : float
        Frames per second of the model's input.
    filters : dict
        From :func:`checkpoint_filters` (``temporal``, ``frequency``, ``blackbox``).
    table : DataFrame or None
        :func:`filter_table` (None without temporal filters).
    baseline : RandomBaseline or None
    baseline_table : DataFrame or None
        The seed-0 untrained model's filters analysed the same way (for side by side).
    heatmap : (bpms (K,), scores (n_filters, K)) or None
    probes : Probes or None
    ranges : DataFrame
        Class tempo ranges used for matching (:func:`class_tempo_ranges`).
    tempi : DataFrame
        Per-track class tempi the ranges come from.
    ranges_name : str
    verdict : str
    """

    arch: str
    classes: tuple[str, ...]
    frame_rate: float
    filters: dict
    table: pd.DataFrame | None
    baseline: RandomBaseline | None
    baseline_table: pd.DataFrame | None
    heatmap: tuple[np.ndarray, np.ndarray] | None
    probes: Probes | None
    ranges: pd.DataFrame
    tempi: pd.DataFrame
    ranges_name: str
    verdict: str
    notes: tuple[str, ...] = field(default=())


def _baseline_table(baseline: RandomBaseline, frame_rate: float,
                    bpm_range: Sequence[float]) -> pd.DataFrame:
    tempi = filter_tempi(baseline.example, frame_rate=frame_rate, bpm_range=bpm_range)
    strengths = np.array([t.strength for t in tempi])
    return pd.DataFrame({
        "filter": np.arange(len(tempi)),
        "bpm": [np.nan if t.bpm is None else t.bpm for t in tempi],
        "peak_bpm": [np.nan if t.peak_bpm is None else t.peak_bpm for t in tempi],
        "strength": strengths,
        "p_value": baseline.p_values(strengths),
        "significant": strengths > baseline.threshold,
    })


def tempo_study(checkpoint, *, tempi: pd.DataFrame | None = None, ranges_name: str = "Ballroom",
                with_probes: bool = True, probe_bpms: Sequence[float] = PROBE_BPMS,
                probe_seconds: float = PROBE_SECONDS,
                n_baseline_models: int = N_BASELINE_MODELS,
                bpm_range: Sequence[float] = BALLROOM_BPM_RANGE) -> TempoStudy:
    """Run the whole tempo study on one checkpoint.

    Parameters
    ----------
    checkpoint : path or Checkpoint
    tempi : DataFrame (``dance``, ``bpm``), optional, keyword-only
        Class tempi to match against; default: the shipped real Ballroom table
        (:func:`class_tempi`). Pass ``class_tempi(synth_dir)`` for SynthBallroom's exact ones.
    ranges_name : str, keyword-only
        Name of that source in the verdict.
    with_probes : bool, keyword-only
        Run :func:`probe_sweep` (a few seconds on CPU) for tuning curves and the tempo map.
    probe_bpms, probe_seconds, n_baseline_models, bpm_range : keyword-only

    Returns
    -------
    TempoStudy
    """
    ckpt = _as_checkpoint(checkpoint)
    classes = tuple(ckpt.classes)
    frame_rate = _frame_rate(ckpt)
    filters = checkpoint_filters(ckpt)
    tempi = class_tempi("ballroom") if tempi is None else tempi
    ranges = class_tempo_ranges(tempi, classes=classes)
    probes = (probe_sweep(ckpt, bpms=probe_bpms, seconds=probe_seconds)
              if with_probes else None)
    notes: list[str] = []
    if filters["temporal"] is None:
        what = ("32×1 frequency filters" if filters["frequency"] is not None
                else "12×8 time-frequency filters" if filters["blackbox"] is not None
                else "no first-layer filters it can draw")
        notes.append(f"A {ckpt.arch} model has no 1×n temporal filters, so their tempo cannot "
                     f"be measured; it has {what} instead (drawn as images on the Filters "
                     "page).")
        text = notes[0]
        if probes is not None and len(ranges):
            agree = tempo_class_agreement(probes, ranges)
            text += (f" On click and drum probes, its predicted class has the probe's tempo in "
                     f"its {ranges_name} range for {100 * agree['agreement']:.0f} % of tempi "
                     f"(a random class: {100 * agree['chance']:.0f} %).")
        return TempoStudy(arch=ckpt.arch, classes=classes, frame_rate=frame_rate,
                          filters=filters, table=None, baseline=None, baseline_table=None,
                          heatmap=None, probes=probes, ranges=ranges, tempi=tempi,
                          ranges_name=ranges_name, verdict=text, notes=tuple(notes))
    baseline = random_baseline(ckpt.arch, ckpt.arch_params, n_classes=len(classes),
                               n_models=n_baseline_models, frame_rate=frame_rate,
                               bpm_range=bpm_range)
    table = filter_table(ckpt, activations=probes, baseline=baseline, bpm_range=bpm_range)
    heatmap = periodicity_map(filters["temporal"], frame_rate=frame_rate, bpm_range=bpm_range)
    text = verdict(table, baseline, probes=probes, ranges=ranges, ranges_name=ranges_name,
                   bpm_range=bpm_range)
    return TempoStudy(arch=ckpt.arch, classes=classes, frame_rate=frame_rate, filters=filters,
                      table=table, baseline=baseline,
                      baseline_table=_baseline_table(baseline, frame_rate, bpm_range),
                      heatmap=heatmap, probes=probes, ranges=ranges, tempi=tempi,
                      ranges_name=ranges_name, verdict=text, notes=tuple(notes))
