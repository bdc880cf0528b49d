"""tfcnn.interpret.smooth_null: the headline test holds its level on smooth noise and finds
planted periods; Benjamini-Hochberg as published.

The calibration test simulates filters whose truth is known (AR(1) and Gaussian-smoothed noise
of 60 frames, periodic filters buried in red noise) and runs them through the real test.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from scipy.stats import binom

from tfcnn.errors import ConfigError
from tfcnn.interpret import smooth_null
from tfcnn.interpret.smooth_null import (benjamini_hochberg, nonincreasing_fit,
                                         smooth_null_pvalues)

WIDTH = 60
FRAME_RATE = 44100 / 1024
N_FILTERS = 120        # per condition
N_SURROGATES = 99      # p-values in steps of 0.01: enough for a 5 % level
ALPHA = 0.05
CONDITIONS = ("ar 0.3", "ar 0.6", "ar 0.8", "ar 0.95", "gauss 1", "gauss 2", "gauss 3",
              "gauss 5")


def ar1(phi: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Stationary AR(1) sequences ``x_t = phi x_{t-1} + e_t``, (n, WIDTH)."""
    x = np.empty((n, WIDTH))
    x[:, 0] = rng.standard_normal(n) / np.sqrt(1 - phi * phi)
    for t in range(1, WIDTH):
        x[:, t] = phi * x[:, t - 1] + rng.standard_normal(n)
    return x


def gauss_smoothed(sigma: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """White noise smoothed by a Gaussian of ``sigma`` frames, (n, WIDTH), no edge effects."""
    pad = int(6 * sigma)
    return gaussian_filter1d(rng.standard_normal((n, WIDTH + 2 * pad)), sigma,
                             axis=1)[:, pad:pad + WIDTH]


def null_filters(condition: str, rng: np.random.Generator) -> np.ndarray:
    kind, value = condition.split()
    return (ar1 if kind == "ar" else gauss_smoothed)(float(value), N_FILTERS, rng)


def test_false_positive_rate_on_smooth_noise_is_at_most_five_percent():
    # one-sided: the count of p <= 5 % may not exceed what a calibrated test gives with
    # probability 1 - 0.05/8 (Bonferroni over the eight conditions)
    limit = binom.ppf(1 - 0.05 / len(CONDITIONS), N_FILTERS, ALPHA)
    rng = np.random.default_rng(2016)
    rates = {}
    for condition in CONDITIONS:
        p = smooth_null_pvalues(null_filters(condition, rng), n_surrogates=N_SURROGATES,
                                seed=int(rng.integers(1 << 31)))
        rates[condition] = int(np.sum(p <= ALPHA))
    assert all(count <= limit for count in rates.values()), (rates, limit)
    # and not absurdly conservative overall: the pooled rate is above 1 %
    assert sum(rates.values()) / (N_FILTERS * len(CONDITIONS)) > 0.01, rates


def planted(bpm: float, fraction: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Cosines at ``bpm`` (random phase) holding ``fraction`` of the variance, in AR(0.6)."""
    t = np.arange(WIDTH)
    s = np.cos(2 * np.pi * t * bpm / (60 * FRAME_RATE) + rng.uniform(0, 2 * np.pi, (n, 1)))
    noise = ar1(0.6, n, rng)
    s = (s - s.mean(1, keepdims=True)) / s.std(1, keepdims=True)
    noise = (noise - noise.mean(1, keepdims=True)) / noise.std(1, keepdims=True)
    return np.sqrt(fraction) * s + np.sqrt(1 - fraction) * noise


@pytest.mark.parametrize("bpm, min_power", [(160, 0.5), (200, 0.7)])
def test_planted_periods_are_found(bpm, min_power):
    # a period holding 70 % of a filter's variance (the strongest trained filters' spectral
    # share at their peak is of this order); power measured on 60 filters
    rng = np.random.default_rng(int(bpm))
    p = smooth_null_pvalues(planted(bpm, 0.7, 60, rng), n_surrogates=N_SURROGATES)
    assert np.mean(p <= ALPHA) >= min_power


def test_the_test_covers_periods_that_repeat_in_the_filter():
    # 1.6 cycles in 60 frames at 43.07 frames/s: 69 BPM; below, a period is one slow wave
    lo, hi = smooth_null.tested_range(WIDTH, FRAME_RATE, (60, 224))
    assert lo == pytest.approx(1.6 * 60 * FRAME_RATE / WIDTH) and hi == 224


def test_a_clean_period_is_found_and_constant_filters_are_not():
    t = np.arange(WIDTH)
    cos = np.cos(2 * np.pi * t * 180 / (60 * FRAME_RATE))
    p = smooth_null_pvalues(np.stack([cos, np.full(WIDTH, 0.3)]), n_surrogates=199)
    assert p[0] == pytest.approx(1 / 200) and p[1] == 1.0
    with pytest.raises(ConfigError, match="n_surrogates"):
        smooth_null_pvalues(cos, n_surrogates=0)


def test_nonincreasing_fit_is_the_pool_adjacent_violators_solution():
    power = np.array([[5.0, 1.0, 3.0, 2.0, 4.0, 0.5]])
    fit = nonincreasing_fit(power)[0]
    # PAVA by hand: 5 | (1, 3) → 2 | (2, 2, 4) → pool → (1+3+2+4)/4 = 2.5 | 0.5
    np.testing.assert_allclose(fit, [5.0, 2.5, 2.5, 2.5, 2.5, 0.5])
    assert np.all(np.diff(fit) <= 1e-12)
    rng = np.random.default_rng(0)
    rows = rng.exponential(size=(50, 30))
    fits = nonincreasing_fit(rows)
    assert np.all(np.diff(fits, axis=1) <= 1e-12)
    np.testing.assert_allclose(fits.sum(axis=1), rows.sum(axis=1))   # PAVA keeps the total


def test_surrogates_follow_the_given_spectrum():
    rng = np.random.default_rng(1)
    spectrum = np.linspace(3.0, 0.1, WIDTH // 2)[None, :]
    sur = smooth_null.smooth_surrogates(spectrum, 4000, width=WIDTH, rng=rng)[0]
    mean_periodogram = smooth_null.periodogram(sur).mean(axis=0)
    np.testing.assert_allclose(mean_periodogram / mean_periodogram.sum(),
                               spectrum[0] / spectrum.sum(), rtol=0.1)


def test_benjamini_hochberg_matches_the_textbook_example():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    q = benjamini_hochberg(p)
    # sorted 0.005, 0.01, 0.03, 0.04, 0.5 → ×5/rank: 0.025, 0.025, 0.05, 0.05, 0.5
    np.testing.assert_allclose(q, [0.025, 0.05, 0.05, 0.025, 0.5])
    assert np.all(q >= p)
    with pytest.raises(ConfigError, match="p-values"):
        benjamini_hochberg([0.2, 1.5])
