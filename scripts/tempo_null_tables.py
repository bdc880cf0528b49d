"""Null tables of the tempo likelihood-ratio test (``python -m scripts.tempo_null_tables``).

Simulates 1×60 null filters of three smooth-noise families with fixed seeds, runs them
through :func:`tfcnn.interpret.periodic_lrt.lr_statistics` and writes the tail quantiles of
each sub-family to ``tfcnn/data/tempo_null.json``, which
:func:`tfcnn.interpret.periodic_lrt.periodic_test` reads:

* ``ar``: stationary AR(1) noise, φ uniform in 0-0.98 (one φ per filter);
* ``ar2``: stationary AR(2) noise with two real positive roots (the larger uniform in
  0.5-0.98, the smaller a uniform share of it, at least 0.2);
* ``gauss``: white noise smoothed by a Gaussian of σ log-uniform in 0.5-8 frames.

Each family is split by its parameter into sub-families (:data:`AR_SPLITS`,
:data:`AR2_SPLITS`, :data:`GAUSS_SPLITS`); the test's p-value is the largest over the
sub-families, so a narrow range of noise (AR φ ≈ 0.6) is not averaged away by its
neighbours.

Takes about 5 minutes on one core (``--n`` filters per family).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tfcnn.atomic import write_json_atomic
from tfcnn.interpret.periodic_lrt import TABLE_FILE, build_tables
from tfcnn.interpret.planted import ar1_noise, ar2_noise, gauss_noise
from tfcnn.interpret.periodicity import DEFAULT_FRAME_RATE_HZ

SEED = 20161205
OUT = Path(__file__).resolve().parents[1] / "tfcnn" / "data" / TABLE_FILE


AR_SPLITS = (0.0, 0.3, 0.5, 0.65, 0.8, 0.9, 0.95, 0.98)
GAUSS_SPLITS = (0.5, 1.0, 1.5, 2.5, 4.0, 8.0)
#: AR(2) with two real positive roots: the larger root uniform in 0.5-0.98 (split here), the
#: smaller a uniform share of it, at least 0.2.
AR2_SPLITS = (0.5, 0.8, 0.9, 0.98)
AR2_SECOND_ROOT = (0.2,)


def null_samples(n: int, seed: int = SEED) -> dict[str, np.ndarray]:
    """Null filters from a fixed seed, ``{sub-family: (m, 60)}``: ``n`` AR(1), ``n`` AR(2)
    (real positive roots) and ``n`` Gaussian-smoothed filters split by parameter (e.g.
    ``"ar 0.5-0.8"``, ``"ar2 0.8-0.9"``, ``"gauss 1-1.5"``)."""
    rng = np.random.default_rng(seed)
    phi = rng.uniform(AR_SPLITS[0], AR_SPLITS[-1], n)
    ar = ar1_noise(phi, n, rng)
    sigma = np.exp(rng.uniform(np.log(GAUSS_SPLITS[0]), np.log(GAUSS_SPLITS[-1]), n))
    gauss = gauss_noise(sigma, n, rng)
    root_a = rng.uniform(AR2_SPLITS[0], AR2_SPLITS[-1], n)
    root_b = rng.uniform(AR2_SECOND_ROOT[0], 1.0, n) * root_a   # second root below the first
    root_b = np.maximum(root_b, AR2_SECOND_ROOT[0])
    ar2 = ar2_noise(root_a, root_b, n, rng)
    out = {}
    for name, x, value, splits in (("ar", ar, phi, AR_SPLITS),
                                   ("ar2", ar2, root_a, AR2_SPLITS),
                                   ("gauss", gauss, sigma, GAUSS_SPLITS)):
        for lo, hi in zip(splits[:-1], splits[1:]):
            out[f"{name} {lo:g}-{hi:g}"] = x[(value >= lo) & (value < hi + 1e-12)]
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30000, help="null filters per family")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    tables = build_tables(null_samples(args.n), seed=SEED, frame_rate=DEFAULT_FRAME_RATE_HZ)
    write_json_atomic(args.out, tables.to_json())
    print(f"wrote {args.out} ({args.n} filters per family, seed {SEED})")


if __name__ == "__main__":
    main()
