"""Filters whose truth is known: smooth noises and planted periods (for size and power).

The tempo test's tables, its power table and its tests all draw from here, so the filters a
claim was checked on are the ones described in ``docs/tempo-study.md``.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from tfcnn.errors import ConfigError
from tfcnn.interpret.periodicity import DEFAULT_FRAME_RATE_HZ

#: Width of the paper's temporal filters (frames).
WIDTH: int = 60
#: Width (frames) of each onset bump of a two-pulse filter.
PULSE_SIGMA: float = 1.5
PATTERNS: tuple[str, ...] = ("cosine", "pulses")


def ar1_noise(phi, n: int, rng: np.random.Generator, *, width: int = WIDTH) -> np.ndarray:
    """Stationary AR(1) sequences ``x_t = φ x_{t-1} + e_t``; ``phi`` a number or (n,): (n, width)."""
    phi = np.broadcast_to(np.asarray(phi, dtype=float), (n,))
    if np.any(np.abs(phi) >= 1):
        raise ConfigError(f"AR(1) phi must be in (-1, 1), got {phi.max()!r}")
    x = np.empty((n, width))
    x[:, 0] = rng.standard_normal(n) / np.sqrt(1 - phi ** 2)
    for t in range(1, width):
        x[:, t] = phi * x[:, t - 1] + rng.standard_normal(n)
    return x


def ar2_noise(a, b, n: int, rng: np.random.Generator, *, width: int = WIDTH,
              burn_in: int = 200) -> np.ndarray:
    """AR(2) sequences with real roots ``a``, ``b`` (numbers or (n,), each in (-1, 1)):
    ``x_t = (a+b) x_{t-1} - ab x_{t-2} + e_t``, started ``burn_in`` steps early so the kept
    frames are stationary: (n, width). With positive roots the spectrum falls with frequency
    like ω⁻⁴ (smoother than AR(1))."""
    a = np.broadcast_to(np.asarray(a, dtype=float), (n,))
    b = np.broadcast_to(np.asarray(b, dtype=float), (n,))
    if np.any(np.abs(a) >= 1) or np.any(np.abs(b) >= 1):
        raise ConfigError(f"AR(2) roots must be in (-1, 1), got {a.max()!r}, {b.max()!r}")
    c1, c2 = a + b, -a * b
    x = np.zeros((n, burn_in + width))
    e = rng.standard_normal((n, burn_in + width))
    for t in range(burn_in + width):
        x[:, t] = e[:, t] + (c1 * x[:, t - 1] if t >= 1 else 0) + (c2 * x[:, t - 2] if t >= 2
                                                                    else 0)
    return x[:, burn_in:]


def gauss_noise(sigma, n: int, rng: np.random.Generator, *, width: int = WIDTH) -> np.ndarray:
    """White noise smoothed by a Gaussian of ``sigma`` frames (a number or (n,)), no edge
    effects: (n, width)."""
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (n,))
    rows = []
    for s in sigma:
        pad = int(6 * s) + 1
        rows.append(gaussian_filter1d(rng.standard_normal(width + 2 * pad), s)[pad:pad + width])
    return np.array(rows).reshape(n, width)


def standardised(x: np.ndarray) -> np.ndarray:
    """Rows with mean 0 and variance 1."""
    x = x - x.mean(axis=1, keepdims=True)
    return x / np.maximum(x.std(axis=1, keepdims=True), 1e-300)


def pattern_rows(pattern: str, bpm: float, n: int, rng: np.random.Generator, *,
                 width: int = WIDTH, frame_rate: float = DEFAULT_FRAME_RATE_HZ) -> np.ndarray:
    """Standardised periodic patterns at ``bpm``, random phase or position: (n, width).

    ``"cosine"``: one cosine; ``"pulses"``: two onset bumps (σ = :data:`PULSE_SIGMA` frames)
    one beat apart, both inside the window.
    """
    t = np.arange(width, dtype=float)
    period = 60.0 * frame_rate / float(bpm)
    if pattern == "cosine":
        rows = np.cos(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi, (n, 1)))
    elif pattern == "pulses":
        if period > width - 1:
            raise ConfigError(f"two pulses at {bpm} BPM do not fit {width} frames")
        c = rng.uniform(0, width - 1 - period, (n, 1))
        rows = (np.exp(-0.5 * ((t - c) / PULSE_SIGMA) ** 2)
                + np.exp(-0.5 * ((t - c - period) / PULSE_SIGMA) ** 2))
    else:
        raise ConfigError(f"unknown pattern {pattern!r}; valid: {', '.join(PATTERNS)}")
    return standardised(rows)


def planted_filters(pattern: str, bpm: float, share: float, n: int, rng: np.random.Generator,
                    *, noise_phi: float = 0.5, width: int = WIDTH,
                    frame_rate: float = DEFAULT_FRAME_RATE_HZ) -> np.ndarray:
    """Periodic patterns holding ``share`` of each filter's variance, the rest AR(1) noise.

    Returns
    -------
    np.ndarray, shape (n, width)
    """
    if not 0 <= share <= 1:
        raise ConfigError(f"share must be in [0, 1], got {share!r}")
    signal = pattern_rows(pattern, bpm, n, rng, width=width, frame_rate=frame_rate)
    noise = standardised(ar1_noise(noise_phi, n, rng, width=width))
    return np.sqrt(share) * signal + np.sqrt(1 - share) * noise
