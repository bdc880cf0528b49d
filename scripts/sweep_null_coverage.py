"""Coverage under the null of the pooled sweep interval: seeds × folds paired differences with
the corrected repeated k-fold t (:func:`tfcnn.evaluate.compare_accuracies` on the concatenated
fold accuracies, ``n_test / n_train = 1 / 8``), as the README's sweep table uses it.

Each simulated experiment mirrors the shipped sweep (`checkpoints/sweep-tempo-time.json`): 160
songs in 8 classes, 3 seeds, each drawing its own stratified 10 folds, two models with the
same population accuracy (about 40 %). Songs differ in difficulty (``tau``), the two models
disagree per song (``kappa``), each trained fold model shifts its accuracy (``fold_shift``)
and each seed shifts both (``seed_shift``); all on the probit scale. The script prints, per
setting, the share of 95 % intervals that contain 0 and the moments to compare with the real
sweep (fold sd, correlation of two trainings on the same folds, the seed-means variance ratio).

    python -m scripts.sweep_null_coverage 500
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import norm

from tfcnn.evaluate import compare_accuracies

N_CLASSES, PER_CLASS, K, SEEDS = 8, 20, 10, 3
#: (tau, kappa, fold_shift, seed_shift) settings, from homogeneous songs to a large seed effect.
SETTINGS: tuple[tuple[float, float, float, float], ...] = (
    (1.0, 1.0, 0.0, 0.0), (2.0, 1.5, 0.3, 0.0), (3.0, 2.5, 0.2, 0.0), (3.0, 4.0, 0.2, 0.0),
    (2.0, 1.5, 0.3, 0.15), (2.0, 1.5, 0.3, 0.3), (3.0, 2.5, 0.2, 0.3), (2.0, 1.5, 0.3, 0.5))


def stratified_folds(rng: np.random.Generator) -> np.ndarray:
    """Fold index per song, shape (160,): two songs of each class per fold."""
    fold = np.empty(N_CLASSES * PER_CLASS, int)
    for c in range(N_CLASSES):
        fold[rng.permutation(PER_CLASS) + c * PER_CLASS] = np.arange(PER_CLASS) % K
    return fold


def fold_accuracies(p_correct: np.ndarray, fold: np.ndarray, rng: np.random.Generator,
                    fold_shift: float, seed_shift: float) -> np.ndarray:
    """Accuracy (%) of each of the K fold models, shape (K,)."""
    shift = (rng.normal(0, fold_shift, K)[fold] if fold_shift else 0.0) + seed_shift
    correct = rng.random(p_correct.size) < norm.cdf(norm.ppf(p_correct) + shift)
    return np.bincount(fold, weights=correct, minlength=K) / np.bincount(fold, minlength=K) * 100


def experiment(rng: np.random.Generator, tau: float, kappa: float, fold_shift: float,
               seed_shift: float) -> tuple[bool, float, tuple[float, float, float]]:
    """One null sweep pair: (interval covers 0, seed-means variance ratio, moments)."""
    z = rng.normal(-0.3, tau, N_CLASSES * PER_CLASS)
    qa = norm.cdf(z + rng.normal(0, kappa, z.size))
    qb = norm.cdf(z + rng.normal(0, kappa, z.size))
    a_all, b_all, moments = [], [], None
    for s in range(SEEDS):
        fold = stratified_folds(rng)
        a = fold_accuracies(qa, fold, rng, fold_shift, rng.normal(0, seed_shift))
        b = fold_accuracies(qb, fold, rng, fold_shift, rng.normal(0, seed_shift))
        a_all.append(a)
        b_all.append(b)
        if s == 0:  # a second training on the same folds, like the two engines
            a2 = fold_accuracies(qa, fold, rng, fold_shift, rng.normal(0, seed_shift))
            moments = (a.std(ddof=1), float(np.corrcoef(a, a2)[0, 1]), a.mean())
    c = compare_accuracies(np.concatenate(a_all), np.concatenate(b_all), test_train_ratio=1 / 8)
    d = np.array(a_all) - np.array(b_all)  # (seeds, folds)
    ratio = d.mean(1).var(ddof=1) / (d.var(1, ddof=1).mean() / K)
    return c.ci95[0] <= 0 <= c.ci95[1], float(ratio), moments


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.sweep_null_coverage",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("n", nargs="?", type=int, default=300, help="experiments per setting")
    p.add_argument("--seed", type=int, default=2026)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"{args.n} null experiments per setting; 95 % intervals that contain 0:")
    for tau, kappa, fold_shift, seed_shift in SETTINGS:
        t0 = time.time()
        runs = [experiment(rng, tau, kappa, fold_shift, seed_shift) for _ in range(args.n)]
        cover = float(np.mean([r[0] for r in runs]))
        se = np.sqrt(cover * (1 - cover) / args.n)
        fold_sd, same_fold_corr, acc = np.nanmean(np.array([r[2] for r in runs]), axis=0)
        print(f"tau {tau} kappa {kappa} fold shift {fold_shift} seed shift {seed_shift}: "
              f"coverage {cover:.3f} ({cover - 1.96 * se:.3f}-{min(1.0, cover + 1.96 * se):.3f})"
              f" · fold sd {fold_sd:.1f}, accuracy {acc:.0f} %, same-fold corr "
              f"{same_fold_corr:.2f}, seed-means ratio {np.median([r[1] for r in runs]):.2f}"
              f" [{time.time() - t0:.0f} s]", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
