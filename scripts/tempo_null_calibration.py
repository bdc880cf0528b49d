"""Calibration and power of the tempo study's periodicity test (``python -m scripts.tempo_null_calibration``).

Simulates 60-frame filters whose truth is known and runs them through
:func:`tfcnn.interpret.smooth_null_pvalues`; prints the tables of docs/tempo-study.md:

1. false-positive rate at the 5 % level on smooth noise (AR(1), Gaussian-smoothed), with a
   95 % Clopper-Pearson interval;
2. power on planted periods (cosines and pulse trains holding a share of the filter's variance,
   in AR(1) noise with lag-1 correlation 0.6);
3. the false discovery rate over banks of 32 null filters with Benjamini-Hochberg at q = 0.05
   (under the complete null any discovery is a false one).

Fixed seeds: the numbers are reproducible. Takes a few minutes on one core.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.stats import beta

from tfcnn.interpret import benjamini_hochberg, smooth_null_pvalues
from tfcnn.interpret.periodicity import DEFAULT_FRAME_RATE_HZ

WIDTH = 60
ALPHA = 0.05


def ar1(phi, n, rng):
    """Stationary AR(1) rows, (n, WIDTH); ``phi`` a number or an array (n,)."""
    phi = np.broadcast_to(np.asarray(phi, dtype=float), (n,))
    x = np.empty((n, WIDTH))
    x[:, 0] = rng.standard_normal(n) / np.sqrt(1 - phi ** 2)
    for t in range(1, WIDTH):
        x[:, t] = phi * x[:, t - 1] + rng.standard_normal(n)
    return x


def gauss(sigma, n, rng):
    pad = int(6 * sigma)
    return gaussian_filter1d(rng.standard_normal((n, WIDTH + 2 * pad)), sigma,
                             axis=1)[:, pad:pad + WIDTH]


def clopper_pearson(k, n, level=0.95):
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else beta.ppf(a, k, n - k + 1)
    hi = 1.0 if k == n else beta.ppf(1 - a, k + 1, n - k)
    return lo, hi


def lag1(x):
    x = x - x.mean(axis=1, keepdims=True)
    return float(np.mean(np.sum(x[:, :-1] * x[:, 1:], 1) / np.sum(x * x, 1)))


def signal(kind, bpm, n, rng):
    t = np.arange(WIDTH)
    period = 60 * DEFAULT_FRAME_RATE_HZ / bpm
    if kind == "cosine":
        s = np.cos(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi, (n, 1)))
    else:  # pulses: Gaussian bumps (sigma 1.5 frames) one beat apart, random offset
        offsets = rng.uniform(0, period, n)
        s = np.stack([sum(np.exp(-0.5 * ((t - c) / 1.5) ** 2) for c in np.arange(o, WIDTH, period))
                      for o in offsets])
    return (s - s.mean(1, keepdims=True)) / s.std(1, keepdims=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="filters per condition")
    parser.add_argument("--surrogates", type=int, default=199)
    parser.add_argument("--banks", type=int, default=40)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(20161)

    print(f"1. false positives at p <= {ALPHA} ({args.n} filters each, "
          f"{args.surrogates} surrogates)")
    print(f"{'noise':<16} {'lag-1':>6} {'rate':>6}  95 % interval")
    conditions = ([("white", lambda n: rng.standard_normal((n, WIDTH)))]
                  + [(f"AR(1) {p}", lambda n, p=p: ar1(p, n, rng))
                     for p in (0.3, 0.6, 0.8, 0.9, 0.95)]
                  + [(f"Gauss sigma={s}", lambda n, s=s: gauss(s, n, rng)) for s in (1, 2, 3, 5, 8)])
    for name, make in conditions:
        x = make(args.n)
        p = smooth_null_pvalues(x, n_surrogates=args.surrogates, seed=int(rng.integers(1 << 31)))
        k = int(np.sum(p <= ALPHA))
        lo, hi = clopper_pearson(k, args.n)
        print(f"{name:<16} {lag1(x):>6.2f} {k / args.n:>6.3f}  {lo:.3f}-{hi:.3f}", flush=True)

    print(f"\n2. power at p <= {ALPHA} (periodic share of variance, AR(1) 0.6 noise, "
          f"{args.n // 2} filters each)")
    bpms = (70, 90, 120, 160, 200)
    print(f"{'signal':<8} {'share':>5}  " + " ".join(f"{b:>5}" for b in bpms))
    for kind in ("cosine", "pulses"):
        for share in (0.3, 0.5, 0.7):
            row = []
            for bpm in bpms:
                n = args.n // 2
                noise = ar1(0.6, n, rng)
                noise = (noise - noise.mean(1, keepdims=True)) / noise.std(1, keepdims=True)
                x = np.sqrt(share) * signal(kind, bpm, n, rng) + np.sqrt(1 - share) * noise
                p = smooth_null_pvalues(x, n_surrogates=args.surrogates,
                                        seed=int(rng.integers(1 << 31)))
                row.append(np.mean(p <= ALPHA))
            print(f"{kind:<8} {share:>5.1f}  " + " ".join(f"{r:>5.2f}" for r in row))

    print(f"\n3. banks of 32 null filters (AR(1), lag-1 uniform in 0.15-0.8, like trained "
          f"filters), BH at q = {ALPHA}, 999 surrogates")
    any_discovery = 0
    for _ in range(args.banks):
        x = ar1(rng.uniform(0.15, 0.8, 32), 32, rng)
        q = benjamini_hochberg(smooth_null_pvalues(x, seed=int(rng.integers(1 << 31))))
        any_discovery += bool(np.any(q <= ALPHA))
    lo, hi = clopper_pearson(any_discovery, args.banks)
    print(f"banks with a false discovery: {any_discovery} of {args.banks} "
          f"({any_discovery / args.banks:.3f}, 95 % interval {lo:.3f}-{hi:.3f})")


if __name__ == "__main__":
    main()
