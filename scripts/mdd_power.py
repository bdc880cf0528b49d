"""Is the minimum detectable difference what it says? Plant a difference equal to it and count
how often the corrected resampled t (:func:`tfcnn.evaluate.compare_accuracies`) detects it;
plant none and count false detections (the size).

Three models of a cross-validated comparison, each at the lab's design (10 folds,
``n_test / n_train = 1 / 8``), with 1 seed (10 paired folds) and with 3 seeds (30 paired
folds, the corrected repeated k-fold t):

- **exact**: per-fold differences normal with equal correlation ``ρ / (1 + ρ)`` between folds,
  the model under which the corrected t is exact (Nadeau & Bengio 2003). It checks the
  arithmetic: power at the MDD should be 80 %, size 5 %.
- **songs**: the song-level simulation of ``scripts/sweep_null_coverage.py`` (160 songs in 8
  classes, stratified folds, per-song difficulty, per-fold model shifts, accuracy about 40 %,
  fold sd about 12 points as in the lab's ``tempo`` cells), with model A's songs shifted on the
  probit scale so that its population accuracy is higher by the MDD. The MDD is computed as a
  user reads it: from the corrected standard error of a pilot (the root mean square over the
  null experiments). There the correction is conservative (``sweep_null_coverage``: coverage
  97-100 %): the stated standard error is larger than the true one, so the MDD overstates
  what is needed and the power at it is above 80 %.
- **songs+seed effect**: the same with a per-seed shift of each model (probit sd 0.3), the
  setting where ``sweep_null_coverage`` found the pooled interval slightly liberal (93.6 %).

    python -m scripts.mdd_power 2000
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import norm

from scripts.sweep_null_coverage import K, N_CLASSES, PER_CLASS, fold_accuracies, stratified_folds
from tfcnn.evaluate import compare_accuracies, minimum_detectable_difference

RATIO = 1.0 / 8.0  # n_test / n_train of 10-fold ``clean`` (one test, one validation fold)
#: The song-level settings (tau, kappa, fold_shift, seed_shift) of sweep_null_coverage: song
#: difficulty spread, disagreement of the two models per song, per-fold shift of a trained
#: model, per-seed shift of each model (probit scale). The first is conservative there
#: (coverage 97-100 %), the second the most liberal setting it found (93.6 %).
SONGS: dict[str, tuple[float, float, float, float]] = {
    "songs": (2.0, 1.5, 0.3, 0.0), "songs+seed effect": (2.0, 1.5, 0.3, 0.3)}


def exact_rates(rng: np.random.Generator, n: int, *, seeds: int, sd: float = 12.0,
                ratio: float = RATIO) -> dict:
    """Size and power at the MDD under the equicorrelated normal model."""
    j = K * seeds
    r = ratio / (1 + ratio)
    # d = δ + sd·(√r·common + √(1−r)·own):
    # Var(mean) = (1/J + ratio)·sd²(1−r), E[s²] = sd²(1−r)
    se = np.sqrt((1 / j + ratio) * sd ** 2 * (1 - r))
    mdd = minimum_detectable_difference(float(se), float(j - 1))
    out = {"model": "exact", "seeds": seeds, "folds": j, "mdd": mdd}
    for name, delta in (("size", 0.0), ("power", mdd)):
        common = rng.standard_normal((n, 1))
        own = rng.standard_normal((n, j))
        d = delta + sd * (np.sqrt(r) * common + np.sqrt(1 - r) * own)   # (n, J)
        hits = [_detected(compare_accuracies(row, np.zeros(j), test_train_ratio=ratio))
                for row in d]
        out[name] = float(np.mean(hits))
    return out


def _detected(c) -> bool:
    """The 95 % interval excludes 0 (either direction: the MDD's two-sided test)."""
    return c.ci95[0] > 0 or c.ci95[1] < 0


def _song_pair(rng: np.random.Generator, setting: tuple, shift: float,
               seeds: int) -> tuple[np.ndarray, ...]:
    """One simulated comparison: A's and B's per-fold accuracies over ``seeds`` × K folds."""
    tau, kappa, fold_shift, seed_shift = setting
    z = rng.normal(-0.3, tau, N_CLASSES * PER_CLASS)
    qa = norm.cdf(z + shift + rng.normal(0, kappa, z.size))
    qb = norm.cdf(z + rng.normal(0, kappa, z.size))
    a, b = [], []
    for _ in range(seeds):
        fold = stratified_folds(rng)
        a.append(fold_accuracies(qa, fold, rng, fold_shift, rng.normal(0, seed_shift)))
        b.append(fold_accuracies(qb, fold, rng, fold_shift, rng.normal(0, seed_shift)))
    return np.concatenate(a), np.concatenate(b)


def accuracy_gain(shift: float, setting: tuple, *, n: int = 400_000, seed: int = 7) -> float:
    """Population accuracy of A minus B (points) for a probit shift of A's songs."""
    rng = np.random.default_rng(seed)
    tau, kappa = setting[:2]
    z = rng.normal(-0.3, tau, n)
    e = rng.normal(0, kappa, n)
    return 100.0 * float(np.mean(norm.cdf(z + e + shift) - norm.cdf(z + e)))


def shift_for(points: float, setting: tuple) -> float:
    """The probit shift whose population accuracy gain is ``points`` (bisection)."""
    lo, hi = 0.0, 3.0
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if accuracy_gain(mid, setting) < points else (lo, mid)
    return (lo + hi) / 2


def song_rates(rng: np.random.Generator, n: int, *, seeds: int, model: str = "songs") -> dict:
    """Size, then power at the MDD read from the null experiments' mean corrected variance."""
    setting = SONGS[model]
    null = [compare_accuracies(*_song_pair(rng, setting, 0.0, seeds), test_train_ratio=RATIO)
            for _ in range(n)]
    size = float(np.mean([_detected(c) for c in null]))
    se = float(np.sqrt(np.mean([c.std_error ** 2 for c in null])))
    mdd = minimum_detectable_difference(se, null[0].df)
    shift = shift_for(mdd, setting)
    planted = [compare_accuracies(*_song_pair(rng, setting, shift, seeds),
                                  test_train_ratio=RATIO) for _ in range(n)]
    return {"model": model, "seeds": seeds, "folds": K * seeds, "mdd": mdd, "size": size,
            "power": float(np.mean([_detected(c) for c in planted])),
            "observed_difference": float(np.mean([c.mean_difference for c in planted])),
            # the sd of the per-fold differences: se² = (1/J + ratio) · s²
            "fold_sd": se / float(np.sqrt(1 / (K * seeds) + RATIO))}


def _interval(share: float, n: int) -> str:
    half = 1.96 * np.sqrt(share * (1 - share) / n)
    return f"{share:.3f} ({max(share - half, 0):.3f}-{min(share + half, 1):.3f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.mdd_power", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("n", nargs="?", type=int, default=1000, help="experiments per rate")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--models", default=",".join(["exact", *SONGS]))
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    models = {"exact": exact_rates,
              **{name: (lambda r, n, *, seeds, name=name: song_rates(r, n, seeds=seeds,
                                                                     model=name))
                 for name in SONGS}}
    print(f"{args.n} experiments per rate; size = detections with no difference planted, "
          f"power = detections with the MDD planted (95 % binomial intervals)")
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        for seeds in (1, 3):
            r = models[name](rng, args.n, seeds=seeds)
            extra = (f" · mean observed A − B {r['observed_difference']:.1f}, sd of the "
                     f"fold differences {r['fold_sd']:.1f}" if "fold_sd" in r else "")
            print(f"{name}, {seeds} seed(s), {r['folds']} paired folds: MDD {r['mdd']:.1f} "
                  f"points · size {_interval(r['size'], args.n)} · power "
                  f"{_interval(r['power'], args.n)}{extra}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
